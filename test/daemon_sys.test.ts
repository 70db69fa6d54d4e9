// Daemon building blocks end to end without main.ts: a small stand-in program launches
// itself through daemon.ts, takes the lock, serves TCP, and handles signals via signals.ts;
// control.ts stops, reloads and queries it. Plus signals.ts on its own with fake hooks.
import test, { type ExecutionContext } from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { control, kLsb } from '../src/control.js';
import { DaemonChild, kDaemonMarker } from '../src/daemon.js';
import { dropPrivileges } from '../src/privileges.js';
import { acquireLock, isLockHeld, readLockPid } from '../src/lockfile.js';
import { installSignalHandlers, type SignalControl, type SignalHooks } from '../src/signals.js';
import { forNobody, nobodyIds as maybeNobodyIds, nobodyRoot, nobodySkipReason } from './helpers/nobody.js';
import { tempDir } from './helpers/tmp.js';

// Absolute, so that processes started in a temp directory find the loader.
const kTsx = `--import=${import.meta.resolve('tsx')}`;
// Not from helpers/lisod.ts: it exits on SIGINT/SIGTERM, which the signal tests here send.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = (name: string): string => JSON.stringify(fileURLToPath(new URL(`../src/${name}`, import.meta.url)));

// argv: mode lock state [port-file]. Modes: ok (serve until stopped), fail (report an error
// and exit), crash (die before reporting), hang (never report), fail-linger (report an
// error and stay). Every daemon records facts about itself as JSON lines in `state`.
const kFixture = `
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DaemonChild, launchDaemon, kDaemonMarker } from ${src('daemon.ts')};
import { acquireLock } from ${src('lockfile.ts')};
import { installSignalHandlers } from ${src('signals.ts')};

const [mode, lockArg, stateArg] = process.argv.slice(2);
const daemon = DaemonChild.fromEnvironment();
if (daemon === null) {
  const r = await launchDaemon({ timeoutMs: Number(process.env.FIXTURE_TIMEOUT_MS ?? 10000) });
  if (!r.ok) console.error('lisod: ' + r.message);
  process.exit(r.ok ? 0 : 1);
}
const lockPath = path.resolve(lockArg);
const statePath = path.resolve(stateArg);
const record = (o) => fs.appendFileSync(statePath, JSON.stringify(o) + '\\n');
process.env.FIXTURE_READY_FD = process.env[kDaemonMarker];
daemon.detach();
record({ pid: process.pid, cwd: process.cwd(), umask: process.umask(), marker: process.env[kDaemonMarker] ?? null });

if (mode === 'fail') { daemon.fail('cannot bind 127.0.0.1:80\\nEADDRINUSE'); process.exit(1); }
if (mode === 'crash') throw new Error('boom');
if (mode === 'hang') setInterval(() => {}, 1000);
if (mode === 'fail-linger') { daemon.fail('gave up'); setInterval(() => {}, 1000); }
if (mode === 'ok') {
  let lock;
  try {
    lock = acquireLock(lockPath);
  } catch (e) {
    daemon.fail(e.message);
    process.exit(1);
  }
  // In flight: a connection that has sent bytes not yet answered. "\\n" ends a request;
  // the answer comes 300 ms later and the connection closes.
  let inFlight = 0;
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    let busy = false;
    s.on('data', (d) => {
      if (!busy) { busy = true; inFlight++; }
      if (d.includes(10)) setTimeout(() => { s.end('bye\\n'); }, 300);
    });
    s.on('close', () => { sockets.delete(s); if (busy) inFlight--; });
  });
  server.listen(0, '127.0.0.1', () => {
    record({ port: server.address().port });
    installSignalHandlers({
      graceMs: Number(process.env.FIXTURE_GRACE_MS ?? 5000),
      stopAccepting: () => server.close(),
      inFlight: () => inFlight,
      close: () => { for (const s of sockets) s.destroy(); record({ closedInFlight: inFlight }); lock.release(); },
      reload: async () => record({ reloaded: true }),
      log: (level, message) => record({ level, message }),
    });
    record({ readyPipe: fs.readlinkSync('/proc/self/fd/' + process.env.FIXTURE_READY_FD) });
    daemon.ready();
  });
}
`;

interface Run {
  code: number | null;
  stderr: string;
}

function launch(dir: string, mode: string, env: Record<string, string> = {}): Promise<Run> {
  const fixture = path.join(dir, 'fixture.mts');
  if (!fs.existsSync(fixture)) fs.writeFileSync(fixture, kFixture);
  fs.mkdirSync(path.join(dir, 'run'), { recursive: true });
  // Relative paths: the daemon must resolve them against the launcher's directory.
  const child = spawn(process.execPath, [kTsx, fixture, mode, 'run/fixture.lock', 'state.jsonl'], {
    cwd: dir,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

function states(dir: string): Array<Record<string, unknown>> {
  const p = path.join(dir, 'state.jsonl');
  if (!fs.existsSync(p)) return [];
  return fs.readFileSync(p, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, parent not yet reaped it) counts as gone.
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (!alive(pid)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return !alive(pid);
}

function killLater(pids: number[]): () => void {
  return () => {
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  };
}

function statField(pid: number, index: number): number {
  // /proc/<pid>/stat: "pid (comm) state ppid pgrp session tty_nr …"; comm may hold spaces.
  const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[index - 3]);
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

test.serial('launcher exits 0 once the detached daemon holds the lock and serves; control drives it', async (t) => {
  const dir = tempDir('lisod-daemon-');
  const pids: number[] = [];
  t.teardown(killLater(pids));
  const lockPath = path.join(dir, 'run', 'fixture.lock');

  t.is((await control('status', lockPath)).code, kLsb.notRunning);

  const run = await launch(dir, 'ok');
  t.is(run.code, 0, run.stderr);
  t.is(run.stderr, '');
  const pid = readLockPid(lockPath);
  t.truthy(pid);
  pids.push(pid!);
  t.true(isLockHeld(lockPath));
  t.true(alive(pid!));

  const [facts, { port }] = states(dir) as [{ pid: number; cwd: string; umask: number; marker: string | null }, { port: number }];
  t.is(facts.pid, pid!);
  t.is(facts.cwd, '/');
  t.is(facts.umask, 0o027);
  t.is(facts.marker, null, 'the marker is not passed on to CGI scripts');
  t.is(statField(pid!, 6), pid!, 'session leader of its own session (setsid)');
  t.is(statField(pid!, 7), 0, 'no controlling terminal');
  for (const fd of [0, 1, 2]) t.is(fs.readlinkSync(`/proc/${pid}/fd/${fd}`), '/dev/null', `fd ${fd}`);
  const readyPipe = (states(dir).find((s) => 'readyPipe' in s) as { readyPipe: string }).readyPipe;
  t.regex(readyPipe, /^(socket|pipe):\[\d+\]$/);
  const links = fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '';
    }
  });
  t.false(links.includes(readyPipe), 'the readiness pipe is closed');

  // A second start with the same lock is refused with the reason and leaves the first alone.
  const second = await launch(dir, 'ok');
  t.is(second.code, 1);
  t.regex(second.stderr, new RegExp(`^lisod: lock file .*fixture\\.lock is held by another process \\(pid ${pid}\\)`));
  t.is(second.stderr.trim().split('\n').length, 1, second.stderr);
  t.true(alive(pid!));
  t.is(readLockPid(lockPath), pid);
  const secondPid = (states(dir).filter((s) => 'pid' in s).at(-1) as { pid: number }).pid;
  t.not(secondPid, pid);
  t.true(await waitGone(secondPid), 'the refused daemon is gone');

  const status = await control('status', lockPath);
  t.deepEqual(status, { code: kLsb.ok, message: `lisod is running (pid ${pid})`, error: false });

  const reload = await control('reload', lockPath);
  t.is(reload.code, kLsb.ok, reload.message);
  for (let i = 0; i < 100 && !states(dir).some((s) => s.reloaded === true); i++) await new Promise((r) => setTimeout(r, 20));
  t.true(states(dir).some((s) => s.reloaded === true), 'SIGHUP ran the reload hook');

  // SIGTERM with a request in flight: the answer still arrives, then the daemon exits.
  const socket = await connect(port);
  socket.write('slow request');
  let answer = '';
  socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
  const closed = new Promise<void>((r) => socket.on('close', () => r()));
  const stopping = control('stop', lockPath);
  await new Promise((r) => setTimeout(r, 200));
  t.true(alive(pid!), 'still waiting for the request in flight');
  socket.write('\n');
  const stopped = await stopping;
  await closed;
  t.is(answer, 'bye\n');
  t.deepEqual(stopped, { code: kLsb.ok, message: `lisod (pid ${pid}) stopped`, error: false });
  t.true(await waitGone(pid!));
  t.is(fs.readFileSync(lockPath, 'utf8'), '', 'the PID is removed from the lock file');
  t.true(states(dir).some((s) => s.closedInFlight === 0));

  t.is((await control('stop', lockPath)).code, kLsb.ok);
  t.is((await control('reload', lockPath)).code, kLsb.reloadNotRunning);
  t.is((await control('status', lockPath)).code, kLsb.notRunning);
});

test.serial('after kill -9 the lock keeps a stale PID, status says so, and a new start works', async (t) => {
  const dir = tempDir('lisod-daemon-');
  const pids: number[] = [];
  t.teardown(killLater(pids));
  const lockPath = path.join(dir, 'run', 'fixture.lock');

  t.is((await launch(dir, 'ok')).code, 0);
  const first = readLockPid(lockPath)!;
  pids.push(first);
  process.kill(first, 'SIGKILL');
  t.true(await waitGone(first));
  // The kernel drops the flock when the last thread has closed its files, which can be a
  // moment after the main thread shows as a zombie.
  for (let i = 0; i < 100 && isLockHeld(lockPath); i++) await new Promise((r) => setTimeout(r, 20));
  t.false(isLockHeld(lockPath));

  const status = await control('status', lockPath);
  t.is(status.code, kLsb.notRunning);
  t.true(status.message.includes(`stale PID ${first}`), status.message);

  const again = await launch(dir, 'ok');
  t.is(again.code, 0, again.stderr);
  const second = readLockPid(lockPath)!;
  pids.push(second);
  t.not(second, first);
  t.is((await control('stop', lockPath)).code, kLsb.ok);
  t.true(await waitGone(second));
});

// Daemons that never become ready: the launcher exits 1 with one line, and no daemon is left.
const kFailures: Array<[title: string, mode: string, stderr: string]> = [
  ['a daemon that reports an error: one-line message, exit 1, no process left', 'fail', 'lisod: cannot bind 127.0.0.1:80 EADDRINUSE\n'],
  ['a daemon that reports an error but lingers is killed by the launcher', 'fail-linger', 'lisod: gave up\n'],
  ['a daemon that dies before reporting: exit 1 with its status', 'crash', 'lisod: daemon exited with status 1 before it was ready\n'],
];

for (const [title, mode, stderr] of kFailures) {
  test.serial(title, async (t) => {
    const dir = tempDir('lisod-daemon-');
    const run = await launch(dir, mode);
    t.is(run.code, 1);
    t.is(run.stderr, stderr);
    const { pid } = states(dir)[0] as { pid: number };
    t.teardown(killLater([pid]));
    t.true(await waitGone(pid, 1000));
  });
}

test.serial('a daemon that never reports is killed at the timeout', async (t) => {
  const dir = tempDir('lisod-daemon-');
  const run = await launch(dir, 'hang', { FIXTURE_TIMEOUT_MS: '1500' });
  t.is(run.code, 1);
  const m = /^lisod: daemon \(pid (\d+)\) did not become ready within 1\.5 s; killed it\n$/.exec(run.stderr);
  t.truthy(m, run.stderr);
  const pid = Number(m![1]);
  t.teardown(killLater([pid]));
  t.true(await waitGone(pid, 1000));
});

test('DaemonChild only exists with the marker', (t) => {
  t.is(DaemonChild.fromEnvironment({}), null);
  t.is(DaemonChild.fromEnvironment({ [kDaemonMarker]: 'x' }), null);
  t.truthy(DaemonChild.fromEnvironment({ [kDaemonMarker]: '3' }));
});

// signals.ts with fake hooks; process.emit delivers to the listeners without a real signal.
interface Trace {
  events: string[];
  exits: number[];
  control: SignalControl;
  setInFlight(n: number): void;
}

/** Installs handlers whose hooks record what they are asked to do; disposed when `t` ends. */
function trace(t: ExecutionContext, overrides: Partial<SignalHooks> = {}, initialInFlight = 0): Trace {
  const events: string[] = [];
  const exits: number[] = [];
  let inFlight = initialInFlight;
  const hooks: SignalHooks = {
    graceMs: 1000,
    stopAccepting: () => {
      events.push('stopAccepting');
    },
    inFlight: () => inFlight,
    close: () => {
      events.push(`close(${inFlight})`);
    },
    reload: async () => {
      events.push('reload');
    },
    log: (level, message) => events.push(`${level}: ${message}`),
    exit: (code) => exits.push(code),
    ...overrides,
  };
  const control = installSignalHandlers(hooks);
  t.teardown(() => control.dispose());
  return { events, exits, control, setInFlight: (n) => (inFlight = n) };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test.serial('SIGTERM: stop accepting, wait for requests in flight, close, exit 0', async (t) => {
  const tr = trace(t, {}, 2);
  process.emit('SIGTERM', 'SIGTERM');
  await tick(120);
  t.deepEqual(tr.events, ['stopAccepting', 'info: received SIGTERM: stopping (grace period 1 s, 2 in flight)']);
  t.deepEqual(tr.exits, []);
  process.emit('SIGHUP', 'SIGHUP'); // ignored while stopping
  tr.setInFlight(0);
  await tick(120);
  t.deepEqual(tr.events.slice(2), ['close(0)']);
  t.deepEqual(tr.exits, [0]);
});

test.serial('the grace period ends the wait; a second signal ends it at once', async (t) => {
  const tr = trace(t, { graceMs: 200 }, 1);
  process.emit('SIGINT', 'SIGINT');
  await tick(400);
  t.deepEqual(tr.events.slice(0, 1).concat(tr.events.slice(2)), ['stopAccepting', 'warn: closing 1 unfinished request(s)', 'close(1)']);
  t.deepEqual(tr.exits, [0]);
  tr.control.dispose();

  const tr2 = trace(t, { graceMs: 60_000 }, 3);
  process.emit('SIGTERM', 'SIGTERM');
  await tick(50);
  process.emit('SIGTERM', 'SIGTERM');
  await tick(50);
  t.deepEqual(tr2.events, [
    'stopAccepting',
    'info: received SIGTERM: stopping (grace period 60 s, 3 in flight)',
    'info: received SIGTERM again: not waiting for in-flight requests',
    'warn: closing 3 unfinished request(s)',
    'close(3)',
  ]);
  t.deepEqual(tr2.exits, [0]);
});

test.serial('the in-flight count is logged once stopAccepting has settled; a second signal meanwhile is not lost', async (t) => {
  let settle: () => void = () => {};
  const tr = trace(t, {
    graceMs: 60_000,
    stopAccepting: () => new Promise<void>((r) => {
      tr.events.push('stopAccepting');
      settle = r;
    }),
  }, 5);
  process.emit('SIGTERM', 'SIGTERM');
  await tick(20);
  t.deepEqual(tr.events, ['stopAccepting'], 'nothing logged while the count may still be stale');
  tr.setInFlight(2); // idle keep-alives closed, worker loops counted
  process.emit('SIGINT', 'SIGINT');
  settle();
  await tick(20);
  t.deepEqual(tr.events, [
    'stopAccepting',
    'info: received SIGINT again: not waiting for in-flight requests',
    'info: received SIGTERM: stopping (grace period 60 s, 2 in flight)',
    'warn: closing 2 unfinished request(s)',
    'close(2)',
  ]);
  t.deepEqual(tr.exits, [0]);
});

test.serial('SIGHUP reloads one at a time, coalesces bursts, and survives a failing reload', async (t) => {
  let release: () => void = () => {};
  let calls = 0;
  const tr = trace(t, {
    reload: () => {
      calls++;
      if (calls === 1) return new Promise<void>((r) => (release = r));
      if (calls === 2) return Promise.reject(new Error('tls_cert: no such file'));
      return Promise.resolve();
    },
  });
  process.emit('SIGHUP', 'SIGHUP');
  await tick(10);
  process.emit('SIGHUP', 'SIGHUP');
  process.emit('SIGHUP', 'SIGHUP');
  await tick(10);
  t.is(calls, 1, 'no second reload while the first runs');
  release();
  await tick(20);
  t.is(calls, 2, 'the burst became exactly one more reload');
  t.true(tr.events.includes('error: reload failed, keeping the running configuration: tls_cert: no such file'));
  process.emit('SIGHUP', 'SIGHUP');
  await tick(10);
  t.is(calls, 3, 'reloads still work after a failure');
  t.deepEqual(tr.exits, []);
});

test.serial('an error while closing exits 1', async (t) => {
  const tr = trace(t, {
    close: () => {
      throw new Error('flush failed');
    },
  });
  await tr.control.stop('fatal error');
  t.true(tr.events.includes('error: error while stopping: flush failed'));
  t.deepEqual(tr.exits, [1]);
});

// Root with a user nobody to become; the reason goes into the skipped tests' titles.
const skipWhy = nobodySkipReason();
const isRoot = skipWhy === null;

(isRoot ? test : test.skip)(`root drops to nobody: files handed over, groups replaced, no way back${isRoot ? '' : ` (skipped: ${skipWhy})`}`, async (t) => {
  const dir = tempDir('lisod-daemon-');
  const log = path.join(dir, 'error.log');
  fs.writeFileSync(log, '');
  const code = `
    const { dropPrivileges } = await import(${src('privileges.ts')});
    const r = dropPrivileges('nobody', [${JSON.stringify(log)}, ${JSON.stringify(path.join(dir, 'absent.log'))}]);
    let regained = true;
    try { process.setuid(0); } catch { regained = false; }
    console.log(JSON.stringify({ r, uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(), groups: process.getgroups(), regained }));`;
  const { status, out, err } = await runModule(code);
  t.is(status, 0, err);
  const facts = JSON.parse(out) as { r: { dropped: boolean; uid: number; gid: number }; uid: number; euid: number; gid: number; groups: number[]; regained: boolean };
  const nobody = nobodyIds();
  t.deepEqual(facts.r, { dropped: true, ...nobody });
  t.is(facts.uid, nobody.uid);
  t.is(facts.euid, nobody.uid);
  t.is(facts.gid, nobody.gid);
  t.false(facts.groups.includes(0), `groups ${facts.groups.join(',')}`);
  t.false(facts.regained);
  const st = fs.statSync(log);
  t.deepEqual([st.uid, st.gid], [nobody.uid, nobody.gid]);
});

/** uid and gid of `nobody` (this file runs its root-only parts only where the user exists). */
function nobodyIds(): { uid: number; gid: number } {
  const ids = maybeNobodyIds();
  if (ids === null) throw new Error('no user nobody');
  return ids;
}

/** Runs an ES module body in a fresh Node (with tsx); resolves with its exit status and output.
 *  As another user (uid), the checkout's files are used from a copy that user can read. */
async function runModule(code: string, opts: { cwd?: string; uid?: number; gid?: number } = {}): Promise<{ status: number | null; out: string; err: string }> {
  const other = opts.uid !== undefined && opts.uid !== process.getuid?.();
  const tsx = other ? `--import=${pathToFileURL(forNobody(fileURLToPath(import.meta.resolve('tsx'))))}` : kTsx;
  const body = other ? code.split(`"${repoRoot}/`).join(`"${nobodyRoot()}/`) : code;
  const child = spawn(process.execPath, [tsx, '--input-type=module', '-e', body], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const status = await new Promise<number | null>((r) => child.on('close', r));
  return { status, out, err };
}

test('not root: the user setting is reported as ignored and nothing changes', async (t) => {
  // Run unprivileged: as nobody when this test run is root.
  const code = `
    const { dropPrivileges } = await import(${src('privileges.ts')});
    const { native } = await import(${src('native.ts')});
    const r = dropPrivileges('daemon');
    let e = null;
    try { native.dropPrivileges('daemon'); } catch (x) { e = { code: x.code, message: x.message }; }
    console.log(JSON.stringify({ r, uid: process.getuid(), e }));`;
  const { status, out, err } = await runModule(code, { cwd: os.tmpdir(), ...(isRoot ? nobodyIds() : {}) });
  t.is(status, 0, err);
  const facts = JSON.parse(out) as { r: unknown; uid: number; e: { code: string; message: string } | null };
  t.deepEqual(facts.r, { dropped: false, reason: 'user = "daemon" ignored: lisod is not running as root' });
  t.is(facts.uid, isRoot ? nobodyIds().uid : process.getuid!());
  t.deepEqual(facts.e, { code: 'EPERM', message: 'cannot switch to user daemon: lisod is not running as root' });
});

(isRoot ? test.serial : test.serial.skip)(`control as another user: unreadable lock file → 4, PID it may not signal → 4${isRoot ? '' : ` (skipped: ${skipWhy})`}`, async (t) => {
  const dir = tempDir('lisod-daemon-');
  fs.chmodSync(dir, 0o755);
  const lockPath = path.join(dir, 'held.lock');
  // Held by this (root) test process, which stands in for the daemon: nobody may not signal it.
  const lock = acquireLock(lockPath);
  t.teardown(() => lock.release());
  const asNobody = async (action: string): Promise<{ code: number; message: string; error: boolean }> => {
    const code = `
      const { control } = await import(${src('control.ts')});
      console.log(JSON.stringify(await control(${JSON.stringify(action)}, ${JSON.stringify(lockPath)})));`;
    const r = await runModule(code, { cwd: os.tmpdir(), ...nobodyIds() });
    if (r.status !== 0) throw new Error(`control as nobody exited ${r.status}: ${r.err}`);
    return JSON.parse(r.out) as { code: number; message: string; error: boolean };
  };

  const unreadable = await asNobody('status');
  t.is(unreadable.code, kLsb.unknown);
  t.true(unreadable.error);
  t.true(unreadable.message.includes(lockPath) && /Permission denied/.test(unreadable.message), unreadable.message);

  fs.chmodSync(lockPath, 0o644);
  t.deepEqual(await asNobody('status'), { code: kLsb.ok, message: `lisod is running (pid ${process.pid})`, error: false });
  const stop = await asNobody('stop');
  t.is(stop.code, kLsb.unknown);
  t.is(stop.message, `lisod: not permitted to signal lisod (pid ${process.pid}); run as its user or root`);
});

test.serial('control: a held lock naming a vanished PID is a failure, not a signal to someone else', async (t) => {
  const lockPath = path.join(tempDir('lisod-daemon-'), 'held.lock');
  // A PID that is not in use: the first free one above a reaped child's.
  const child = spawn('true');
  await new Promise((r) => child.on('close', r));
  let ghost = child.pid!;
  while (fs.existsSync(`/proc/${ghost}`)) ghost++;
  const lock = acquireLock(lockPath, ghost);
  t.teardown(() => lock.release());
  const r = await control('reload', lockPath);
  t.is(r.code, kLsb.failed);
  t.is(r.message, `lisod: lisod (pid ${ghost}) is gone but its lock is held; check lock file users`);
});
