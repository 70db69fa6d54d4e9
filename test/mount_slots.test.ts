// One pool of slots per application mount, whichever path serves a request: the native
// client (no body, small bodies) and the TypeScript runner (chunked and large bodies) count
// the same [cgi] max_processes / [[fastcgi]] max_conns and max_queue (native/fastcgi_slots.cc,
// src/app_slots.ts). End to end on real lisod processes, with native-probe.cgi recording each
// script's start and end, and a FastCGI backend that answers when told to.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { exchange1, get, sleep, withConn, type HttpResponse } from './helpers/client.js';
import { FakeBackend } from './helpers/fastcgi.js';
import { repoRoot, type Lisod } from './helpers/lisod.js';
import { lisodPool } from './helpers/lisod_pool.js';
import { eventually } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';

const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'native-probe.cgi');
const server = lisodPool();

interface Probe {
  lisod: Lisod;
  dir: string;
  starts(): number;
  overlap(): number; // most scripts running at once, from the start/end records
}

async function probed(name: string, maxProcesses: number, maxQueue: number): Promise<Probe> {
  const dir = tempDir('lisod-mount-slots-');
  const record = path.join(dir, 'runs.log');
  const lisod = await server(name, () => ({
    config: { cgi: { script: probe, max_processes: maxProcesses, max_queue: maxQueue, env: { NATIVE_PROBE_LOG: record } } },
  }));
  const lines = (): string[] => (fs.existsSync(record) ? fs.readFileSync(record, 'utf8').split('\n').filter(Boolean) : []);
  return {
    lisod, dir,
    starts: () => lines().filter((l) => l.startsWith('S ')).length,
    overlap: () => {
      let running = 0;
      let max = 0;
      for (const l of lines()) running += l.startsWith('S ') ? 1 : -1, max = Math.max(max, running);
      return max;
    },
  };
}

const send = (l: Lisod, raw: string | Buffer): Promise<HttpResponse> => exchange1(raw, { port: l.httpPort, timeoutMs: 30_000 });

/** A chunked POST: the native client leaves it to the TypeScript runner (CONTENT_LENGTH needs the whole body). */
function chunkedPost(target: string, body = 'abc'): string {
  return `POST ${target} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n` +
    `${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}

test('native and runner requests under max_processes = 2 never run more than 2 scripts at once', async (t) => {
  const p = await probed('mixed', 2, 64);
  const jobs: Array<Promise<HttpResponse>> = [];
  for (let i = 0; i < 16; i++) jobs.push(send(p.lisod, i % 2 === 0 ? get('/cgi/slow') : chunkedPost('/cgi/slow')));
  const answers = await Promise.all(jobs);
  for (const r of answers) t.is(r.body.toString(), 'first\nsecond\n', `status ${r.status}`);
  t.true(await eventually(() => p.starts() === 16), `${p.starts()} of 16 scripts started`);
  t.true(p.overlap() <= 2, `${p.overlap()} scripts ran at once under max_processes = 2`);
  t.is(p.overlap(), 2, 'both slots were busy at once (otherwise the check proves nothing)');
});

test('the queue is one for both paths: with one slot and one queue place, the later of two waiters gets 503', async (t) => {
  const p = await probed('queue', 1, 1);
  const go = path.join(p.dir, 'go');
  const first = send(p.lisod, get(`/cgi/hold?${go}`)); // native: holds the only slot
  t.true(await eventually(() => p.starts() === 1), 'the first script did not start');
  // Whichever of these two arrives first waits in the one queue place; the other is refused.
  // With a pool per path, the runner's request would run at once and nothing would be refused.
  const waiters = [send(p.lisod, chunkedPost(`/cgi/hold?${go}`)), send(p.lisod, get(`/cgi/hold?${go}`))];
  const refused = await Promise.race(waiters.map((w, i) => w.then((r) => [i, r.status] as const)));
  t.is(refused[1], 503, 'a request was answered while the slot was held, and not with 503');
  t.is(p.starts(), 1, 'a second script started while max_processes = 1 was held');
  fs.writeFileSync(go, '');
  t.is((await first).body.toString(), 'held\n');
  const other = await waiters[1 - refused[0]]!;
  t.is(other.status, 200);
  t.is(other.body.toString(), 'held\n');
  t.is(p.starts(), 2);
  t.is(p.overlap(), 1);
});

test('a runner request that leaves while waiting gives its queue place back', async (t) => {
  const p = await probed('withdraw', 1, 1);
  const go = path.join(p.dir, 'go');
  const first = send(p.lisod, get(`/cgi/hold?${go}`));
  t.true(await eventually(() => p.starts() === 1), 'the first script did not start');
  // The runner's request takes the queue place (given half a second to arrive); a GET sent
  // after it is refused at once, which shows it is waiting. Then its client leaves.
  await withConn({ port: p.lisod.httpPort }, async (c) => {
    await c.write(chunkedPost(`/cgi/hold?${go}`));
    await sleep(500);
    const probeRes = await exchange1(get('/cgi/fixed'), { port: p.lisod.httpPort, timeoutMs: 5000 });
    t.is(probeRes.status, 503, 'the chunked POST did not take the queue place');
  });
  // Its place is free again: the next request waits (and then runs) instead of a 503.
  const next = send(p.lisod, get('/cgi/fixed'));
  await sleep(300);
  fs.writeFileSync(go, '');
  t.is((await first).status, 200);
  t.is((await next).status, 201, 'the withdrawn waiter still held the queue place');
  t.true(await eventually(() => p.starts() === 2), `${p.starts()} scripts started (the one that left must not run)`);
  await sleep(300);
  t.is(p.starts(), 2, 'the request whose client left ran anyway');
});

test('a [[fastcgi]] mount: the runner\'s requests share max_conns and max_queue with the native client', async (t) => {
  const dir = tempDir('lisod-mount-slots-');
  const held: Array<() => void> = []; // one per request the backend has: answers it
  const backend = new FakeBackend(dir, (s, id) => {
    held.push(() => s.write(Buffer.concat([FakeBackend.stdout(id, 'Content-Type: text/plain\r\n\r\nheld\n'), FakeBackend.end(id)])));
  });
  await backend.listening();
  t.teardown(() => backend.close());
  const l = await server('fastcgi', () => ({
    config: { fastcgi: [{ path: '/app/', socket: `unix:${backend.socketPath}`, max_conns: 1, max_queue: 1, pipeline: false }] },
  }));
  const first = send(l, get('/app/first')); // native: holds the only slot
  t.true(await eventually(() => held.length === 1), 'the first request did not reach the backend');
  const waiters = [send(l, chunkedPost('/app/runner')), send(l, get('/app/native'))];
  const refused = await Promise.race(waiters.map((w, i) => w.then((r) => [i, r.status] as const)));
  t.is(refused[1], 503, 'a request was answered while the slot was held, and not with 503');
  t.is(held.length, 1, 'a second request reached the backend while max_conns = 1 was held');
  held.shift()!();
  t.is((await first).body.toString(), 'held\n');
  t.true(await eventually(() => held.length === 1), 'the waiting request was not sent once the slot was free');
  held.shift()!();
  const other = await waiters[1 - refused[0]]!;
  t.is(other.status, 200);
  t.is(other.body.toString(), 'held\n');
  t.is(backend.params.length, 2);
});
