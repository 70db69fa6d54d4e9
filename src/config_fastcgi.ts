// The [[fastcgi]] mounts of the config file: one URL prefix each, served by an external
// FastCGI server (`socket`) or by `processes` copies of a `command` lisod supervises.
import fs from 'node:fs';
import { parseBackendAddress } from './fastcgi/backend.js';
import { ConfigError, describe, suggest, type FileReader, type Origin } from './config_reader.js';

export const kFastCgiKeys = [
  'path', 'socket', 'command', 'root', 'index', 'processes', 'timeout', 'max_queue', 'env', 'env_paths',
  'pass_env', 'request_buffering', 'connect_timeout', 'max_conns', 'pipeline',
] as const;

export interface FastCgiMount {
  prefix: string; // '/php': this path and everything below it (no trailing '/')
  socket: string | null; // "unix:PATH" or "HOST:PORT" of an external server
  command: string[] | null; // [absolute file, ...args]: lisod starts `processes` copies
  root: string | null; // SCRIPT_FILENAME = root + SCRIPT_NAME (the longest prefix naming a file)
  index: string | null; // appended to a path ending in '/' (with root)
  processes: number; // command only (0 for socket)
  timeoutMs: number; // backend silent this long → 504 / connection dropped
  maxQueue: number; // requests waiting for a connection slot; beyond → 503
  env: Record<string, string>; // command: the processes' environment; socket: extra PARAMS
  passEnv: string[];
  requestBuffering: boolean;
  pipeline: boolean; // a waiting GET/HEAD may be sent behind the request on a busy connection
  connectTimeoutMs: number;
  maxConns: number; // concurrent requests to the backend (the runner's slots)
  origin: Origin; // the mount's [[fastcgi]] header, for messages
}

/** As read from the file; `processes` and `maxConns` get their defaults in finishFastCgi. */
export type FastCgiMountDraft = Omit<FastCgiMount, 'processes' | 'maxConns'> & { processes: number | null; maxConns: number | null };

export const kFastCgiDefaults = { timeout: 30, maxQueue: 64, connectTimeout: 5, socketMaxConns: 16 } as const;

/** Reads `fastcgi` (an array of tables) into draft.values.fastcgi, mount by mount. */
export function readFastCgiArray(r: FileReader, v: unknown): void {
  if (!Array.isArray(v)) {
    r.fail(['fastcgi'], `fastcgi must be an array of tables ([[fastcgi]]), got ${describe(v)}`, 'write each mount as [[fastcgi]] followed by its keys');
  }
  const mounts: FastCgiMountDraft[] = [];
  v.forEach((item, i) => {
    const m = readMount(r, r.table(item, ['fastcgi', String(i)]), i);
    const twin = mounts.find((o) => o.prefix === m.prefix);
    if (twin) {
      r.fail(['fastcgi', String(i), 'path'], `two [[fastcgi]] mounts for ${m.prefix}/`, 'each prefix is served by one mount');
    }
    mounts.push(m);
  });
  r.set('fastcgi', ['fastcgi'], mounts);
}

/** "/php/" → "/php"; refuses what is not a plain absolute path prefix. */
function mountPrefix(r: FileReader, v: unknown, kp: string[]): string {
  const s = r.string(v, kp, 'e.g. path = "/php/"');
  const prefix = s.replace(/\/+$/, '');
  if (!s.startsWith('/') || prefix === '' || /[?#%\s\\]|\/\/|\/\.\.?(\/|$)/.test(s)) {
    r.fail(kp, `fastcgi path must be an absolute URL path prefix other than "/", got ${describe(v)}`,
      'e.g. path = "/php/"; no query, no %-escapes, no . or .. segments');
  }
  return prefix;
}

function readMount(r: FileReader, t: Record<string, unknown>, i: number): FastCgiMountDraft {
  const at = (key: string): string[] => ['fastcgi', String(i), key];
  const m: FastCgiMountDraft = {
    prefix: '', socket: null, command: null, root: null, index: null, processes: null,
    timeoutMs: kFastCgiDefaults.timeout * 1000, maxQueue: kFastCgiDefaults.maxQueue, env: {}, passEnv: [],
    requestBuffering: true, pipeline: true, connectTimeoutMs: kFastCgiDefaults.connectTimeout * 1000, maxConns: null,
    origin: r.origin(['fastcgi', String(i)]),
  };
  let envPaths: Record<string, string> = {};
  for (const [key, v] of Object.entries(t)) {
    const kp = at(key);
    switch (key as (typeof kFastCgiKeys)[number]) {
      case 'path': m.prefix = mountPrefix(r, v, kp); break;
      case 'socket': {
        const s = r.string(v, kp, 'e.g. socket = "unix:/run/php/php8.2-fpm.sock" or "127.0.0.1:9000"');
        try {
          parseBackendAddress(s);
        } catch (e) {
          r.fail(kp, `fastcgi socket ${(e as Error).message}`, 'e.g. "unix:/run/php/php8.2-fpm.sock" or "127.0.0.1:9000"');
        }
        m.socket = s;
        break;
      }
      case 'command': {
        const list = r.stringList(v, kp);
        if (list.length === 0 || list[0] === '') r.fail(kp, 'fastcgi command must name a program', 'e.g. command = ["cgi-bin/flaskr.fcgi"]');
        m.command = [r.path(list[0], kp), ...list.slice(1)];
        break;
      }
      case 'root': m.root = r.path(v, kp); break;
      case 'index': {
        const s = r.string(v, kp);
        if (s === '' || s.includes('/')) r.fail(kp, `fastcgi index must be a file name, got ${describe(v)}`, 'e.g. index = "index.php"');
        m.index = s;
        break;
      }
      case 'processes': m.processes = r.integer(v, kp, 1, 'processes'); break;
      case 'timeout': m.timeoutMs = r.seconds(v, kp, false); break;
      case 'connect_timeout': m.connectTimeoutMs = r.seconds(v, kp, false); break;
      case 'max_queue': m.maxQueue = r.integer(v, kp, 0, 'requests'); break;
      case 'max_conns': m.maxConns = r.integer(v, kp, 1, 'connections'); break;
      case 'request_buffering': m.requestBuffering = r.boolean(v, kp); break;
      case 'pipeline': m.pipeline = r.boolean(v, kp); break;
      case 'pass_env': m.passEnv = r.envNames(v, kp); break;
      case 'env': m.env = r.envTable(v, kp, false); break;
      case 'env_paths': envPaths = r.envTable(v, kp, true); break;
      default:
        r.fail(kp, `unknown key '${key}' in [[fastcgi]]`, suggest(key, kFastCgiKeys));
    }
  }
  for (const [name, value] of Object.entries(envPaths)) {
    if (name in m.env) r.fail(at('env_paths'), `${name} is set in both env and env_paths of this [[fastcgi]] mount`, 'keep one');
    m.env[name] = value;
  }
  const header = ['fastcgi', String(i)];
  if (m.prefix === '') r.fail(header, '[[fastcgi]] mount without a path', 'e.g. path = "/php/"');
  if ((m.socket === null) === (m.command === null)) {
    r.fail(header, `[[fastcgi]] ${m.prefix}/ needs exactly one of socket (an external server) and command (lisod starts it)`,
      'socket = "unix:/run/php/php8.2-fpm.sock", or command = ["cgi-bin/flaskr.fcgi"]');
  }
  if (m.socket !== null && m.processes !== null) {
    r.fail(at('processes'), `processes applies to command mounts; ${m.prefix}/ uses an external socket`, 'size the external server itself, or use max_conns');
  }
  if (m.index !== null && m.root === null) r.fail(at('index'), `index needs root in [[fastcgi]] ${m.prefix}/`, 'e.g. root = "/srv/www"');
  return m;
}

/** Defaults that depend on the machine: processes = CPUs, max_conns = processes (command) or 16. */
export function finishFastCgi(mounts: FastCgiMountDraft[] | undefined, cpus: number): FastCgiMount[] {
  return (mounts ?? []).map((m) => {
    const processes = m.command !== null ? (m.processes ?? Math.max(1, cpus)) : 0;
    return { ...m, processes, maxConns: m.maxConns ?? (m.command !== null ? processes : kFastCgiDefaults.socketMaxConns) };
  });
}

/** Start-up checks on disk: the command is an executable file, root a directory. */
export function checkFastCgiPaths(mounts: FastCgiMount[]): void {
  for (const m of mounts) {
    if (m.command !== null) {
      const file = m.command[0]!;
      try {
        fs.accessSync(file, fs.constants.X_OK);
        if (!fs.statSync(file).isFile()) throw new Error('not a regular file');
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'not executable' : (e as Error).message;
        throw new ConfigError(`fastcgi command '${file}' of ${m.prefix}/: ${why}`, m.origin, `chmod +x ${file}, or fix the path`);
      }
    }
    if (m.root !== null) {
      let ok = false;
      try {
        ok = fs.statSync(m.root).isDirectory();
      } catch {
        // ok stays false
      }
      if (!ok) throw new ConfigError(`fastcgi root '${m.root}' of ${m.prefix}/ is not a directory`, m.origin, 'root is where the scripts live');
    }
  }
}
