// CGI/1.1 runner (RFC 3875): one script process per /cgi/ request, body to stdin and
// stdout back to the native connection with backpressure both ways, limits and timeouts.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STATUS_CODES } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { buildCgiEnv, parseCgiTarget, type CgiEnvOptions } from './cgi_env.js';
import { CgiOutputParser, type CgiHead } from './cgi_output.js';
import type { Logger } from './log.js';
import type { CgiRequest, NativeHandlers, NativeServer } from './native.js';
import { ScriptProcess } from './spawn.js';

export interface CgiOptions {
  script: string; // path of the one CGI script
  timeoutMs: number; // script silent this long → process group killed (504 if nothing sent)
  maxProcesses: number; // scripts running at once
  maxQueue: number; // requests waiting for a slot; beyond → 503
  passEnv: string[]; // names copied from lisod's environment (PATH always)
  env: Record<string, string>; // fixed variables for every script
  serverName: string; // SERVER_NAME when a request has no usable Host
}

const kScriptName = '/cgi';
const kMaxLocalRedirects = 10;
const kMemorySpoolBytes = 1 << 20; // chunked bodies above this go to a temp file
const kKillGraceMs = 2000; // SIGTERM → SIGKILL when the client went away
const kMaxStderrLine = 4096;
const kDefaultPath = '/usr/local/bin:/usr/bin:/bin';

/** A chunked request body collected so that CONTENT_LENGTH can be given (RFC 3875 §4.1.2). */
class BodySpool {
  length = 0;
  #chunks: Buffer[] = [];
  #file: string | undefined;
  #stream: fs.WriteStream | undefined;

  /** Returns false when the caller should pause the body until `onDrain`. */
  write(chunk: Buffer, onDrain: () => void, onError: (e: Error) => void): boolean {
    this.length += chunk.length;
    if (!this.#stream && this.length <= kMemorySpoolBytes) {
      this.#chunks.push(chunk);
      return true;
    }
    if (!this.#stream) {
      this.#file = path.join(os.tmpdir(), `lisod-cgi-body-${process.pid}-${crypto.randomBytes(8).toString('hex')}`);
      this.#stream = fs.createWriteStream(this.#file, { flags: 'wx', mode: 0o600 });
      this.#stream.on('error', onError);
      for (const c of this.#chunks) this.#stream.write(c);
      this.#chunks = [];
    }
    if (this.#stream.write(chunk)) return true;
    this.#stream.once('drain', onDrain);
    return false;
  }

  /** Calls back with the body in memory, or an fd open on the (already unlinked) file. */
  finish(done: (body: Buffer | number) => void, onError: (e: Error) => void): void {
    const stream = this.#stream;
    if (!stream) {
      done(Buffer.concat(this.#chunks));
      return;
    }
    stream.end(() => {
      try {
        const fd = fs.openSync(this.#file!, 'r');
        this.discard();
        done(fd);
      } catch (e) {
        onError(e as Error);
      }
    });
  }

  discard(): void {
    this.#chunks = [];
    this.#stream?.destroy();
    if (this.#file) {
      try {
        fs.unlinkSync(this.#file); // at once: an open fd keeps the data for the script
      } catch {
        // Already gone.
      }
    }
    this.#file = undefined;
  }
}

/** One script process. After a local redirect it is detached: output ignored, slot held. */
interface ScriptRun {
  child: ScriptProcess;
  parser: CgiOutputParser;
  headDone: boolean;
  discardOutput: boolean; // HEAD, 204/304, error already answered, detached
  detached: boolean;
  timedOut: boolean;
  stdoutPaused: boolean;
  stdinOpen: boolean;
  timer: NodeJS.Timeout | undefined;
  released: boolean;
}

/** One client request, possibly served by several runs (local redirects). */
interface Exchange {
  id: number;
  request: CgiRequest;
  redirects: number;
  bodyEnded: boolean;
  bodyPaused: boolean;
  bodyWanted: boolean; // false once the script cannot take more (exited, answered, redirect)
  pendingBody: Buffer[]; // chunks that arrived before the script started
  spool: BodySpool | undefined;
  spooled: Buffer | number | undefined; // finished chunked body: bytes or fd
  run: ScriptRun | undefined;
  headSent: boolean;
  ended: boolean;
  gone: boolean; // the connection closed
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class CgiRunner {
  readonly handlers: Pick<NativeHandlers, 'request' | 'body' | 'close' | 'drain'>;
  readonly #options: CgiOptions;
  readonly #logger: Logger;
  readonly #envOptions: CgiEnvOptions;
  readonly #scriptLabel: string;
  #server: NativeServer | undefined;
  readonly #exchanges = new Map<number, Exchange>();
  #queue: Exchange[] = [];
  #running = 0;
  readonly #live = new Set<ScriptRun>(); // processes not yet exited, detached ones included

  constructor(options: CgiOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
    const script = path.resolve(options.script);
    this.#scriptLabel = path.basename(script);
    const inherited: Record<string, string> = { PATH: process.env.PATH || kDefaultPath };
    for (const name of options.passEnv) {
      const value = process.env[name];
      if (value !== undefined) inherited[name] = value;
    }
    Object.assign(inherited, options.env);
    this.#envOptions = { scriptFilename: script, scriptName: kScriptName, serverName: options.serverName, inherited };
    this.handlers = {
      request: (req) => this.#onRequest(req),
      body: (id, chunk) => this.#onBody(id, chunk),
      close: (id) => this.#onClose(id),
      drain: (id) => this.#onDrain(id),
    };
  }

  attach(server: NativeServer): void {
    this.#server = server;
  }

  /** Shutdown: SIGTERM every running script's process group, SIGKILL after a grace period. */
  stop(): void {
    this.#queue = [];
    for (const run of this.#live) this.#terminate(run);
  }

  get #native(): NativeServer {
    if (!this.#server) throw new Error('CgiRunner: attach(server) before requests arrive');
    return this.#server;
  }

  #onRequest(request: CgiRequest): void {
    const ex: Exchange = {
      id: request.id, request, redirects: 0, bodyEnded: !request.hasBody, bodyPaused: false,
      bodyWanted: request.hasBody, pendingBody: [], spool: undefined, spooled: undefined,
      run: undefined, headSent: false, ended: false, gone: false,
    };
    this.#exchanges.set(ex.id, ex);
    try {
      parseCgiTarget(request.target, kScriptName);
    } catch (e) {
      this.#fail(ex, 400, `bad request-target: ${(e as Error).message}`, 'info');
      return;
    }
    if (request.hasBody && request.contentLength < 0) {
      ex.spool = new BodySpool();
      return; // #onBody enqueues once the whole chunked body is in
    }
    this.#enqueue(ex);
  }

  #onBody(id: number, chunk: Buffer | null): void {
    const ex = this.#exchanges.get(id);
    if (!ex || ex.bodyEnded) return;
    if (chunk === null) ex.bodyEnded = true;
    if (!ex.bodyWanted) return;
    if (ex.spool) {
      const spool = ex.spool;
      const onError = (e: Error): void => this.#fail(ex, 500, `spooling the request body: ${e.message}`);
      if (chunk === null) {
        ex.spool = undefined;
        spool.finish((body) => {
          if (ex.gone || ex.ended) {
            if (typeof body === 'number') fs.closeSync(body);
            return;
          }
          ex.spooled = body;
          ex.request = { ...ex.request, contentLength: spool.length };
          this.#enqueue(ex);
        }, onError);
      } else if (!spool.write(chunk, () => this.#resumeBody(ex), onError)) {
        this.#pauseBody(ex);
      }
      return;
    }
    const run = ex.run;
    if (!run || !run.child.stdin) {
      if (chunk) ex.pendingBody.push(chunk);
      return;
    }
    this.#feedStdin(ex, run, chunk);
  }

  #feedStdin(ex: Exchange, run: ScriptRun, chunk: Buffer | null): void {
    const stdin = run.child.stdin!;
    if (!run.stdinOpen) return;
    if (chunk === null) {
      stdin.end();
      return;
    }
    this.#touch(ex, run);
    if (!stdin.write(chunk)) {
      this.#pauseBody(ex);
      stdin.once('drain', () => {
        this.#touch(ex, run);
        this.#resumeBody(ex);
      });
    }
  }

  #onDrain(id: number): void {
    const run = this.#exchanges.get(id)?.run;
    if (run && run.stdoutPaused && !run.detached) {
      run.stdoutPaused = false;
      run.child.stdout.resume();
      this.#touch(this.#exchanges.get(id)!, run);
    }
  }

  #onClose(id: number): void {
    const ex = this.#exchanges.get(id);
    if (!ex) return;
    ex.gone = true;
    ex.ended = true;
    this.#exchanges.delete(id);
    this.#queue = this.#queue.filter((q) => q !== ex);
    ex.spool?.discard();
    if (typeof ex.spooled === 'number') fs.closeSync(ex.spooled);
    ex.spooled = undefined;
    if (ex.run && !ex.run.released) this.#terminate(ex.run);
  }

  /** Nobody wants this run's output any more: SIGTERM its group, SIGKILL after a grace. */
  #terminate(run: ScriptRun): void {
    run.detached = true;
    run.child.stdout.resume();
    this.#signal(run, 'SIGTERM');
    const t = setTimeout(() => this.#signal(run, 'SIGKILL'), kKillGraceMs);
    t.unref();
    run.child.once('close', () => clearTimeout(t));
  }

  #enqueue(ex: Exchange): void {
    if (this.#running < this.#options.maxProcesses) {
      this.#start(ex);
    } else if (this.#queue.length < this.#options.maxQueue) {
      if (!ex.bodyEnded && ex.bodyWanted) this.#pauseBody(ex);
      this.#queue.push(ex);
    } else {
      this.#fail(ex, 503, `${this.#options.maxProcesses} scripts running and ${this.#options.maxQueue} queued`, 'warn');
    }
  }

  #pump(): void {
    while (this.#running < this.#options.maxProcesses && this.#queue.length > 0) {
      this.#start(this.#queue.shift()!);
    }
  }

  #start(ex: Exchange): void {
    let env: Record<string, string>;
    try {
      env = buildCgiEnv(ex.request, this.#envOptions);
    } catch (e) {
      this.#fail(ex, 400, `bad request-target: ${(e as Error).message}`, 'info');
      return;
    }
    const streamsBody = !ex.bodyEnded || ex.pendingBody.length > 0 || Buffer.isBuffer(ex.spooled);
    const stdin = typeof ex.spooled === 'number' ? ex.spooled : streamsBody ? 'pipe' : 'ignore';
    const script = this.#envOptions.scriptFilename;
    let child: ScriptProcess;
    try {
      // Own process group: a timeout kills everything the script started.
      child = new ScriptProcess(script, { cwd: path.dirname(script), env, stdin });
    } catch (e) {
      this.#fail(ex, 500, `cannot run ${script}: ${(e as Error).message}`);
      return;
    } finally {
      if (typeof ex.spooled === 'number') fs.closeSync(ex.spooled);
      ex.spooled = typeof ex.spooled === 'number' ? undefined : ex.spooled;
    }
    this.#running++;
    const run: ScriptRun = {
      child, parser: new CgiOutputParser(), headDone: false, discardOutput: false, detached: false,
      timedOut: false, stdoutPaused: false, stdinOpen: child.stdin !== null, timer: undefined, released: false,
    };
    ex.run = run;
    this.#live.add(run);

    child.stdin?.on('error', () => {}); // EPIPE: the script stopped reading; handled on 'close'
    child.stdin?.on('close', () => {
      run.stdinOpen = false;
      if (ex.run === run && !ex.bodyEnded) {
        ex.bodyWanted = false; // the rest of the upload is drained by the connection
        this.#resumeBody(ex);
      }
    });
    child.stdout.on('data', (chunk: Buffer) => this.#onStdout(ex, run, chunk));
    child.stdout.on('end', () => {
      if (run.headDone && !run.detached && ex.run === run) this.#finish(ex);
    });
    this.#pipeStderr(child);
    child.on('close', (code, signal) => this.#onExit(ex, run, code, signal));

    if (Buffer.isBuffer(ex.spooled)) {
      child.stdin!.end(ex.spooled);
      ex.spooled = undefined;
    } else if (child.stdin) {
      for (const chunk of ex.pendingBody) this.#feedStdin(ex, run, chunk);
      ex.pendingBody = [];
      if (ex.bodyEnded) child.stdin.end();
      else this.#resumeBody(ex);
    }
    this.#touch(ex, run);
  }

  #pipeStderr(child: ScriptProcess): void {
    let partial = '';
    const emit = (line: string): void => {
      if (line !== '') this.#logger.error(`cgi ${this.#scriptLabel}[${child.pid}]: ${line.slice(0, kMaxStderrLine)}`);
    };
    const decoder = new StringDecoder('utf8');
    child.stderr.on('data', (chunk: Buffer) => {
      const lines = (partial + decoder.write(chunk)).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) emit(line.replace(/\r$/, ''));
      if (partial.length > kMaxStderrLine) {
        emit(partial);
        partial = '';
      }
    });
    child.stderr.on('end', () => emit(partial + decoder.end()));
  }

  #onStdout(ex: Exchange, run: ScriptRun, chunk: Buffer): void {
    if (run.detached || ex.gone) return;
    this.#touch(ex, run);
    if (!run.headDone) {
      const step = run.parser.push(chunk);
      if (!step.done) return;
      run.headDone = true;
      this.#onHead(ex, run, step.head, step.rest);
      return;
    }
    this.#forward(ex, run, chunk);
  }

  #onHead(ex: Exchange, run: ScriptRun, head: CgiHead, rest: Buffer): void {
    const isHead = ex.request.method === 'HEAD';
    switch (head.kind) {
      case 'invalid':
        this.#fail(ex, 502, `bad output from ${this.#scriptLabel}: ${head.reason}`);
        this.#signal(run, 'SIGKILL');
        return;
      case 'local-redirect':
        this.#localRedirect(ex, run, head.location);
        return;
      case 'nph':
        ex.headSent = true;
        this.#native.beginRaw(ex.id);
        this.#forward(ex, run, head.head);
        run.discardOutput = isHead; // RFC 9110 §9.3.2: no content in a response to HEAD
        this.#forward(ex, run, rest);
        return;
      case 'response':
        ex.headSent = true;
        this.#native.beginResponse(ex.id, head.status, head.reason, head.headers);
        run.discardOutput = isHead || head.noBody;
        this.#forward(ex, run, rest);
        return;
    }
  }

  /** RFC 3875 §6.2.2: answer as if the client had sent a GET for the new location. */
  #localRedirect(ex: Exchange, run: ScriptRun, location: string): void {
    run.detached = true;
    run.child.stdout.resume();
    if (ex.redirects >= kMaxLocalRedirects) {
      this.#fail(ex, 500, `more than ${kMaxLocalRedirects} local redirects (last ${location})`);
      return;
    }
    try {
      parseCgiTarget(location, kScriptName);
    } catch {
      // Outside the CGI prefix: the native server owns those paths; let the client ask it.
      ex.headSent = true;
      this.#native.beginResponse(ex.id, 302, 'Found', ['Location', location, 'Content-Length', '0']);
      this.#finish(ex);
      return;
    }
    // [[access]] again for the new target, on this connection's identity (native rules).
    const denied = this.#native.accessStatus(ex.id, location);
    if (denied !== 0) {
      this.#fail(ex, denied, `local redirect to ${location} refused by [[access]]`, 'info');
      return;
    }
    ex.redirects++;
    this.#stopBody(ex);
    const headers: string[] = [];
    const h = ex.request.headers;
    for (let i = 0; i + 1 < h.length; i += 2) {
      if (!/^(content-length|content-type|transfer-encoding)$/i.test(h[i])) headers.push(h[i], h[i + 1]);
    }
    ex.request = { ...ex.request, method: 'GET', target: location, headers, hasBody: false, contentLength: 0 };
    ex.pendingBody = [];
    ex.run = undefined;
    this.#enqueue(ex);
  }

  #forward(ex: Exchange, run: ScriptRun, chunk: Buffer): void {
    if (chunk.length === 0 || run.discardOutput || ex.ended) return;
    if (!this.#native.write(ex.id, chunk)) {
      run.stdoutPaused = true;
      run.child.stdout.pause();
      this.#touch(ex, run); // the client is slow, not the script: no timeout meanwhile
    }
  }

  #onExit(ex: Exchange, run: ScriptRun, code: number | null, signal: NodeJS.Signals | null): void {
    this.#release(run);
    if (run.detached || ex.ended) return;
    if (!run.headDone) {
      if (run.timedOut) {
        this.#fail(ex, 504, `${this.#scriptLabel} sent nothing for ${this.#options.timeoutMs} ms; killed`);
      } else if (code !== 0) {
        const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
        this.#fail(ex, 500, `${this.#scriptLabel} ${how} before sending a response`);
      } else {
        this.#fail(ex, 502, `bad output from ${this.#scriptLabel}: ${run.parser.end().reason}`);
      }
      return;
    }
    if (run.timedOut) {
      this.#logger.error(`cgi ${this.#scriptLabel}[${run.child.pid}]: silent for ${this.#options.timeoutMs} ms after its head; killed`);
    } else if (code !== 0) {
      this.#logger.warn(`cgi ${this.#scriptLabel}[${run.child.pid}]: exited with ${signal ?? `status ${code}`} after its head`);
    }
    // A killed or failing script may have stopped mid-body: close the connection
    // instead of ending the framing, so the client cannot take it for complete.
    this.#finish(ex, run.timedOut || code !== 0);
  }

  #release(run: ScriptRun): void {
    if (run.timer) clearTimeout(run.timer);
    run.timer = undefined;
    if (run.released) return;
    run.released = true;
    this.#live.delete(run);
    this.#running--;
    this.#pump();
  }

  /** Restarts the silence timer, or stops it while the client (not the script) is slow. */
  #touch(ex: Exchange, run: ScriptRun): void {
    if (run.timer) clearTimeout(run.timer);
    run.timer = undefined;
    if (run.released || run.stdoutPaused || ex.gone) return;
    run.timer = setTimeout(() => {
      run.timedOut = true;
      this.#signal(run, 'SIGKILL');
    }, this.#options.timeoutMs);
  }

  /** Signals the run's whole process group (it leads its own). */
  #signal(run: ScriptRun, signal: NodeJS.Signals): void {
    const pid = run.child.pid;
    if (run.child.exitCode !== null || run.child.signalCode !== null) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  #pauseBody(ex: Exchange): void {
    if (ex.bodyPaused || ex.bodyEnded || ex.gone) return;
    ex.bodyPaused = true;
    this.#native.pauseBody(ex.id);
  }

  #resumeBody(ex: Exchange): void {
    if (!ex.bodyPaused || ex.gone) return;
    ex.bodyPaused = false;
    this.#native.resumeBody(ex.id);
  }

  /** The script will not get (more of) the body: let the connection read it to the end. */
  #stopBody(ex: Exchange): void {
    ex.bodyWanted = false;
    ex.pendingBody = [];
    ex.spool?.discard();
    ex.spool = undefined;
    if (typeof ex.spooled === 'number') fs.closeSync(ex.spooled);
    ex.spooled = undefined;
    this.#resumeBody(ex);
  }

  #finish(ex: Exchange, cutShort = false): void {
    if (ex.ended) return;
    ex.ended = true;
    this.#stopBody(ex);
    if (cutShort) this.#native.abort(ex.id);
    else this.#native.end(ex.id);
    this.#exchanges.delete(ex.id); // later body/close events for this id are moot
  }

  /** Logs and answers an HTML error page; if a head already went out, just ends. */
  #fail(ex: Exchange, status: number, detail: string, level: 'error' | 'warn' | 'info' = 'error'): void {
    if (ex.ended) return;
    this.#logger[level](`cgi ${ex.request.method} ${ex.request.target}: ${status} ${detail}`);
    if (ex.run) {
      ex.run.discardOutput = true;
      ex.run.child.stdout.resume();
    }
    this.#queue = this.#queue.filter((q) => q !== ex);
    if (ex.headSent) {
      this.#finish(ex);
      return;
    }
    const reason = STATUS_CODES[status] ?? 'Error';
    const message: Record<number, string> = {
      400: 'The request cannot be handed to the CGI script.',
      403: 'You do not have access to this resource.',
      500: 'The CGI script failed.',
      502: 'The CGI script sent a response the server cannot understand.',
      503: 'Too many CGI requests are in progress. Try again shortly.',
      504: 'The CGI script did not answer in time.',
    };
    const body = Buffer.from(
      `<!DOCTYPE html>\n<html><head><title>${status} ${escapeHtml(reason)}</title></head>\n` +
        `<body><h1>${status} ${escapeHtml(reason)}</h1>\n<p>${escapeHtml(message[status] ?? reason)}</p></body></html>\n`,
    );
    const headers = ['Content-Type', 'text/html; charset=utf-8', 'Content-Length', String(body.length)];
    if (status === 503) headers.push('Retry-After', '1');
    ex.headSent = true;
    this.#native.beginResponse(ex.id, status, reason, headers);
    this.#native.write(ex.id, body);
    this.#finish(ex);
  }
}
