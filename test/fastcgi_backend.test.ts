// The FastCGI transport (src/fastcgi/backend.ts) against the real Python responder and
// against scripted fake backends: keep-conn reuse, bodies (buffer, spool file, stream),
// protocolStatus mapping, malformed records, dead pooled connections, refusals, terminate.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AppBody, AppEnd, AppProcess } from '../src/app_transport.js';
import { FastCgiTransport, parseBackendAddress } from '../src/fastcgi/backend.js';
import { RecordDecoder, RecordType, decodeNameValuePairs, encodeRecords, type FcgiRecord } from '../src/fastcgi/record.js';
import { fcgiEnv, startNeverAccepting, startResponder } from './helpers/fastcgi.js';
import { testTempDir } from './helpers/tmp.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi');

interface Result { stdout: Buffer; stderr: string; end: AppEnd; sawEnd: boolean }

function collect(p: AppProcess): Promise<Result> {
  const out: Buffer[] = [];
  let stderr = '';
  let sawEnd = false;
  p.stdout.on('data', (b) => out.push(b));
  p.stdout.on('end', () => { sawEnd = true; });
  p.stderr.on('data', (b) => { stderr += b.toString(); });
  return new Promise((resolve) => p.on('close', (end) => resolve({ stdout: Buffer.concat(out), stderr, end, sawEnd })));
}

function transport(t: ExecutionContext, address: string, maxConns = 4): FastCgiTransport {
  const tr = new FastCgiTransport({ address, mount: '/t/', connectTimeoutMs: 2000, maxConns });
  t.teardown(() => tr.stop());
  return tr;
}

/** Waits (up to 10 s) for `ok`, polling: socket closes reach the fake server asynchronously. */
async function until(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ok() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
}

const bodyOf = (r: Result): string => r.stdout.subarray(r.stdout.indexOf('\r\n\r\n') + 4).toString();

async function probeBackend(t: ExecutionContext): Promise<{ tr: FastCgiTransport; pid: number }> {
  const r = await startResponder(probe, testTempDir(t, 'lisod-fcgi-'));
  t.teardown(r.stop);
  const tr = transport(t, `unix:${r.socketPath}`);
  return { tr, pid: r.child.pid! };
}

test('addresses: unix:PATH and HOST:PORT, with clear errors', (t) => {
  t.deepEqual(parseBackendAddress('unix:/run/php/fpm.sock'), { path: '/run/php/fpm.sock' });
  t.deepEqual(parseBackendAddress('127.0.0.1:9000'), { host: '127.0.0.1', port: 9000 });
  t.deepEqual(parseBackendAddress('[::1]:9000'), { host: '::1', port: 9000 });
  t.throws(() => parseBackendAddress('unix:relative.sock'), { message: /must be absolute/ });
  t.throws(() => parseBackendAddress('localhost'), { message: /not "unix:/ });
  t.throws(() => parseBackendAddress('h:70000'), { message: /not "unix:/ });
});

test('real responder: request after request over one pooled keep-conn connection', async (t) => {
  const { tr, pid } = await probeBackend(t);
  for (let i = 0; i < 4; i++) {
    const r = await collect(tr.open(fcgiEnv('/pid'), 'none'));
    t.deepEqual(r.end, { kind: 'exit', code: 0, signal: null });
    t.true(r.sawEnd);
    t.regex(r.stdout.toString(), /^Status: 200 OK\r\n/);
    t.is(bodyOf(r), String(pid));
    t.is(tr.idleCount, 1);
  }
});

test('real responder: buffered, spool-file and streamed bodies arrive intact', async (t) => {
  const { tr } = await probeBackend(t);
  const body = crypto.randomBytes(200_000);
  const sha = crypto.createHash('sha256').update(body).digest('hex');
  const env = fcgiEnv('/environ', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(body.length) });
  const file = path.join(testTempDir(t, 'lisod-spool-'), 'body');
  fs.writeFileSync(file, body);
  const fd = fs.openSync(file, 'r');
  const bodies: [string, AppBody][] = [['buffer', body], ['file', { fd, length: body.length }], ['stream', 'stream']];
  for (const [name, b] of bodies) {
    const p = tr.open(env, b);
    if (b === 'stream') {
      p.stdin!.write(body.subarray(0, 70_000));
      p.stdin!.write(body.subarray(70_000));
      p.stdin!.end();
    }
    const r = await collect(p);
    t.like(JSON.parse(bodyOf(r)), { length: body.length, sha256: sha }, name);
  }
  t.throws(() => fs.fstatSync(fd), { code: 'EBADF' }, 'the transport closed the spool fd');
});

test('real responder: STDERR records come out as stderr', async (t) => {
  const { tr } = await probeBackend(t);
  const r = await collect(tr.open(fcgiEnv('/raise'), 'none'));
  t.regex(r.stdout.toString(), /^Status: 500/);
  t.regex(r.stderr, /RuntimeError: probe failure before start_response/);
});

test('real responder: the process dying mid-request is a 502 failure, not a hang', async (t) => {
  const { tr } = await probeBackend(t);
  const r = await collect(tr.open(fcgiEnv('/crash'), 'none'));
  t.like(r.end, { kind: 'fail', status: 502 });
});

test('nobody listening: unix path and TCP port fail with 502 at once', async (t) => {
  const dir = testTempDir(t, 'lisod-fcgi-');
  const r1 = await collect(transport(t, `unix:${dir}/none.sock`).open(fcgiEnv('/'), 'none'));
  t.like(r1.end, { kind: 'fail', status: 502 });
  t.regex((r1.end as { reason: string }).reason, /cannot connect to the backend: ENOENT/);
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  const r2 = await collect(transport(t, `127.0.0.1:${port}`).open(fcgiEnv('/'), 'none'));
  t.regex((r2.end as { reason: string }).reason, /cannot connect to the backend: ECONNREFUSED/);
});

/** A fake backend: `answer(records of one request, socket, connection number, request number)`. */
async function fakeBackend(t: ExecutionContext,
  answer: (req: FcgiRecord[], s: net.Socket, conn: number, n: number) => void): Promise<{ address: string; conns: () => number; closed: () => number }> {
  const sock = path.join(testTempDir(t, 'lisod-fake-'), 'b.sock');
  let conns = 0;
  let closed = 0;
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    const conn = ++conns;
    let n = 0;
    const d = new RecordDecoder();
    let req: FcgiRecord[] = [];
    s.on('close', () => closed++);
    s.on('error', () => {});
    s.on('data', (c) => {
      for (const r of d.push(c)) {
        req.push(r);
        if (r.type === RecordType.Stdin && r.content.length === 0) {
          answer(req, s, conn, ++n);
          req = [];
        }
      }
    });
  });
  srv.listen(sock);
  await new Promise((r) => srv.once('listening', r));
  t.teardown(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    srv.close(() => r());
  }));
  return { address: `unix:${sock}`, conns: () => conns, closed: () => closed };
}

const rec = (type: number, id: number, content: Buffer | string): Buffer =>
  Buffer.concat(encodeRecords(type, id, Buffer.isBuffer(content) ? content : Buffer.from(content)));
const endReq = (id: number, app: number, proto: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(app, 0);
  b[4] = proto;
  return rec(RecordType.EndRequest, id, b);
};
const okAnswer = (id: number, text = 'ok'): Buffer =>
  Buffer.concat([rec(RecordType.Stdout, id, `Status: 200 OK\r\n\r\n${text}`), rec(RecordType.Stdout, id, ''), endReq(id, 0, 0)]);

test('protocolStatus: OVERLOADED → 503, UNKNOWN_ROLE → 502, unknown → 502', async (t) => {
  for (const [proto, status, re] of [[2, 503, /overloaded/], [3, 502, /UNKNOWN_ROLE/], [9, 502, /unknown protocolStatus 9/]] as const) {
    const fake = await fakeBackend(t, (req, s) => s.write(endReq(req[0].requestId, 0, proto)));
    const r = await collect(transport(t, fake.address).open(fcgiEnv('/'), 'none'));
    t.like(r.end, { kind: 'fail', status });
    t.regex((r.end as { reason: string }).reason, re);
  }
});

test('CANT_MPX_CONN: retried once on a fresh connection', async (t) => {
  const fake = await fakeBackend(t, (req, s, conn) => {
    const id = req[0].requestId;
    s.write(conn === 1 ? endReq(id, 0, 1) : okAnswer(id, 'second'));
  });
  const r = await collect(transport(t, fake.address).open(fcgiEnv('/'), Buffer.from('body')));
  t.deepEqual(r.end, { kind: 'exit', code: 0, signal: null });
  t.is(bodyOf(r), 'second');
  t.is(fake.conns(), 2);
});

test('a pooled connection found dead is retried on a fresh one when nothing was answered (idempotent methods)', async (t) => {
  // The backend serves one request per connection and drops the connection on the next one.
  const fake = await fakeBackend(t, (req, s, _conn, n) => {
    if (n === 1) s.write(okAnswer(req[0].requestId, `n${n}`));
    else s.destroy();
  });
  const tr = transport(t, fake.address);
  t.is(bodyOf(await collect(tr.open(fcgiEnv('/'), 'none'))), 'n1');
  t.is(tr.idleCount, 1);
  const r = await collect(tr.open(fcgiEnv('/', { REQUEST_METHOD: 'PUT' }), Buffer.from('again')));
  t.is(bodyOf(r), 'n1'); // the fresh connection's first request
  t.is(fake.conns(), 2);
  // A POST could not be resent (the backend may act on it before dying), so it never takes a
  // pooled connection: a new one, and the idle one is closed (maxConns stays the bound).
  t.is(tr.idleCount, 1);
  const post = await collect(tr.open(fcgiEnv('/', { REQUEST_METHOD: 'POST' }), Buffer.from('once')));
  t.is(bodyOf(post), 'n1');
  t.is(fake.conns(), 3);
});

test('never more than maxConns connections: a new one closes an idle one first', async (t) => {
  const fake = await fakeBackend(t, (req, s) => s.write(okAnswer(req[0].requestId)));
  const tr = transport(t, fake.address, 1);
  await collect(tr.open(fcgiEnv('/'), 'none'));
  t.is(tr.idleCount, 1);
  await collect(tr.open(fcgiEnv('/', { REQUEST_METHOD: 'POST' }), Buffer.from('x')));
  await until(() => fake.closed() === 1);
  t.is(fake.conns(), 2);
  t.is(fake.closed(), 1, 'the idle connection was closed before the new one was made');
});

test('a dead pooled connection with a streamed body already sent is not retried: 502', async (t) => {
  const fake = await fakeBackend(t, (req, s, _conn, n) => {
    if (n === 1) s.write(okAnswer(req[0].requestId));
    else s.destroy();
  });
  const tr = transport(t, fake.address);
  await collect(tr.open(fcgiEnv('/'), 'none'));
  const p = tr.open(fcgiEnv('/'), 'stream');
  p.stdin!.write(Buffer.from('streamed'));
  p.stdin!.end();
  const r = await collect(p);
  t.like(r.end, { kind: 'fail', status: 502 });
  t.is(fake.conns(), 1);
});

test('malformed records, records for another id, a reset mid-response: 502 and the connection dropped', async (t) => {
  const cases: [string, (id: number, s: net.Socket) => void, RegExp][] = [
    ['not FastCGI', (_id, s) => s.write('HTTP/1.1 200 OK\r\n\r\n'), /malformed FastCGI record.*version 72/],
    ['wrong id', (id, s) => s.write(rec(RecordType.Stdout, id + 1, 'x')), /for request \d+, expected \d+/],
    ['bad type', (id, s) => s.write(rec(RecordType.Params, id, 'x')), /unexpected FastCGI record type 4/],
    ['short END_REQUEST', (id, s) => s.write(rec(RecordType.EndRequest, id, 'abc')), /END_REQUEST body of 3 bytes/],
    ['reset mid-response', (id, s) => s.end(rec(RecordType.Stdout, id, 'Status: 200 OK\r\n\r\npart')), /connection (failed|closed)/],
  ];
  for (const [name, answer, re] of cases) {
    const fake = await fakeBackend(t, (req, s) => answer(req[0].requestId, s));
    const tr = transport(t, fake.address);
    const r = await collect(tr.open(fcgiEnv('/'), 'none'));
    t.like(r.end, { kind: 'fail', status: 502 }, name);
    t.regex((r.end as { reason: string }).reason, re, name);
    t.is(tr.idleCount, 0, name);
    await until(() => fake.closed() === 1);
    t.is(fake.closed(), 1, name);
  }
});

test('terminate() closes the backend connection (php-fpm ignores ABORT_REQUEST)', async (t) => {
  const fake = await fakeBackend(t, (req, s) => s.write(rec(RecordType.Stdout, req[0].requestId, 'Status: 200 OK\r\n\r\n')));
  const tr = transport(t, fake.address);
  const p = tr.open(fcgiEnv('/'), 'none');
  const done = collect(p);
  await new Promise<void>((res) => p.stdout.on('data', () => res()));
  p.terminate();
  t.like((await done).end, { kind: 'exit', code: null });
  await until(() => fake.closed() === 1);
  t.is(fake.closed(), 1);
  t.is(tr.idleCount, 0);
});

test('complete(): no more output, the connection returns to the pool at END_REQUEST', async (t) => {
  const fake = await fakeBackend(t, (req, s) => {
    const id = req[0].requestId;
    s.write(rec(RecordType.Stdout, id, 'Status: 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    setTimeout(() => s.write(Buffer.concat([rec(RecordType.Stdout, id, 'trailing junk'), endReq(id, 0, 0)])), 50);
  });
  const tr = transport(t, fake.address);
  const p = tr.open(fcgiEnv('/'), 'none');
  const done = collect(p);
  p.stdout.on('data', () => p.complete());
  const r = await done;
  t.is(bodyOf(r), 'ok');
  t.deepEqual(r.end, { kind: 'exit', code: 0, signal: null });
  t.is(tr.idleCount, 1);
});

test('a backend that never accepts: connect_timeout → 504, not a hang', async (t) => {
  const { port, stop } = await startNeverAccepting();
  t.teardown(stop);
  const tr = new FastCgiTransport({ address: `127.0.0.1:${port}`, mount: '/t/', connectTimeoutMs: 500, maxConns: 1 });
  t.teardown(() => tr.stop());
  const r = await collect(tr.open(fcgiEnv('/'), 'none'));
  t.like(r.end, { kind: 'fail', status: 504 });
  t.regex((r.end as { reason: string }).reason, /connecting to the backend took over 500 ms/);
});

test('a backend that answers and closes once it has CONTENT_LENGTH bytes: the answer arrives (file and streamed bodies)', async (t) => {
  // php-cgi at PHP_FCGI_MAX_REQUESTS reads CONTENT_LENGTH bytes, answers and exits. lisod sent
  // the empty STDIN record on its own after the last bytes, and when that write came after the
  // exit it failed with EPIPE and cost the answer (seen as 502s in fastcgi_php.test.ts); the
  // record now goes in the same write as the last bytes. (The race itself is not forced here.)
  const sock = path.join(testTempDir(t, 'lisod-fake-'), 'b.sock');
  const srv = net.createServer((s) => {
    const d = new RecordDecoder();
    let id = 0;
    let want = -1;
    let got = 0;
    s.on('error', () => {});
    s.on('data', (chunk) => {
      for (const r of d.push(chunk)) {
        if (r.type === RecordType.BeginRequest) id = r.requestId;
        if (r.type === RecordType.Params && r.content.length > 0) {
          want = Number(Object.fromEntries(decodeNameValuePairs(r.content)).CONTENT_LENGTH);
        }
        if (r.type === RecordType.Stdin) got += r.content.length;
        if (want >= 0 && got === want && r.type === RecordType.Stdin && r.content.length > 0) {
          s.write(okAnswer(id, `read ${got}`), () => s.destroy()); // no wait for the empty STDIN record
          return;
        }
      }
    });
  }).listen(sock);
  await new Promise((r) => srv.once('listening', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const body = crypto.randomBytes(300_000);
  const file = path.join(testTempDir(t, 'lisod-spool-'), 'body');
  fs.writeFileSync(file, body);
  const tr = transport(t, `unix:${sock}`);
  const env = fcgiEnv('/', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(body.length) });
  for (let i = 0; i < 5; i++) {
    const viaFile = await collect(tr.open(env, { fd: fs.openSync(file, 'r'), length: body.length }));
    t.is(bodyOf(viaFile), `read ${body.length}`, JSON.stringify(viaFile.end));
    const p = tr.open(env, 'stream');
    p.stdin!.write(body.subarray(0, 100_000));
    p.stdin!.write(body.subarray(100_000));
    setTimeout(() => p.stdin!.end(), 20); // the runner's end() comes later; nothing is written then
    const streamed = await collect(p);
    t.is(bodyOf(streamed), `read ${body.length}`, JSON.stringify(streamed.end));
  }
});
