// lisod's configuration: the TOML file (smol-toml) and/or the Liso positional arguments,
// validated into one fully resolved LisodConfig (absolute paths, ms, bytes); errors carry file:line.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { LisoArgs } from './cli.js';
import type { ListenerSpec, ServerConfig } from './native.js';

export interface CgiConfig {
  script: string; // absolute path of the one CGI script behind /cgi/
  timeoutMs: number; // silence before the script is killed (504)
  maxProcesses: number; // concurrent scripts; more requests wait in the queue
  maxQueue: number; // waiting requests beyond which lisod answers 503
  passEnv: string[]; // variable names copied from lisod's own environment
  env: Record<string, string>; // fixed variables ([cgi.env] verbatim, [cgi.env_paths] absolute)
}

export interface LisodConfig {
  configFile: string | null; // absolute path of the file read, if any
  httpPort: number | null; // null: no plain-HTTP listener
  httpsPort: number | null; // null: no TLS listener
  bind: string[]; // IP literals; each gets one listener per port
  www: string;
  tlsKey: string | null; // set whenever httpsPort is
  tlsCert: string | null;
  tlsResumption: boolean; // TLS session tickets + session cache
  errorLog: string; // absolute path, or '-' for stderr
  accessLog: string | null; // absolute path, '-' for stdout, null when off
  lockFile: string | null;
  user: string | null; // privilege drop target when started as root (daemon)
  serverName: string; // CGI SERVER_NAME when a request has no usable Host
  maxConnections: number;
  maxBodyBytes: number;
  maxHeaderBytes: number;
  maxLineBytes: number;
  maxTargetBytes: number;
  headerTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  sendTimeoutMs: number;
  shutdownGraceMs: number;
  workers: number; // event loops serving the same ports ("auto" resolved to the CPU count)
  cgi: CgiConfig;
}

/** Where a setting came from: a line of the config file or a command-line argument. */
export type Origin = { file: string; line?: number; column?: number } | { arg: string };

/** A configuration problem; `toString()` gives "file:line: message (hint: …)". */
export class ConfigError extends Error {
  constructor(
    readonly detail: string,
    readonly origin: Origin | null,
    readonly hint?: string,
  ) {
    super(formatProblem(detail, origin, hint));
    this.name = 'ConfigError';
  }
}

function formatProblem(message: string, origin: Origin | null, hint?: string): string {
  let where = '';
  if (origin && 'file' in origin) {
    where = origin.file;
    if (origin.line !== undefined) where += `:${origin.line}`;
    if (origin.line !== undefined && origin.column !== undefined) where += `:${origin.column}`;
    where += ': ';
  } else if (origin) {
    where = `${origin.arg}: `;
  }
  return `${where}${message}${hint ? ` (hint: ${hint})` : ''}`;
}

export const kDefaults = {
  bind: ['::'],
  errorLog: '-',
  maxConnections: 10000,
  maxBodyBytes: 100 * 1024 * 1024,
  maxHeaderBytes: 64 * 1024,
  maxLineBytes: 8192,
  maxTargetBytes: 8000,
  headerTimeout: 10,
  bodyTimeout: 30,
  keepAliveTimeout: 15,
  sendTimeout: 60,
  shutdownGrace: 10,
  cgiTimeout: 30,
  cgiMaxProcesses: 16,
  cgiMaxQueue: 64,
  workers: 1,
} as const;

/** Upper bound for `workers`: each loop is a thread with its own V8 heap (~10 MiB). */
export const kMaxWorkers = 256;

// ---------------------------------------------------------------------------------------
// Locating keys in the source text (smol-toml reports positions only for syntax errors).

/** Splits a TOML key ("a.\"b.c\". d") into its parts, unquoting them. */
function splitKey(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote = '';
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = '';
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '.') {
      parts.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur.trim());
  return parts;
}

/**
 * 1-based line where `keyPath` (e.g. ['cgi', 'timeout']) is assigned or its table opens;
 * falls back to the nearest enclosing key or table. Undefined when nothing matches.
 */
export function findKeyLine(source: string, keyPath: readonly string[]): number | undefined {
  const lines = source.split(/\r?\n/);
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  for (let len = keyPath.length; len > 0; len--) {
    const want = keyPath.slice(0, len);
    let table: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const header = /^\s*\[\s*([^[\]]+?)\s*\]\s*(#.*)?$/.exec(line);
      if (header) {
        table = splitKey(header[1]!);
        if (same(table, want)) return i + 1;
        continue;
      }
      if (/^\s*\[\[/.test(line)) {
        table = ['[['];
        continue;
      }
      const assign = /^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=/.exec(line);
      if (assign && same([...table, ...splitKey(assign[1]!)], want)) return i + 1;
    }
  }
  return undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** "did you mean 'x'?" for a near miss among `known`, else a list of the valid keys. */
function suggest(key: string, known: readonly string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (bestD <= Math.max(2, Math.floor(key.length / 3))) return `did you mean '${best}'?`;
  return `valid keys here: ${known.join(', ')}`;
}

// ---------------------------------------------------------------------------------------
// Reading the file: types and ranges only; the file system is checked in checkPaths().

/** Settings gathered from the file and/or arguments before defaults and checks. */
interface Draft {
  httpPort?: number;
  httpsPort?: number;
  bind?: string[];
  www?: string;
  cgiScript?: string;
  tlsKey?: string;
  tlsCert?: string;
  tlsResumption?: boolean;
  errorLog?: string;
  accessLog?: string | null;
  lockFile?: string | null;
  user?: string | null;
  serverName?: string;
  maxConnections?: number;
  maxBodyBytes?: number;
  maxHeaderBytes?: number;
  maxLineBytes?: number;
  maxTargetBytes?: number;
  headerTimeoutMs?: number;
  bodyTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  sendTimeoutMs?: number;
  shutdownGraceMs?: number;
  workers?: number | 'auto';
  cgiTimeoutMs?: number;
  cgiMaxProcesses?: number;
  cgiMaxQueue?: number;
  cgiPassEnv?: string[];
  cgiEnv?: Record<string, string>;
}
type DraftKey = keyof Draft;

/** Settings plus where each came from (for messages), and the config file, if any. */
export interface ConfigDraft {
  values: Draft;
  origins: Partial<Record<DraftKey, Origin>>;
  configFile: string | null; // absolute
  display: string | null; // the config file as the user named it, for messages
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date || (v && typeof v === 'object' && 'toISOString' in v)) return 'a date';
  return 'a table';
}

const kEnvName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const kMaxMs = 2 ** 31 - 1;

class FileReader {
  readonly draft: ConfigDraft;
  private readonly dir: string;

  constructor(
    private readonly source: string,
    private readonly display: string, // file name as the user typed it, for messages
    absPath: string,
  ) {
    this.dir = path.dirname(absPath);
    this.draft = { values: {}, origins: {}, configFile: absPath, display };
  }

  origin(keyPath: readonly string[]): Origin {
    return { file: this.display, line: findKeyLine(this.source, keyPath) };
  }

  fail(keyPath: readonly string[], message: string, hint?: string): never {
    throw new ConfigError(message, this.origin(keyPath), hint);
  }

  set<K extends DraftKey>(key: K, keyPath: readonly string[], value: Draft[K]): void {
    this.draft.values[key] = value;
    this.draft.origins[key] = this.origin(keyPath);
  }

  table(v: unknown, keyPath: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date || 'toISOString' in v) {
      this.fail(keyPath, `${keyPath.join('.')} must be a table, got ${describe(v)}`);
    }
    return v as Record<string, unknown>;
  }

  port(v: unknown, keyPath: readonly string[]): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
      this.fail(keyPath, `${keyPath.join('.')} must be a port number (0–65535), got ${describe(v)}`,
        'use 0 to let the system pick a free port');
    }
    return v;
  }

  integer(v: unknown, keyPath: readonly string[], min: number, unit: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      this.fail(keyPath, `${keyPath.join('.')} must be an integer ≥ ${min} (${unit}), got ${describe(v)}`,
        'write plain digits; underscores are allowed, e.g. 104_857_600');
    }
    return v;
  }

  /** Seconds (integer or decimal) → milliseconds. */
  seconds(v: unknown, keyPath: readonly string[], allowZero: boolean): number {
    const ms = typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 1000) : NaN;
    if (!(ms >= (allowZero ? 0 : 1) && ms <= kMaxMs)) {
      this.fail(keyPath, `${keyPath.join('.')} must be a number of seconds ${allowZero ? '≥ 0' : '> 0'}, got ${describe(v)}`,
        'e.g. 30 or 0.5; at most 2147483');
    }
    return ms;
  }

  boolean(v: unknown, keyPath: readonly string[]): boolean {
    if (typeof v !== 'boolean') this.fail(keyPath, `${keyPath.join('.')} must be true or false, got ${describe(v)}`);
    return v as boolean;
  }

  string(v: unknown, keyPath: readonly string[], hint?: string): string {
    if (typeof v !== 'string') this.fail(keyPath, `${keyPath.join('.')} must be a string, got ${describe(v)}`, hint);
    return v;
  }

  /** A non-empty path, resolved against the config file's directory. */
  path(v: unknown, keyPath: readonly string[]): string {
    const s = this.string(v, keyPath, 'quote paths: "www"');
    if (s === '') this.fail(keyPath, `${keyPath.join('.')} must not be empty`);
    return path.resolve(this.dir, s);
  }

  /** A log destination: "-" (standard stream), "" (off, when allowed) or a path. */
  logTarget(v: unknown, keyPath: readonly string[], allowOff: boolean): string | null {
    const s = this.string(v, keyPath, 'a path, or "-" for the standard stream');
    if (s === '-') return '-';
    if (s === '') {
      if (!allowOff) this.fail(keyPath, `${keyPath.join('.')} must not be empty`, 'use "-" for stderr');
      return null;
    }
    return path.resolve(this.dir, s);
  }

  stringList(v: unknown, keyPath: readonly string[]): string[] {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
      this.fail(keyPath, `${keyPath.join('.')} must be an array of strings, got ${describe(v)}`, 'e.g. ["LANG", "TZ"]');
    }
    return list as string[];
  }

  envNames(v: unknown, keyPath: readonly string[]): string[] {
    const names = this.stringList(v, keyPath);
    for (const n of names) {
      if (!kEnvName.test(n)) this.fail(keyPath, `${keyPath.join('.')}: '${n}' is not an environment variable name`, 'letters, digits and _, not starting with a digit');
    }
    return names;
  }

  envTable(v: unknown, keyPath: readonly string[], paths: boolean): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.table(v, keyPath))) {
      const kp = [...keyPath, name];
      if (!kEnvName.test(name)) this.fail(kp, `'${name}' is not an environment variable name`, 'letters, digits and _, not starting with a digit');
      out[name] = paths ? this.path(value, kp) : this.string(value, kp, 'environment values are strings; quote numbers');
    }
    return out;
  }
}

const kTopKeys = [
  'http_port', 'https_port', 'bind', 'www', 'cgi', 'tls_key', 'tls_cert', 'error_log', 'access_log',
  'lock_file', 'max_connections', 'max_body_bytes', 'max_header_bytes', 'max_line_bytes',
  'max_target_bytes', 'header_timeout', 'keep_alive_timeout', 'body_timeout', 'send_timeout',
  'shutdown_grace', 'user', 'server_name', 'workers', 'tls_session_resumption',
] as const;
const kCgiKeys = ['script', 'timeout', 'max_processes', 'max_queue', 'pass_env', 'env', 'env_paths'] as const;

/**
 * Parses and type-checks config file text. `display` names the file in messages; `absPath`
 * is its absolute path (relative paths in the file resolve against its directory).
 */
export function parseConfigText(text: string, display: string, absPath: string): ConfigDraft {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text);
  } catch (e) {
    if (e instanceof TomlError) {
      const what = e.message.split('\n')[0]!.replace(/^Invalid TOML document:\s*/, '');
      throw new ConfigError(`TOML syntax error: ${what}`, { file: display, line: e.line, column: e.column },
        'strings need quotes, tables are [name], each key appears once');
    }
    throw e;
  }
  const r = new FileReader(text, display, absPath);

  for (const [key, v] of Object.entries(doc)) {
    const kp = [key];
    switch (key as (typeof kTopKeys)[number]) {
      case 'http_port': r.set('httpPort', kp, r.port(v, kp)); break;
      case 'https_port': r.set('httpsPort', kp, r.port(v, kp)); break;
      case 'bind': r.set('bind', kp, r.stringList(v, kp)); break;
      case 'www': r.set('www', kp, r.path(v, kp)); break;
      case 'cgi':
        if (typeof v === 'string') r.set('cgiScript', kp, r.path(v, kp));
        else readCgiTable(r, r.table(v, kp));
        break;
      case 'tls_key': r.set('tlsKey', kp, r.path(v, kp)); break;
      case 'tls_cert': r.set('tlsCert', kp, r.path(v, kp)); break;
      case 'tls_session_resumption': r.set('tlsResumption', kp, r.boolean(v, kp)); break;
      case 'error_log': r.set('errorLog', kp, r.logTarget(v, kp, false)!); break;
      case 'access_log': r.set('accessLog', kp, r.logTarget(v, kp, true)); break;
      case 'lock_file': {
        const s = r.string(v, kp);
        r.set('lockFile', kp, s === '' ? null : r.path(s, kp));
        break;
      }
      case 'max_connections': r.set('maxConnections', kp, r.integer(v, kp, 1, 'connections')); break;
      case 'max_body_bytes': r.set('maxBodyBytes', kp, r.integer(v, kp, 1, 'bytes')); break;
      case 'max_header_bytes': r.set('maxHeaderBytes', kp, r.integer(v, kp, 1, 'bytes')); break;
      case 'max_line_bytes': r.set('maxLineBytes', kp, r.integer(v, kp, 1, 'bytes')); break;
      case 'max_target_bytes': r.set('maxTargetBytes', kp, r.integer(v, kp, 1, 'bytes')); break;
      case 'header_timeout': r.set('headerTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'keep_alive_timeout': r.set('keepAliveTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'body_timeout': r.set('bodyTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'send_timeout': r.set('sendTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'shutdown_grace': r.set('shutdownGraceMs', kp, r.seconds(v, kp, true)); break;
      case 'user': {
        const s = r.string(v, kp);
        r.set('user', kp, s === '' ? null : s);
        break;
      }
      case 'workers':
        if (v !== 'auto' && !(typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= kMaxWorkers)) {
          r.fail(kp, `workers must be an integer 1–${kMaxWorkers} or "auto", got ${describe(v)}`,
            'e.g. workers = 2, or workers = "auto" for one event loop per CPU');
        }
        r.set('workers', kp, v as number | 'auto');
        break;
      case 'server_name': {
        const s = r.string(v, kp);
        if (!/^[A-Za-z0-9.-]+$/.test(s)) r.fail(kp, `server_name must be a host name, got ${describe(v)}`);
        r.set('serverName', kp, s);
        break;
      }
      default:
        r.fail(kp, `unknown key '${key}'`, suggest(key, kTopKeys));
    }
  }
  return r.draft;
}

function readCgiTable(r: FileReader, t: Record<string, unknown>): void {
  for (const [key, v] of Object.entries(t)) {
    const kp = ['cgi', key];
    switch (key as (typeof kCgiKeys)[number]) {
      case 'script': r.set('cgiScript', kp, r.path(v, kp)); break;
      case 'timeout': r.set('cgiTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'max_processes': r.set('cgiMaxProcesses', kp, r.integer(v, kp, 1, 'processes')); break;
      case 'max_queue': r.set('cgiMaxQueue', kp, r.integer(v, kp, 0, 'requests')); break;
      case 'pass_env': r.set('cgiPassEnv', kp, r.envNames(v, kp)); break;
      case 'env':
      case 'env_paths': {
        const merged = { ...r.draft.values.cgiEnv };
        for (const [name, value] of Object.entries(r.envTable(v, kp, key === 'env_paths'))) {
          if (name in merged) r.fail([...kp, name], `${name} is set in both [cgi.env] and [cgi.env_paths]`, 'keep one');
          merged[name] = value;
        }
        r.set('cgiEnv', kp, merged);
        break;
      }
      default:
        r.fail(kp, `unknown key '${key}' in [cgi]`, suggest(key, kCgiKeys));
    }
  }
}

// ---------------------------------------------------------------------------------------
// Command-line overrides, defaults and checks.

/** Applies the Liso positional arguments (paths against `cwd`) over a draft. */
export function applyLiso(draft: ConfigDraft, liso: LisoArgs, cwd: string): ConfigDraft {
  const values: Draft = { ...draft.values };
  const origins = { ...draft.origins };
  const put = <K extends DraftKey>(key: K, arg: string, value: Draft[K]) => {
    values[key] = value;
    origins[key] = { arg: `<${arg}>` };
  };
  put('httpPort', 'http_port', liso.httpPort);
  put('httpsPort', 'https_port', liso.httpsPort);
  put('errorLog', 'log', path.resolve(cwd, liso.log));
  put('accessLog', 'log', path.resolve(cwd, liso.log)); // Liso has one log for both
  put('lockFile', 'lock', path.resolve(cwd, liso.lock));
  put('www', 'www', path.resolve(cwd, liso.www));
  put('cgiScript', 'cgi', path.resolve(cwd, liso.cgi));
  put('tlsKey', 'key', path.resolve(cwd, liso.key));
  put('tlsCert', 'cert', path.resolve(cwd, liso.cert));
  return { ...draft, values, origins };
}

/** Applies --bind addresses over a draft. */
export function applyBind(draft: ConfigDraft, bind: string[]): ConfigDraft {
  return { ...draft, values: { ...draft.values, bind }, origins: { ...draft.origins, bind: { arg: '--bind' } } };
}

export const kEmptyDraft: ConfigDraft = { values: {}, origins: {}, configFile: null, display: null };

/**
 * Fills defaults and checks what can be checked without the file system: required
 * settings, bind addresses, and relations between limits. Pure (`cpus` resolves
 * workers = "auto").
 */
export function finishConfig(draft: ConfigDraft, hostname: string, cpus = os.availableParallelism()): LisodConfig {
  const v = draft.values;
  const file: Origin | null = draft.display !== null ? { file: draft.display } : null;
  const at = (key: DraftKey): Origin | null => draft.origins[key] ?? file;
  const missing = (what: string, hint: string): never => {
    throw new ConfigError(`missing required setting ${what}`, file, hint);
  };

  if (v.httpPort === undefined && v.httpsPort === undefined) missing('http_port or https_port', 'e.g. http_port = 8080');
  if (v.www === undefined) missing('www', 'e.g. www = "www"');
  if (v.cgiScript === undefined) missing('cgi', 'e.g. cgi = "cgi-bin/flaskr.cgi", or script = … under [cgi]');
  if (v.httpsPort !== undefined) {
    if (v.tlsKey === undefined) missing('tls_key (https_port is set)', 'e.g. tls_key = "certs/dev-key.pem", or drop https_port');
    if (v.tlsCert === undefined) missing('tls_cert (https_port is set)', 'e.g. tls_cert = "certs/dev-cert.pem", or drop https_port');
  }

  const bind = v.bind ?? [...kDefaults.bind];
  if (bind.length === 0) throw new ConfigError('bind must list at least one address', at('bind'), 'e.g. bind = ["::"]');
  const seen = new Set<string>();
  for (const addr of bind) {
    if (net.isIP(addr) === 0) {
      throw new ConfigError(`bind address '${addr}' is not an IP address`, at('bind'),
        '"::" = every IPv4 and IPv6 interface, "0.0.0.0" = every IPv4 one, "127.0.0.1" / "::1" = loopback');
    }
    if (seen.has(addr)) throw new ConfigError(`bind address '${addr}' is listed twice`, at('bind'));
    seen.add(addr);
  }
  if (v.httpPort !== undefined && v.httpPort === v.httpsPort && v.httpPort !== 0) {
    throw new ConfigError(`http_port and https_port are both ${v.httpPort}`, at('httpsPort'), 'give HTTPS its own port, e.g. 8443');
  }

  const maxHeaderBytes = v.maxHeaderBytes ?? kDefaults.maxHeaderBytes;
  const maxLineBytes = v.maxLineBytes ?? kDefaults.maxLineBytes;
  if (maxLineBytes > maxHeaderBytes) {
    throw new ConfigError(`max_line_bytes (${maxLineBytes}) exceeds max_header_bytes (${maxHeaderBytes})`,
      at(v.maxLineBytes !== undefined ? 'maxLineBytes' : 'maxHeaderBytes'), 'a header line is part of the header block');
  }

  return {
    configFile: draft.configFile,
    httpPort: v.httpPort ?? null,
    httpsPort: v.httpsPort ?? null,
    bind,
    www: v.www!,
    tlsKey: v.httpsPort !== undefined ? v.tlsKey! : null,
    tlsCert: v.httpsPort !== undefined ? v.tlsCert! : null,
    tlsResumption: v.tlsResumption ?? true,
    errorLog: v.errorLog ?? kDefaults.errorLog,
    accessLog: v.accessLog ?? null,
    lockFile: v.lockFile ?? null,
    user: v.user ?? null,
    serverName: v.serverName ?? hostname,
    maxConnections: v.maxConnections ?? kDefaults.maxConnections,
    maxBodyBytes: v.maxBodyBytes ?? kDefaults.maxBodyBytes,
    maxHeaderBytes,
    maxLineBytes,
    maxTargetBytes: v.maxTargetBytes ?? kDefaults.maxTargetBytes,
    headerTimeoutMs: v.headerTimeoutMs ?? kDefaults.headerTimeout * 1000,
    bodyTimeoutMs: v.bodyTimeoutMs ?? kDefaults.bodyTimeout * 1000,
    keepAliveTimeoutMs: v.keepAliveTimeoutMs ?? kDefaults.keepAliveTimeout * 1000,
    sendTimeoutMs: v.sendTimeoutMs ?? kDefaults.sendTimeout * 1000,
    shutdownGraceMs: v.shutdownGraceMs ?? kDefaults.shutdownGrace * 1000,
    workers: v.workers === 'auto' ? Math.min(Math.max(cpus, 1), kMaxWorkers) : (v.workers ?? kDefaults.workers),
    cgi: {
      script: v.cgiScript!,
      timeoutMs: v.cgiTimeoutMs ?? kDefaults.cgiTimeout * 1000,
      maxProcesses: v.cgiMaxProcesses ?? kDefaults.cgiMaxProcesses,
      maxQueue: v.cgiMaxQueue ?? kDefaults.cgiMaxQueue,
      passEnv: v.cgiPassEnv ?? [],
      env: v.cgiEnv ?? {},
    },
  };
}

function errnoText(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const texts: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    ENOTDIR: 'a path component is not a directory',
    ELOOP: 'too many symbolic links',
  };
  return (err.code && texts[err.code]) ?? err.message;
}

/**
 * Checks the configured paths on disk: www is a readable directory, key and certificate are
 * readable files, log and lock directories exist. Throws ConfigError for what prevents
 * start-up; returns warnings (e.g. a CGI script that is not executable) for the rest.
 */
export function checkPaths(config: LisodConfig, draft: ConfigDraft): string[] {
  const at = (key: DraftKey): Origin | null => draft.origins[key] ?? (draft.display !== null ? { file: draft.display } : null);
  const warnings: string[] = [];

  try {
    if (!fs.statSync(config.www).isDirectory()) throw new ConfigError(`www '${config.www}' is not a directory`, at('www'));
    fs.accessSync(config.www, fs.constants.R_OK | fs.constants.X_OK);
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(`www '${config.www}': ${errnoText(e)}`, at('www'), 'the document root must be an existing, readable directory');
  }

  for (const [key, name, file] of [['tlsKey', 'tls_key', config.tlsKey], ['tlsCert', 'tls_cert', config.tlsCert]] as const) {
    if (file === null) continue;
    try {
      fs.accessSync(file, fs.constants.R_OK);
      if (!fs.statSync(file).isFile()) throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
    } catch (e) {
      throw new ConfigError(`${name} '${file}': ${errnoText(e)}`, at(key), 'npm start generates a development key and certificate in certs/');
    }
  }

  for (const [key, name, file] of [['errorLog', 'error_log', config.errorLog], ['accessLog', 'access_log', config.accessLog], ['lockFile', 'lock_file', config.lockFile]] as const) {
    if (file === null || file === '-') continue;
    const dir = path.dirname(file);
    try {
      if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (e) {
      throw new ConfigError(`${name} '${file}': directory '${dir}': ${errnoText(e)}`, at(key), `create it first: mkdir -p ${dir}`);
    }
  }

  try {
    fs.accessSync(config.cgi.script, fs.constants.X_OK);
    if (!fs.statSync(config.cgi.script).isFile()) warnings.push(`cgi script '${config.cgi.script}' is not a regular file; /cgi/ requests will fail`);
  } catch (e) {
    warnings.push(`cgi script '${config.cgi.script}': ${errnoText(e) === 'permission denied' ? 'not executable' : errnoText(e)}; /cgi/ requests will fail`);
  }
  return warnings;
}

export interface ConfigSources {
  configFile: string | null; // as typed on the command line
  liso: LisoArgs | null;
  bind: string[] | null;
  cwd: string;
  hostname?: string; // default os.hostname()
}

/** Reads, merges and validates everything; throws ConfigError. */
export function loadConfig(src: ConfigSources): { config: LisodConfig; warnings: string[] } {
  let draft = kEmptyDraft;
  if (src.configFile !== null) {
    const abs = path.resolve(src.cwd, src.configFile);
    let text: string;
    try {
      text = fs.readFileSync(abs, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file '${src.configFile}': ${errnoText(e)}`, null);
    }
    draft = parseConfigText(text, src.configFile, abs);
  }
  if (src.liso) draft = applyLiso(draft, src.liso, src.cwd);
  if (src.bind) draft = applyBind(draft, src.bind);
  const config = finishConfig(draft, src.hostname ?? os.hostname());
  const warnings = checkPaths(config, draft);
  return { config, warnings };
}

// ---------------------------------------------------------------------------------------
// Handing the configuration to the native server.

/** The native server's view: for each bind address one HTTP and (if set) one HTTPS listener. */
export function toServerConfig(c: LisodConfig): ServerConfig {
  const listeners: ListenerSpec[] = [];
  for (const host of c.bind) {
    if (c.httpPort !== null) listeners.push({ host, port: c.httpPort, tls: false });
    if (c.httpsPort !== null) listeners.push({ host, port: c.httpsPort, tls: true });
  }
  const server: ServerConfig = {
    listeners,
    root: c.www,
    cgiPrefix: '/cgi',
    maxConnections: c.maxConnections,
    maxLineBytes: c.maxLineBytes,
    maxHeaderBytes: c.maxHeaderBytes,
    maxTargetBytes: c.maxTargetBytes,
    maxBodyBytes: c.maxBodyBytes,
    headerTimeoutMs: c.headerTimeoutMs,
    bodyTimeoutMs: c.bodyTimeoutMs,
    keepAliveTimeoutMs: c.keepAliveTimeoutMs,
    sendTimeoutMs: c.sendTimeoutMs,
    accessLog: c.accessLog !== null,
  };
  if (c.workers > 1) server.reusePort = true; // the other loops bind the same ports
  if (c.httpsPort !== null) {
    server.tlsKey = c.tlsKey!;
    server.tlsCert = c.tlsCert!;
    server.tlsResumption = c.tlsResumption;
  }
  return server;
}
