// The [[fastcgi]] command supervisor: processes started with the listening socket as fd 0,
// restart after a crash, backoff and one log line per step in a crash loop, a normal exit
// replaced at once, graceful reload without dropping a request in flight, stop.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppEnd, AppProcess } from '../src/app_transport.js';
import { FastCgiTransport } from '../src/fastcgi/backend.js';
import { FastCgiSupervisor, type SupervisorOptions } from '../src/fastcgi/supervisor.js';
import type { Logger } from '../src/log.js';
import { fcgiEnv } from './helpers/fastcgi.js';
import { testTempDir } from './helpers/tmp.js';
import { waitFor } from './helpers/daemon.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi');

class Lines implements Logger {
  readonly lines: string[] = [];
  error(m: string): void { this.lines.push(`error ${m}`); }
  warn(m: string): void { this.lines.push(`warn ${m}`); }
  info(m: string): void { this.lines.push(`info ${m}`); }
  count(re: RegExp): number { return this.lines.filter((l) => re.test(l)).length; }
}

function supervise(t: ExecutionContext, options: Partial<SupervisorOptions> = {}): { sup: FastCgiSupervisor; log: Lines; tr: FastCgiTransport } {
  const log = new Lines();
  const sup = new FastCgiSupervisor({
    mount: '/app/', command: [probe], processes: 2, env: { PATH: '/usr/bin:/bin' },
    runtimeDir: testTempDir(t, 'lisod-sup-'), ...options,
  }, log);
  t.teardown(() => sup.stop());
  sup.start();
  const tr = new FastCgiTransport({ address: sup.address, mount: '/app/', connectTimeoutMs: 2000, maxConns: 1 });
  t.teardown(() => tr.stop());
  return { sup, log, tr };
}

async function get(tr: FastCgiTransport, pathInfo: string, query = ''): Promise<{ body: string; end: AppEnd }> {
  const p: AppProcess = tr.open(fcgiEnv(pathInfo, { QUERY_STRING: query }), 'none');
  const out: Buffer[] = [];
  p.stdout.on('data', (b) => out.push(b));
  const end = await new Promise<AppEnd>((resolve) => p.on('close', resolve));
  const all = Buffer.concat(out).toString();
  return { body: all.slice(all.indexOf('\r\n\r\n') + 4), end };
}

const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
  await waitFor(ok, ms, what); // test/helpers/daemon.ts
};

test('processes share the socket (fd 0) in a private 0700 directory and answer', async (t) => {
  const { sup, tr } = supervise(t);
  t.is(sup.pids.length, 2);
  t.is(fs.statSync(path.dirname(sup.socketPath)).mode & 0o777, 0o700);
  const r = await get(tr, '/pid');
  t.true(sup.pids.includes(Number(r.body)), r.body);
});

test('a crashed process is restarted and the crash is logged', async (t) => {
  const { sup, log, tr } = supervise(t, { processes: 1 });
  const first = Number((await get(tr, '/pid')).body);
  t.like((await get(tr, '/crash')).end, { kind: 'fail', status: 502 });
  await until('a new process', () => sup.pids.length === 1 && sup.pids[0] !== first);
  t.not(Number((await get(tr, '/pid')).body), first);
  t.is(log.count(new RegExp(`fastcgi /app/\\[${first}\\]: exited with status 3 after \\d+ ms; restarting in 100 ms`)), 1);
});

test('a crash loop backs off and is logged, not spun', async (t) => {
  const { sup, log } = supervise(t, { command: ['/bin/sh', '-c', 'echo broken >&2; exit 1'], processes: 1 });
  await new Promise((r) => setTimeout(r, 2000));
  const starts = log.count(/exited with status 1/);
  // 100 + 200 + 400 + 800 ms of backoff fit in 2 s: about 5 starts, never hundreds.
  t.true(starts >= 3 && starts <= 6, `${starts} starts: ${log.lines.join('\n')}`);
  t.true(log.count(/crash loop \(4 quick failures\)/) <= 1);
  t.true(log.count(/\]: broken$/) >= 3); // the backend's own stderr, labelled
  await sup.stop();
});

test('a normal exit (status 0 after a while, as php-cgi after PHP_FCGI_MAX_REQUESTS) is replaced at once', async (t) => {
  const { sup, log } = supervise(t, { command: ['/bin/sh', '-c', 'sleep 0.3'], processes: 1 });
  await until('two replacements', () => log.count(/exited after \d+ ms; starting a new one/) >= 2, 15_000);
  t.is(log.count(/restarting in|crash loop/), 0, log.lines.join('\n'));
  await until('the replacement running', () => sup.pids.length === 1); // it starts on the next tick
});

test('exits with status 0 at more than 20 a second are a crash loop after all (backoff)', async (t) => {
  const { sup, log } = supervise(t, { command: ['/bin/true'], processes: 1 });
  await until('backoff', () => log.count(/exited with status 0 .*restarting in/) >= 1, 15_000);
  const starts = log.count(/exited/);
  await new Promise((r) => setTimeout(r, 500));
  t.true(log.count(/exited/) - starts <= 4, 'backing off, not spinning');
  await sup.stop();
});

test('reload: a new generation takes over; a request in flight on the old one completes', async (t) => {
  const { sup, tr } = supervise(t);
  const old = sup.pids;
  await get(tr, '/pid'); // both started
  const slow = get(tr, '/slow', '0.8');
  await new Promise((r) => setTimeout(r, 300));
  sup.reload();
  const r = await slow;
  t.is(r.body, 'slept\n');
  t.deepEqual(r.end, { kind: 'exit', code: 0, signal: null });
  await until('old processes gone', () => sup.pids.every((p) => !old.includes(p)) && sup.pids.length === 2);
  const after = Number((await get(tr, '/pid')).body);
  t.false(old.includes(after));
});

test('stop: every process exits and the private directory is removed', async (t) => {
  const { sup, tr } = supervise(t);
  await get(tr, '/pid');
  const pids = sup.pids;
  const dir = path.dirname(sup.socketPath);
  await sup.stop();
  for (const pid of pids) t.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  t.false(fs.existsSync(dir));
});

test('a command that cannot start: the constructor-side error names it', (t) => {
  const log = new Lines();
  const sup = new FastCgiSupervisor({
    mount: '/x/', command: ['/nonexistent/app.fcgi'], processes: 1, env: {}, runtimeDir: testTempDir(t, 'lisod-sup-'),
  }, log);
  t.teardown(() => sup.stop());
  t.throws(() => sup.start(), { message: /cannot run \/nonexistent\/app.fcgi/ });
});

test('a replacement whose command cannot be run any more: logged, retried with backoff, running again once it can', async (t) => {
  const app = path.join(testTempDir(t, 'lisod-sup-app-'), 'app.sh');
  fs.writeFileSync(app, '#!/bin/sh\nsleep 0.3\n', { mode: 0o755 });
  const { sup, log } = supervise(t, { command: [app], processes: 1 });
  await until('the first process running', () => sup.pids.length === 1);
  fs.chmodSync(app, 0o644); // its normal exit asks for a replacement that cannot start
  await until('two failed starts', () => log.count(/cannot start .*app\.sh: .*(Permission denied|EACCES)/) >= 2);
  t.is(sup.pids.length, 0);
  fs.chmodSync(app, 0o755);
  await until('a replacement running', () => sup.pids.length === 1, 15_000);
  t.is(log.count(/cannot start/), log.count(/cannot start .*app\.sh/), log.lines.join('\n'));
});

test('reload when the command cannot be run: it throws, and the running generation stays and is still replaced', async (t) => {
  const app = path.join(testTempDir(t, 'lisod-sup-app-'), 'app.sh');
  fs.writeFileSync(app, '#!/bin/sh\nsleep 0.3\n', { mode: 0o755 });
  const { sup, log } = supervise(t, { command: [app], processes: 1 });
  await until('the first process running', () => sup.pids.length === 1);
  fs.chmodSync(app, 0o644);
  t.throws(() => sup.reload(), { message: /cannot run .*app\.sh/ });
  fs.chmodSync(app, 0o755); // fixed: the old generation's exits are replaced again
  const replaced = log.count(/exited after \d+ ms; starting a new one/);
  await until('two more replacements', () => log.count(/exited after \d+ ms; starting a new one/) >= replaced + 2, 15_000);
  await until('one running', () => sup.pids.length === 1);
});
