// lisod's configuration: the TOML file (smol-toml) and/or the Liso positional arguments,
// validated into one fully resolved LisodConfig (absolute paths, ms, bytes); errors carry file:line.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import type { LisoArgs, PortOverrides } from './cli.js';
import type { AccessRuleSpec, CompressSpec, ListenerSpec, ServerConfig } from './native.js';
import { readCgiTable } from './config_cgi.js';
import { readAccessTables } from './config_access.js';
import { finishHttp2, kHttp2Keys, lisoFormHttp1Only, readHttp2Key, type Http2Config } from './config_http2.js';
import {
  checkTlsClientFiles, finishTlsClient, kTlsClientKeys, readTlsClientKey, tlsClientSpec, tlsClientWarnings, type TlsClientConfig,
} from './config_tls_client.js';
import { checkFastCgiPaths, finishFastCgi, readFastCgiArray, type FastCgiMount } from './config_fastcgi.js';
import { kDefaultCompress, readCompress } from './config_compress.js';
import { checkSpoolDir, finishSpool, kSpoolKeys, readSpoolKey, type SpoolConfig } from './config_spool.js';
import {
  ConfigError, FileReader, describe, suggest, type ConfigDraft, type Draft, type DraftKey, type Origin,
} from './config_reader.js';

export { ConfigError, findKeyLine, type ConfigDraft, type Origin } from './config_reader.js';

export interface CgiConfig {
  script: string; // absolute path of the one CGI script behind /cgi/
  timeoutMs: number; // silence before the script is killed (504)
  maxProcesses: number; // concurrent scripts; more requests wait in the queue
  maxRunnable: number; // scripts on or waiting for a CPU before a waiting request starts ("auto": CPUs + 1); 0: no limit
  maxQueue: number; // waiting requests beyond which lisod answers 503
  passEnv: string[]; // variable names copied from lisod's own environment
  env: Record<string, string>; // fixed variables ([cgi.env] verbatim, [cgi.env_paths] absolute)
  requestBuffering: boolean; // whole request body before the script starts
  endAfterResponse: boolean; // SIGTERM the script's group once its response is complete (lighttpd's way)
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
  http2: Http2Config; // ALPN h2 on the TLS port
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
  bodyTotalTimeoutMs: number;
  keepAliveTimeoutMs: number;
  sendTimeoutMs: number;
  shutdownGraceMs: number;
  workers: number; // event loops serving the same ports ("auto" resolved to the CPU count)
  cgi: CgiConfig | null; // null when a [[fastcgi]] mount serves /cgi/ instead
  fastcgi: FastCgiMount[];
  tlsClient: TlsClientConfig | null; // client certificates; null when tls_client_auth is off
  access: AccessRuleSpec[]; // [[access]]
  compress: Required<CompressSpec>; // [compress]
  spool: SpoolConfig;
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
  bodyTotalTimeout: 60,
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


const kTopKeys = [
  'http_port', 'https_port', 'bind', 'www', 'cgi', 'tls_key', 'tls_cert', 'error_log', 'access_log',
  'lock_file', 'max_connections', 'max_body_bytes', 'max_header_bytes', 'max_line_bytes',
  'max_target_bytes', 'header_timeout', 'keep_alive_timeout', 'body_timeout', 'body_total_timeout', 'send_timeout',
  'shutdown_grace', 'user', 'server_name', 'workers', 'tls_session_resumption', 'access', 'fastcgi', 'compress', ...kTlsClientKeys, ...kHttp2Keys, ...kSpoolKeys,
] as const;

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
      case 'body_total_timeout': r.set('bodyTotalTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'send_timeout': r.set('sendTimeoutMs', kp, r.seconds(v, kp, false)); break;
      case 'shutdown_grace': r.set('shutdownGraceMs', kp, r.seconds(v, kp, true)); break;
      case 'user': {
        const s = r.string(v, kp);
        r.set('user', kp, s === '' ? null : s);
        break;
      }
      case 'workers':
        r.set('workers', kp, r.integerOrAuto(v, kp, 1, kMaxWorkers, 'e.g. workers = 2, or workers = "auto" for one event loop per CPU'));
        break;
      case 'fastcgi': readFastCgiArray(r, v); break;
      case 'spool_dir':
      case 'spool_max_bytes': readSpoolKey(r, key as (typeof kSpoolKeys)[number], v); break;
      case 'server_name': {
        const s = r.string(v, kp);
        if (!/^[A-Za-z0-9.-]+$/.test(s)) r.fail(kp, `server_name must be a host name, got ${describe(v)}`);
        r.set('serverName', kp, s);
        break;
      }
      case 'access': readAccessTables(r, v, text); break;
      case 'compress': readCompress(r, v); break;
      default:
        if (!readTlsClientKey(r, key, v) && !readHttp2Key(r, key, v)) r.fail(kp, `unknown key '${key}'`, suggest(key, kTopKeys));
    }
  }
  return r.draft;
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

/** Applies --http-port / --https-port over a draft (before the Liso ports, which win). */
export function applyPorts(draft: ConfigDraft, ports: PortOverrides): ConfigDraft {
  const values: Draft = { ...draft.values };
  const origins = { ...draft.origins };
  if (ports.http !== undefined) [values.httpPort, origins.httpPort] = [ports.http, { arg: '--http-port' }];
  if (ports.https !== undefined) [values.httpsPort, origins.httpsPort] = [ports.https, { arg: '--https-port' }];
  return { ...draft, values, origins };
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
  // /cgi/ is served by the CGI script or by a [[fastcgi]] mount; the Liso `cgi` argument
  // replaces such a mount, a `cgi` key in the file beside one is a conflict.
  let fastcgiDrafts = v.fastcgi ?? [];
  const cgiMount = fastcgiDrafts.find((m) => m.prefix === '/cgi');
  if (cgiMount && v.cgiScript !== undefined) {
    const origin = draft.origins.cgiScript;
    if (origin && 'arg' in origin) fastcgiDrafts = fastcgiDrafts.filter((m) => m !== cgiMount);
    else throw new ConfigError('two mounts for /cgi/: the cgi script and a [[fastcgi]] mount', cgiMount.origin, 'drop one of them');
  }
  if (v.cgiScript === undefined && !cgiMount) {
    missing('cgi', 'e.g. cgi = "cgi-bin/flaskr.cgi", script = … under [cgi], or a [[fastcgi]] mount with path = "/cgi/"');
  }
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

  const tlsClient = finishTlsClient(draft, at);
  return {
    configFile: draft.configFile,
    httpPort: v.httpPort ?? null,
    httpsPort: v.httpsPort ?? null,
    bind,
    www: v.www!,
    tlsKey: v.httpsPort !== undefined ? v.tlsKey! : null,
    tlsCert: v.httpsPort !== undefined ? v.tlsCert! : null,
    tlsResumption: v.tlsResumption ?? true,
    http2: finishHttp2(draft, at),
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
    bodyTotalTimeoutMs: v.bodyTotalTimeoutMs ?? kDefaults.bodyTotalTimeout * 1000,
    keepAliveTimeoutMs: v.keepAliveTimeoutMs ?? kDefaults.keepAliveTimeout * 1000,
    sendTimeoutMs: v.sendTimeoutMs ?? kDefaults.sendTimeout * 1000,
    shutdownGraceMs: v.shutdownGraceMs ?? kDefaults.shutdownGrace * 1000,
    workers: v.workers === 'auto' ? Math.min(Math.max(cpus, 1), kMaxWorkers) : (v.workers ?? kDefaults.workers),
    cgi: v.cgiScript === undefined ? null : {
      script: v.cgiScript,
      timeoutMs: v.cgiTimeoutMs ?? kDefaults.cgiTimeout * 1000,
      maxProcesses: v.cgiMaxProcesses ?? kDefaults.cgiMaxProcesses,
      maxRunnable: v.cgiMaxRunnable === undefined || v.cgiMaxRunnable === 'auto' ? Math.max(cpus, 1) + 1 : v.cgiMaxRunnable,
      maxQueue: v.cgiMaxQueue ?? kDefaults.cgiMaxQueue,
      passEnv: v.cgiPassEnv ?? [],
      env: v.cgiEnv ?? {},
      requestBuffering: v.cgiRequestBuffering ?? true,
      endAfterResponse: v.cgiEndAfterResponse ?? false,
    },
    tlsClient,
    access: v.access ?? [],
    fastcgi: finishFastCgi(fastcgiDrafts, cpus),
    spool: finishSpool(v),
    compress: v.compress ?? kDefaultCompress,
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
 * readable files, log and lock directories exist, the CGI script is an executable file.
 * Throws ConfigError for what prevents start-up; returns warnings for the rest (none today).
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

  const spoolProblem = checkSpoolDir(config.spool.dir);
  if (spoolProblem) throw new ConfigError(spoolProblem, at('spoolDir'), 'buffered request bodies are written there; create it or pick another');

  checkFastCgiPaths(config.fastcgi);
  if (config.cgi === null) return warnings;
  // A script that cannot run would turn every /cgi/ request into a 500: refuse to start.
  let problem: string | null = null;
  try {
    if (!fs.statSync(config.cgi.script).isFile()) problem = 'not a regular file';
    else fs.accessSync(config.cgi.script, fs.constants.X_OK);
  } catch (e) {
    problem = errnoText(e) === 'permission denied' ? 'not executable' : errnoText(e);
  }
  if (problem !== null) {
    throw new ConfigError(`cgi script '${config.cgi.script}': ${problem}`, at('cgiScript'),
      problem === 'not executable' ? `chmod +x ${config.cgi.script}` : undefined);
  }
  warnings.push(...tlsClientWarnings(draft), ...checkTlsClientFiles(config.tlsClient, at));
  return warnings;
}

export interface ConfigSources {
  configFile: string | null; // as typed on the command line
  liso: LisoArgs | null;
  bind: string[] | null;
  ports?: PortOverrides;
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
  if (src.ports) draft = applyPorts(draft, src.ports);
  if (src.liso) draft = applyLiso(draft, src.liso, src.cwd);
  if (src.liso && src.configFile === null) draft = lisoFormHttp1Only(draft);
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
    appPrefixes: appPrefixes(c),
    maxConnections: c.maxConnections,
    maxLineBytes: c.maxLineBytes,
    maxHeaderBytes: c.maxHeaderBytes,
    maxTargetBytes: c.maxTargetBytes,
    maxBodyBytes: c.maxBodyBytes,
    headerTimeoutMs: c.headerTimeoutMs,
    bodyTimeoutMs: c.bodyTimeoutMs,
    bodyTotalTimeoutMs: c.bodyTotalTimeoutMs,
    keepAliveTimeoutMs: c.keepAliveTimeoutMs,
    sendTimeoutMs: c.sendTimeoutMs,
    accessLog: c.accessLog !== null,
    access: c.access,
    compress: c.compress,
  };
  if (c.workers > 1) server.reusePort = true; // the other loops bind the same ports
  if (c.httpsPort !== null) {
    server.tlsKey = c.tlsKey!;
    server.tlsCert = c.tlsCert!;
    server.tlsResumption = c.tlsResumption;
    server.http2 = c.http2.enabled;
    server.http2MaxStreams = c.http2.maxStreams;
    Object.assign(server, tlsClientSpec(c.tlsClient));
  }
  return server;
}

/** The application mounts in the order the native server numbers them (CgiRequest.mount). */
export function appPrefixes(c: LisodConfig): string[] {
  return [...(c.cgi ? ['/cgi'] : []), ...c.fastcgi.map((m) => m.prefix)];
}
