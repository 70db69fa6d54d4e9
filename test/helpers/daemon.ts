// Runs the real lisod (dist/main.js) as a daemon from a temp working directory with
// relative Liso-form paths, and finds, watches and stops the daemons it leaves behind by PID.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { mainJs } from './lisod.js';
import { getPki, type KeyPair } from './pki.js';
import { tempDir } from './tmp.js';

export { mainJs };

/** A working directory laid out for the Liso form: every path given relative to it. */
export interface LisoSite {
  dir: string; // the cwd lisod is started from
  /** Relative names: log, lock, www, cgi, key, cert (as typed on the command line). */
  rel: { log: string; lock: string; www: string; cgi: string; key: string; cert: string };
  /** The same, absolute. */
  abs: { log: string; lock: string; www: string; cgi: string; key: string; cert: string };
  big: { path: string; sha256: string; size: number }; // "/big.bin"
  index: Buffer; // body of "/"
}

/**
 * The CGI script of every site: /cgi/slow prints a head and a first line, sleeps
 * SLOW_SECONDS (default 2) and prints the last line; anything else answers "cgi ok".
 */
const kCgi = `#!/bin/sh
case "$PATH_INFO" in
  /slow)
    printf 'Content-Type: text/plain\\r\\n\\r\\nbegin\\n'
    sleep "\${SLOW_SECONDS:-2}"
    printf 'end\\n' ;;
  *)
    printf 'Content-Type: text/plain\\r\\n\\r\\ncgi ok\\n' ;;
esac
`;

export interface SiteOptions {
  tls?: 'rsa' | 'ecdsa' | KeyPair; // copied to key.pem / cert.pem (default rsa)
  bigBytes?: number; // size of /big.bin (default 64 KiB)
}

/** Creates a site directory: www/ (index.html, big.bin), cgi-bin/site.cgi, key.pem, cert.pem. */
export async function makeSite(opts: SiteOptions = {}): Promise<LisoSite> {
  const dir = tempDir('lisod-daemon-');
  const pki = await getPki();
  const pair = opts.tls === undefined || typeof opts.tls === 'string' ? pki[opts.tls ?? 'rsa'] : opts.tls;
  const tag = crypto.randomBytes(4).toString('hex'); // unique names: find stray daemons by argv
  const rel = {
    log: 'logs/lisod.log',
    lock: `run/lisod-${tag}.lock`,
    www: 'www',
    cgi: 'cgi-bin/site.cgi',
    key: 'key.pem',
    cert: 'cert.pem',
  };
  for (const d of ['logs', 'run', 'www', 'cgi-bin']) fs.mkdirSync(path.join(dir, d), { mode: 0o777 });
  fs.chmodSync(path.join(dir, 'logs'), 0o777);
  const index = Buffer.from(`<!doctype html><p>lisod daemon test ${tag}</p>\n`);
  fs.writeFileSync(path.join(dir, 'www', 'index.html'), index, { mode: 0o644 });
  const size = opts.bigBytes ?? 64 * 1024;
  const bigPath = path.join(dir, 'www', 'big.bin');
  const big = crypto.randomBytes(size);
  fs.writeFileSync(bigPath, big, { mode: 0o644 });
  fs.writeFileSync(path.join(dir, rel.cgi), kCgi, { mode: 0o755 });
  fs.chmodSync(path.join(dir, rel.cgi), 0o755);
  fs.copyFileSync(pair.key, path.join(dir, rel.key));
  fs.copyFileSync(pair.cert, path.join(dir, rel.cert));
  const abs = Object.fromEntries(Object.entries(rel).map(([k, v]) => [k, path.join(dir, v)])) as LisoSite['rel'];
  return {
    dir, rel, abs, index,
    big: { path: '/big.bin', size, sha256: crypto.createHash('sha256').update(big).digest('hex') },
  };
}

/** The 8 Liso arguments for `site` (ports default to 0: any free port). */
export function lisoArgs(site: LisoSite, httpPort = '0', httpsPort = '0'): string[] {
  const r = site.rel;
  return [httpPort, httpsPort, r.log, r.lock, r.www, r.cgi, r.key, r.cert];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number; // wall time until the process exited
}

/** Runs `node dist/main.js …args` in `cwd` to completion (killed after timeoutMs). */
export function runLisod(cwd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  const started = Date.now();
  const proc = spawn(process.execPath, [mainJs, ...args], {
    cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s; });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s; });
  const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
  return new Promise((resolve) => {
    // 'close': stdout and stderr are complete. The daemon holds neither (/dev/null).
    proc.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
    });
  });
}

// ---------------------------------------------------------------------------------------
// Daemons by PID.

const daemons = new Set<number>();

/** Whether /proc/<pid> is a live process running lisod's main.js (zombies count as gone). */
export function isLisod(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(mainJs);
  } catch {
    return false;
  }
}

/** Remembers a daemon so that it is SIGKILLed if the test process exits with it alive. */
export function track(pid: number): number {
  daemons.add(pid);
  return pid;
}

process.on('exit', () => {
  for (const pid of daemons) {
    if (isLisod(pid)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
  }
});

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 25 ms until it returns a truthy value or timeoutMs passes. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs: number, what: string): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() >= deadline) throw new Error(`timeout (${timeoutMs} ms) waiting for ${what}`);
    await sleep(25);
  }
}

/** Resolves true once `pid` is no longer a live lisod (false after timeoutMs). */
export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  try {
    await waitFor(() => !isLisod(pid), timeoutMs, `pid ${pid} to exit`);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after 5 s; for teardown. Never throws. */
export async function stopDaemon(pid: number): Promise<void> {
  if (!isLisod(pid)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  if (await waitGone(pid, 5000)) return;
  try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  await waitGone(pid, 2000);
}

/** The first line of the lock file as a PID (null when empty / missing). */
export function lockPid(lockPath: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(lockPath, 'utf8');
  } catch {
    return null;
  }
  const first = text.split('\n', 1)[0]!.trim();
  return /^[1-9][0-9]*$/.test(first) ? Number(first) : null;
}

/** PIDs of live processes whose command line contains `needle` (e.g. a unique lock name). */
export function processesWithArg(needle: string): number[] {
  const out: number[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(needle) && isLisod(Number(name))) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

const kListening = /^lisod: listening on (https?):\/\/127\.0\.0\.1:(\d+)$/gm;

/** Ports from the launcher's "lisod: listening on …" lines. */
export function portsFrom(stdout: string): { http: number; https: number } {
  let http = 0;
  let https = 0;
  for (const m of stdout.matchAll(kListening)) {
    if (m[1] === 'http') http ||= Number(m[2]);
    else https ||= Number(m[2]);
  }
  if (!http || !https) throw new Error(`no listening lines in launcher output: ${JSON.stringify(stdout)}`);
  return { http, https };
}

export interface Daemon {
  pid: number;
  http: number;
  https: number;
  launch: RunResult;
}

/** Starts the Liso form from site.dir with --bind 127.0.0.1; throws unless the launcher
 *  exits 0 with a live daemon's PID in the lock file. */
export async function startDaemon(site: LisoSite, extra: string[] = [], env?: NodeJS.ProcessEnv): Promise<Daemon> {
  const launch = await runLisod(site.dir, [...lisoArgs(site), '--bind', '127.0.0.1', ...extra], { env });
  const pid = lockPid(site.abs.lock);
  if (pid !== null) track(pid);
  if (launch.code !== 0 || pid === null || !isLisod(pid)) {
    throw new Error(`launcher exit ${launch.code} (signal ${launch.signal}), lock pid ${pid}\nstdout: ${launch.stdout}\nstderr: ${launch.stderr}`);
  }
  return { pid, ...portsFrom(launch.stdout), launch };
}

/** Reads a file as text ('' when missing). */
export function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

// ---------------------------------------------------------------------------------------
// A systemd stand-in: a unix datagram socket at $NOTIFY_SOCKET (Node has none: a tiny
// /usr/bin/python3 listener prints each datagram as a JSON line).

const kNotifyListener = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print(json.dumps({'bound': True}), flush=True)
while True:
    print(json.dumps({'msg': s.recv(65536).decode()}), flush=True)
`;

export interface NotifyListener {
  socket: string; // the value for NOTIFY_SOCKET
  /** The next datagram's text (rejects after timeoutMs). */
  next(timeoutMs?: number): Promise<string>;
  stop(): void;
}

export async function notifyListener(): Promise<NotifyListener> {
  const socket = path.join(tempDir('lisod-notify-'), 'notify.sock');
  const child = spawn('/usr/bin/python3', ['-c', kNotifyListener, socket], { stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => child.kill('SIGKILL'));
  const queue: string[] = [];
  const waiters: Array<() => void> = [];
  let pending = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    pending += s;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = JSON.parse(pending.slice(0, nl)) as { bound?: boolean; msg?: string };
      pending = pending.slice(nl + 1);
      queue.push(line.bound ? '' : line.msg!);
      for (const w of waiters.splice(0)) w();
    }
  });
  const next = async (timeoutMs = 5000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (queue.length === 0) {
      if (Date.now() >= deadline) throw new Error(`no datagram on ${socket} within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, deadline - Date.now());
        waiters.push(() => { clearTimeout(t); r(); });
      });
    }
    return queue.shift()!;
  };
  if ((await next(10_000)) !== '') throw new Error('notify listener did not bind');
  return { socket, next, stop: () => child.kill('SIGKILL') };
}
