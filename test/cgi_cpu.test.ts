// [cgi] max_runnable (native/cgi_cpu.cc): a waiting request starts its script only while
// fewer of the mount's scripts than max_runnable are runnable. CPU-bound scripts then run
// max_runnable at a time; scripts that wait on I/O still run max_processes at once; a
// request waits for a CPU at most LISOD_CPU_WAIT_MS (500 ms by default); requests held for
// a CPU take the free slots' room, not the queue's (503 only past max_processes + max_queue).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { exchange1, get, sleep, type HttpResponse } from './helpers/client.js';
import { repoRoot, type Lisod } from './helpers/lisod.js';
import { lisodPool } from './helpers/lisod_pool.js';
import { tempDir } from './helpers/tmp.js';

const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'cpu-probe.cgi');
const server = lisodPool();

interface Run { name: string; start: number; end: number }

function cpuServer(name: string, cgi: Record<string, number | string>, waitMs = 20_000, script = probe): Promise<{ l: Lisod; log: string }> {
  const log = path.join(tempDir('lisod-cpu-'), 'runs.log');
  return server(name, () => ({
    config: { cgi: { script, timeout: 60, ...cgi, env: { CPU_PROBE_LOG: log } } },
    env: { LISOD_CPU_WAIT_MS: String(waitMs) },
  })).then((l) => ({ l, log }));
}

const send = (l: Lisod, target: string): Promise<HttpResponse> => exchange1(get(target), { port: l.httpPort, timeoutMs: 30_000 });

function runs(log: string): Run[] {
  const text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  return text.split('\n').filter(Boolean).map((line) => {
    const [name, start, end] = line.split(' ');
    return { name: name!, start: Number(start), end: Number(end) };
  });
}

/** The most runs in progress at one moment. */
function mostAtOnce(rs: Run[]): number {
  let most = 0;
  for (const r of rs) most = Math.max(most, rs.filter((o) => o.start <= r.start && r.start < o.end).length);
  return most;
}

async function together(l: Lisod, targets: string[]): Promise<HttpResponse[]> {
  return Promise.all(targets.map(async (target, i) => {
    await sleep(i * 20); // in this order
    return send(l, target);
  }));
}

test('CPU-bound scripts over max_runnable wait for a CPU: with max_runnable = 1 they run one at a time', async (t) => {
  const { l, log } = await cpuServer('one-cpu', { max_processes: 4, max_runnable: 1 });
  const res = await together(l, ['/cgi/spin/250?a', '/cgi/spin/250?b', '/cgi/spin/250?c']);
  t.deepEqual(res.map((r) => r.status), [200, 200, 200]);
  t.deepEqual(res.map((r) => r.body.toString()), ['done a\n', 'done b\n', 'done c\n']);
  const rs = runs(log).sort((x, y) => x.start - y.start);
  t.deepEqual(rs.map((r) => r.name), ['a', 'b', 'c'], 'they ran in arrival order');
  t.is(mostAtOnce(rs), 1, `runs overlapped: ${JSON.stringify(rs)}`);
});

test('the same scripts with max_runnable = 0 (no limit) all run at once', async (t) => {
  const { l, log } = await cpuServer('no-limit', { max_processes: 4, max_runnable: 0 });
  const res = await together(l, ['/cgi/spin/400?a', '/cgi/spin/400?b', '/cgi/spin/400?c']);
  t.deepEqual(res.map((r) => r.status), [200, 200, 200]);
  t.true(mostAtOnce(runs(log)) >= 2, `no two runs overlapped: ${JSON.stringify(runs(log))}`);
});

test('scripts that wait on I/O do not count: with max_runnable = 1, sleeping scripts still run max_processes at once', async (t) => {
  // The script's process name holds ") R ": /proc/PID/stat is read from its last ')'.
  const dir = tempDir('lisod-cpu-name-');
  const odd = path.join(dir, 'sl) R p.cgi');
  fs.symlinkSync(probe, odd);
  const { l, log } = await cpuServer('sleepers', { max_processes: 4, max_runnable: 1 }, 20_000, odd);
  const res = await together(l, ['/cgi/sleep/1500?a', '/cgi/sleep/1500?b', '/cgi/sleep/1500?c', '/cgi/sleep/1500?d']);
  t.deepEqual(res.map((r) => r.status), [200, 200, 200, 200]);
  t.true(mostAtOnce(runs(log)) >= 3, `sleeping scripts were held back: ${JSON.stringify(runs(log))}`);
});

test('a request waits for a CPU at most LISOD_CPU_WAIT_MS: a long CPU-bound script does not hold it back', async (t) => {
  const { l, log } = await cpuServer('wait-bound', { max_processes: 4, max_runnable: 1 }, 400);
  const long = send(l, '/cgi/spin/4000?long');
  await sleep(300); // the long one runs (or starts: a starting process counts as runnable)
  const sent = Date.now();
  const short = await send(l, '/cgi/spin/0?short');
  t.is(short.status, 200);
  const waited = Date.now() - sent;
  t.true(waited >= 380, `the short request was not held back (answered in ${waited} ms)`);
  t.is((await long).status, 200);
  const rs = runs(log);
  const s = rs.find((r) => r.name === 'short')!;
  const g = rs.find((r) => r.name === 'long')!;
  t.true(s.end < g.end, `the short script waited for the long one to end: ${JSON.stringify(rs)}`);
});

test('requests held for a CPU use the free slots\' room: 503 only past max_processes + max_queue', async (t) => {
  const { l } = await cpuServer('queue-room', { max_processes: 2, max_queue: 1, max_runnable: 1 });
  const first = send(l, '/cgi/spin/600?first');
  await sleep(150);
  const rest = await together(l, ['/cgi/spin/0?b', '/cgi/spin/0?c', '/cgi/spin/0?d']);
  const statuses = [(await first).status, ...rest.map((r) => r.status)].sort();
  t.deepEqual(statuses, [200, 200, 200, 503], 'one running, one held in a free slot, one queued, the fourth refused');
});
