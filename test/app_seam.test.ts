// The application seam against a real lisod (issue 12): aborted uploads leak no fds, slow
// bodies take no script slot, buffered bodies live in unnamed spool files under a budget,
// a response framed by Content-Length ends without EOF, and the timeout ends a process group
// whose leader has already exited.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Conn, exchange1, get, sha256, sleep, withConn } from './helpers/client.js';
import { repoRoot, startLisod, type Lisod, type LisodOptions } from './helpers/lisod.js';
import { eventually } from './helpers/procs.js';
import { testTempDir } from './helpers/tmp.js';

const script = (name: string): string => path.join(repoRoot, 'test', 'cgi-scripts', name);
const started: Lisod[] = [];

async function lisod(cgi: Record<string, unknown>, opts: LisodOptions = {}): Promise<Lisod> {
  const l = await startLisod({ ...opts, config: { cgi: cgi as never, ...(opts.config ?? {}) } });
  started.push(l);
  return l;
}

test.afterEach.always((t) => {
  if (t.passed) return;
  for (const l of started) {
    const file = path.join(l.dirs.logs, 'error.log');
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    t.log(`error log (tail):\n${text.split('\n').slice(-12).join('\n')}\nstderr: ${l.stderr().slice(-1500)}`);
  }
});

test.after.always(async () => {
  await Promise.all(started.map((l) => l.stop()));
});

function openFds(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function postHead(target: string, length: number, extra = ''): string {
  return `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n${extra}\r\n`;
}

/** Reads the PID a test script wrote and kills that process's group when the test ends. */
async function childPid(t: ExecutionContext, pidFile: string): Promise<number> {
  await eventually(() => fs.existsSync(pidFile));
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  fs.unlinkSync(pidFile);
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  });
  return pid;
}

for (const buffering of [true, false]) {
  test(`30 aborted uploads leave no descriptor behind (request_buffering = ${buffering})`, async (t) => {
    const l = await lisod({ script: script('env.cgi'), request_buffering: buffering });
    // Warm up (first request, first spool file) so lazily opened fds are in the baseline.
    t.is((await exchange1(Buffer.concat([Buffer.from(postHead('/cgi/', 200_000)), Buffer.alloc(200_000)]), { port: l.httpPort })).status, 200);
    await sleep(300);
    const before = openFds(l.pid);
    for (let i = 0; i < 30; i++) {
      const c = await Conn.open({ port: l.httpPort });
      // Above the memory threshold, so a buffered body reaches its spool file first.
      await c.write(Buffer.concat([Buffer.from(postHead('/cgi/', 1 << 20)), crypto.randomBytes(200_000)]));
      await sleep(30);
      c.destroy();
    }
    const settled = await eventually(() => openFds(l.pid) <= before + 1, 8000);
    t.true(settled, `lisod holds ${openFds(l.pid)} fds after 30 aborted uploads, ${before} before`);
    t.is((await exchange1(get('/cgi/after'), { port: l.httpPort })).status, 200);
  });
}

test('40 slow uploads take no script slot: a normal CGI request still gets 200', async (t) => {
  const l = await lisod({ script: script('env.cgi'), max_processes: 2, max_queue: 2 });
  const conns = await Promise.all(Array.from({ length: 40 }, () => Conn.open({ port: l.httpPort })));
  t.teardown(() => conns.forEach((c) => c.destroy()));
  for (const c of conns) await c.write(postHead('/cgi/slow', 100) + 'x');
  let stop = false;
  const dribble = (async () => {
    for (let i = 0; i < 20 && !stop; i++) {
      await sleep(200);
      for (const c of conns) c.write('y').catch(() => {});
    }
  })();
  await sleep(500);
  const res = await exchange1(get('/cgi/normal'), { port: l.httpPort });
  t.is(res.status, 200);
  t.is((JSON.parse(res.body.toString()) as { env: Record<string, string> }).env.PATH_INFO, '/normal');
  // Nothing was answered on the slow connections: they are still sending.
  t.true(conns.every((c) => c.peek().length === 0));
  stop = true;
  await dribble;
});

test('spool_max_bytes: a body the budget cannot hold gets 503, chunked ones too; smaller ones pass', async (t) => {
  const l = await lisod({ script: script('env.cgi') }, { config: { spool_max_bytes: 100_000 } });
  const big = await exchange1(Buffer.concat([Buffer.from(postHead('/cgi/', 150_000)), Buffer.alloc(150_000)]), { port: l.httpPort });
  t.is(big.status, 503);
  t.is(big.headers['retry-after'], '1');
  const chunk = Buffer.alloc(40_000, 0x61);
  const chunked = Buffer.concat([
    Buffer.from('POST /cgi/ HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n'),
    ...[0, 1, 2].map(() => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])),
    Buffer.from('0\r\n\r\n'),
  ]);
  const res = await exchange1(chunked, { port: l.httpPort });
  t.is(res.status, 503);
  const small = Buffer.alloc(90_000, 0x62);
  const ok = await exchange1(Buffer.concat([Buffer.from(postHead('/cgi/', small.length)), small]), { port: l.httpPort });
  t.is(ok.status, 200);
  t.is((JSON.parse(ok.body.toString()) as { body_sha256: string }).body_sha256, sha256(small));
  t.regex(fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8'), /spool_max_bytes \(100000\)/);
});

test('buffered 24 MiB upload: intact, and its spool file has no name in spool_dir while the script runs', async (t) => {
  const spoolDir = testTempDir(t, 'lisod-spool-');
  const l = await lisod({ script: script('env.cgi') }, { config: { spool_dir: spoolDir } });
  const body = crypto.randomBytes(24 << 20);
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(Buffer.concat([Buffer.from(postHead('/cgi/up?delay=1.5', body.length)), body]));
    await sleep(700); // the script sleeps before reading its stdin: the spool file exists now
    t.deepEqual(fs.readdirSync(spoolDir), []);
    const res = await c.readResponse({ timeoutMs: 30_000 });
    const d = JSON.parse(res.body.toString()) as { body_sha256: string; body_length: number; env: Record<string, string> };
    t.is(d.body_length, body.length);
    t.is(d.body_sha256, sha256(body));
    t.is(d.env.CONTENT_LENGTH, String(body.length));
  });
  t.deepEqual(fs.readdirSync(spoolDir), []);
});

function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
}

// Before the body events became views over one reused buffer, each chunk was a fresh Buffer
// that V8 collected late: this upload raised lisod's RSS by ~35 MiB (peak), now ~3 MiB.
test('buffered 64 MiB upload: intact, and lisod\'s RSS grows by less than 16 MiB while it is spooled', async (t) => {
  const l = await lisod({ script: script('env.cgi') });
  const body = crypto.randomBytes(64 << 20);
  await exchange1(get('/index.html'), { port: l.httpPort }); // warm: the first request's own allocations
  const before = rssKiB(l.pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(l.pid)); }, 10);
  try {
    await withConn({ port: l.httpPort }, async (c) => {
      await c.write(Buffer.concat([Buffer.from(postHead('/cgi/big', body.length)), body]));
      const res = await c.readResponse({ timeoutMs: 60_000 });
      const d = JSON.parse(res.body.toString()) as { body_sha256: string; body_length: number };
      t.is(d.body_length, body.length);
      t.is(d.body_sha256, sha256(body));
    });
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssKiB(l.pid));
  t.log(`lisod RSS ${before} KiB before, peak ${peak} KiB`);
  t.true(peak - before < 16 * 1024, `lisod RSS grew by ${peak - before} KiB during a 64 MiB buffered upload`);
});

test('spool_dir that does not exist: lisod refuses to start with file:line', async (t) => {
  const missing = path.join(testTempDir(t, 'lisod-spool-'), 'nope');
  const err = await startLisod({ config: { spool_dir: missing } }).then(
    (l) => { started.push(l); return null; },
    (e: Error) => e.message,
  );
  t.regex(err ?? 'started', /lisod\.conf:\d+: spool_dir '.*nope': no such directory/);
});

test('Content-Length reached: the response ends at once though a background child holds stdout; the group is ended, the slot freed', async (t) => {
  const pidFile = path.join(testTempDir(t, 'lisod-linger-'), 'pid');
  const l = await lisod({ script: script('linger.cgi'), timeout: 20, max_processes: 1, max_queue: 0, env: { LINGER_PIDFILE: pidFile } });
  // The client keeps its connection open throughout: a close would also end the script.
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/framed'));
    const res = await c.readResponse({ timeoutMs: 5000 });
    t.is(res.status, 200);
    t.is(res.body.toString(), 'hello\n');
    const child = await childPid(t, pidFile);
    t.true(await eventually(() => !alive(child)), 'the background child holding stdout was not ended');
    // The one slot is free again (max_queue = 0 would answer 503 otherwise) …
    const other = await exchange1(get('/cgi/framed'), { port: l.httpPort, timeoutMs: 5000 });
    t.is(other.status, 200);
    await childPid(t, pidFile);
    // … and the first connection was kept for its next request.
    await c.write(get('/index.html'));
    t.is((await c.readResponse()).status, 200);
  });
});

test('a script still working after its framed response keeps its slot until it exits, then the next runs', async (t) => {
  const marker = path.join(testTempDir(t, 'lisod-linger-'), 'pid');
  const l = await lisod({ script: script('linger.cgi'), timeout: 20, max_processes: 1, max_queue: 1, env: { LINGER_PIDFILE: marker } });
  const t0 = Date.now();
  const first = await exchange1(get('/cgi/working'), { port: l.httpPort, timeoutMs: 5000 });
  const firstMs = Date.now() - t0;
  t.is(first.body.toString(), 'hello\n');
  t.true(firstMs < 1400, `the framed response waited ${firstMs} ms for the script to exit`);
  const second = await exchange1(get('/cgi/working'), { port: l.httpPort, timeoutMs: 8000 });
  t.is(second.status, 200, 'queued behind the working script, not refused');
  t.true(Date.now() - t0 >= 1400, 'the second script ran while the first still held the only slot');
  t.true(await eventually(() => fs.existsSync(`${marker}.done`)), 'the script was not left to finish its work');
});

test('[cgi] end_after_response: the group gets SIGTERM once the framed response is out; slot free at once, nothing logged', async (t) => {
  const marker = path.join(testTempDir(t, 'lisod-linger-'), 'pid');
  const l = await lisod({ script: script('linger.cgi'), timeout: 20, max_processes: 1, max_queue: 1, end_after_response: true,
    env: { LINGER_PIDFILE: marker } });
  const t0 = Date.now();
  await withConn({ port: l.httpPort }, async (c) => {
    for (let i = 0; i < 3; i++) { // one slot: each request waits for the previous script's end
      await c.write(get('/cgi/working'));
      const res = await c.readResponse({ timeoutMs: 5000 });
      t.is(res.status, 200);
      t.is(res.body.toString(), 'hello\n');
    }
  });
  const second = await exchange1(get('/cgi/working'), { port: l.httpPort, timeoutMs: 5000 });
  t.is(second.status, 200);
  // Without the SIGTERM each of the three later requests would wait 1.5 s for the slot (≥ 4.5 s).
  t.true(Date.now() - t0 < 3000, `four scripts that work 1.5 s after their response took ${Date.now() - t0} ms`);
  await sleep(2000);
  t.false(fs.existsSync(`${marker}.done`), 'a script ran on after its response');
  const log = fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');
  t.notRegex(log, /linger\.cgi|SIGTERM|killed/, 'ending a script that has answered is not an error');
});

test('timeout kills the process group after its leader exited: unframed response cut, slot freed', async (t) => {
  const pidFile = path.join(testTempDir(t, 'lisod-linger-'), 'pid');
  const l = await lisod({ script: script('linger.cgi'), timeout: 1.5, max_processes: 1, max_queue: 0, env: { LINGER_PIDFILE: pidFile } });
  const t0 = Date.now();
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/held'));
    const child = await childPid(t, pidFile);
    const raw = (await c.readToEnd(10_000)).toString('latin1');
    t.regex(raw, /^HTTP\/1\.1 200 OK\r\n/);
    t.regex(raw, /\r\n\r\n8\r\npartial\n\r\n$/, 'cut short: no last chunk, so the client cannot take it for complete');
    t.true(Date.now() - t0 >= 1400, 'ended before the timeout');
    t.true(await eventually(() => !alive(child)), 'the child holding stdout survived the timeout');
  });
  const again = await exchange1(get('/cgi/framed'), { port: l.httpPort, timeoutMs: 5000 });
  t.is(again.status, 200);
  await childPid(t, pidFile);
});
