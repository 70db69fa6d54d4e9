// The shared application runner behind one URL prefix (a "mount"): environment (RFC 3875),
// request body buffering, Status/Location and local redirects, limits, queue, timeouts and
// backpressure both ways — for any AppTransport (a CGI process, a FastCGI backend).
import fs from 'node:fs';
import { STATUS_CODES } from 'node:http';
import { BodyFraming, nphFraming } from './app_framing.js';
import { forEachLine } from './app_lines.js';
import { LocalSlots, NativeSlots, type Slot, type SlotPool } from './app_slots.js';
import { BodySpool, SpoolFullError, type SpoolBudget } from './app_spool.js';
import type { AppBody, AppBodyFile, AppEnd, AppProcess, AppTransport } from './app_transport.js';
import { buildCgiEnv, parseCgiTarget, type CgiTarget } from './cgi_env.js';
import { CgiOutputParser, type CgiHead } from './cgi_output.js';
import type { Logger } from './log.js';
import type { CgiRequest, NativeHandlers, NativeServer } from './native.js';

export interface AppMountOptions {
  prefix: string; // URL prefix without a trailing '/', e.g. '/cgi': this path and everything below
  transport: AppTransport;
  scriptFilename: string; // SCRIPT_FILENAME (SCRIPT_NAME is the prefix) unless route() says otherwise
  /** Per request SCRIPT_NAME/SCRIPT_FILENAME (e.g. FastCGI `root`); null → 404. Default: prefix + scriptFilename. */
  route?: (target: CgiTarget) => { scriptName: string; scriptFilename: string; pathInfo?: string } | null;
  timeoutMs: number; // application silent this long → killed (504 if nothing sent yet)
  maxProcesses: number; // exchanges running at once
  maxQueue: number; // requests waiting for a slot; beyond → 503
  requestBuffering: boolean; // whole body before the application starts (chunked bodies always are)
  inherited: Record<string, string>; // fixed variables for every exchange (see inheritedEnv)
  serverName: string; // SERVER_NAME when a request has no usable Host
  spoolDir: string; // where bodies above kMemoryBodyBytes are buffered (unnamed files)
  spoolBudget: SpoolBudget; // shared by every mount of one event loop
}

const kMaxLocalRedirects = 10;
const kMaxStderrLine = 4096;
const kEofWaitMs = 100; // as native/cgi_run.cc
const kDefaultPath = '/usr/local/bin:/usr/bin:/bin';

/** PATH (always), the pass_env names found in `from`, then the fixed `env` table. */
export function inheritedEnv(passEnv: string[], env: Record<string, string>, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const inherited: Record<string, string> = { PATH: from.PATH || kDefaultPath };
  for (const name of passEnv) {
    const value = from[name];
    if (value !== undefined) inherited[name] = value;
  }
  return Object.assign(inherited, env);
}

/** One application exchange (a process, a backend request). After a local redirect its output is ignored. */
interface Run {
  proc: AppProcess;
  parser: CgiOutputParser;
  headDone: boolean;
  framing: BodyFraming | undefined; // set with the head: where the response body ends
  completed: boolean; // the runner has what it wants: output ignored, proc.complete() called
  timedOut: boolean;
  stdoutPaused: boolean;
  timer: NodeJS.Timeout | undefined;
  eofWait: NodeJS.Timeout | undefined; // stdout ended before the exit: how long its status may take
  closed: boolean; // 'close' came: slot free
  slot: Slot; // held until 'close'
  spool: BodySpool | undefined; // the buffered body's budget, held until the run closes
}

/** One client request, possibly served by several runs (local redirects). */
interface Exchange {
  id: number;
  request: CgiRequest;
  redirects: number;
  bodyEnded: boolean;
  bodyPaused: boolean;
  bodyWanted: boolean; // false once the application cannot take more (exited, answered, redirect)
  pendingBody: Buffer[]; // streamed chunks that arrived before the application started
  spool: BodySpool | undefined; // buffering the body
  spooled: Buffer | AppBodyFile | undefined; // the whole buffered body, not yet handed over
  run: Run | undefined;
  slot: Slot | undefined; // asked for and not yet handed to a run (waiting, or granted this turn)
  headSent: boolean;
  ended: boolean;
  gone: boolean; // the connection closed
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const kMessages: Record<number, string> = {
  400: 'The request cannot be handed to the application.',
  403: 'You do not have access to this resource.',
  404: 'No application script matches this path.',
  500: 'The application failed.',
  502: 'The application failed or sent a response the server cannot understand.',
  503: 'Too many requests for the application are in progress. Try again shortly.',
  504: 'The application did not answer in time.',
};

export class AppRunner {
  readonly handlers: Pick<NativeHandlers, 'request' | 'body' | 'close' | 'drain'> & { slot(ticket: number): boolean };
  readonly #o: AppMountOptions;
  readonly #logger: Logger;
  readonly #tag: string; // log prefix: the transport's name
  #server: NativeServer | undefined;
  readonly #exchanges = new Map<number, Exchange>();
  #slots: SlotPool;
  readonly #live = new Set<Run>(); // runs whose 'close' has not come, redirected ones included

  constructor(options: AppMountOptions, logger: Logger) {
    this.#o = options;
    this.#logger = logger;
    this.#tag = options.transport.name;
    this.#slots = new LocalSlots(options.maxProcesses, options.maxQueue);
    this.handlers = {
      slot: (ticket) => this.#slots instanceof NativeSlots && this.#slots.grant(ticket),
      request: (req) => this.#onRequest(req),
      body: (id, chunk) => this.#onBody(id, chunk),
      close: (id) => this.#onClose(id),
      drain: (id) => this.#onDrain(id),
    };
  }

  get prefix(): string {
    return this.#o.prefix;
  }

  /** nativeMount: the index of this mount in the native client's table, when it serves it too
   *  (one pool of slots for both paths, kept there). */
  attach(server: NativeServer, nativeMount?: number): void {
    this.#server = server;
    if (nativeMount !== undefined) this.#slots = new NativeSlots(server, nativeMount);
  }

  /** True while request `id` is this runner's and not finished. */
  owns(id: number): boolean {
    return this.#exchanges.has(id);
  }

  /** Shutdown: every running exchange is terminated (CGI: SIGTERM, SIGKILL after a grace). */
  stop(): void {
    for (const ex of this.#exchanges.values()) this.#dropSlot(ex);
    for (const run of this.#live) run.proc.terminate();
    this.#o.transport.stop?.();
  }

  get #native(): NativeServer {
    if (!this.#server) throw new Error('AppRunner: attach(server) before requests arrive');
    return this.#server;
  }

  #onRequest(request: CgiRequest): void {
    const ex: Exchange = {
      id: request.id, request, redirects: 0, bodyEnded: !request.hasBody, bodyPaused: false,
      bodyWanted: request.hasBody, pendingBody: [], spool: undefined, spooled: undefined,
      run: undefined, slot: undefined, headSent: false, ended: false, gone: false,
    };
    this.#exchanges.set(ex.id, ex);
    try {
      parseCgiTarget(request.target, this.#o.prefix);
    } catch (e) {
      this.#fail(ex, 400, `bad request-target: ${(e as Error).message}`, 'info');
      return;
    }
    // Buffered: the application starts with the whole body, so a slow sender holds only its
    // connection, never a slot. Chunked bodies are always buffered (RFC 3875 §4.1.2 wants
    // CONTENT_LENGTH).
    if (request.hasBody && (this.#o.requestBuffering || request.contentLength < 0)) {
      ex.spool = new BodySpool(this.#o.spoolDir, this.#o.spoolBudget, (e) => this.#fail(ex, 500, e.message));
      if (request.contentLength >= 0 && !ex.spool.fits(request.contentLength)) {
        this.#fail(ex, 503, `spool_max_bytes (${this.#o.spoolBudget.max}) cannot hold a ${request.contentLength}-byte body now`, 'warn');
      }
      return; // #onBody enqueues once the whole body is in
    }
    this.#enqueue(ex);
  }

  /** view: valid during this call only (NativeHandlers.body); whatever keeps bytes copies them. */
  #onBody(id: number, view: Uint8Array | null): void {
    const ex = this.#exchanges.get(id);
    if (!ex || ex.bodyEnded) return;
    if (view === null) ex.bodyEnded = true;
    if (!ex.bodyWanted) return;
    const spool = ex.spool;
    if (spool) {
      if (view === null) {
        spool.finish((body) => {
          if (ex.ended) {
            if (!Buffer.isBuffer(body)) fs.close(body.fd, () => {});
            return;
          }
          ex.spooled = body;
          ex.request = { ...ex.request, contentLength: spool.length };
          this.#enqueue(ex);
        });
        return;
      }
      try {
        if (!spool.write(view, () => this.#resumeBody(ex))) this.#pauseBody(ex);
      } catch (e) {
        if (e instanceof SpoolFullError) this.#fail(ex, 503, e.message, 'warn');
        else this.#fail(ex, 500, `buffering the request body in ${this.#o.spoolDir}: ${(e as Error).message}`);
      }
      return;
    }
    const chunk = view && Buffer.from(view); // streaming: the pipe or backend keeps it
    const run = ex.run;
    if (!run?.proc.stdin) {
      if (chunk) ex.pendingBody.push(chunk);
      return;
    }
    this.#feedStdin(ex, run, chunk);
  }

  #feedStdin(ex: Exchange, run: Run, chunk: Buffer | null): void {
    const stdin = run.proc.stdin!;
    if (!ex.bodyWanted) return;
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
    const ex = this.#exchanges.get(id);
    const run = ex?.run;
    if (ex && run && run.stdoutPaused && !run.completed) {
      run.stdoutPaused = false;
      run.proc.stdout.resume();
      this.#touch(ex, run);
    }
  }

  #onClose(id: number): void {
    const ex = this.#exchanges.get(id);
    if (!ex) return;
    ex.gone = true;
    this.#dropSlot(ex);
    this.#stopBody(ex);
    ex.ended = true;
    this.#exchanges.delete(id);
    const run = ex.run;
    if (run && !run.closed) {
      run.completed = true;
      run.proc.terminate();
    }
  }

  #enqueue(ex: Exchange): void {
    const slot = this.#slots.acquire(() => this.#start(ex));
    if (slot === null) {
      this.#fail(ex, 503, `${this.#o.maxProcesses} running and ${this.#o.maxQueue} queued`, 'warn');
      return;
    }
    ex.slot = slot;
    if (slot.granted) this.#start(ex);
    else if (!ex.bodyEnded && ex.bodyWanted) this.#pauseBody(ex);
  }

  /** The slot asked for and not yet run is freed (granted) or withdrawn (waiting). */
  #dropSlot(ex: Exchange): void {
    const slot = ex.slot;
    ex.slot = undefined;
    slot?.release();
  }

  /** Runs ex on its granted slot; anything that stops it first frees the slot. */
  #start(ex: Exchange): void {
    const slot = ex.slot;
    ex.slot = undefined;
    if (slot === undefined) return;
    try {
      if (!ex.ended && !ex.gone) this.#run(ex, slot);
    } finally {
      if (ex.run?.slot !== slot) slot.release();
    }
  }

  #run(ex: Exchange, slot: Slot): void {
    let env: Record<string, string>;
    try {
      const target = parseCgiTarget(ex.request.target, this.#o.prefix);
      const script = this.#o.route ? this.#o.route(target) : { scriptName: this.#o.prefix, scriptFilename: this.#o.scriptFilename };
      if (!script) {
        this.#fail(ex, 404, `no script for ${target.path}`, 'info');
        return;
      }
      env = buildCgiEnv(ex.request, { ...script, serverName: this.#o.serverName, inherited: this.#o.inherited });
    } catch (e) {
      this.#fail(ex, 400, `bad request-target: ${(e as Error).message}`, 'info');
      return;
    }
    let body: AppBody = 'none';
    if (ex.spooled !== undefined) body = ex.spooled;
    else if (ex.request.hasBody && ex.bodyWanted) body = ex.bodyEnded ? Buffer.concat(ex.pendingBody) : 'stream';
    ex.spooled = undefined; // the transport owns a file now, even if open() throws
    let proc: AppProcess;
    try {
      proc = this.#o.transport.open(env, body);
    } catch (e) {
      this.#fail(ex, 500, (e as Error).message);
      return;
    }
    const run: Run = {
      proc, parser: new CgiOutputParser(), headDone: false, framing: undefined, completed: false,
      timedOut: false, stdoutPaused: false, timer: undefined, eofWait: undefined, closed: false, slot, spool: ex.spool,
    };
    ex.spool = undefined;
    ex.run = run;
    this.#live.add(run);

    proc.stdout.on('data', (chunk: Buffer) => this.#onStdout(ex, run, chunk));
    proc.stdout.on('end', () => {
      if (!run.headDone || run.completed || ex.run !== run) return;
      if (!run.framing!.delimited) {
        // A body that only EOF ends: whether it is whole is the exit status's to say (a
        // script killed mid-body must not look complete), so 'close' ends it — or, if the
        // application runs on without its stdout, kEofWaitMs from now.
        run.eofWait = setTimeout(() => {
          if (ex.run !== run || ex.ended) return;
          this.#finish(ex, run.timedOut);
          this.#complete(ex, run);
        }, kEofWaitMs);
        return;
      }
      this.#finish(ex, run.timedOut || this.#short(run));
      this.#complete(ex, run);
    });
    this.#pipeStderr(proc);
    proc.on('close', (end) => this.#onRunClose(ex, run, end));

    const stdin = proc.stdin;
    if (stdin) {
      stdin.on('error', () => {}); // EPIPE: the application stopped reading; handled on 'close'
      stdin.on('close', () => {
        if (ex.run === run && !ex.bodyEnded) {
          ex.bodyWanted = false; // the rest of the upload is drained by the connection
          ex.pendingBody = [];
          this.#resumeBody(ex);
        }
      });
      const pending = ex.pendingBody;
      ex.pendingBody = [];
      for (const chunk of pending) this.#feedStdin(ex, run, chunk);
      if (ex.bodyEnded) stdin.end();
      else this.#resumeBody(ex);
    }
    this.#touch(ex, run);
  }

  #pipeStderr(proc: AppProcess): void {
    forEachLine(proc.stderr, (line) => this.#logger.error(`${this.#tag} ${proc.label}: ${line}`), kMaxStderrLine);
  }

  #onStdout(ex: Exchange, run: Run, chunk: Buffer): void {
    if (run.completed || ex.ended) return;
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

  #onHead(ex: Exchange, run: Run, head: CgiHead, rest: Buffer): void {
    const isHead = ex.request.method === 'HEAD';
    switch (head.kind) {
      case 'invalid':
        this.#fail(ex, 502, `bad output from ${run.proc.label}: ${head.reason}`);
        run.proc.kill();
        return;
      case 'local-redirect':
        this.#localRedirect(ex, run, head.location);
        return;
      case 'nph': {
        // RFC 3875 §5: relayed as written. The script's own head decides whether the
        // connection can be reused (see nphFraming); HEAD gets the head only.
        const framing = nphFraming(head.head, ex.request);
        ex.headSent = true;
        run.framing = framing.body;
        this.#native.beginRaw(ex.id, framing.keepAlive);
        this.#write(ex, run, head.head);
        this.#forward(ex, run, rest);
        return;
      }
      case 'response': {
        ex.headSent = true;
        this.#native.beginResponse(ex.id, head.status, head.reason, head.headers);
        let length: number | null = null;
        for (let i = 0; i + 1 < head.headers.length; i += 2) {
          if (head.headers[i]!.toLowerCase() === 'content-length') length = Number(head.headers[i + 1]);
        }
        run.framing = isHead || head.noBody ? new BodyFraming(0) : new BodyFraming(length);
        this.#forward(ex, run, rest);
        return;
      }
    }
  }

  /** RFC 3875 §6.2.2: answer as if the client had sent a GET for the new location. */
  #localRedirect(ex: Exchange, run: Run, location: string): void {
    this.#complete(ex, run);
    if (ex.redirects >= kMaxLocalRedirects) {
      this.#fail(ex, 500, `more than ${kMaxLocalRedirects} local redirects (last ${location})`);
      return;
    }
    try {
      parseCgiTarget(location, this.#o.prefix);
    } catch {
      // Outside this mount: the native server (or another mount) owns it; let the client ask.
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
      if (!/^(content-length|content-type|transfer-encoding)$/i.test(h[i]!)) headers.push(h[i]!, h[i + 1]!);
    }
    ex.request = { ...ex.request, method: 'GET', target: location, headers, hasBody: false, contentLength: 0 };
    ex.run = undefined;
    this.#enqueue(ex);
  }

  /** Relays the part of `chunk` that belongs to the body; ends the response when its framing is complete. */
  #forward(ex: Exchange, run: Run, chunk: Buffer): void {
    const framing = run.framing!;
    const n = framing.take(chunk);
    if (n > 0) this.#write(ex, run, n === chunk.length ? chunk : chunk.subarray(0, n));
    if (framing.complete && !ex.ended) {
      // Content-Length reached (or chunked end, or no body): done without waiting for EOF.
      this.#finish(ex);
      this.#complete(ex, run);
    }
  }

  #write(ex: Exchange, run: Run, chunk: Buffer): void {
    if (chunk.length === 0 || ex.ended) return;
    if (!this.#native.write(ex.id, chunk) && !run.stdoutPaused) {
      run.stdoutPaused = true;
      run.proc.stdout.pause();
      this.#touch(ex, run); // the client is slow, not the application: no timeout meanwhile
    }
  }

  /** The runner wants nothing more from this run; it keeps its slot until 'close'. */
  #complete(ex: Exchange, run: Run): void {
    if (run.completed) return;
    run.completed = true;
    run.stdoutPaused = false;
    run.proc.complete();
    this.#touch(ex, run); // a process that lingers after its response is still timed
  }

  #onRunClose(ex: Exchange, run: Run, end: AppEnd): void {
    this.#release(run);
    if (ex.run !== run || ex.ended) return;
    if (end.kind === 'fail') {
      this.#fail(ex, end.status, `${run.proc.label}: ${end.reason}`, 'error', true);
      return;
    }
    const how = end.signal ? `was killed by ${end.signal}` : `exited with status ${end.code}`;
    if (!run.headDone) {
      if (run.timedOut) this.#fail(ex, 504, `${run.proc.label} sent nothing for ${this.#o.timeoutMs} ms; killed`);
      else if (end.code !== 0) this.#fail(ex, 500, `${run.proc.label} ${how} before sending a response`);
      else this.#fail(ex, 502, `bad output from ${run.proc.label}: ${run.parser.end().reason}`);
      return;
    }
    if (run.timedOut) {
      this.#logger.error(`${this.#tag} ${run.proc.label}: silent for ${this.#o.timeoutMs} ms after its head; killed`);
    } else if (end.code !== 0) {
      this.#logger.warn(`${this.#tag} ${run.proc.label}: ${how} after its head`);
    }
    // A killed or failing application may have stopped mid-body: close the connection
    // instead of ending the framing, so the client cannot take it for complete.
    this.#finish(ex, run.timedOut || end.code !== 0 || this.#short(run));
  }

  /** The body stopped before its own framing (Content-Length, chunked) was complete. */
  #short(run: Run): boolean {
    return run.framing !== undefined && run.framing.delimited && !run.framing.complete;
  }

  #release(run: Run): void {
    clearTimeout(run.eofWait);
    if (run.timer) clearTimeout(run.timer);
    run.timer = undefined;
    if (run.closed) return;
    run.closed = true;
    run.spool?.discard();
    this.#live.delete(run);
    run.slot.release();
  }

  /** Restarts the silence timer, or stops it while the client (not the application) is slow. */
  #touch(ex: Exchange, run: Run): void {
    if (run.closed || run.stdoutPaused || ex.gone) {
      if (run.timer) clearTimeout(run.timer);
      run.timer = undefined;
      return;
    }
    if (run.timer) {
      run.timer.refresh(); // per output chunk: reschedules without a new timer
      return;
    }
    run.timer = setTimeout(() => {
      run.timedOut = true;
      if (run.completed && ex.ended) {
        this.#logger.warn(`${this.#tag} ${run.proc.label}: still running ${this.#o.timeoutMs} ms after its response; killed`);
      }
      run.proc.kill();
    }, this.#o.timeoutMs);
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

  /** The application will not get (more of) the body: let the connection read it to the end. */
  #stopBody(ex: Exchange): void {
    ex.bodyWanted = false;
    ex.pendingBody = [];
    ex.spool?.discard();
    ex.spool = undefined;
    if (ex.spooled !== undefined && !Buffer.isBuffer(ex.spooled)) fs.close(ex.spooled.fd, () => {});
    ex.spooled = undefined;
    this.#resumeBody(ex);
  }

  #finish(ex: Exchange, cutShort = false): void {
    if (ex.ended) return;
    this.#stopBody(ex);
    ex.ended = true;
    if (cutShort) this.#native.abort(ex.id);
    else this.#native.end(ex.id);
    this.#exchanges.delete(ex.id); // later body/close events for this id are moot
  }

  /** Logs and answers an HTML error page; if a head already went out, ends (or cuts) the response. */
  #fail(ex: Exchange, status: number, detail: string, level: 'error' | 'warn' | 'info' = 'error', cutShort = false): void {
    if (ex.ended) return;
    this.#logger[level](`${this.#tag} ${ex.request.method} ${ex.request.target}: ${status} ${detail}`);
    if (ex.run) this.#complete(ex, ex.run);
    this.#dropSlot(ex);
    if (ex.headSent) {
      this.#finish(ex, cutShort);
      return;
    }
    const reason = STATUS_CODES[status] ?? 'Error';
    const body = Buffer.from(
      `<!DOCTYPE html>\n<html><head><title>${status} ${escapeHtml(reason)}</title></head>\n` +
        `<body><h1>${status} ${escapeHtml(reason)}</h1>\n<p>${escapeHtml(kMessages[status] ?? reason)}</p></body></html>\n`,
    );
    const headers = ['Content-Type', 'text/html; charset=utf-8', 'Content-Length', String(body.length)];
    if (status === 503) headers.push('Retry-After', '1');
    ex.headSent = true;
    this.#native.beginResponse(ex.id, status, reason, headers);
    this.#native.write(ex.id, body);
    this.#finish(ex);
  }
}
