// Starts the real lisod binary (dist/main.js) on ephemeral ports with a temp TOML config,
// waits for its "listening on" lines, and guarantees no process outlives the test file.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'smol-toml';
import { forNobody } from './nobody.js';
import { getPki, type KeyPair } from './pki.js';
import { tempDir } from './tmp.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The lisod entry point (LISOD_MAIN overrides it, e.g. to try a helper against a stand-in). */
export const mainJs = process.env.LISOD_MAIN ?? path.join(repoRoot, 'dist', 'main.js');

/** uid/gid of `nobody`, used to run lisod unprivileged when the tests run as root. */
export const kNobody = { uid: 65534, gid: 65534 };
export const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

type TomlValue = string | number | boolean | TomlValue[] | { [k: string]: TomlValue };
export type TomlTable = { [k: string]: TomlValue };

export interface LisodOptions {
  /** www root (default: an empty temp dir with an index.html). */
  www?: string;
  /** CGI script path (default: a tiny /bin/sh script in the temp dir). */
  cgi?: string;
  /** TLS material: a named PKI pair or explicit paths (default 'rsa'). */
  tls?: 'rsa' | 'ecdsa' | 'chain' | KeyPair;
  /** Keys merged over the generated config (tables merge one level deep). */
  config?: TomlTable;
  /** Keys removed from the generated config before writing. */
  omit?: string[];
  /** Raw text written instead of the generated config (for config-error tests). */
  rawConfig?: string;
  /** Edits the generated config text before it is written (e.g. append a bad line). */
  transformConfig?: (text: string) => string;
  /** Run lisod as `nobody` when the test process is root (for permission tests). */
  unprivileged?: boolean;
  /** Extra command-line arguments appended after `--config <file> --foreground`. */
  args?: string[];
  /** Replace the whole argument list (after `node dist/main.js`). {config} → config path. */
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** A command that execs the rest (e.g. ['prlimit', '--nofile=1024:20000', '--']); PID stays lisod's. */
  wrapper?: string[];
  /** Listening lines to wait for (default: 2 per `bind` address). */
  expectListeners?: number;
  /** How long to wait for the listening lines (default 10 s). */
  startTimeoutMs?: number;
}

export interface LisodDirs {
  base: string; // temp dir holding everything below
  www: string;
  logs: string;
  config: string; // the config file path
  cgi: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Lisod {
  proc: ChildProcess;
  pid: number;
  httpPort: number;
  httpsPort: number;
  /** Every "lisod: listening on …" URL in the order printed. */
  urls: string[];
  dirs: LisodDirs;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited (on its own or by stop()). */
  exited: Promise<ExitInfo>;
  /** SIGTERM by PID, SIGKILL after 5 s; resolves with the exit status. */
  stop(): Promise<ExitInfo>;
}

export interface FailedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  dirs: LisodDirs;
  /** True when lisod printed a listening line (it was then killed). */
  listened: boolean;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) {
    if (p.pid !== undefined && p.exitCode === null && p.signalCode === null) {
      try { process.kill(p.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
  }
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => process.exit(130));
}

function merge(base: TomlTable, over: TomlTable): TomlTable {
  const out: TomlTable = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      out[k] = { ...cur, ...v };
    } else {
      out[k] = v;
    }
  }
  return out;
}

async function prepare(opts: LisodOptions): Promise<{ dirs: LisodDirs; argv: string[]; listeners: number }> {
  const base = tempDir('lisod-run-');
  const logs = path.join(base, 'logs');
  fs.mkdirSync(logs, { mode: 0o777 });
  fs.chmodSync(logs, 0o777);
  let www = opts.www;
  if (!www) {
    www = path.join(base, 'www');
    fs.mkdirSync(www, { mode: 0o755 });
    fs.writeFileSync(path.join(www, 'index.html'), '<!doctype html><p>lisod test default</p>\n');
  }
  let cgi = opts.cgi;
  if (!cgi) {
    cgi = path.join(base, 'test.cgi');
    fs.writeFileSync(cgi, '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\ncgi ok\\n"\n', { mode: 0o755 });
    fs.chmodSync(cgi, 0o755);
  }
  const pki = await getPki();
  const tls = opts.tls === undefined || typeof opts.tls === 'string' ? pki[opts.tls ?? 'rsa'] : opts.tls;
  const configPath = path.join(base, 'lisod.conf');

  if (opts.rawConfig !== undefined) {
    fs.writeFileSync(configPath, opts.rawConfig, { mode: 0o644 });
  } else {
    let table: TomlTable = {
      http_port: 0,
      https_port: 0,
      bind: ['127.0.0.1'],
      www,
      cgi: { script: cgi }, // `[cgi] script = …` so tests can merge more [cgi] keys
      tls_key: tls.key,
      tls_cert: tls.cert,
      error_log: path.join(logs, 'error.log'),
      access_log: path.join(logs, 'access.log'),
      lock_file: path.join(logs, 'lisod.lock'),
    };
    table = merge(table, opts.config ?? {});
    for (const k of opts.omit ?? []) delete table[k];
    const text = stringify(table);
    fs.writeFileSync(configPath, opts.transformConfig ? opts.transformConfig(text) : text, { mode: 0o644 });
  }
  const argv = opts.argv
    ? opts.argv.map((a) => (a === '{config}' ? configPath : a))
    : ['--config', configPath, '--foreground', ...(opts.args ?? [])];
  const bind = opts.config?.['bind'];
  const listeners = opts.expectListeners ?? 2 * (Array.isArray(bind) ? bind.length : 1);
  return { dirs: { base, www, logs, config: configPath, cgi }, argv, listeners };
}

function spawnLisod(argv: string[], opts: LisodOptions): ChildProcess {
  const asNobody = opts.unprivileged === true && runningAsRoot;
  const ids = asNobody ? kNobody : {};
  // nobody may not be able to read the checkout (a 0700 directory above it): a staged copy.
  const main = asNobody && process.env.LISOD_MAIN === undefined ? forNobody(mainJs) : mainJs;
  const [cmd, ...pre] = [...(opts.wrapper ?? []), process.execPath];
  const proc = spawn(cmd!, [...pre, main, ...argv], {
    cwd: asNobody ? path.dirname(path.dirname(main)) : repoRoot,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...ids,
  });
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

const kListenRe = /^lisod: listening on (https?):\/\/(\[[^\]]+\]|[^:/\s]+):(\d+)\s*$/;

/** Starts lisod and resolves once every HTTP and HTTPS listener is announced. */
export async function startLisod(opts: LisodOptions = {}): Promise<Lisod> {
  const { dirs, argv, listeners } = await prepare(opts);
  const proc = spawnLisod(argv, opts);
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (s: string) => { err += s; });
  const exited = new Promise<ExitInfo>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const urls: string[] = [];
  let httpPort = 0;
  let httpsPort = 0;
  const timeoutMs = opts.startTimeoutMs ?? 10_000;

  await new Promise<void>((resolve, reject) => {
    let pending = '';
    const timer = setTimeout(() => {
      fail(`lisod did not announce ${listeners} listeners within ${timeoutMs} ms`);
    }, timeoutMs);
    const fail = (why: string): void => {
      clearTimeout(timer);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      reject(new Error(`${why}\nargv: ${argv.join(' ')}\nstdout:\n${out}\nstderr:\n${err}`));
    };
    proc.stdout!.on('data', (s: string) => {
      out += s;
      pending += s;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        const m = kListenRe.exec(line);
        if (!m) continue;
        urls.push(`${m[1]}://${m[2]}:${m[3]}`);
        if (m[1] === 'http' && !httpPort) httpPort = Number(m[3]);
        if (m[1] === 'https' && !httpsPort) httpsPort = Number(m[3]);
        if (httpPort && httpsPort && urls.length >= listeners) {
          clearTimeout(timer);
          resolve();
          return;
        }
      }
    });
    void exited.then(({ code, signal }) => fail(`lisod exited early (code ${code}, signal ${signal})`));
    proc.once('error', (e) => fail(`spawn failed: ${e.message}`));
  });

  let stopping: Promise<ExitInfo> | undefined;
  const stop = (): Promise<ExitInfo> => {
    stopping ??= (async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      process.kill(proc.pid!, 'SIGTERM');
      const killer = setTimeout(() => {
        try { process.kill(proc.pid!, 'SIGKILL'); } catch { /* gone */ }
      }, 5000);
      const info = await exited;
      clearTimeout(killer);
      return info;
    })();
    return stopping;
  };

  return {
    proc, pid: proc.pid!, httpPort, httpsPort, urls, dirs, exited, stop,
    stdout: () => out, stderr: () => err,
  };
}

/**
 * Runs lisod expecting it to fail at start-up. Resolves with the exit status and output.
 * If it announces a listener instead, it is killed and `listened` is true.
 */
export async function runLisodExpectFailure(opts: LisodOptions = {}, timeoutMs = 10_000): Promise<FailedRun> {
  const { dirs, argv } = await prepare(opts);
  const proc = spawnLisod(argv, opts);
  let out = '';
  let err = '';
  let listened = false;
  proc.stdout!.setEncoding('utf8');
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (s: string) => { err += s; });
  proc.stdout!.on('data', (s: string) => {
    out += s;
    if (/lisod: listening on/.test(out) && !listened) {
      listened = true;
      proc.kill('SIGKILL');
    }
  });
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const { code, signal } = await new Promise<ExitInfo>((resolve) => {
    proc.once('close', (c, s) => resolve({ code: c, signal: s }));
  });
  clearTimeout(timer);
  return { code, signal, stdout: out, stderr: err, dirs, listened };
}
