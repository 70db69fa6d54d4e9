// The Python FastCGI responder (cgi-bin/wsgi_fcgi.py) driven over a real Unix socket with
// lisod's record codec: fd 0 listening socket, keep-conn request after request in one
// process, bodies, PARAMS over 64 KiB, GET_VALUES, CANT_MPX_CONN, requests sent behind the
// active one, ABORT, STDERR, bad input.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RecordType, encodeAbortRequest, encodeBeginRequest, encodeParams, encodeStdin } from '../src/fastcgi/record.js';
import { FcgiClient, fcgiEnv, startResponder } from './helpers/fastcgi.js';
import { testTempDir } from './helpers/tmp.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const probe = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi');

async function withResponder(t: ExecutionContext) {
  const dir = testTempDir(t, 'lisod-fcgi-');
  const r = await startResponder(probe, dir);
  t.teardown(r.stop);
  return r;
}

function split(stdout: Buffer): { head: string; body: Buffer } {
  const i = stdout.indexOf('\r\n\r\n');
  return { head: stdout.subarray(0, i).toString('latin1'), body: stdout.subarray(i + 4) };
}

test('keep-conn: one process answers request after request on one connection', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  const pids = new Set<string>();
  for (let id = 1; id <= 5; id++) {
    const a = await c.request(id, fcgiEnv('/pid'));
    t.deepEqual(a.end, { appStatus: 0, protocolStatus: 0 });
    const { head, body } = split(a.stdout);
    t.regex(head, /^Status: 200 OK\r\nContent-Type: text\/plain$/);
    pids.add(body.toString());
  }
  t.deepEqual([...pids], [String(r.child.pid)]);
  t.false(c.closed);
});

test('without keep-conn the responder closes after END_REQUEST and accepts the next connection', async (t) => {
  const r = await withResponder(t);
  for (let i = 0; i < 3; i++) {
    const c = await FcgiClient.connect(r.socketPath);
    const a = await c.request(1, fcgiEnv('/pid'), undefined, false);
    t.is(split(a.stdout).body.toString(), String(r.child.pid));
    t.is(await c.next(), null); // closed by the responder
  }
});

test('environ, body to CONTENT_LENGTH, url_scheme: same bridge as CGI', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  const body = crypto.randomBytes(300_000);
  const a = await c.request(7, fcgiEnv('/environ', { REQUEST_METHOD: 'POST', CONTENT_LENGTH: String(body.length), HTTPS: 'on', QUERY_STRING: 'q=1' }), body);
  const info = JSON.parse(split(a.stdout).body.toString());
  t.like(info, {
    url_scheme: 'https', multithread: false, multiprocess: true, run_once: false, script_name: '/app',
    path_info: '/environ', query: 'q=1', length: body.length, after_end: '', native_strings: true,
  });
  t.is(info.sha256, crypto.createHash('sha256').update(body).digest('hex'));
});

test('PARAMS over 65,535 bytes arrive whole; UTF-8 bytes become latin-1 native strings', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  const cookie = 'k=' + 'v'.repeat(150_000);
  const a = await c.request(1, fcgiEnv('/env', { HTTP_COOKIE: cookie, PATH_TRANSLATED: '/é' }));
  const text = split(a.stdout).body.toString('latin1');
  t.true(text.includes(`HTTP_COOKIE=${cookie}\n`));
  t.true(text.includes(`PATH_TRANSLATED=${Buffer.from('/é').toString('latin1')}\n`));
});

test('large output streams as STDOUT records, bytes intact', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  const n = 3_000_000;
  const a = await c.request(1, fcgiEnv('/big', { QUERY_STRING: String(n) }));
  const { head, body } = split(a.stdout);
  t.regex(head, new RegExp(`Content-Length: ${n}`));
  t.is(body.length, n);
  for (let k = 0; k * 65536 < n; k++) t.is(body[k * 65536], k & 0xff);
});

test('application errors: 500 page before the head, appStatus 1 after it, traceback as STDERR', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  const before = await c.request(1, fcgiEnv('/raise'));
  t.regex(split(before.stdout).head, /^Status: 500 Internal Server Error/);
  t.regex(before.stderr, /RuntimeError: probe failure before start_response/);
  t.is(before.end.appStatus, 0);
  const after = await c.request(2, fcgiEnv('/raise-after'));
  t.is(split(after.stdout).body.toString(), 'partial ');
  t.is(after.end.appStatus, 1);
  t.regex(after.stderr, /probe failure after the headers/);
  const bad = await c.request(3, fcgiEnv('/bad-header'));
  t.regex(split(bad.stdout).head, /^Status: 500/);
  // And the process still serves.
  t.is(split((await c.request(4, fcgiEnv('/'))).stdout).body.toString(), 'probe ok\n');
});

test('GET_VALUES: one connection, one request, no multiplexing', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  t.deepEqual(await c.getValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS', 'OTHER']),
    { FCGI_MAX_CONNS: '1', FCGI_MAX_REQS: '1', FCGI_MPXS_CONNS: '0' });
  // An unknown management record gets UNKNOWN_TYPE naming it.
  c.send(Buffer.from('0163000000000000', 'hex'));
  const u = await c.next();
  t.is(u?.type, RecordType.UnknownType);
  t.is(u?.content[0], 0x63);
});

test('a second BEGIN_REQUEST while one is active gets CANT_MPX_CONN; the first completes', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  c.send([encodeBeginRequest(1, true), encodeParams(1, fcgiEnv('/'))]);
  c.send([encodeBeginRequest(2, true), encodeParams(2, fcgiEnv('/')), ...encodeStdin(2, Buffer.alloc(0))]);
  const refused = await c.next();
  t.is(refused?.type, RecordType.EndRequest);
  t.is(refused?.requestId, 2);
  t.is(refused?.content[4], 1); // FCGI_CANT_MPX_CONN
  c.send(encodeStdin(1, Buffer.alloc(0)));
  const a = await c.answer(1);
  t.is(split(a.stdout).body.toString(), 'probe ok\n');
});

test('requests sent behind the active one (after its last STDIN record) wait and are served next, in order', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  // /big writes 32 chunks and looks at the connection before each: requests 2 and 3 arrive
  // once the first chunk is out, and must neither be refused nor answered out of turn.
  c.send([encodeBeginRequest(1, true), encodeParams(1, fcgiEnv('/big', { QUERY_STRING: '2000000' })), ...encodeStdin(1, Buffer.alloc(0))]);
  const first = await c.next();
  t.is(first?.type, RecordType.Stdout);
  t.is(first?.requestId, 1);
  c.send([encodeBeginRequest(2, true), encodeParams(2, fcgiEnv('/pid')), ...encodeStdin(2, Buffer.alloc(0))]);
  c.send([encodeBeginRequest(3, true), encodeParams(3, fcgiEnv('/')), ...encodeStdin(3, Buffer.alloc(0))]);
  const big = await c.answer(1);
  t.is(split(Buffer.concat([first!.content, big.stdout])).body.length, 2_000_000);
  t.deepEqual(big.end, { appStatus: 0, protocolStatus: 0 });
  t.is(split((await c.answer(2)).stdout).body.toString(), String(r.child.pid));
  t.is(split((await c.answer(3)).stdout).body.toString(), 'probe ok\n');
  t.false(c.closed);
});

test('unknown role → UNKNOWN_ROLE; ABORT while reading the body ends the request', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  c.send(encodeBeginRequest(3, true, 2)); // FCGI_AUTHORIZER
  const role = await c.next();
  t.is(role?.content[4], 3);
  c.send([encodeBeginRequest(4, true), encodeParams(4, fcgiEnv('/environ', { CONTENT_LENGTH: '10' })), ...encodeStdin(4, Buffer.from('abc'))]);
  c.send(encodeAbortRequest(4));
  const end = await c.next();
  t.is(end?.type, RecordType.EndRequest);
  t.is(end?.requestId, 4);
  t.is((await c.request(5, fcgiEnv('/'))).end.protocolStatus, 0);
});

test('malformed records: the connection is dropped, the process keeps serving', async (t) => {
  const r = await withResponder(t);
  const bad = await FcgiClient.connect(r.socketPath);
  bad.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  t.is(await bad.next(), null);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  t.is(split((await c.request(1, fcgiEnv('/'))).stdout).body.toString(), 'probe ok\n');
  t.regex(r.stderr(), /dropping the connection: record version 71/);
});

test('a web server vanishing mid-request does not kill the responder', async (t) => {
  const r = await withResponder(t);
  const gone = await FcgiClient.connect(r.socketPath);
  gone.sendRequest(1, fcgiEnv('/big', { QUERY_STRING: '20000000' }));
  await gone.next(); // the response has started
  gone.close();
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  t.is(split((await c.request(1, fcgiEnv('/pid'))).stdout).body.toString(), String(r.child.pid));
});

test('SIGTERM while idle: exits 0 at once', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  await c.request(1, fcgiEnv('/')); // started: the handlers are installed before serving
  const exited = new Promise<number | null>((resolve) => r.child.once('exit', (code) => resolve(code)));
  r.child.kill('SIGTERM');
  t.is(await exited, 0);
});

test('SIGTERM during a request: the response completes, then the process exits', async (t) => {
  const r = await withResponder(t);
  const c = await FcgiClient.connect(r.socketPath);
  t.teardown(() => c.close());
  c.sendRequest(1, fcgiEnv('/slow', { QUERY_STRING: '0.5' }));
  await new Promise((res) => setTimeout(res, 200));
  const exited = new Promise<number | null>((resolve) => r.child.once('exit', (code) => resolve(code)));
  r.child.kill('SIGTERM');
  const a = await c.answer(1);
  t.is(split(a.stdout).body.toString(), 'slept\n');
  t.is(await exited, 0);
});

test('started without a listening socket: exit 2 with a message saying how to start it', (t) => {
  const p = spawnSync(path.join(repoRoot, 'cgi-bin', 'flaskr.fcgi'), [], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  t.is(p.status, 2);
  t.regex(p.stderr, /listening socket as fd 0 .* --bind unix:PATH/);
});

test('the response\'s last bytes, the stream end and END_REQUEST leave in one send; streamed chunks leave as yielded', (t) => {
  // Record types per sendall() of the responder (6 = STDOUT, 3 = END_REQUEST): one send per
  // complete response wakes the web server once, not twice.
  const p = spawnSync('python3', [path.join(repoRoot, 'test', 'cgi-scripts', 'fcgi_sends.py')], { encoding: 'utf8', timeout: 30_000 });
  t.is(p.status, 0, p.stderr);
  const got = JSON.parse(p.stdout) as Record<string, { sends: number[][]; body: string }>;
  t.deepEqual(got.length, { sends: [[6, 6, 3]], body: 'hello' }); // Content-Length reached
  t.deepEqual(got['length-generator'], { sends: [[6], [6, 6, 3]], body: 'helloworld' });
  t.deepEqual(got.head, { sends: [[6, 6, 3]], body: '' }); // no body byte: the head is last
  t.deepEqual(got.list, { sends: [[6], [6, 6, 3]], body: 'ab' }); // a list's last non-empty chunk
  t.deepEqual(got.stream, { sends: [[6], [6], [6, 3]], body: 'onetwo' }); // unknown end: flushed as yielded
});
