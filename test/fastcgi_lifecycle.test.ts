// [[fastcgi]] command processes across lisod's lifecycle: SIGHUP replaces them without
// dropping a request in flight, `user = …` runs them unprivileged, `workers = 2` shares one
// set of processes, and stopping lisod stops them.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { exchange1, get, sleep } from './helpers/client.js';
import { kNobody, repoRoot, runningAsRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { nobodyIds } from './helpers/nobody.js';
import { childrenOf } from './helpers/procs.js';

const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi');
const mount = (extra: Record<string, string | number> = {}) => ({ fastcgi: [{ path: '/app/', command: [probe], processes: 2, ...extra }] });

const errorLog = (l: Lisod): string => fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');

async function pids(l: Lisod, n: number): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await exchange1(get('/app/pid'), { port: l.httpPort, timeoutMs: 20_000 });
    if (r.status === 200) seen.add(r.body.toString());
  }
  return seen;
}

test('SIGHUP: new processes take over; a request in flight on an old one completes', async (t) => {
  const l = await startLisod({ config: mount() });
  t.teardown(() => l.stop());
  const before = new Set(childrenOf(l.pid));
  t.is(before.size, 2);
  const slow = exchange1(get('/app/slow?1.5'), { port: l.httpPort, timeoutMs: 20_000 });
  await sleep(400);
  process.kill(l.pid, 'SIGHUP');
  const r = await slow;
  t.is(r.status, 200);
  t.is(r.body.toString(), 'slept\n');
  const deadline = Date.now() + 10_000;
  while (childrenOf(l.pid).some((p) => before.has(p)) && Date.now() < deadline) await sleep(50);
  const after = childrenOf(l.pid);
  t.is(after.length, 2);
  t.false(after.some((p) => before.has(p)), 'the old processes are gone');
  for (const pid of await pids(l, 6)) t.true(after.includes(Number(pid)), pid);
  t.regex(errorLog(l), /reloaded/);
});

test('stopping lisod stops its FastCGI processes (started with the listening socket as fd 0)', async (t) => {
  const l = await startLisod({ config: mount() });
  const children = childrenOf(l.pid);
  t.is(children.length, 2);
  const cmdline = fs.readFileSync(`/proc/${children[0]}/cmdline`, 'utf8');
  t.true(cmdline.includes('wsgi_probe.fcgi'));
  t.regex(fs.readlinkSync(`/proc/${children[0]}/fd/0`), /^socket:\[\d+\]$/);
  const exit = await l.stop();
  t.is(exit.code, 0);
  for (const pid of children) t.false(fs.existsSync(`/proc/${pid}`), `process ${pid} is gone`);
});

test('workers = 2: both event loops use the same `processes` copies', async (t) => {
  const l = await startLisod({ config: { workers: 2, ...mount() } });
  t.teardown(() => l.stop());
  t.is(childrenOf(l.pid).length, 2);
  const results = await Promise.all(Array.from({ length: 20 }, () => exchange1(get('/app/pid'), { port: l.httpPort, timeoutMs: 20_000 })));
  t.deepEqual(results.map((r) => r.status), Array(20).fill(200));
  const served = new Set(results.map((r) => Number(r.body.toString())));
  for (const pid of served) t.true(childrenOf(l.pid).includes(pid));
});

// The probe and cgi-bin/ run from the checkout as nobody: under a 0700 directory (root's home,
// mktemp -d) nobody cannot reach them, and the test says so instead of failing.
const nobodyIdsHere = nobodyIds();
const nobodyBlocked = runningAsRoot && nobodyIdsHere !== null &&
  spawnSync('test', ['-x', probe], { ...nobodyIdsHere, stdio: 'ignore' }).status !== 0;
const nobodyTitle = 'started as root with user = "nobody": the processes run as nobody and are reachable';
(runningAsRoot && !nobodyBlocked ? test : test.skip)(nobodyBlocked
  ? `${nobodyTitle} (skipped: nobody cannot reach ${probe}: the checkout is under a directory closed to other users)`
  : nobodyTitle, async (t) => {
  const l = await startLisod({ config: { user: 'nobody', ...mount() } });
  t.teardown(() => l.stop());
  const r = await exchange1(get('/app/pid'), { port: l.httpPort, timeoutMs: 20_000 });
  t.is(r.status, 200);
  const status = fs.readFileSync(`/proc/${r.body.toString()}/status`, 'utf8');
  t.regex(status, new RegExp(`^Uid:\\s+${kNobody.uid}\\s+${kNobody.uid}\\s+${kNobody.uid}\\s+${kNobody.uid}$`, 'm'));
});
