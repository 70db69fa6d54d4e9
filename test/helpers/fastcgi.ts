// Test helpers for FastCGI: a minimal web-server side speaking the record codec of
// src/fastcgi/record.ts over a real socket, and a responder started with its listening
// socket as fd 0 (the lighttpd bin-path convention) by a tiny Python launcher.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  RecordDecoder, RecordType, decodeEndRequest, decodeNameValuePairs, encodeBeginRequest, encodeNameValuePairs,
  encodeParams, encodeRecords, encodeStdin, type EndRequest, type FcgiRecord,
} from '../../src/fastcgi/record.js';

export interface FcgiAnswer {
  stdout: Buffer;
  stderr: string;
  end: EndRequest;
}

/** One connection to a responder; requests one at a time (keep-conn unless told otherwise). */
export class FcgiClient {
  readonly socket: net.Socket;
  readonly #decoder = new RecordDecoder();
  #records: FcgiRecord[] = [];
  #waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#records.push(...this.#decoder.push(chunk));
      this.#wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static connect(socketPath: string): Promise<FcgiClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(socketPath, () => resolve(new FcgiClient(s)));
      s.once('error', reject);
    });
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  /** The next record, or null once the responder closed the connection. */
  async next(timeoutMs = 10_000): Promise<FcgiRecord | null> {
    const deadline = Date.now() + timeoutMs;
    while (this.#records.length === 0) {
      if (this.closed) return null;
      if (Date.now() > deadline) throw new Error('no FastCGI record in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 100);
        this.#waiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return this.#records.shift()!;
  }

  send(bytes: Buffer | Buffer[]): void {
    this.socket.write(Array.isArray(bytes) ? Buffer.concat(bytes) : bytes);
  }

  /** Sends a whole request (BEGIN, PARAMS, STDIN) in one write. */
  sendRequest(id: number, env: Record<string, string>, body: Buffer = Buffer.alloc(0), keepConn = true): void {
    const stdin = body.length > 0 ? [...encodeStdin(id, body), ...encodeStdin(id, Buffer.alloc(0))] : encodeStdin(id, body);
    this.send([encodeBeginRequest(id, keepConn), encodeParams(id, env), ...stdin]);
  }

  /** Collects STDOUT/STDERR of request `id` until its END_REQUEST. */
  async answer(id: number): Promise<FcgiAnswer> {
    const out: Buffer[] = [];
    let stderr = '';
    for (;;) {
      const r = await this.next();
      if (r === null) throw new Error('responder closed the connection before END_REQUEST');
      if (r.requestId !== id) throw new Error(`record type ${r.type} for request ${r.requestId}, expected ${id}`);
      if (r.type === RecordType.Stdout) out.push(r.content);
      else if (r.type === RecordType.Stderr) stderr += r.content.toString();
      else if (r.type === RecordType.EndRequest) return { stdout: Buffer.concat(out), stderr, end: decodeEndRequest(r.content) };
      else throw new Error(`unexpected record type ${r.type}`);
    }
  }

  async request(id: number, env: Record<string, string>, body?: Buffer, keepConn = true): Promise<FcgiAnswer> {
    this.sendRequest(id, env, body, keepConn);
    return this.answer(id);
  }

  async getValues(names: string[]): Promise<Record<string, string>> {
    this.send(encodeRecords(RecordType.GetValues, 0, encodeNameValuePairs(names.map((n) => [n, '']))));
    const r = await this.next();
    if (!r || r.type !== RecordType.GetValuesResult) throw new Error(`expected GET_VALUES_RESULT, got ${r?.type}`);
    return Object.fromEntries(decodeNameValuePairs(r.content));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** CGI-style variables for a GET of `pathInfo` (SCRIPT_NAME /app). */
export function fcgiEnv(pathInfo: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_PROTOCOL: 'HTTP/1.1', REQUEST_METHOD: 'GET', SCRIPT_NAME: '/app',
    PATH_INFO: pathInfo, QUERY_STRING: '', SERVER_NAME: 'localhost', SERVER_PORT: '80', REMOTE_ADDR: '127.0.0.1',
    ...extra,
  };
}

const kLauncher =
  'import os,socket,sys\n' +
  's=socket.socket(socket.AF_UNIX,socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen(64)\n' +
  'os.dup2(s.fileno(),0); s.close(); os.execv(sys.argv[2], sys.argv[2:])\n';

/** A responder started with a listening Unix socket as fd 0; resolves once the socket exists. */
export async function startResponder(script: string, dir: string, env: Record<string, string> = {}):
  Promise<{ child: ChildProcess; socketPath: string; stderr: () => string; stop: () => Promise<void> }> {
  const socketPath = path.join(dir, `r-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const child = spawn('/usr/bin/python3', ['-c', kLauncher, socketPath, script], {
    stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
  });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const deadline = Date.now() + 10_000;
  while (!fs.existsSync(socketPath)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`responder did not start: ${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };
  return { child, socketPath, stderr: () => err, stop };
}

/**
 * A TCP listener on 127.0.0.1 with a backlog of 0 that never accepts, its queue filled
 * first: the next connection attempt gets no answer at all (Linux drops the SYN). Resolves
 * with its port and a stop() that kills it (by PID).
 */
export async function startNeverAccepting(): Promise<{ port: number; stop: () => void }> {
  const py = spawn('/usr/bin/python3', ['-c',
    'import socket,sys,time\ns=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(0)\n' +
    'print(s.getsockname()[1], flush=True)\nfill=[]\n' +
    'for _ in range(8):\n  c=socket.socket(); c.setblocking(False)\n  try: c.connect(s.getsockname())\n  except OSError: pass\n  fill.append(c)\n' +
    'time.sleep(120)\n'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    py.once('exit', (code) => reject(new Error(`the never-accepting listener exited (${code})`)));
    py.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
  });
  await new Promise((r) => setTimeout(r, 200)); // the filling connections are queued
  return { port, stop: () => { py.kill('SIGKILL'); } };
}

/**
 * A FastCGI backend on a Unix socket for end-to-end tests: counts connections and closes,
 * and hands each connection's records to `onRecords` (a bad record destroys it).
 */
export abstract class SocketBackend {
  readonly server: net.Server;
  readonly socketPath: string;
  connections = 0;
  closed = 0;
  readonly #sockets = new Set<net.Socket>();

  constructor(dir: string, name = 'fake') {
    this.socketPath = path.join(dir, `${name}.sock`);
    this.server = net.createServer((s) => this.#serve(s)).listen(this.socketPath);
  }

  listening(): Promise<void> {
    return this.server.listening ? Promise.resolve() : new Promise((r) => this.server.once('listening', () => r()));
  }

  /** A new connection: returns what to do with each batch of its records. */
  protected abstract onConnection(s: net.Socket): (records: FcgiRecord[]) => void;

  #serve(s: net.Socket): void {
    this.connections++;
    this.#sockets.add(s);
    s.on('close', () => { this.closed++; this.#sockets.delete(s); });
    s.on('error', () => {});
    const d = new RecordDecoder();
    const onRecords = this.onConnection(s);
    s.on('data', (chunk) => {
      let recs: FcgiRecord[];
      try { recs = d.push(chunk); } catch { s.destroy(); return; }
      onRecords(recs);
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

/** A scripted backend: records each request's PARAMS and calls `answer` once its STDIN has ended. */
export class FakeBackend extends SocketBackend {
  readonly params: Record<string, string>[] = [];

  constructor(dir: string, private readonly answer: (s: net.Socket, id: number, env: Record<string, string>) => void) {
    super(dir);
  }

  protected onConnection(s: net.Socket): (records: FcgiRecord[]) => void {
    let params = Buffer.alloc(0);
    let env: Record<string, string> = {};
    return (recs) => {
      for (const r of recs) {
        if (r.type === RecordType.Params && r.content.length > 0) params = Buffer.concat([params, r.content]);
        if (r.type === RecordType.Params && r.content.length === 0) {
          env = Object.fromEntries(decodeNameValuePairs(params));
          params = Buffer.alloc(0);
          this.params.push(env);
        }
        if (r.type === RecordType.Stdin && r.content.length === 0) this.answer(s, r.requestId, env);
      }
    };
  }

  /** STDOUT records of `text`, and END_REQUEST with `protocolStatus` (for building answers). */
  static stdout(id: number, text: string | Buffer): Buffer {
    return Buffer.concat(encodeRecords(RecordType.Stdout, id, Buffer.from(text)));
  }
  static end(id: number, protocolStatus = 0): Buffer {
    const b = Buffer.alloc(8);
    b[4] = protocolStatus;
    return Buffer.concat(encodeRecords(RecordType.EndRequest, id, b));
  }
}
