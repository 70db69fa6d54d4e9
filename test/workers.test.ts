// workers = N through the real dist/main.js: every event loop serves HTTP and HTTPS, load spreads
// over the loops (per-thread CPU time from /proc), SIGHUP and SIGTERM reach every loop, one PID
// in daemon mode; and the main thread's WorkerLoops against stand-in thread modules.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { finishConfig, parseConfigText, type LisodConfig } from '../src/config.js';
import type { Logs } from '../src/log.js';
import { WorkerLoops, boundListeners, loopShare, splitLimit } from '../src/workers.js';
import { Conn, exchange1, get, sha256, sleep } from './helpers/client.js';
import { isLisod, lockPid, makeSite, portsFrom, processesWithArg, readText, runLisod, track, waitFor, waitGone } from './helpers/daemon.js';
import { runLisodExpectFailure, runningAsRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { getPki } from './helpers/pki.js';
import { eventually } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';

const kIndex = '<!doctype html><p>lisod test default</p>\n'; // startLisod's default index.html

/** CPU time (user + system, clock ticks) of every thread of `pid`, by thread id. */
function threadCpu(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
      out.set(Number(tid), Number(f[11]) + Number(f[12])); // fields 14 utime, 15 stime
    } catch {
      // thread ended meanwhile
    }
  }
  return out;
}

/** Runs `load` and returns each thread's CPU ticks during it, busiest first. */
async function cpuDuring(pid: number, load: () => Promise<void>): Promise<Array<{ tid: number; ticks: number }>> {
  const before = threadCpu(pid);
  await load();
  const after = threadCpu(pid);
  return [...after].map(([tid, t]) => ({ tid, ticks: t - (before.get(tid) ?? 0) })).sort((a, b) => b.ticks - a.ticks);
}

/** `count` HTTPS requests, each on a new connection with a full handshake (the server's RSA
 *  signature is the expensive part, so the server, not this client, does most of the work). */
async function handshakes(t: ExecutionContext, port: number, count: number, concurrency: number): Promise<void> {
  let next = 0;
  let ok = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      const c = await Conn.open({ port, tls: true });
      try {
        await c.write(get('/', 'Connection: close\r\n'));
        const r = await c.readResponse();
        if (r.status === 200 && r.body.toString() === kIndex) ok++;
      } finally {
        c.destroy();
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  t.is(ok, count, 'every request answered 200 with the index');
}

/** The certificate a new HTTPS connection is given: 'rsa' or 'ecdsa'. */
async function certKind(port: number): Promise<'rsa' | 'ecdsa'> {
  const c = await Conn.open({ port, tls: true });
  try {
    const cert = c.tls.getPeerCertificate();
    if (cert.asn1Curve === 'prime256v1') return 'ecdsa';
    if (typeof cert.modulus === 'string' && cert.modulus.length > 0) return 'rsa';
    throw new Error(`unexpected certificate ${JSON.stringify(cert.subject)}`);
  } finally {
    c.destroy();
  }
}

function errorLog(lisod: Lisod): string {
  return readText(path.join(lisod.dirs.logs, 'error.log'));
}

// ---------------------------------------------------------------------------------------
// End to end.

test('workers = 2: both protocols served; full TLS handshakes keep two threads busy', async (t) => {
  const lisod = await startLisod({ config: { workers: 2 } });
  t.teardown(() => lisod.stop());
  // The error log's writer thread may not have written the line yet when lisod is ready.
  const started = new RegExp(`started \\(pid ${lisod.pid}, 2 event loops\\)`);
  await eventually(() => started.test(errorLog(lisod)));
  t.regex(errorLog(lisod), started);

  // Many connections each way: they land on both loops, and every one is answered.
  for (const tls of [false, true]) {
    const port = tls ? lisod.httpsPort : lisod.httpPort;
    const rs = await Promise.all(Array.from({ length: 20 }, () => exchange1(get('/', 'Connection: close\r\n'), { port, tls })));
    t.deepEqual(rs.map((r) => r.status), Array(20).fill(200));
    t.true(rs.every((r) => sha256(r.body) === sha256(kIndex)));
  }

  const threads = await cpuDuring(lisod.pid, () => handshakes(t, lisod.httpsPort, 300, 16));
  const main = threads.find((x) => x.tid === lisod.pid)!.ticks;
  const other = threads.filter((x) => x.tid !== lisod.pid)[0]!;
  t.log(`CPU ticks during 300 handshakes: main thread ${main}, busiest other thread ${other.ticks}; all: ${JSON.stringify(threads.slice(0, 4))}`);
  t.true(main >= 5, `the main loop served part of the load (${main} ticks)`);
  t.true(other.ticks >= main / 3, `a second thread (a worker loop) did a comparable share: ${other.ticks} vs ${main} ticks`);
  t.true(other.ticks <= main * 3, `and the main loop did a comparable share too: ${main} vs ${other.ticks} ticks`);
});

test('control for the test above: with workers = 1 the same load keeps one thread busy', async (t) => {
  const lisod = await startLisod({ config: { workers: 1 } });
  t.teardown(() => lisod.stop());
  t.notRegex(errorLog(lisod), /event loops/);
  const threads = await cpuDuring(lisod.pid, () => handshakes(t, lisod.httpsPort, 300, 16));
  const main = threads.find((x) => x.tid === lisod.pid)!.ticks;
  const other = threads.filter((x) => x.tid !== lisod.pid)[0]!;
  t.log(`CPU ticks: main thread ${main}, busiest other thread ${other.ticks}`);
  t.true(main >= 10, `the main loop did the work (${main} ticks)`);
  t.true(other.ticks < main / 3, `no other thread did a comparable share (${other.ticks} vs ${main} ticks)`);
});

test('workers = "auto" starts one event loop per CPU', async (t) => {
  const lisod = await startLisod({ config: { workers: 'auto' } });
  t.teardown(() => lisod.stop());
  const cpus = os.availableParallelism();
  const started = new RegExp(`started \\(pid ${lisod.pid}, ${cpus} event loops\\)`);
  if (cpus > 1) await eventually(() => started.test(errorLog(lisod))); // written by the log's thread
  const log = errorLog(lisod);
  if (cpus > 1) t.regex(log, started);
  else t.notRegex(log, /event loops/);
  t.is((await exchange1(get('/'), { port: lisod.httpPort })).status, 200);
});

test('SIGHUP: every event loop gives new connections the new certificate', async (t) => {
  const pki = await getPki();
  const lisod = await startLisod({ tls: 'rsa', config: { workers: 2 } });
  t.teardown(() => lisod.stop());
  const before = await Promise.all(Array.from({ length: 10 }, () => certKind(lisod.httpsPort)));
  t.deepEqual(before, Array(10).fill('rsa'));

  const text = fs.readFileSync(lisod.dirs.config, 'utf8');
  const swapped = text.replace(pki.rsa.key, pki.ecdsa.key).replace(pki.rsa.cert, pki.ecdsa.cert);
  t.not(swapped, text);
  fs.writeFileSync(lisod.dirs.config, swapped);
  process.kill(lisod.pid, 'SIGHUP');
  await waitFor(() => errorLog(lisod).includes(`reloaded (certificate ${pki.ecdsa.cert})`), 10_000, 'the reload');
  t.notRegex(errorLog(lisod), /kept its old certificate|reload failed/);

  // 40 new connections: SO_REUSEPORT hashes them over both loops (all on one: p = 2^-39),
  // so a loop still on the RSA certificate would show up here.
  const after = await Promise.all(Array.from({ length: 40 }, () => certKind(lisod.httpsPort)));
  t.deepEqual(after, Array(40).fill('ecdsa'));
});

test('SIGTERM: every loop stops accepting at once and finishes its requests in flight', async (t) => {
  const marks = tempDir('lisod-marks-');
  const base = tempDir('lisod-slow-cgi-');
  const script = path.join(base, 'slow.cgi');
  fs.writeFileSync(script, '#!/bin/sh\ntouch "$MARKS/$$"\nsleep 1\nprintf "Content-Type: text/plain\\r\\n\\r\\nfinished\\n"\n', { mode: 0o755 });
  fs.chmodSync(script, 0o755);
  const lisod = await startLisod({ cgi: script, config: { workers: 2, shutdown_grace: 10, cgi: { max_processes: 32, env: { MARKS: marks } } } });
  t.teardown(() => lisod.stop());

  const n = 12; // spread over both loops (all on one: p = 2^-11)
  const conns = await Promise.all(Array.from({ length: n }, () => Conn.open({ port: lisod.httpPort })));
  t.teardown(() => { for (const c of conns) c.destroy(); });
  for (const c of conns) await c.write(get('/cgi/slow'));
  await waitFor(() => fs.readdirSync(marks).length === n, 10_000, `${n} scripts running`);

  process.kill(lisod.pid, 'SIGTERM');
  await waitFor(() => /received SIGTERM: stopping/.test(errorLog(lisod)), 5000, 'the stop to begin');
  await sleep(200);
  // No loop accepts any more: were one still listening, about half of these would connect.
  const refused = await Promise.all(Array.from({ length: 10 }, () => new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port: lisod.httpPort });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  })));
  t.deepEqual(refused, Array(10).fill(true));

  const rs = await Promise.all(conns.map((c) => c.readResponse({ timeoutMs: 10_000 })));
  t.deepEqual(rs.map((r) => `${r.status} ${r.body.toString()}`), Array(n).fill('200 finished\n'));
  const exit = await lisod.exited;
  t.deepEqual(exit, { code: 0, signal: null });
  t.regex(errorLog(lisod), /\binfo lisod\[\d+\]: stopped\n/);
  t.notRegex(errorLog(lisod), /closing \d+ unfinished|ended while stopping/);
  const access = readText(path.join(lisod.dirs.logs, 'access.log'));
  t.is(access.split('\n').filter((l) => l.includes('"GET /cgi/slow HTTP/1.1" 200')).length, n, 'every loop\'s access records reached the one log');
});

(runningAsRoot ? test : test.skip)('as root with user = "nobody": every loop binds first, then all of them run as nobody', async (t) => {
  const base = tempDir('lisod-id-cgi-');
  const script = path.join(base, 'id.cgi');
  fs.writeFileSync(script, '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%s\\n" "$(id -u)"\n', { mode: 0o755 });
  fs.chmodSync(script, 0o755);
  const lisod = await startLisod({ cgi: script, config: { workers: 2, user: 'nobody' } });
  t.teardown(() => lisod.stop());
  await eventually(() => /switched to user nobody \(uid 65534/.test(errorLog(lisod))); // written by the log's thread
  t.regex(errorLog(lisod), /switched to user nobody \(uid 65534/);
  // setuid() applies to every thread of the process: scripts started by either loop run as nobody.
  const rs = await Promise.all(Array.from({ length: 12 }, () => exchange1(get('/cgi/id', 'Connection: close\r\n'), { port: lisod.httpPort })));
  t.deepEqual(rs.map((r) => `${r.status} ${r.body.toString()}`), Array(12).fill('200 65534\n'));
  const status = fs.readFileSync(`/proc/${lisod.pid}/status`, 'utf8');
  t.regex(status, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m);
  for (const tid of fs.readdirSync(`/proc/${lisod.pid}/task`)) {
    t.regex(fs.readFileSync(`/proc/${lisod.pid}/task/${tid}/status`, 'utf8'), /^Uid:\s+65534\s+65534\s+65534\s+65534$/m, `thread ${tid}`);
  }
});

test('workers = 0, "x", 1.5 or 1000 are rejected with file:line', async (t) => {
  for (const [value, shown] of [[0, '0'], ['x', '"x"'], [1.5, '1.5'], [1000, '1000']] as const) {
    const r = await runLisodExpectFailure({ config: { workers: value } });
    const line = fs.readFileSync(r.dirs.config, 'utf8').split('\n').findIndex((l) => l.startsWith('workers')) + 1;
    t.is(r.code, 1);
    t.false(r.listened);
    t.is(r.stderr, `lisod: ${r.dirs.config}:${line}: workers must be an integer 1–256 or "auto", got ${shown} ` +
      '(hint: e.g. workers = 2, or workers = "auto" for one event loop per CPU)\n');
  }
});

test('daemon with workers = 2: one process, its PID in the lock file, stop releases it', async (t) => {
  const site = await makeSite();
  const name = `workers-${crypto.randomBytes(4).toString('hex')}.conf`;
  fs.writeFileSync(path.join(site.dir, name), [
    'http_port = 0', 'https_port = 0', 'bind = ["127.0.0.1"]', 'www = "www"', `cgi = "${site.rel.cgi}"`,
    'tls_key = "key.pem"', 'tls_cert = "cert.pem"', 'error_log = "logs/error.log"', 'access_log = "logs/access.log"',
    `lock_file = "${site.rel.lock}"`, 'workers = 2', '',
  ].join('\n'));
  const launch = await runLisod(site.dir, ['--config', name]);
  t.is(launch.code, 0, launch.stderr);
  const pid = lockPid(site.abs.lock);
  t.truthy(pid);
  track(pid!);
  t.teardown(async () => { if (isLisod(pid!)) await runLisod(site.dir, ['--config', name, 'stop']); });
  t.true(isLisod(pid!));
  t.deepEqual(processesWithArg(name), [pid], 'one lisod process for both event loops');
  const errors = readText(path.join(site.dir, 'logs/error.log'));
  t.regex(errors, new RegExp(`started \\(pid ${pid}, daemon, 2 event loops\\)`));

  const { http, https } = portsFrom(launch.stdout);
  for (const [port, tls] of [[http, false], [https, true]] as const) {
    const rs = await Promise.all(Array.from({ length: 16 }, () => exchange1(get('/', 'Connection: close\r\n'), { port, tls })));
    t.true(rs.every((r) => r.status === 200 && r.body.equals(site.index)));
  }
  const stop = await runLisod(site.dir, ['--config', name, 'stop']);
  t.is(stop.code, 0, stop.stderr);
  t.true(await waitGone(pid!, 5000));
  t.is(lockPid(site.abs.lock), null);
  // The one access log has all 32 requests, whichever loop served them.
  await waitFor(() => readText(path.join(site.dir, 'logs/access.log')).split('\n').filter((l) => l.includes('"GET / HTTP/1.1" 200')).length === 32,
    2000, '32 access records');
  t.pass();
});

// ---------------------------------------------------------------------------------------
// Pure parts and the main thread's manager (stand-in thread modules, no server).

function configWith(workers: number, extra = ''): LisodConfig {
  return finishConfig(parseConfigText(`http_port = 0\nwww = "w"\nworkers = ${workers}\n${extra}[cgi]\nscript = "x"\n`, 'x.conf', '/srv/x.conf'), 'h');
}

test('splitLimit / loopShare divide max_connections and the [cgi] limits among the loops', (t) => {
  t.deepEqual([0, 1, 2].map((i) => splitLimit(16, 3, i, 1)), [6, 5, 5]);
  t.deepEqual([0, 1, 2].map((i) => splitLimit(2, 3, i, 1)), [1, 1, 1]); // at least one script each
  t.deepEqual([0, 1, 2].map((i) => splitLimit(1, 3, i, 0)), [1, 0, 0]);
  const c = configWith(3, 'max_connections = 1000\n');
  const shares = [0, 1, 2].map((i) => loopShare(c, i));
  t.deepEqual(shares.map((s) => s.maxConnections), [334, 333, 333]);
  t.deepEqual(shares.map((s) => s.cgi!.maxProcesses), [6, 5, 5]);
  t.deepEqual(shares.map((s) => s.cgi!.maxQueue), [22, 21, 21]);
  const runnable = configWith(3, '').cgi!.maxRunnable;
  t.deepEqual(shares.map((s) => s.cgi!.maxRunnable), [0, 1, 2].map((i) => splitLimit(runnable, 3, i, 1)));
  const unlimited = finishConfig(parseConfigText('http_port = 0\nwww = "w"\nworkers = 3\n[cgi]\nscript = "x"\nmax_runnable = 0\n', 'x.conf', '/srv/x.conf'), 'h');
  t.deepEqual([0, 1, 2].map((i) => loopShare(unlimited, i).cgi!.maxRunnable), [0, 0, 0], '0 (no limit) stays 0 in every loop');
  t.is(loopShare(configWith(1), 0).maxConnections, 10000);
  t.deepEqual(boundListeners([{ host: '::1', port: 0, tls: false }, { host: '::1', port: 443, tls: true }],
    [{ host: '::1', port: 40000, tls: false }, { host: '::1', port: 443, tls: true }]),
  [{ host: '::1', port: 40000, tls: false }, { host: '::1', port: 443, tls: true }]);
});

/** A thread module in a temp dir (plain ESM), and a Logs stand-in that records what it gets. */
function standIn(source: string): { entry: URL } {
  const dir = tempDir('lisod-standin-');
  const file = path.join(dir, 'loop.mjs');
  fs.writeFileSync(file, `import { parentPort, workerData } from 'node:worker_threads';\nimport fs from 'node:fs';\n${source}`);
  return { entry: pathToFileURL(file) };
}

function recorder(): { logs: () => Logs; lines: string[] } {
  const lines: string[] = [];
  const error = { error: (m: string) => lines.push(`error ${m}`), warn: (m: string) => lines.push(`warn ${m}`), info: (m: string) => lines.push(`info ${m}`) };
  const logs = { error, access: null, accessId: 0 } as unknown as Logs;
  return { logs: () => logs, lines };
}

test('WorkerLoops: a loop that cannot start fails the start with "event loop i of n: why"', async (t) => {
  const { entry } = standIn(`
if (workerData.index === 2) parentPort.postMessage({ type: 'failed', message: 'cannot listen on 127.0.0.1:80: Permission denied' });
else parentPort.postMessage({ type: 'ready' });
parentPort.on('message', () => {});
`);
  const rec = recorder();
  const e = await t.throwsAsync(WorkerLoops.start(configWith(3), [], rec.logs, rec.logs().error, { entry }));
  t.is(e?.message, 'event loop 3 of 3: cannot listen on 127.0.0.1:80: Permission denied');

  const { entry: throwing } = standIn(`throw new Error('cannot load the native addon');\n`);
  const e2 = await t.throwsAsync(WorkerLoops.start(configWith(2), [], rec.logs, rec.logs().error, { entry: throwing }));
  t.is(e2?.message, 'event loop 2 of 2: cannot load the native addon');
});

test('WorkerLoops: logs reach the main thread; a loop that dies is restarted with a growing delay', async (t) => {
  // Generations 1 and 2 crash 30 ms after starting; generation 3 stays and reports 3 connections.
  const gens = tempDir('lisod-generations-');
  const { entry } = standIn(`
const gen = fs.readdirSync(${JSON.stringify(gens)}).length + 1;
fs.writeFileSync(${JSON.stringify(gens)} + '/gen' + gen, '');
parentPort.postMessage({ type: 'logs', items: [
  { kind: 'line', level: 'warn', message: 'generation ' + gen + ' share ' + workerData.config.cgi.maxProcesses },
] });
parentPort.postMessage({ type: 'ready' });
if (gen < 3) setTimeout(() => { throw new Error('boom ' + gen); }, 30);
else parentPort.postMessage({ type: 'connections', count: 3 });
parentPort.on('message', (m) => {
  if (m.type === 'close') { parentPort.postMessage({ type: 'closed' }); parentPort.close(); }
});
`);
  const rec = recorder();
  const loops = await WorkerLoops.start(configWith(2), [], rec.logs, rec.logs().error,
    { entry, restart: { minMs: 50, maxMs: 1000, stableMs: 60_000 } });
  t.is(loops.count, 2);
  await waitFor(() => rec.lines.filter((l) => l.endsWith('restarted')).length === 2 && loops.inFlight() === 3, 5000, 'two restarts');
  const events = rec.lines.filter((l) => !l.startsWith('warn generation'));
  t.regex(events[0]!, /^error event loop 2 of 2 stopped \(internal error: Error: boom 1\n/);
  t.regex(events[0]!, /; restarting it in 50 ms$/);
  t.is(events[1], 'info event loop 2 of 2 restarted');
  t.regex(events[2]!, /^error event loop 2 of 2 stopped \(internal error: Error: boom 2\n[^]*; restarting it in 100 ms$/);
  t.is(events[3], 'info event loop 2 of 2 restarted');
  t.deepEqual(rec.lines.filter((l) => l.startsWith('warn generation')), ['warn generation 1 share 8', 'warn generation 2 share 8', 'warn generation 3 share 8']);
  await loops.close();
  t.is(loops.inFlight(), 0);
  t.is(rec.lines.filter((l) => l.startsWith('error')).length, 2, 'closing is not a death');
});
