// The FastCGI transport: one request per backend connection at a time over "unix:PATH" or
// "HOST:PORT", FCGI_KEEP_CONN connections kept in a small pool, each exchange exposed as the
// seam's AppProcess (src/app_transport.ts). The shared runner owns environment, limits,
// timeouts and the response rules; this file only speaks the protocol.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import type { AppBody, AppEnd, AppInput, AppOutput, AppProcess, AppTransport } from '../app_transport.js';
import {
  FastCgiProtocolError, ProtocolStatus, RecordDecoder, RecordType, decodeEndRequest, encodeRequest, encodeRequestLatin1, encodeStdin,
  type FcgiRecord,
} from './record.js';

export type BackendAddress = { path: string } | { host: string; port: number };

/** Parses "unix:PATH" or "HOST:PORT" ("[v6]:PORT"); throws an Error saying what is wrong. */
export function parseBackendAddress(text: string): BackendAddress {
  if (text.startsWith('unix:')) {
    const p = text.slice(5);
    if (!p.startsWith('/')) throw new Error(`"${text}": the socket path after unix: must be absolute`);
    return { path: p };
  }
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : 0;
  if (!m || port < 1 || port > 65535) throw new Error(`"${text}" is not "unix:/path/to.sock" or "HOST:PORT"`);
  return { host: m[1] ?? m[2], port };
}

export interface FastCgiOptions {
  address: string; // "unix:PATH" or "HOST:PORT"
  mount: string; // the URL prefix, for labels and log lines
  connectTimeoutMs: number;
  maxConns: number; // connections open at once, idle ones included (the runner's slots)
  maxIdle?: number; // idle connections kept for reuse (default maxConns; 0: one connection per request)
}

const kFileChunk = 64 * 1024;
const kIdleMs = 2000; // an idle pooled connection is closed after this
const kStderrBytesPerSec = 64 * 1024;
const kStderrBurst = 256 * 1024;
const kIdempotent = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** A stream the exchange pushes into and the runner reads (stdout, stderr). */
class Output extends EventEmitter implements AppOutput {
  paused = false;
  constructor(private readonly onFlow: (paused: boolean) => void = () => {}) {
    super();
  }
  pause(): void {
    this.paused = true;
    this.onFlow(true);
  }
  resume(): void {
    this.paused = false;
    this.onFlow(false);
  }
}

/** What a connection's socket events go to: its exchange, or the pool while idle. */
interface ConnectionUser {
  data(chunk: Buffer): void;
  broken(why: string): void; // error or close
}

/** A pooled backend connection; at most one exchange owns it at a time. */
class Connection {
  readonly socket: net.Socket;
  readonly decoder = new RecordDecoder();
  connected = false;
  reused = false; // served a request before: a failure without any answer may be retried
  idleSince = 0; // when it went back to the pool
  #nextId = 0;
  user: ConnectionUser | null = null;

  /** `onGone` runs once when the socket has closed, whoever used it. */
  constructor(address: BackendAddress, onGone: () => void) {
    const s = 'path' in address ? net.connect(address.path) : net.connect(address.port, address.host);
    this.socket = s;
    if (!('path' in address)) s.setNoDelay(true);
    s.once('connect', () => { this.connected = true; });
    s.on('data', (chunk: Buffer) => this.user?.data(chunk));
    s.on('error', (e: NodeJS.ErrnoException) => this.user?.broken(e.code ?? e.message));
    s.on('close', () => {
      onGone();
      this.user?.broken('connection closed');
    });
  }

  /** Closes it for good; no more events reach the current user. */
  destroy(): void {
    this.user = null;
    this.socket.destroy();
  }

  /** Request ids cycle 1..65535 so a stray record of an earlier request is noticed. */
  takeId(): number {
    this.#nextId = (this.#nextId % 0xffff) + 1;
    return this.#nextId;
  }
}

/**
 * FCGI_STDERR to the error log, rate-limited per mount: a token bucket of bytes, refilled at
 * kStderrBytesPerSec up to kStderrBurst. What does not fit is dropped and counted; the count
 * is logged (as a line of the stream) once there is room again.
 */
export class StderrBudget {
  #tokens = kStderrBurst;
  #at = Date.now();
  #dropped = 0;

  relay(chunk: Buffer, out: EventEmitter): void {
    const now = Date.now();
    this.#tokens = Math.min(kStderrBurst, this.#tokens + ((now - this.#at) * kStderrBytesPerSec) / 1000);
    this.#at = now;
    if (chunk.length > this.#tokens) {
      this.#dropped += chunk.length;
      return;
    }
    this.#tokens -= chunk.length;
    if (this.#dropped > 0) {
      out.emit('data', Buffer.from(`\n[${this.#dropped} bytes of stderr dropped: over ${kStderrBytesPerSec} bytes/s]\n`));
      this.#dropped = 0;
    }
    out.emit('data', chunk);
  }
}

export class FastCgiTransport implements AppTransport {
  readonly name = 'fastcgi';
  readonly stderrBudget = new StderrBudget();
  readonly #address: BackendAddress;
  readonly #options: FastCgiOptions;
  readonly #idle: Connection[] = [];
  #open = 0; // connections not yet closed, idle ones included
  #seq = 0;
  #stopped = false;
  #idleSweep: NodeJS.Timeout | null = null; // runs while connections are idle (no timer per request)

  constructor(options: FastCgiOptions) {
    this.#options = options;
    this.#address = parseBackendAddress(options.address);
  }

  open(env: Record<string, string>, body: AppBody): AppProcess {
    if (this.#stopped) {
      if (typeof body === 'object' && !Buffer.isBuffer(body)) fs.close(body.fd, () => {});
      throw new Error('the FastCGI transport is stopped');
    }
    return new Exchange(this, `${this.#options.mount}#${++this.#seq}`, env, body);
  }

  stop(): void {
    this.#stopped = true;
    for (const c of this.#idle.splice(0)) c.destroy();
    this.#sweepIdle();
  }

  get connectTimeoutMs(): number {
    return this.#options.connectTimeoutMs;
  }

  /**
   * An idle pooled connection (most recently used first) unless `fresh`, else a new one.
   * Before a new one, an idle one is closed (and never more than maxConns stay open): a
   * backend serves one connection per process (php-fpm children, php-cgi, flaskr.fcgi), so
   * a process holding an idle connection of ours would not accept the new one until that
   * closes. Idle connections also close after kIdleMs, for the other event loops' sake.
   */
  acquire(fresh: boolean): Connection {
    if (!fresh) {
      const c = this.#idle.pop();
      if (c) {
        c.reused = true;
        return c;
      }
    }
    if (this.#idle.length > 0) this.#idle.shift()!.destroy();
    while (this.#open >= this.#options.maxConns && this.#idle.length > 0) this.#idle.shift()!.destroy();
    this.#open++;
    return new Connection(this.#address, () => { this.#open--; });
  }

  /** Back to the pool after END_REQUEST; any byte or close while idle drops it. */
  release(c: Connection): void {
    c.socket.removeAllListeners('drain');
    if (this.#stopped || this.#idle.length >= (this.#options.maxIdle ?? this.#options.maxConns) || c.decoder.pendingBytes > 0) {
      c.destroy();
      return;
    }
    c.user = {
      data: () => this.#drop(c), // nothing may arrive between requests
      broken: () => this.#drop(c),
    };
    c.idleSince = Date.now();
    c.socket.resume();
    this.#idle.push(c);
    this.#idleSweep ??= setInterval(() => this.#sweepIdle(), kIdleMs / 2).unref();
  }

  /** Closes connections idle for kIdleMs or more; the sweep stops when none is idle. */
  #sweepIdle(): void {
    const old = Date.now() - kIdleMs;
    while (this.#idle.length > 0 && this.#idle[0]!.idleSince <= old) this.#idle.shift()!.destroy();
    if (this.#idle.length === 0 && this.#idleSweep !== null) {
      clearInterval(this.#idleSweep);
      this.#idleSweep = null;
    }
  }

  #drop(c: Connection): void {
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    c.destroy();
  }

  get idleCount(): number {
    return this.#idle.length;
  }
}

/** One request on one backend connection (or two, after a retry), as the runner sees it. */
class Exchange extends EventEmitter implements AppProcess {
  readonly label: string;
  readonly stdin: AppInput | null;
  readonly stdout: Output;
  readonly stderr = new Output();
  readonly #transport: FastCgiTransport;
  readonly #env: Record<string, string>;
  readonly #body: AppBody;
  #conn: Connection | null = null;
  #id = 0;
  #answered = false; // a record of the answer arrived: never retry after that
  #streamed = false; // stdin bytes went out: a retry cannot resend them
  #retried = false;
  #emittedOutput = false;
  #stdinEnded = false; // the empty STDIN record went out
  #stdinBytes = 0;
  readonly #contentLength: number; // CONTENT_LENGTH, -1 when unknown
  #completed = false; // the runner wants no more output
  #closed = false;
  #fileOffset = 0;
  #inputEvents: EventEmitter | null = null; // 'drain' and 'close' of stdin

  constructor(transport: FastCgiTransport, label: string, env: Record<string, string>, body: AppBody) {
    super();
    this.#transport = transport;
    this.label = label;
    this.#env = env;
    this.#body = body;
    this.#contentLength = env.CONTENT_LENGTH !== undefined ? Number(env.CONTENT_LENGTH) : -1;
    this.stdout = new Output((paused) => {
      if (!this.#conn) return;
      if (paused) this.#conn.socket.pause();
      else this.#conn.socket.resume();
    });
    this.stdin = body === 'stream' ? this.#makeInput() : null;
    this.#start(false);
  }

  #makeInput(): AppInput {
    const events = new EventEmitter();
    const input: AppInput = {
      write: (b) => this.#writeStdin(b),
      end: () => { this.#writeStdin(Buffer.alloc(0)); },
      once: (e, cb) => { events.once(e, cb); },
      on: (e, cb) => { events.on(e, cb); },
      destroy: () => { events.emit('close'); },
    };
    this.#inputEvents = events;
    return input;
  }

  #writeStdin(b: Buffer): boolean {
    const c = this.#conn;
    if (!c || this.#closed || this.#stdinEnded) return true;
    if (b.length > 0) this.#streamed = true;
    this.#stdinBytes += b.length;
    const ok = c.socket.write(this.#stdinRecords(b, b.length === 0 || this.#stdinBytes === this.#contentLength));
    if (!ok) c.socket.once('drain', () => this.#inputEvents?.emit('drain'));
    return ok;
  }

  /**
   * STDIN records for `data`, with the empty end-of-stream record in the same write when
   * `last`. A backend may answer and close (php-cgi at PHP_FCGI_MAX_REQUESTS) once it has
   * CONTENT_LENGTH bytes: a terminator written on its own after that fails with EPIPE and
   * would cost the answer already on its way.
   */
  #stdinRecords(data: Buffer, last: boolean): Buffer {
    const pieces = data.length > 0 ? encodeStdin(this.#id, data) : [];
    if (last) {
      pieces.push(...encodeStdin(this.#id, Buffer.alloc(0)));
      this.#stdinEnded = true;
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  #start(fresh: boolean): void {
    // A pooled connection may turn out dead once the request is out; only an idempotent
    // request can then be sent again, so the others always get a new connection.
    const c = this.#transport.acquire(fresh || !kIdempotent.has(this.#env.REQUEST_METHOD ?? ''));
    this.#conn = c;
    c.user = { data: (chunk) => this.#onData(c, chunk), broken: (why) => this.#onBroken(c, why) };
    this.#id = c.takeId();
    const socket = c.socket;
    if (!c.connected) {
      socket.setTimeout(this.#transport.connectTimeoutMs, () => {
        this.#fail(504, `connecting to the backend took over ${this.#transport.connectTimeoutMs} ms`);
      });
      socket.once('connect', () => socket.setTimeout(0));
    }
    if (this.stdout.paused) socket.pause();
    else socket.resume();

    // One write (one syscall) for what is at hand: the head, and a buffered body.
    const body = this.#body;
    let stdin: Buffer | null = null;
    let end = false;
    if (body === 'none') {
      end = true;
    } else if (Buffer.isBuffer(body)) {
      stdin = body;
      end = true; // an empty buffered body is the end-of-stream record alone
    } else if (body === 'stream') {
      end = this.#stdinEnded;
    } else {
      this.#fileOffset = 0;
      process.nextTick(() => this.#pumpFile(c, body.fd, body.length));
    }
    const head = stdin === null || stdin.length === 0 ? encodeRequestLatin1(this.#id, true, this.#env, end) : null;
    if (head !== null) socket.write(head, 'latin1');
    else socket.write(encodeRequest(this.#id, true, this.#env, stdin, end));
  }

  /** Sends the spooled body file in STDIN records, with backpressure; positional reads allow a retry. */
  #pumpFile(c: Connection, fd: number, length: number): void {
    if (this.#conn !== c || this.#closed) return;
    const buf = Buffer.allocUnsafe(kFileChunk);
    fs.read(fd, buf, 0, kFileChunk, this.#fileOffset, (err, n) => {
      if (this.#conn !== c || this.#closed) return;
      if (err) {
        this.#fail(502, `reading the spooled request body: ${err.message}`);
        return;
      }
      this.#fileOffset += n;
      const last = n === 0 || this.#fileOffset >= length;
      const ok = c.socket.write(this.#stdinRecords(buf.subarray(0, n), last));
      if (last) return;
      if (ok) this.#pumpFile(c, fd, length);
      else c.socket.once('drain', () => this.#pumpFile(c, fd, length));
    });
  }

  #onData(c: Connection, chunk: Buffer): void {
    if (this.#conn !== c || this.#closed) return;
    let records: FcgiRecord[];
    try {
      records = c.decoder.push(chunk);
    } catch (e) {
      this.#fail(502, `malformed FastCGI record from the backend: ${(e as Error).message}`);
      return;
    }
    for (const r of records) {
      if (this.#closed || this.#conn !== c) return;
      this.#answered = true;
      if (r.requestId !== this.#id) {
        this.#fail(502, `FastCGI record type ${r.type} for request ${r.requestId}, expected ${this.#id}`);
        return;
      }
      switch (r.type) {
        case RecordType.Stdout:
          if (r.content.length > 0 && !this.#completed) {
            this.#emittedOutput = true;
            this.stdout.emit('data', r.content);
          }
          break;
        case RecordType.Stderr:
          if (r.content.length > 0) this.#transport.stderrBudget.relay(r.content, this.stderr);
          break;
        case RecordType.EndRequest:
          this.#onEnd(c, r.content);
          return;
        default:
          this.#fail(502, `unexpected FastCGI record type ${r.type} from the backend`);
          return;
      }
    }
  }

  #onEnd(c: Connection, content: Buffer): void {
    let end;
    try {
      end = decodeEndRequest(content);
    } catch (e) {
      this.#fail(502, (e as Error).message);
      return;
    }
    switch (end.protocolStatus) {
      case ProtocolStatus.RequestComplete:
        this.#conn = null;
        c.user = null;
        this.#transport.release(c);
        this.stdout.emit('end');
        this.#close({ kind: 'exit', code: end.appStatus | 0, signal: null });
        return;
      case ProtocolStatus.CantMpxConn:
        if (this.#canResend()) {
          this.#drop();
          this.#retried = true;
          this.#start(true);
          return;
        }
        this.#fail(502, 'the backend refused the request (FCGI_CANT_MPX_CONN) twice');
        return;
      case ProtocolStatus.Overloaded:
        this.#fail(503, 'the backend is overloaded (FCGI_OVERLOADED)');
        return;
      case ProtocolStatus.UnknownRole:
        this.#fail(502, 'the backend does not play the responder role (FCGI_UNKNOWN_ROLE)');
        return;
      default:
        this.#fail(502, `END_REQUEST with unknown protocolStatus ${end.protocolStatus}`);
    }
  }

  /** The whole request can be sent again: no output reached the runner, no streamed body went out. */
  #canResend(): boolean {
    return !this.#retried && !this.#streamed && !this.#completed && !this.#emittedOutput;
  }

  #onBroken(c: Connection, why: string): void {
    if (this.#conn !== c || this.#closed) return;
    // A keep-conn connection the backend closed while it sat in the pool (php-fpm's
    // pm.max_requests, a restart) before answering anything: try a fresh one. The request did
    // go out, and a backend that crashed on it would see it twice, so only idempotent methods
    // (RFC 9110 §9.2.2) are resent, as nginx does; others get 502.
    if (c.reused && !this.#answered && kIdempotent.has(this.#env.REQUEST_METHOD) && this.#canResend()) {
      this.#drop();
      this.#retried = true;
      this.#start(true);
      return;
    }
    const connecting = !c.connected;
    this.#fail(502, connecting ? `cannot connect to the backend: ${why}` : `the backend connection failed: ${why}`);
  }

  #drop(): void {
    const c = this.#conn;
    this.#conn = null;
    c?.destroy();
  }

  #fail(status: 502 | 503 | 504, reason: string): void {
    this.#drop();
    this.#close({ kind: 'fail', status, reason });
  }

  #close(end: AppEnd): void {
    if (this.#closed) return;
    this.#closed = true;
    const body = this.#body;
    if (typeof body === 'object' && !Buffer.isBuffer(body)) fs.close(body.fd, () => {});
    this.#inputEvents?.emit('close');
    this.stderr.emit('end');
    this.emit('close', end);
  }

  complete(): void {
    // Keep reading to END_REQUEST (so the connection can be reused) but emit no more output.
    this.#completed = true;
    if (this.#conn) this.#conn.socket.resume();
  }

  terminate(): void {
    // php-fpm ignores FCGI_ABORT_REQUEST: closing the connection is what stops the work.
    if (this.#closed) return;
    this.#drop();
    this.#close({ kind: 'exit', code: null, signal: 'SIGTERM' });
  }

  kill(): void {
    if (this.#closed) return;
    this.#drop();
    this.#close({ kind: 'exit', code: null, signal: 'SIGKILL' });
  }
}
