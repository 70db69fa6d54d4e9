// FastCGI mounts through a real lisod: a supervised WSGI responder (50 concurrent requests,
// timeout → 504, crash → 502 then restart, STDERR in the error log with the mount) and a
// scripted fake backend on a socket (malformed records → 502, OVERLOADED → 503, a client
// that disconnects closes the backend connection, record padding and split PARAMS).
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exchange1, get, sleep, withConn } from './helpers/client.js';
import { repoRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';
import { RecordType, encodeRecords } from '../src/fastcgi/record.js';
import { FakeBackend } from './helpers/fastcgi.js';

const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi');

/** The fake backend: answers by PATH_INFO (the scaffolding: FakeBackend in helpers/fastcgi.ts). */
function answer(s: net.Socket, id: number, env: Record<string, string>): void {
  const out = (text: string): Buffer => FakeBackend.stdout(id, text);
  const end = (proto: number): Buffer => FakeBackend.end(id, proto);
  switch (env.PATH_INFO ?? '') {
    case '/hang': return; // never answers
    case '/garbage': s.write('HTTP/1.1 200 OK\r\n\r\nnot FastCGI'); return;
    case '/overloaded': s.write(end(2)); return;
    case '/stderr':
      s.write(Buffer.concat([...encodeRecords(RecordType.Stderr, id, Buffer.from('fake: first line\nfake: second')),
        out('Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok'), end(0)]));
      return;
    default:
      // One byte per record, each padded: the response arrives in 8-byte-aligned slivers.
      s.write(Buffer.concat([...[...'Content-Type: text/plain\r\n\r\nslivers'].map((c) => out(c)), out(''), end(0)]));
  }
}

interface Setup { lisod: Lisod; fake: FakeBackend }
let setup: Promise<Setup> | undefined;
function servers(): Promise<Setup> {
  setup ??= (async () => {
    const fake = new FakeBackend(tempDir('lisod-fake-'), answer);
    await fake.listening();
    const lisod = await startLisod({
      config: {
        max_line_bytes: 100_000, // a header line long enough that PARAMS exceed one record
        max_header_bytes: 200_000,
        fastcgi: [
          { path: '/app/', command: [probe], processes: 2, timeout: 1.5, max_queue: 100 },
          { path: '/fake/', socket: `unix:${fake.socketPath}`, timeout: 30 },
        ],
      },
    });
    return { lisod, fake };
  })();
  return setup;
}

test.after.always(async () => {
  const s = await setup?.catch(() => undefined);
  await s?.lisod.stop();
  await s?.fake.close();
});

const errorLog = (l: Lisod): string => fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');

test('50 concurrent requests through 2 supervised processes all get 200', async (t) => {
  const { lisod } = await servers();
  const results = await Promise.all(Array.from({ length: 50 }, () => exchange1(get('/app/pid'), { port: lisod.httpPort, timeoutMs: 30_000 })));
  t.deepEqual(results.map((r) => r.status), Array(50).fill(200));
  const pids = new Set(results.map((r) => r.body.toString()));
  t.true([...pids].every((p) => /^\d+$/.test(p)));
  t.true(pids.size <= 2 + 1, `${pids.size} processes`); // 2, plus a replacement if one crashed meanwhile
});

test('a backend silent for `timeout` → 504, and lisod keeps serving', async (t) => {
  const { lisod } = await servers();
  const r = await exchange1(get('/app/slow?4'), { port: lisod.httpPort, timeoutMs: 20_000 });
  t.is(r.status, 504);
  const ok = await exchange1(get('/app/'), { port: lisod.httpPort, timeoutMs: 20_000 });
  t.is(ok.status, 200);
  t.is(ok.body.toString(), 'probe ok\n');
});

test('a backend process that dies mid-request → 502; it is restarted and serves again', async (t) => {
  const { lisod } = await servers();
  const crash = await exchange1(get('/app/crash'), { port: lisod.httpPort, timeoutMs: 20_000 });
  t.is(crash.status, 502);
  let ok = 0;
  for (let i = 0; i < 20 && ok < 5; i++) {
    if ((await exchange1(get('/app/pid'), { port: lisod.httpPort, timeoutMs: 20_000 })).status === 200) ok++;
  }
  t.is(ok, 5);
  t.regex(errorLog(lisod), /fastcgi \/app\/\[\d+\]: exited with status 3 after \d+ ms; restarting in \d+ ms/);
});

test('STDERR records go to the error log, line by line, with the mount', async (t) => {
  const { lisod } = await servers();
  const r = await exchange1(get('/fake/stderr'), { port: lisod.httpPort, timeoutMs: 20_000 });
  t.is(r.body.toString(), 'ok');
  await sleep(200);
  const log = errorLog(lisod);
  t.regex(log, /error lisod\[\d+\]: fastcgi \/fake\/#\d+: fake: first line\n/);
  t.regex(log, /error lisod\[\d+\]: fastcgi \/fake\/#\d+: fake: second\n/);
});

test('fake backend: padded one-byte records reassemble; SCRIPT_NAME/PATH_INFO/HTTPS in PARAMS; big PARAMS split', async (t) => {
  const { lisod, fake } = await servers();
  const cookie = 'c=' + 'x'.repeat(70_000);
  const r = await exchange1(get('/fake/some/where?q=1', `Cookie: ${cookie}\r\n`), { port: lisod.httpsPort, tls: true, timeoutMs: 20_000 });
  t.is(r.status, 200);
  t.is(r.body.toString(), 'slivers');
  const env = fake.params.find((p) => p.PATH_INFO === '/some/where')!;
  t.like(env, { SCRIPT_NAME: '/fake', QUERY_STRING: 'q=1', HTTPS: 'on', HTTP_COOKIE: cookie, REQUEST_METHOD: 'GET', REDIRECT_STATUS: '200' });
});

test('malformed records → 502; OVERLOADED → 503; both logged, lisod keeps serving', async (t) => {
  const { lisod } = await servers();
  const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
  t.is((await exchange1(get('/fake/garbage'), opts)).status, 502);
  const busy = await exchange1(get('/fake/overloaded'), opts);
  t.is(busy.status, 503);
  t.is(busy.headers['retry-after'], '1');
  t.is((await exchange1(get('/fake/'), opts)).status, 200);
  const log = errorLog(lisod);
  t.regex(log, /502 \/fake\/#\d+: malformed FastCGI record from the backend: record version 72/);
  t.regex(log, /503 \/fake\/#\d+: the backend is overloaded \(FCGI_OVERLOADED\)/);
  // These ran on the native FastCGI client (native/fastcgi_client.h), not the TypeScript runner.
  t.regex(log, /info lisod\[\d+\]: fastcgi \/fake\/: served by the native FastCGI client/);
  t.regex(log, /info lisod\[\d+\]: fastcgi \/app\/: served by the native FastCGI client/);
});

test('a client that disconnects makes lisod close that backend connection', async (t) => {
  const { lisod, fake } = await servers();
  const before = fake.closed;
  const opened = fake.connections;
  await withConn({ port: lisod.httpPort }, async (c) => {
    await c.write(Buffer.from(get('/fake/hang')));
    const deadline = Date.now() + 10_000;
    while (fake.connections === opened && Date.now() < deadline) await sleep(20);
  });
  const deadline = Date.now() + 10_000;
  while (fake.closed === before && Date.now() < deadline) await sleep(20);
  t.true(fake.closed > before, 'the backend saw its connection close');
});
