// CGI processes start on a thread of their own (native/spawner.h), not on the event loop:
// while a script is starting, the loop serves everything else; a client that leaves while
// its script is starting gets that script ended once it runs, and the slot comes back.
// LISOD_SPAWN_DELAY_MS holds each start for a while, so that these cases can be reached.
// Both CGI paths: the native client's (plain GETs) and the runner's (src/cgi_transport.ts:
// here chunked uploads, which it streams to the script's stdin once the script runs).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { exchange1, get, sha256, sleep, withConn, type HttpResponse } from './helpers/client.js';
import { repoRoot, type Lisod } from './helpers/lisod.js';
import { errorLogText, lisodPool } from './helpers/lisod_pool.js';
import { childrenOf, eventually } from './helpers/procs.js';
import { tempDir } from './helpers/tmp.js';

const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'native-probe.cgi');
const server = lisodPool();
const kDelayMs = 2000;

function slowStarts(name: string, record: string): Promise<Lisod> {
  return server(name, () => ({
    config: { cgi: { script: probe, max_processes: 1, env: { NATIVE_PROBE_LOG: record } } },
    env: { LISOD_SPAWN_DELAY_MS: String(kDelayMs) },
  }));
}

const send = (l: Lisod, raw: string): Promise<HttpResponse> => exchange1(raw, { port: l.httpPort, timeoutMs: 20_000 });
const lines = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : []);

test('a static file is served while a CGI script is still starting', async (t) => {
  const record = path.join(tempDir('lisod-spawner-'), 'runs.log');
  const l = await slowStarts('static', record);
  let cgiDone = false;
  const cgi = send(l, get('/cgi/fixed')).then((r) => { cgiDone = true; return r; });
  await sleep(100); // the start is under way (it takes kDelayMs)
  const began = Date.now();
  for (let i = 0; i < 3; i++) {
    const r = await send(l, get('/index.html'));
    t.is(r.status, 200);
  }
  // Started on the loop, the first would wait for the rest of the start (~1.9 s).
  const took = Date.now() - began;
  t.true(took < kDelayMs / 2, `three static requests took ${took} ms while a script was starting`);
  t.false(cgiDone, 'the static requests were answered only after the script had started');
  t.deepEqual(lines(record), [], 'the script ran before its start was due');
  const r = await cgi;
  t.is(r.status, 201);
  t.is(r.body.toString(), 'fixed body\n');
});

test('a client that leaves while its script is starting: the script is ended once it runs, and its slot comes back', async (t) => {
  const record = path.join(tempDir('lisod-spawner-'), 'runs.log');
  const l = await slowStarts('leaves', record);
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/slow'));
    await sleep(100); // gone before its start completes
  });
  // max_processes = 1: this one waits for the slot the left request's process holds.
  const next = await send(l, get('/cgi/fixed'));
  t.is(next.status, 201);
  // The left request's script got SIGTERM as soon as it ran: before or after its probe
  // recorded its start. Every run that started also ended, /fixed's among them.
  t.true(await eventually(() => {
    const r = lines(record);
    return r.filter((x) => x.startsWith('S ')).length === r.filter((x) => x.startsWith('E ')).length;
  }), `a script did not end: ${lines(record).join(' | ')}`);
  t.true(lines(record).filter((x) => x.startsWith('S ')).length >= 1);
  t.true(await eventually(() => childrenOf(l.pid).length === 0), `children of lisod left: ${childrenOf(l.pid).join(' ')}`);
});

/** A chunked POST (the runner's path): its chunks, then the last chunk unless `open`. */
function chunkedPost(target: string, chunks: Buffer[], open = false): Buffer {
  const head = `POST ${target} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`;
  const parts: Buffer[] = [Buffer.from(head)];
  for (const c of chunks) parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  if (!open) parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

test("the runner's path (a chunked upload): static files are served while its script starts, and the whole body reaches the script", async (t) => {
  const record = path.join(tempDir('lisod-spawner-'), 'runs.log');
  const l = await slowStarts('runner-static', record);
  const chunks = [Buffer.alloc(70_000, 'a'), Buffer.alloc(5_000, 'b'), Buffer.from('tail\n')];
  let cgiDone = false;
  const cgi = send(l, chunkedPost('/cgi/dump', chunks).toString('latin1')).then((r) => { cgiDone = true; return r; });
  await sleep(100);
  const began = Date.now();
  for (let i = 0; i < 3; i++) t.is((await send(l, get('/index.html'))).status, 200);
  const took = Date.now() - began;
  t.true(took < kDelayMs / 2, `three static requests took ${took} ms while a script was starting`);
  t.false(cgiDone, 'the upload was answered before its script had started');
  const r = await cgi;
  t.is(r.status, 200);
  const dump = JSON.parse(r.body.toString()) as { body_length: number; body_sha256: string };
  const body = Buffer.concat(chunks);
  t.is(dump.body_length, body.length);
  t.is(dump.body_sha256, sha256(body));
});

test("the runner's path: a client that leaves mid-upload while its script starts: the script is ended once it runs", async (t) => {
  const record = path.join(tempDir('lisod-spawner-'), 'runs.log');
  const l = await slowStarts('runner-leaves', record);
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(chunkedPost('/cgi/dump', [Buffer.alloc(10_000, 'x')], true)); // never finished
    await sleep(100);
  });
  const next = await send(l, get('/cgi/fixed')); // max_processes = 1: needs the left one's slot
  t.is(next.status, 201);
  t.true(await eventually(() => {
    const r = lines(record);
    return r.filter((x) => x.startsWith('S ')).length === r.filter((x) => x.startsWith('E ')).length;
  }), `a script did not end: ${lines(record).join(' | ')}`);
  t.true(await eventually(() => childrenOf(l.pid).length === 0), `children of lisod left: ${childrenOf(l.pid).join(' ')}`);
});

test("the runner's path: a script that cannot be run answers 500, and the error log says why", async (t) => {
  const dir = tempDir('lisod-spawner-');
  const script = path.join(dir, 'gone.cgi');
  fs.writeFileSync(script, '#!/nonexistent/interpreter\n', { mode: 0o755 });
  const l = await server('runner-noexec', () => ({ config: { cgi: { script } } }));
  const r = await send(l, chunkedPost('/cgi/', [Buffer.from('hello')]).toString('latin1'));
  t.is(r.status, 500);
  t.true(await eventually(() => /gone\.cgi.*(No such file|ENOENT)/.test(errorLogText(l))), errorLogText(l).slice(-600));
  t.is((await send(l, get('/index.html'))).status, 200, 'lisod serves on');
});
