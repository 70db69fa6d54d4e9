// Runs one row (one scenario on one server, one pass): start the server, check it answers,
// wait for a quiet machine, warm up, then measure with wrk (or the idle-connections client)
// while accounting the server tree's CPU, wrk's CPU and everyone else's.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { machineMark, treeOf, ownCpuUsOf, otherTicks, ticksToUs, loadAvg1, treeRssBytes } from './procfs.mjs';
import { wrkArgs, runWrk, parseWrk, shellLine } from './wrk.mjs';
import { h2loadArgs, parseH2load } from './h2load.mjs';
import { checkResumption } from './tlscheck.mjs';
import { DOCROOT_FILES } from './fixtures.mjs';
import { NO_ACCESS_LOG } from './servers.mjs';

const BENCH_DIR = path.dirname(path.dirname(new URL(import.meta.url).pathname));

/**
 * Options shared by all rows.
 * @typedef {{seconds:number, warmup:number, quick?:boolean, clientCpu:string|null, quietSeconds:number, busyPct:number,
 *   idleConns:number, ca:string}} RowOptions
 * One measurement.
 * @typedef {{server:string, scenario:string, pass:number, ok:boolean, error?:string, notes:string[], busy:boolean,
 *   rps?:number, bps?:number, p50?:number, p99?:number, requests?:number, cpuUsPerReq?:number, ownUsPerReq?:number, backendUsPerReq?:number, serverCpuPct?:number,
 *   wrkCpuPct?:number, otherPct:number, quietPct:number, loadavg:number, command?:string, serverCommand?:string, serverConfig?:string,
 *   resumed?:{tls13:boolean|null, tls12:boolean|null}, wrkThreads?:number,
 *   idle?:{open:number, failed:number, rssBefore:number, rssAfter:number, perConn:number, connectMs:number}}} Sample
 */

/** CPU of everyone outside the harness's own process tree, as % of one core, over `ms`. */
async function othersBusy(ms) {
  const a = machineMark();
  await sleep(ms);
  const b = machineMark();
  return (ticksToUs(otherTicks(a, b, process.pid)) / (ms * 1e3)) * 100;
}

/**
 * Before a row: measures other processes' CPU while the server idles and, while it exceeds
 * the busy threshold, waits a little (3 tries at most; the pass is judged by what happens
 * during the run itself).
 * @returns {Promise<number>} the last measured percentage of one core
 */
async function waitQuiet(o) {
  let pct = 0;
  for (let i = 0; i < 3; i++) {
    pct = await othersBusy(o.quietSeconds * 1000);
    if (pct <= o.busyPct) break;
    process.stderr.write(`    machine busy (${pct.toFixed(0)}% of a core in other processes); waiting\n`);
    await sleep(2000);
  }
  return pct;
}

/** GET once; status and body length. */
function probe(url, ca) {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { ca, servername: 'localhost', agent: false, headers: { Connection: 'close' } }, (res) => {
      let n = 0;
      res.on('data', (d) => { n += d.length; });
      res.on('end', () => resolve({ status: res.statusCode, bytes: n }));
      res.on('error', reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${url} in 30 s`)));
    req.on('error', reject);
  });
}

/**
 * Waits until a server's process tree stops using CPU (no tick in 300 ms), up to 30 s.
 * @returns {Promise<boolean>} false if it never went idle
 */
async function settle(pid) {
  const ticks = () => treeOf(machineMark().all, pid).reduce((s, p) => s + p.ticks, 0);
  const deadline = Date.now() + 30_000;
  let last = ticks();
  while (Date.now() < deadline) {
    await sleep(300);
    const now = ticks();
    if (now === last) return true;
    last = now;
  }
  return false;
}

/** Server-tree ticks, the server's own CPU in µs (ownCpuUsOf), harness-children ticks (= wrk, reaped) and a full snapshot. */
function cpuMark(serverPid) {
  const m = machineMark();
  const tree = treeOf(m.all, serverPid);
  const server = tree.reduce((s, p) => s + p.ticks, 0);
  // FastCGI rows: the backend processes (flaskr.fcgi, php-fpm), to tell the server's own share.
  const backend = tree.filter((p) => /^(python3|flaskr\.fcgi|php-fpm|php-cgi)/.test(p.comm)).reduce((s, p) => s + p.ticks, 0);
  const self = m.all.get(process.pid);
  return { ...m, server, ownUs: ownCpuUsOf(tree), backend, children: self ? self.childTicks : 0, at: process.hrtime.bigint() };
}

/**
 * @param {import('./servers.mjs').Supervisor} sup @param {import('./servers.mjs').Context} ctx
 * @param {import('./scenarios.mjs').Scenario} sc @param {string} server
 * @param {import('./servers.mjs').Variant} variant @param {RowOptions} o @param {number} pass
 * @returns {Promise<Sample>}
 */
export async function runRow(sup, ctx, sc, server, variant, o, pass) {
  /** @type {Sample} */
  const sample = { server, scenario: sc.id, pass, ok: false, notes: [], busy: false, otherPct: 0, quietPct: 0, loadavg: loadAvg1() };
  let srv;
  let died = false;
  try {
    srv = await sup.startServer(ctx, server, variant);
    srv.exited.then(() => { died = true; });
    sample.serverCommand = srv.command;
    sample.serverConfig = srv.config?.text;
    sample.notes.push(...srv.notes);
    const port = sc.scheme === 'https' ? srv.httpsPort : srv.httpPort;
    const url = `${sc.scheme}://127.0.0.1:${port}${sc.path}`;
    const caPem = fs.readFileSync(o.ca);
    const first = /** @type {{status:number, bytes:number}} */ (await probe(url, caPem));
    const size = DOCROOT_FILES[sc.path];
    if (first.status !== 200 || (size !== undefined && first.bytes !== size)) {
      throw new Error(`probe ${sc.path}: status ${first.status}, ${first.bytes} bytes${size !== undefined ? ` (want 200, ${size})` : ''}`);
    }
    if (sc.expectResumed !== undefined) {
      const r = await checkResumption(port, o.ca);
      sample.resumed = { tls13: r.tls13, tls12: r.tls12 };
      if (r.error) sample.notes.push(`resumption check failed: ${r.error}`);
      const yn = (v) => (v === null ? '?' : v ? 'yes' : 'no');
      const wrong = [['TLS 1.3', r.tls13], ['TLS 1.2', r.tls12]].filter(([, v]) => v !== null && v !== sc.expectResumed);
      sample.notes.push(`resumes TLS 1.3/1.2: ${yn(r.tls13)}/${yn(r.tls12)}` +
        (wrong.length ? ` — NOT as the row says (${sc.expectResumed ? 'should resume' : 'should not resume'})` : ''));
    }
    sample.quietPct = await waitQuiet(o);
    sample.loadavg = loadAvg1();
    if (sc.kind === 'idle') await measureIdle(sup, sc, srv, o, sample);
    else await measureWrk(sup, sc, srv, url, o, sample);
    sample.ok = true;
  } catch (e) {
    sample.error = /** @type {Error} */ (e).message;
  } finally {
    if (srv) {
      await sleep(0);
      if (died) {
        sample.ok = false;
        sample.error = `${sample.error ? `${sample.error}; ` : ''}server exited during the row`;
      }
      await sup.stop(srv.pid);
      if (!NO_ACCESS_LOG.includes(server) && sc.kind !== 'idle' && sample.ok) {
        // Logging is part of what is measured: make sure records were written.
        let size = 0;
        try { size = fs.statSync(path.join(srv.dir, 'access.log')).size; } catch { /* none */ }
        sample.notes.push(size > 0 ? `access log ${size >= 1048576 ? `${(size / 1048576).toFixed(1)} MiB` : `${Math.ceil(size / 1024)} KiB`} written` : 'access log EMPTY');
      }
    }
  }
  return sample;
}

/** The load client of a row: wrk, or h2load for the HTTP/2 rows (kind 'h2load'). */
function clientOf(sc) {
  if (sc.kind === 'h2load') return { cmd: 'h2load', args: h2loadArgs, parse: parseH2load };
  return { cmd: 'wrk', args: wrkArgs, parse: parseWrk };
}

async function measureWrk(sup, sc, srv, url, o, sample) {
  const spec = { url, threads: sc.threads, conns: sc.conns, streams: sc.streams ?? 1, close: sc.close, timeout: sc.timeout,
    acceptEncoding: sc.acceptEncoding };
  const cpu = sc.pinned === false ? null : o.clientCpu; // scaling rows: wrk's threads may use any core
  const client = clientOf(sc);
  const log = path.join(srv.dir, `${client.cmd}.log`);
  sample.wrkThreads = sc.threads;
  // A row's own minimum (minWarmup, seconds) applies unless warm-up is off or --quick.
  const warmup = o.warmup > 0 && !o.quick ? Math.max(o.warmup, sc.minWarmup ?? 0) : o.warmup;
  if (warmup > 0) {
    await runWrk(sup, client.args({ ...spec, seconds: warmup }), { cpu, log, cmd: client.cmd });
    // CGI scripts started by the warm-up may still be running: they must not eat into the run.
    if (!(await settle(srv.pid))) sample.notes.push('server still busy 30 s after the warm-up');
  }
  const args = client.args({ ...spec, seconds: Math.max(o.seconds, sc.minSeconds ?? 0) });
  sample.command = shellLine(client.cmd, args).replace(/127\.0\.0\.1:\d+/, '127.0.0.1:PORT');
  const before = cpuMark(srv.pid);
  const { text, code } = await runWrk(sup, args, { cpu, log, cmd: client.cmd });
  const after = cpuMark(srv.pid);
  fs.appendFileSync(log, text);
  if (code !== 0) throw new Error(`${client.cmd} exited with ${code}: ${text.slice(-500)}`);
  const r = client.parse(text);
  if ('protocol' in r && r.protocol !== 'h2') throw new Error(`h2load negotiated ${r.protocol ?? 'nothing'}, not h2`);
  if ('tls' in r && r.tls) sample.notes.push(`h2load: ${r.tls}`);
  const wallUs = Number(after.at - before.at) / 1e3;
  const backendUs = ticksToUs(after.backend - before.backend);
  // FastCGI rows count the server's own CPU; the backend's is reported apart.
  const serverUs = ticksToUs(after.server - before.server) - (sc.fcgi || sc.fpm ? backendUs : 0);
  Object.assign(sample, {
    rps: r.rps,
    bps: r.bps,
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests,
    cpuUsPerReq: r.requests > 0 ? serverUs / r.requests : NaN,
    serverCpuPct: (serverUs / wallUs) * 100,
    wrkCpuPct: (ticksToUs(after.children - before.children) / wallUs) * 100,
    otherPct: (ticksToUs(otherTicks(before, after, process.pid)) / wallUs) * 100,
  });
  const errs = Object.entries(r.errors).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  if (errs.length) sample.notes.push(`socket errors: ${errs.join(', ')}`);
  if (r.non2xx) sample.notes.push(`${r.non2xx} non-2xx/3xx`);
  if (r.requests === 0) throw new Error(`${client.cmd} completed no requests`);
  // The run starts with nothing in flight but ends with up to `conns` requests part-done
  // (a CGI script's start-up), whose CPU is counted without the request.
  const bound = sc.conns / r.requests;
  if ((sc.fcgi || sc.fpm) && r.requests > 0) {
    sample.backendUsPerReq = backendUs / r.requests;
    sample.notes.push(`backend (${sc.fpm ? 'php-fpm' : 'flaskr.fcgi'}) CPU, not counted: ${sample.backendUsPerReq.toFixed(0)} µs/req`);
  }
  // CGI rows: the server's own CPU beside the tree's, so spawning compares apart from the script.
  if (sc.cgi && !sc.fcgi) sample.ownUsPerReq = (after.ownUs - before.ownUs) / r.requests;
  if (sc.cgi && !sc.fcgi && bound > 0.05) sample.notes.push(`CPU/req may read high by up to ${(bound * 100).toFixed(0)}% (${sc.conns} in flight at the end of ${r.requests})`);
  if (sample.otherPct > o.busyPct) sample.busy = true;
}

/** Reads JSON lines from a child's stdout. */
function lines(child) {
  const rl = readline.createInterface({ input: child.stdout });
  const queue = [];
  const waiters = [];
  rl.on('line', (l) => {
    const w = waiters.shift();
    if (w) w.resolve(JSON.parse(l));
    else queue.push(JSON.parse(l));
  });
  rl.on('close', () => { for (const w of waiters.splice(0)) w.reject(new Error('idle client exited')); });
  return (timeoutMs) => {
    if (queue.length) return Promise.resolve(queue.shift());
    return new Promise((resolve, reject) => {
      const w = { resolve, reject };
      waiters.push(w);
      setTimeout(() => {
        const i = waiters.indexOf(w);
        if (i >= 0) { waiters.splice(i, 1); reject(new Error(`idle client silent for ${timeoutMs / 1000} s`)); }
      }, timeoutMs).unref();
    });
  };
}

/** Runs the idle-connection client against a server; returns its handle once all are open. */
async function idleClient(sup, sc, srv, o, count) {
  const args = [path.join(BENCH_DIR, 'idle_client.mjs'), '--port', String(sc.scheme === 'https' ? srv.httpsPort : srv.httpPort),
    '--count', String(count), '--path', '/1k.html'];
  if (sc.scheme === 'https') args.push('--tls', '--ca', o.ca);
  const { child, exited } = sup.spawn(process.execPath, args, { cpu: o.clientCpu, log: path.join(srv.dir, 'idle-client.log'), stdin: 'pipe', stdout: 'pipe' });
  const next = lines(child);
  const ready = await next(300_000);
  const done = async () => {
    child.stdin?.end('close\n');
    await Promise.race([exited, sleep(10_000)]);
    await sup.stop(/** @type {number} */ (child.pid));
  };
  return { ready, next, child, done };
}

async function measureIdle(sup, sc, srv, o, sample) {
  // Warm the server's lazy allocations (first TLS handshakes, buffers) with a few connections.
  const warm = await idleClient(sup, sc, srv, o, 100);
  await warm.done();
  await sleep(500);
  const rssBefore = treeRssBytes(srv.pid);
  const c = await idleClient(sup, sc, srv, o, o.idleConns);
  try {
    await sleep(1000);
    const rssAfter = treeRssBytes(srv.pid);
    c.child.stdin?.write('check\n');
    const { open } = await c.next(10_000);
    sample.idle = {
      open,
      failed: c.ready.failed,
      rssBefore,
      rssAfter,
      perConn: open > 0 ? (rssAfter - rssBefore) / open : NaN,
      connectMs: c.ready.ms,
    };
    sample.command = `node bench/idle_client.mjs --port PORT --count ${o.idleConns} --path /1k.html${sc.scheme === 'https' ? ' --tls --ca ca.pem' : ''}`;
    if (c.ready.failed) sample.notes.push(`${c.ready.failed} connections failed (${(c.ready.errors ?? []).join('; ')})`);
    if (open < c.ready.open) sample.notes.push(`${c.ready.open - open} closed by the server while idle`);
  } finally {
    await c.done();
  }
}
