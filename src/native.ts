// The only module that loads the C++ addon; gives its surface TypeScript types.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface ListenerSpec {
  host: string; // '0.0.0.0', '::', '127.0.0.1' …
  port: number; // 0 = ephemeral
  tls: boolean;
}

export interface ServerConfig {
  listeners: ListenerSpec[];
  root: string; // absolute www root
  tlsKey?: string; // PEM private key file (required when a TLS listener exists)
  tlsCert?: string; // PEM certificate chain file (leaf first)
  tlsResumption?: boolean; // session tickets + cache (default true)
  http2?: boolean; // offer ALPN "h2" before "http/1.1" (default false)
  http2MaxStreams?: number; // SETTINGS_MAX_CONCURRENT_STREAMS (default 128)
  cgiPrefix: string; // '/cgi': requests whose path is this or starts with this + '/' go to JS
  appPrefixes?: string[]; // instead of cgiPrefix: every application mount ('/cgi', '/php'); longest match wins
  maxConnections: number; // over it: 503 and close
  maxLineBytes: number; // longest request/header line (431 beyond)
  maxHeaderBytes: number; // whole request head (431 beyond)
  maxTargetBytes: number; // request-target (414 beyond)
  maxBodyBytes: number; // request body (413 beyond)
  headerTimeoutMs: number; // to receive a complete head (408)
  bodyTimeoutMs: number; // between body bytes (408)
  bodyTotalTimeoutMs?: number; // whole request body, application pauses excluded (408; default 60 s)
  keepAliveTimeoutMs: number; // idle between requests (silent close)
  sendTimeoutMs: number; // client not reading our response (close)
  accessLog: boolean; // keep the fields the access log needs
  accessLogWriter?: number; // LogWriter id the event loop writes its access lines to (0 = none)
  reusePort?: boolean; // SO_REUSEPORT so several workers can listen on the same ports
  tlsClientAuth?: 'off' | 'optional' | 'require'; // client certificates (TlsClientSpec)
  tlsClientCa?: string;
  tlsCrl?: string;
  tlsVerifyDepth?: number;
  access?: AccessRuleSpec[]; // [[access]]
  compress?: CompressSpec; // [compress]; defaults as in src/config_compress.ts
}

/** Content codings of static files (CompressSettings in native/compress_cache.h). */
export interface CompressSpec {
  onTheFly?: boolean; // gzip/br on the fly for `types` within [minBytes, maxBytes]
  precompressed?: boolean; // file.br / file.gz siblings
  minBytes?: number;
  maxBytes?: number;
  cacheBytes?: number; // compressed bodies kept, per event loop
  gzipLevel?: number; // 1–9
  brotliQuality?: number; // 0–11
  types?: string[]; // "type/sub" or "type/*"
}

/** Client-certificate settings, as in ServerConfig; also reloadTls's third argument. */
export interface TlsClientSpec {
  tlsClientAuth: 'off' | 'optional' | 'require';
  tlsClientCa?: string; // PEM trust anchors (required unless off)
  tlsCrl?: string; // PEM file of CRLs
  tlsVerifyDepth?: number; // default 4
}

/** One [[access]] rule: a verified certificate whose subject has every pair of one entry. */
export interface AccessRuleSpec {
  path: string; // prefix, matched on segment boundaries of the normalised path
  any: boolean; // allow = ["*"]
  allow: Array<Array<[string, string]>>;
}

/** TLS facts of the connection a request came on (absent over plain HTTP). */
export interface TlsIdentity {
  verify: string; // 'SUCCESS' | 'NONE' | 'FAILED:<reason>'
  protocol: string; // 'TLSv1.3'
  cipher: string;
  // Present when the client sent a certificate:
  subjectDn?: string; // RFC 4514, 'CN=alice,O=Ops'
  subjectCn?: string;
  issuerDn?: string;
  serial?: string; // upper-case hex
  notBefore?: string; // 'Nov 29 08:49:41 2026 GMT'
  notAfter?: string;
  certPem?: string; // the leaf
}

export interface CgiRequest {
  id: number;
  method: string;
  target: string; // raw request-target
  version: string; // 'HTTP/1.1' or 'HTTP/1.0'
  headers: string[]; // flat [name, value, name, value, …] as received
  remoteAddress: string;
  remotePort: number;
  localAddress: string;
  localPort: number;
  tls: boolean;
  hasBody: boolean; // body events follow
  contentLength: number; // -1 when chunked (decoded length unknown until the end)
  tlsIdentity?: TlsIdentity; // TLS connections only
  mount?: number; // index into ServerConfig.appPrefixes of the mount that serves it
}

// One access-log entry for formatAccessRecord (the servers format their own):
// [remoteAddress, unixMillis, method, target, version, status, bytesSent, referer, userAgent, user?]
export type AccessRecord = [string, number, string, string, string, number, number, string, string, string?];

export interface NativeHandlers {
  request(req: CgiRequest): void;
  // null = end of body. The chunk is a view into a buffer the addon reuses for the next
  // chunk: valid during the call only, so copy what you keep.
  body(id: number, chunk: Uint8Array | null): void;
  close(id: number): void; // connection gone before end(); stop the script
  drain(id: number): void; // write() returned false earlier; room again
  error(level: 'error' | 'warn' | 'info', message: string): void;
  // A slot asked for with appSlot (ticket = −its result) is granted (src/app_slots.ts).
  slot?(ticket: number): void;
}

export interface BoundAddress {
  host: string;
  port: number;
  tls: boolean;
}

export interface NativeServer {
  addresses(): BoundAddress[];
  // Parsed-header response: native adds Server, Date, Connection and framing
  // (Content-Length if present in headers, else chunked on 1.1, else close-delimited).
  beginResponse(id: number, status: number, reason: string, headers: string[]): void;
  // NPH response: bytes written go to the client as they are. keepAlive (default false): the
  // script's own head frames the body, so the connection may serve another request after
  // end(); otherwise it closes at end().
  beginRaw(id: number, keepAlive?: boolean): void;
  write(id: number, chunk: Buffer): boolean; // false: buffered above high water; wait for drain
  end(id: number): void;
  abort(id: number): void; // response cut short (script died mid-body): flush what was written, close without finishing the framing
  pauseBody(id: number): void;
  resumeBody(id: number): void;
  // Throws with a message naming the file. client: new client-certificate settings.
  reloadTls(keyFile: string, certFile: string, client?: TlsClientSpec): void;
  setAccess(rules: AccessRuleSpec[]): void; // [[access]] for every request from now on
  // The [[access]] verdict for target on request id's connection: 0 allowed, else a status
  // (403 when the connection is gone).
  accessStatus(id: number, target: string): number;
  stopAccepting(): void;
  stopWhenIdle(): void; // stop accepting; each connection closes after its current response
  connectionCount(): number;
  setAccessLog(writerId: number): void; // write access lines to this LogWriter (0 = none); throws when it is closed
  close(): void; // close listeners and every connection now
  // The [[fastcgi]] mounts the native FastCGI client serves (native/fastcgi_client.h);
  // replaces the previous table. Throws when an address does not resolve.
  setFastcgi(mounts: FastCgiNativeMount[]): void;
  fastcgiStats(): { requests: number; connects: number; reused: number; pipelined: number; spawned: number; cpuWaits: number };
  // A slot of natively served mount `mount` for a request the runner takes, from the pool
  // the native client counts its own in (max_conns/max_processes, max_queue): a ticket > 0
  // granted now, −ticket waiting (handlers.slot(ticket) comes when granted), 0 queue full.
  // Throws for a mount the native client does not serve.
  appSlot(mount: number): number;
  appSlotRelease(ticket: number): void; // frees a granted slot or withdraws a waiting one
}

/** One [[fastcgi]] mount (or the [cgi] one) as the native client takes it (src/app_mounts.ts nativeAppMounts). */
export interface FastCgiNativeMount {
  mount: number; // index into ServerConfig.appPrefixes
  prefix: string;
  address: string; // "unix:PATH" or "HOST:PORT"
  root: string | null;
  index: string | null;
  scriptFilename: string;
  inherited: Record<string, string>;
  serverName: string;
  timeoutMs: number;
  connectTimeoutMs: number;
  maxConns: number;
  maxQueue: number;
  requestBuffering: boolean;
  pipeline: boolean;
  cgi?: boolean; // the Liso [cgi] mount: scriptFilename run per request (native/cgi_run.cc), no address
  endAfterResponse?: boolean; // [cgi] end_after_response
  maxRunnable?: number; // [cgi] max_runnable: waiting requests start while fewer scripts are runnable (0: no limit)
}

/**
 * A buffered log file (or stdout/stderr for '-') written by a native thread, shared by every
 * event loop of the process through its `id`. Lines never interleave; pipes get whole lines
 * in writes of at most PIPE_BUF; failures become one warning per episode, never a throw.
 */
export interface NativeLogWriter {
  readonly id: number; // process-wide; 0 once closed
  write(text: string, soon?: boolean): void; // whole lines; soon: write now, not within the interval
  flush(): boolean; // waits (at most 1 s) until written; false on timeout
  reopen(): void; // throws "cannot open log file '…': ENOENT: …"; the old file stays
  close(): void; // flush and let go (event loops still writing keep the file until they switch)
}

export interface LogWriterOptions {
  flushIntervalMs?: number; // default 1000
  highWaterBytes?: number; // default 64 KiB
  maxBufferBytes?: number; // default 4 MiB; beyond it lines are dropped (and counted)
}

export interface NativeAddon {
  Server: new (config: ServerConfig, handlers: NativeHandlers) => NativeServer;
  // Opens target (a path, O_APPEND, created 0640; '-' = stdFd). Throws "cannot open log file …".
  LogWriter: new (target: string, stdFd: 1 | 2, options: LogWriterOptions, onWarning: (message: string) => void) => NativeLogWriter;
  // One Combined Log Format line, as the servers write it (offsetMinutes: default the local zone).
  formatAccessRecord(record: AccessRecord, offsetMinutes?: number): string;
  // flock(LOCK_EX|LOCK_NB) on path (created 0640, O_CLOEXEC), truncate, write content.
  // Returns the fd (held until unlockFile/exit). Throws Error with code 'ELOCKED' when
  // another process holds it, or an errno message naming the path.
  lockFile(path: string, content: string): number;
  unlockFile(fd: number): void;
  // Every CRL of a PEM file as OpenSSL reads it for tls_crl: issuer (RFC 4514), nextUpdate
  // (unix ms, null if absent). Throws Error with a message naming the file.
  crlInfo(path: string): Array<{ issuer: string; nextUpdate: number | null }>;
  // LOCK_SH probe: true when another process holds the lock (status/stop).
  isLocked(path: string): boolean;
  // As root: chown the given existing files to user, initgroups, setgid, setuid, and
  // check root cannot be regained. Throws EPERM when not root.
  dropPrivileges(user: string, paths?: string[]): { uid: number; gid: number };
  // Sends a datagram to $NOTIFY_SOCKET (path or '@abstract'); false when unset.
  sdNotify(message: string): boolean;
  // Raises RLIMIT_NOFILE soft limit to the hard limit; returns the new soft limit.
  raiseFdLimit(): number;
  // A close-on-exec Unix stream socket bound to path and listening (a FastCGI backend's fd 0).
  // The caller closes the fd (fs.closeSync) and removes the path. Throws with errno and path.
  listenUnix(path: string, backlog: number): number;
  // Starts children with vfork + execve (no fork of this large process; each leads its own
  // process group, default signal dispositions, cwd set) and watches their stdout, stderr and
  // pidfd on the loop (native/script_runs.cc). One per thread; see NativeScriptRuns.
  ScriptRuns: new (onEvent: ScriptRunsEvent, onStart?: ScriptRunsStart) => NativeScriptRuns;
  // The CGI output head parser (native/cgi_output.h; layout in native/cgi_output_addon.h),
  // used by src/cgi_output.ts: null while the head is incomplete.
  parseCgiHead(buf: Buffer, maxHead: number, scanned: number): Int32Array | null;
  interpretCgiLines(buf: Buffer, lineEnds: Uint32Array): Int32Array;
}

/**
 * What one wake-up found for child `token`: stdout and stderr bytes (up to 64 KiB each), and
 * flags — 1 stdout ended (2: at EOF, not a read error), 4 stderr ended (8: at EOF), 16 exited
 * (code ≥ 0, or -1 when signalled/unknown; signal 0 when none), 32 done (both pipes closed
 * and the child reaped: the token's last event). Pipe fds and pidfd are closed by the addon.
 */
export type ScriptRunsEvent = (token: number, stdout: Buffer | undefined, stderr: Buffer | undefined,
  flags: number, code: number, signal: number) => void;

/**
 * How a spawnAsync start ended: the child runs as `pid` (stdinFd: the write end of its stdin
 * pipe, or -1) and is watched like one from spawn(); or it could not be started (pid -1,
 * error as spawn's).
 */
export type ScriptRunsStart = (token: number, pid: number, stdinFd: number, error: Error | null) => void;

export interface NativeScriptRuns {
  // Starts file (argv[0] = file, then args) with env "NAME=value\0…" in cwd. stdin: an fd to
  // hand over, -1 = new pipe, -2 = /dev/null. Fills out with [token, pid, stdin write end or
  // -1]. Throws an Error with code ENOENT/EACCES/ENOEXEC/EMFILE/ESPAWN.
  spawn(file: string, env: string, cwd: string, stdin: number, args: string[] | null, out: Int32Array): void;
  // The same start made on a thread of the addon (the loop never waits for a vfork): returns
  // the token at once; onStart tells the outcome, before any event of the token. An fd given
  // as stdin may be closed by the caller at once.
  spawnAsync(file: string, env: string, cwd: string, stdin: number, args: string[] | null): number;
  pause(token: number): void; // stops reading the child's stdout
  resume(token: number): void;
}

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const load = require('node-gyp-build') as (dir: string) => NativeAddon;

let loaded: NativeAddon | undefined;

/** Loads the addon on first use; throws when no build is found. */
export function loadNative(): NativeAddon {
  if (!loaded) {
    const raw = load(root);
    loaded = Object.assign({}, raw, { Server: withRequestObjects(raw.Server) });
  }
  return loaded;
}

type RawRequest = (id: number, method: string, target: string, version: string, headers: string[], remoteAddress: string,
  remotePort: number, localAddress: string, localPort: number, tls: boolean, hasBody: boolean, contentLength: number,
  tlsIdentity: TlsIdentity | undefined, mount: number) => void;

/**
 * The addon calls handlers.request with a request's fields as arguments (native/addon.cc
 * onAppRequest: cheaper than setting 13 properties through N-API); this gives handlers the
 * CgiRequest object, built here as one literal.
 */
function withRequestObjects(Raw: NativeAddon['Server']): NativeAddon['Server'] {
  const Base = Raw as unknown as new (config: ServerConfig, handlers: object) => NativeServer;
  return class Server extends Base {
    constructor(config: ServerConfig, h: NativeHandlers) {
      const request: RawRequest = (id, method, target, version, headers, remoteAddress, remotePort, localAddress, localPort,
        tls, hasBody, contentLength, tlsIdentity, mount) => {
        const req: CgiRequest = { id, method, target, version, headers, remoteAddress, remotePort, localAddress, localPort, tls,
          hasBody, contentLength, mount };
        if (tlsIdentity !== undefined) req.tlsIdentity = tlsIdentity;
        h.request(req);
      };
      super(config, {
        request,
        body: (id: number, chunk: Uint8Array | null) => h.body(id, chunk),
        close: (id: number) => h.close(id),
        drain: (id: number) => h.drain(id),
        error: (level: 'error' | 'warn' | 'info', message: string) => h.error(level, message),
        ...(h.slot ? { slot: (ticket: number) => h.slot!(ticket) } : {}),
      });
    }
  };
}

/** The addon, loaded on first property access: importing a module that uses it (the CGI
 *  runner, say) costs nothing, so --help, --version and the launcher work without a build. */
export const native: NativeAddon = new Proxy({} as NativeAddon, {
  get: (_target, key) => loadNative()[key as keyof NativeAddon],
});
