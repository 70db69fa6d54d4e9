// Raw HTTP/1.x test client over TCP and verified TLS: send exact bytes (optionally
// byte by byte), parse responses strictly (Content-Length, chunked, close-delimited).
import crypto from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { getPki } from './pki.js';

export function sha256(b: Buffer | string): string {
  return crypto.createHash('sha256').update(b).digest('hex');
}

export const kHost = '127.0.0.1';

export interface HttpResponse {
  version: string; // "HTTP/1.1"
  status: number;
  reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  rawHeaders: Array<[string, string]>;
  body: Buffer;
  /** Exact bytes of the whole response as received. */
  raw: Buffer;
  /** How the body was delimited. */
  framing: 'none' | 'length' | 'chunked' | 'close';
}

/** Number of header lines with this (case-insensitive) name. */
export function headerCount(res: HttpResponse, name: string): number {
  const n = name.toLowerCase();
  return res.rawHeaders.filter(([k]) => k.toLowerCase() === n).length;
}

export class ProtocolError extends Error {}

type ParseResult = { res: HttpResponse; consumed: number } | { need: number };

/**
 * Parses one response from buf. `head`: the request was HEAD (no body). `eof`: the peer
 * has closed, so a close-delimited body is complete. Returns the response and bytes
 * consumed, or the minimum total length worth retrying at. Throws ProtocolError.
 */
export function parseResponse(buf: Buffer, head: boolean, eof: boolean): ParseResult {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (buf.length > 1 << 20) throw new ProtocolError('response head over 1 MiB');
    return { need: buf.length + 1 };
  }
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^(HTTP\/\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0]!);
  if (!m) throw new ProtocolError(`bad status line ${JSON.stringify(lines[0])}`);
  const status = Number(m[2]);
  const rawHeaders: Array<[string, string]> = [];
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const hm = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!hm) throw new ProtocolError(`bad header line ${JSON.stringify(line)}`);
    rawHeaders.push([hm[1]!, hm[2]!]);
    const k = hm[1]!.toLowerCase();
    headers[k] = k in headers ? `${headers[k]}, ${hm[2]}` : hm[2]!;
  }
  const bodyStart = end + 4;
  const mk = (body: Buffer, consumed: number, framing: HttpResponse['framing']): ParseResult => ({
    res: { version: m[1]!, status, reason: m[3]!, headers, rawHeaders, body, raw: buf.subarray(0, consumed), framing },
    consumed,
  });
  if (head || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return mk(Buffer.alloc(0), bodyStart, 'none');
  }
  const te = headers['transfer-encoding'];
  if (te !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(te)) throw new ProtocolError(`unsupported Transfer-Encoding ${te}`);
    const parts: Buffer[] = [];
    let p = bodyStart;
    for (;;) {
      const nl = buf.indexOf('\r\n', p);
      if (nl < 0) return { need: buf.length + 1 };
      const sizeText = buf.subarray(p, nl).toString('latin1').split(';')[0]!.trim();
      if (!/^[0-9a-fA-F]+$/.test(sizeText)) throw new ProtocolError(`bad chunk size ${JSON.stringify(sizeText)}`);
      const size = parseInt(sizeText, 16);
      p = nl + 2;
      if (size === 0) {
        // Trailers until an empty line.
        for (;;) {
          const tl = buf.indexOf('\r\n', p);
          if (tl < 0) return { need: buf.length + 1 };
          const empty = tl === p;
          p = tl + 2;
          if (empty) return mk(Buffer.concat(parts), p, 'chunked');
        }
      }
      if (buf.length < p + size + 2) return { need: p + size + 2 };
      parts.push(buf.subarray(p, p + size));
      if (buf[p + size] !== 0x0d || buf[p + size + 1] !== 0x0a) throw new ProtocolError('chunk not followed by CRLF');
      p += size + 2;
    }
  }
  const cl = headers['content-length'];
  if (cl !== undefined) {
    if (!/^\d+$/.test(cl)) throw new ProtocolError(`bad Content-Length ${JSON.stringify(cl)}`);
    const total = bodyStart + Number(cl);
    if (buf.length < total) return { need: total };
    return mk(buf.subarray(bodyStart, total), total, 'length');
  }
  if (!eof) return { need: Number.MAX_SAFE_INTEGER };
  return mk(buf.subarray(bodyStart), buf.length, 'close');
}

export interface ConnectOptions {
  tls?: boolean;
  port: number;
  host?: string;
  /** Extra tls.connect options (minVersion, maxVersion, session, ca …). */
  tlsOptions?: tls.ConnectionOptions;
  timeoutMs?: number;
}

/** One client connection with a byte buffer and response reader. */
export class Conn {
  readonly socket: net.Socket;
  private chunks: Buffer[] = [];
  private length = 0;
  private waiters: Array<() => void> = [];
  eof = false;
  closed = false;
  error: Error | undefined;
  /** TLS session ticket(s) the server sent, newest last. */
  sessions: Buffer[] = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.length += d.length;
      this.wake();
    });
    socket.on('end', () => { this.eof = true; this.wake(); });
    socket.on('close', () => { this.closed = true; this.eof = true; this.wake(); });
    socket.on('error', (e) => { this.error = e; this.wake(); });
    socket.on('session', (s: Buffer) => { this.sessions.push(s); });
  }

  static async open(opts: ConnectOptions): Promise<Conn> {
    const host = opts.host ?? kHost;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    if (!opts.tls) {
      const s = net.connect({ host, port: opts.port });
      s.setNoDelay(true);
      await once(s, 'connect', timeoutMs, `TCP connect to ${host}:${opts.port}`);
      return new Conn(s);
    }
    const pki = await getPki();
    const s = tls.connect({
      host, port: opts.port, ca: pki.ca, servername: 'localhost', ...opts.tlsOptions,
    });
    s.setNoDelay(true);
    const c = new Conn(s);
    await once(s, 'secureConnect', timeoutMs, `TLS connect to ${host}:${opts.port}`);
    return c;
  }

  get tls(): tls.TLSSocket {
    return this.socket as tls.TLSSocket;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private wait(timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((f) => f !== done);
        reject(new Error(`timeout (${timeoutMs} ms) waiting for ${what}; have ${this.length} bytes: ` +
          JSON.stringify(this.peek().subarray(0, 300).toString('latin1'))));
      }, timeoutMs);
      const done = (): void => { clearTimeout(t); resolve(); };
      this.waiters.push(done);
    });
  }

  /** The unread bytes (without consuming them). */
  peek(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.length)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private consume(n: number): void {
    const b = this.peek();
    this.chunks = n < b.length ? [b.subarray(n)] : [];
    this.length -= n;
  }

  write(data: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(data, (e) => (e ? reject(e) : resolve()));
    });
  }

  /** Writes data in pieces of `chunk` bytes with `delayMs` between them. */
  async writeSlowly(data: Buffer | string, delayMs = 2, chunk = 1): Promise<void> {
    const b = Buffer.isBuffer(data) ? data : Buffer.from(data, 'latin1');
    for (let i = 0; i < b.length; i += chunk) {
      await this.write(b.subarray(i, i + chunk));
      if (delayMs > 0) await sleep(delayMs);
    }
  }

  /** Reads exactly one response (1xx interim responses count as responses). */
  async readResponse(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<HttpResponse> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let need = 1;
    for (;;) {
      if (this.length >= need || this.eof) {
        const r = parseResponse(this.peek(), opts.head ?? false, this.eof);
        if ('res' in r) {
          this.consume(r.consumed);
          return r.res;
        }
        need = r.need;
        if (this.eof) {
          throw new ProtocolError(`connection closed before a complete response; have ${this.length} bytes: ` +
            JSON.stringify(this.peek().subarray(0, 300).toString('latin1')) +
            (this.error ? ` (socket error: ${this.error.message})` : ''));
        }
      }
      await this.wait(Math.max(deadline - Date.now(), 0), 'a response');
    }
  }

  /**
   * Reads n final responses in order; `heads[i]` says whether request i was HEAD.
   * 1xx interim responses are skipped unless keepInterim.
   */
  async readResponses(n: number, opts: { heads?: boolean[]; timeoutMs?: number; keepInterim?: boolean } = {}): Promise<HttpResponse[]> {
    const out: HttpResponse[] = [];
    let finals = 0;
    while (finals < n) {
      const r = await this.readResponse({ head: opts.heads?.[finals] ?? false, timeoutMs: opts.timeoutMs });
      if (r.status >= 100 && r.status < 200) {
        if (opts.keepInterim) out.push(r);
        continue;
      }
      out.push(r);
      finals++;
    }
    return out;
  }

  /** Waits until the server closes (EOF) and returns the bytes left unread. */
  async readToEnd(timeoutMs = 10_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (!this.eof) {
      const left = deadline - Date.now();
      await this.wait(Math.max(left, 0), 'the server to close the connection');
    }
    const b = this.peek();
    this.consume(b.length);
    return b;
  }

  /** True if the server closes the connection within timeoutMs. */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    try {
      await this.readToEnd(timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** Resolves with whether any byte or EOF arrived within ms (does not consume). */
  async quietFor(ms: number): Promise<boolean> {
    if (this.length > 0 || this.eof) return false;
    try {
      await this.wait(ms, 'anything');
      return false;
    } catch {
      return true;
    }
  }

  end(): void { this.socket.end(); }
  destroy(): void { this.socket.destroy(); }
}

function once(s: net.Socket, ev: string, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { s.destroy(); reject(new Error(`timeout: ${what}`)); }, timeoutMs);
    s.once(ev, () => { clearTimeout(t); resolve(); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface ExchangeOptions {
  port: number;
  tls?: boolean;
  /** Number of final responses to read (default 1). */
  count?: number;
  /** Per response: request was HEAD. */
  heads?: boolean[];
  tlsOptions?: tls.ConnectionOptions;
  timeoutMs?: number;
}

/** Opens a connection, runs `fn` on it, and destroys it however `fn` ends. */
export async function withConn<T>(opts: ConnectOptions, fn: (c: Conn) => Promise<T>): Promise<T> {
  const c = await Conn.open(opts);
  try {
    return await fn(c);
  } finally {
    c.destroy();
  }
}

/** Opens a connection, writes raw bytes, reads `count` responses, closes. */
export function exchange(raw: Buffer | string, opts: ExchangeOptions): Promise<HttpResponse[]> {
  return withConn({ port: opts.port, tls: opts.tls, tlsOptions: opts.tlsOptions }, async (c) => {
    await c.write(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
    return c.readResponses(opts.count ?? 1, { heads: opts.heads, timeoutMs: opts.timeoutMs });
  });
}

/** One request, one response. */
export async function exchange1(raw: Buffer | string, opts: ExchangeOptions): Promise<HttpResponse> {
  const [r] = await exchange(raw, { ...opts, count: 1 });
  return r!;
}

/**
 * GET with Connection: close by a client that reads nothing for `stallMs`, then one read
 * every `perReadMs`: the server's output queue stays full, so the application is paused
 * and resumed by drains until the end. Resolves with the parsed response (or the raw
 * bytes when cut short) once the server closes.
 */
export function slowGet(port: number, target: string, stallMs: number, perReadMs: number): Promise<{ res: HttpResponse | null; raw: Buffer }> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const s = net.connect(port, kHost);
    s.pause();
    const timer = setTimeout(() => { s.destroy(); reject(new Error(`${target}: no close within 60 s`)); }, 60_000);
    s.on('data', (c: Buffer) => {
      parts.push(c);
      s.pause();
      setTimeout(() => s.resume(), perReadMs);
    });
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(parts);
      let res: HttpResponse | null = null;
      try {
        const p = parseResponse(raw, false, true);
        if ('res' in p) res = p.res;
      } catch { /* cut short: res stays null */ }
      resolve({ res, raw });
    });
    s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    setTimeout(() => s.resume(), stallMs);
  });
}

/** A minimal well-formed GET. */
export function get(target: string, extra = '', method = 'GET'): string {
  return `${method} ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`;
}

/** IMF-fixdate (RFC 9110 §5.6.7) for a time in ms, truncated to the second. */
export function httpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

export const kImfFixdate = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;
