// Hostile clients against a real lisod (issue 12), each bounded to a few seconds: slowloris
// heads, bodies sent a byte at a time (body_total_timeout), clients that stop reading,
// uploads to /cgi/ aborted mid-body, and connection floods at max_connections. lisod's
// open descriptors (/proc/PID/fd) are counted before and after each attack.
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { Conn, exchange1, get, sha256, sleep, type HttpResponse } from './helpers/client.js';
import { assertError, assertFile, describe } from './helpers/assert.js';
import { repoRoot, type Lisod } from './helpers/lisod.js';
import { useLisod } from './helpers/use_lisod.js';

const envCgi = path.join(repoRoot, 'test', 'cgi-scripts', 'env.cgi');

const site = useLisod(test, {
  servers: {
    heads: { config: { header_timeout: 1 } },
    bodies: {
      cgi: envCgi,
      config: { body_timeout: 1, body_total_timeout: 2, cgi: { max_processes: 2, max_queue: 4 } as never },
    },
    readers: { config: { send_timeout: 1 } },
    uploads: { cgi: envCgi },
    idle: { config: { max_connections: 4 } },
    flood: { config: { max_connections: 4, header_timeout: 30 } },
  },
});

function fdCount(l: Lisod): number {
  return fs.readdirSync(`/proc/${l.pid}/fd`).length;
}

/** Waits (up to timeoutMs) for lisod's descriptors to fall back to `before`; asserts they did. */
async function assertFdsBack(t: ExecutionContext, l: Lisod, before: number, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let now = fdCount(l);
  while (now > before && Date.now() < deadline) {
    await sleep(100);
    now = fdCount(l);
  }
  t.true(now <= before, `lisod holds ${now} descriptors after the attack, ${before} before`);
}

/** A request served promptly: the attack did not starve other clients. */
async function assertServes(t: ExecutionContext, l: Lisod): Promise<void> {
  const res = await exchange1(get('/hello.txt'), { port: l.httpPort, timeoutMs: 5000 });
  assertFile(t, res, site.www.files.get('/hello.txt')!);
}

/** Opens n connections in parallel. */
function openMany(n: number, port: number): Promise<Conn[]> {
  return Promise.all(Array.from({ length: n }, () => Conn.open({ port })));
}

// ---- slowloris heads (header_timeout = 1 s) ----------------------------------------------

test('slowloris: 30 heads dribbled a line at a time all get 408 and close; others are served meanwhile', async (t) => {
  const l = site.heads;
  await assertServes(t, l);
  const before = fdCount(l);
  const conns = await openMany(30, l.httpPort);
  const started = Date.now();
  const answers = conns.map((c) => c.readResponse({ timeoutMs: 8000 }));
  const drip = (async () => {
    await Promise.all(conns.map((c) => c.write('GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n')));
    for (let i = 0; i < 40 && !conns.every((c) => c.eof); i++) {
      await Promise.all(conns.map((c) => (c.eof ? undefined : c.write(`X-Drip-${i}: a\r\n`).catch(() => undefined))));
      await sleep(200);
    }
  })();
  await assertServes(t, l);
  for (const res of await Promise.all(answers)) assertError(t, res, 408);
  t.true(Date.now() - started < 7000, 'the header timeout is total, not per line');
  for (const c of conns) t.true(await c.closesWithin(3000), 'closed after 408');
  await drip;
  conns.forEach((c) => c.destroy());
  await assertFdsBack(t, l, before);
});

// ---- slow bodies (body_timeout = 1 s per gap, body_total_timeout = 2 s) -------------------

async function dribbleBody(c: Conn, target: string, length: number): Promise<HttpResponse> {
  await c.write(`POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${length}\r\n\r\n`);
  const answer = c.readResponse({ timeoutMs: 9000 });
  let stop = false;
  void answer.finally(() => { stop = true; }).catch(() => undefined);
  const drip = (async () => {
    // A byte every 250 ms never trips body_timeout (1 s); only the total deadline can.
    for (let i = 0; i < length && !stop && !c.eof; i++) {
      await c.write('x').catch(() => undefined);
      await sleep(250);
    }
  })();
  const res = await answer;
  stop = true;
  await drip;
  return res;
}

test('slow body to a static file: 408 at body_total_timeout although every gap is under body_timeout', async (t) => {
  const l = site.bodies;
  const c = await Conn.open({ port: l.httpPort });
  const started = Date.now();
  const res = await dribbleBody(c, '/hello.txt', 1000);
  assertError(t, res, 408);
  t.regex(res.body.toString(), /body_total_timeout/);
  t.regex(res.headers['connection'] ?? '', /^close$/i, describe(res));
  t.true(Date.now() - started < 8000, `answered after ${Date.now() - started} ms (a byte every 250 ms; the body needs 250 s)`);
  t.true(await c.closesWithin(3000));
  c.destroy();
});

test('slow bodies to /cgi/ cannot hold every script slot: 408 at the total deadline, then CGI serves again', async (t) => {
  const l = site.bodies;
  await assertServes(t, l);
  const conns = await openMany(6, l.httpPort); // max_processes 2 + max_queue 4
  const results = await Promise.all(conns.map((c) => dribbleBody(c, '/cgi/upload', 1000)));
  for (const res of results) {
    // 408 for those whose script was waiting on the body; a queued one may get 503 first.
    t.true(res.status === 408 || res.status === 503, describe(res));
  }
  t.true(results.some((r) => r.status === 408), 'the total deadline ended the slow uploads');
  conns.forEach((c) => c.destroy());
  let res: HttpResponse | undefined;
  for (let i = 0; i < 30; i++) {
    res = await exchange1(get('/cgi/after'), { port: l.httpPort });
    if (res.status === 200) break;
    await sleep(200);
  }
  t.is(res!.status, 200, `CGI serves again after the slow senders were cut: ${describe(res!)}`);
});

test('an application that pauses the body does not spend the client\'s total deadline (control)', async (t) => {
  // delay=3 makes the script read stdin only after 3 s (> body_total_timeout): the body
  // is sent at once, so the connection waits on the application, not on the client.
  const body = Buffer.alloc(4 << 20, 0x61); // more than the pipe and socket buffers hold
  const l = site.bodies;
  const c = await Conn.open({ port: l.httpPort });
  await c.write(`POST /cgi/slow?delay=3 HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n`);
  c.write(body).catch(() => undefined);
  const res = await c.readResponse({ timeoutMs: 20_000 });
  t.is(res.status, 200, describe(res));
  const d = JSON.parse(res.body.toString()) as { body_length: number; body_sha256: string };
  t.is(d.body_length, body.length);
  t.is(d.body_sha256, sha256(body));
  c.destroy();
});

// ---- slow readers (send_timeout = 1 s) -----------------------------------------------------

test('slow readers: 10 clients that stop reading a 10 MiB file are dropped; descriptors come back', async (t) => {
  const l = site.readers;
  await assertServes(t, l);
  const warm = await exchange1(get('/big.bin'), { port: l.httpPort }); // the file cache opens it once
  t.is(warm.status, 200);
  const before = fdCount(l);
  const conns = await openMany(10, l.httpPort);
  for (const c of conns) {
    c.socket.pause();
    await c.write(get('/big.bin'));
  }
  await sleep(3000);
  await assertServes(t, l);
  for (const c of conns) {
    c.socket.resume();
    t.true(await c.closesWithin(10_000), 'a stalled reader is closed');
    c.destroy();
  }
  await assertFdsBack(t, l, before);
});

// ---- aborted uploads to /cgi/ ---------------------------------------------------------------

test('30 uploads to /cgi/ aborted mid-body leave no descriptor behind', async (t) => {
  const l = site.uploads;
  const first = await exchange1(get('/cgi/warm'), { port: l.httpPort });
  t.is(first.status, 200, describe(first));
  await assertServes(t, l);
  const before = fdCount(l);
  for (let round = 0; round < 3; round++) {
    const conns = await openMany(10, l.httpPort);
    await Promise.all(conns.map((c) => c.write(
      `POST /cgi/upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n${'u'.repeat(1000)}`)));
    await sleep(300);
    conns.forEach((c) => c.destroy());
  }
  await assertFdsBack(t, l, before);
  const after = await exchange1(get('/cgi/after'), { port: l.httpPort });
  t.is(after.status, 200, describe(after));
});

// ---- connection floods at max_connections = 4 ----------------------------------------------

test('at max_connections the oldest idle keep-alive connection makes room for a new client', async (t) => {
  const l = site.idle;
  const held: Conn[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const c = await Conn.open({ port: l.httpPort });
      await c.write(get('/hello.txt'));
      assertFile(t, await c.readResponse(), site.www.files.get('/hello.txt')!);
      held.push(c);
      await sleep(50); // distinct idle ages
    }
    const before = fdCount(l);
    // A fifth client is served, not refused: the oldest idle connection was closed for it.
    const res = await exchange1(get('/hello.txt'), { port: l.httpPort });
    assertFile(t, res, site.www.files.get('/hello.txt')!);
    t.true(await held[0]!.closesWithin(3000), 'the oldest idle connection was reclaimed');
    t.is((await held[0]!.readToEnd(100)).length, 0, 'silently, like a keep-alive timeout');
    // The younger ones still work.
    for (const c of held.slice(1)) {
      await c.write(get('/hello.txt'));
      t.is((await c.readResponse()).status, 200);
    }
    t.true(fdCount(l) <= before, 'reclaiming does not grow the descriptor count');
  } finally {
    held.forEach((c) => c.destroy());
  }
});

test('flood: 300 clients over max_connections each get a 503 answer (none a silent close); busy ones are not reclaimed', async (t) => {
  const l = site.flood;
  await assertServes(t, l);
  const before = fdCount(l);
  // Four connections in the middle of a request: busy, so never reclaimed.
  const busy = await openMany(4, l.httpPort);
  await Promise.all(busy.map((c) => c.write('GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n')));
  await sleep(300);
  // 256 of these take lisod's pending-503 slots; the rest are beyond them.
  const extra = await openMany(300, l.httpPort);
  await sleep(500);
  await Promise.all(extra.map((c) => c.write(get('/hello.txt')).catch(() => undefined)));
  const answers = await Promise.all(extra.map((c) => c.readResponse({ timeoutMs: 8000 }).catch((e: Error) => e)));
  const statuses = new Map<string, number>();
  for (const a of answers) {
    const key = a instanceof Error ? `error: ${a.message.slice(0, 60)}` : String(a.status);
    statuses.set(key, (statuses.get(key) ?? 0) + 1);
  }
  t.deepEqual([...statuses.entries()], [['503', 300]], 'every refused client got a 503');
  for (const a of answers) {
    if (!(a instanceof Error)) t.regex(a.headers['connection'] ?? '', /^close$/i);
  }
  // The busy connections were kept: each completes its request.
  for (const c of busy) {
    await c.write('\r\n');
    t.is((await c.readResponse()).status, 200);
  }
  extra.forEach((c) => c.destroy());
  busy.forEach((c) => c.destroy());
  await assertFdsBack(t, l, before);
  await assertServes(t, l);
});
