// End-to-end CGI tests against a real lisod over HTTP and verified HTTPS: environment,
// bodies (1 MiB, chunked, ignored), NPH, Status/Location, failures, timeout, limits.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Conn, exchange1, get, headerCount, sha256, sleep, withConn, type HttpResponse } from './helpers/client.js';
import { repoRoot, type Lisod, type LisodOptions } from './helpers/lisod.js';
import { lisodPool } from './helpers/lisod_pool.js';
import { testTempDir } from './helpers/tmp.js';

const scripts = path.join(repoRoot, 'test', 'cgi-scripts');
const script = (name: string): string => path.join(scripts, name);
const pool = lisodPool();

/** One lisod per configuration, shared by the tests of this file. */
function server(name: string, cgi: Record<string, unknown>, opts: LisodOptions = {}): Promise<Lisod> {
  return pool(name, () => ({ ...opts, config: { cgi: cgi as never, ...(opts.config ?? {}) } }));
}

const envServer = (): Promise<Lisod> =>
  server('env', {
    script: script('env.cgi'),
    pass_env: ['LISOD_TEST_PASSED'],
    env: { FIXED_VAR: 'fixed value' },
  }, { env: { LISOD_TEST_PASSED: 'passed', LISOD_TEST_SECRET: 'must not leak', HTTP_PROXY: 'http://leak:1' } });

interface EnvDump {
  env: Record<string, string>;
  argv: string[];
  cwd: string;
  body_sha256: string;
  body_length: number;
}

function dump(res: HttpResponse): EnvDump {
  if (res.status !== 200) throw new Error(`expected 200 from env.cgi, got ${res.status}: ${res.body.toString()}`);
  return JSON.parse(res.body.toString('utf8')) as EnvDump;
}

function port(l: Lisod, tls: boolean): number {
  return tls ? l.httpsPort : l.httpPort;
}

/** Request bytes with a body (Content-Length framing). */
function post(target: string, body: Buffer, extra = '', method = 'POST'): Buffer {
  return Buffer.concat([
    Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: ${body.length}\r\n${extra}\r\n`, 'latin1'),
    body,
  ]);
}

/** Request bytes with a chunked body cut into the given chunk sizes. */
function chunkedPost(target: string, body: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [Buffer.from(
    `POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`)];
  let off = 0;
  let i = 0;
  while (off < body.length) {
    const n = Math.min(sizes[i++ % sizes.length]!, body.length - off);
    parts.push(Buffer.from(`${n.toString(16)}\r\n`), body.subarray(off, off + n), Buffer.from('\r\n'));
    off += n;
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

async function errorLog(l: Lisod, re: RegExp, timeoutMs = 5000): Promise<string> {
  const file = path.join(l.dirs.logs, 'error.log');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    if (re.test(text) || Date.now() > deadline) return text;
    await sleep(50);
  }
}

/** Test cleanup: kills the process group of pid (a script's child) if it is still around. */
function killGroupOf(pid: number): void {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
    process.kill(-Number(fields[2]), 'SIGKILL');
  } catch {
    // Gone already.
  }
}

/**
 * Waits (up to 5 s) for sleep.cgi to write its background child's PID to `pidFile`; checks
 * that the child runs and kills its process group when the test ends.
 */
async function scriptChild(t: ExecutionContext, pidFile: string): Promise<number> {
  const started = Date.now();
  while (!fs.existsSync(pidFile) && Date.now() - started < 5000) await sleep(20);
  const childPid = Number(fs.readFileSync(pidFile, 'utf8'));
  t.teardown(() => killGroupOf(childPid));
  t.true(alive(childPid));
  return childPid;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

/** True while the process exists and is not a zombie (an unreaped corpse counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX] /s.test(stat);
  } catch {
    return false;
  }
}

for (const tls of [false, true]) {
  const scheme = tls ? 'https' : 'http';

  test(`${scheme}: env.cgi sees every RFC 3875 / Liso variable and nothing else of lisod's`, async (t) => {
    const l = await envServer();
    const res = await exchange1(
      'GET /cgi/some/path%20x?a=1&b=%20 HTTP/1.1\r\nHost: localhost:1234\r\nAccept: text/html\r\n' +
        'Referer: http://localhost/ref\r\nAccept-Encoding: gzip\r\nAccept-Language: en-GB\r\n' +
        'Accept-Charset: utf-8\r\nCookie: a=1\r\nUser-Agent: lisod-test/1\r\nConnection: keep-alive\r\n' +
        'X-Custom: custom value\r\n\r\n',
      { port: port(l, tls), tls },
    );
    t.is(res.headers['content-type'], 'application/json');
    t.is(res.headers.server, 'Liso/1.0');
    const { env, cwd, argv, body_length } = dump(res);
    const expected: Record<string, string> = {
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_SOFTWARE: 'Liso/1.0',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_NAME: 'localhost',
      SERVER_PORT: String(port(l, tls)),
      SERVER_ADDR: '127.0.0.1',
      REMOTE_ADDR: '127.0.0.1',
      REQUEST_METHOD: 'GET',
      REQUEST_URI: '/cgi/some/path%20x?a=1&b=%20',
      SCRIPT_NAME: '/cgi',
      SCRIPT_FILENAME: script('env.cgi'),
      PATH_INFO: '/some/path x',
      QUERY_STRING: 'a=1&b=%20',
      HTTP_HOST: 'localhost:1234',
      HTTP_ACCEPT: 'text/html',
      HTTP_REFERER: 'http://localhost/ref',
      HTTP_ACCEPT_ENCODING: 'gzip',
      HTTP_ACCEPT_LANGUAGE: 'en-GB',
      HTTP_ACCEPT_CHARSET: 'utf-8',
      HTTP_COOKIE: 'a=1',
      HTTP_USER_AGENT: 'lisod-test/1',
      HTTP_CONNECTION: 'keep-alive',
      HTTP_X_CUSTOM: 'custom value',
      LISOD_TEST_PASSED: 'passed',
      FIXED_VAR: 'fixed value',
    };
    if (tls) Object.assign(expected, { HTTPS: 'on', SSL_CLIENT_VERIFY: 'NONE' }); // no client certificate asked for
    for (const [k, v] of Object.entries(expected)) t.is(env[k], v, k);
    if (tls) {
      t.regex(env.SSL_PROTOCOL ?? '', /^TLSv1\.[23]$/);
      t.regex(env.SSL_CIPHER ?? '', /^[A-Z0-9_-]+$/);
      expected.SSL_PROTOCOL = expected.SSL_CIPHER = '';
    }
    t.regex(env.REMOTE_PORT ?? '', /^[1-9][0-9]*$/);
    t.true(env.PATH !== undefined && env.PATH.length > 0);
    if (!tls) t.false('HTTPS' in env);
    t.false('CONTENT_LENGTH' in env);
    t.false('CONTENT_TYPE' in env);
    t.false('LISOD_TEST_SECRET' in env);
    t.false('HTTP_PROXY' in env);
    // Only the variables above, PATH and what Python adds itself (PEP 538 locale coercion).
    const allowed = new Set([...Object.keys(expected), 'REMOTE_PORT', 'PATH', 'LC_CTYPE']);
    t.deepEqual(Object.keys(env).filter((k) => !allowed.has(k)), []);
    t.is(cwd, scripts);
    t.deepEqual(argv, []);
    t.is(body_length, 0);
  });

  test(`${scheme}: 1 MiB POST body reaches the script intact`, async (t) => {
    const l = await envServer();
    const body = crypto.randomBytes(1 << 20);
    const res = await exchange1(post('/cgi/upload', body), { port: port(l, tls), tls });
    const d = dump(res);
    t.is(d.body_length, body.length);
    t.is(d.body_sha256, sha256(body));
    t.is(d.env.CONTENT_LENGTH, String(body.length));
    t.is(d.env.CONTENT_TYPE, 'application/octet-stream');
    t.is(d.env.REQUEST_METHOD, 'POST');
  });

  test(`${scheme}: chunked POST gets CONTENT_LENGTH after decoding`, async (t) => {
    const l = await envServer();
    // ≤ 4096 bytes (PIPE_BUF) go into the script's stdin pipe at spawn, then up to 64 KiB
    // through a socket on the pipe, above that from a spool file (3 MiB: a temp file).
    for (const size of [1, 4096, 4097, 5000, 65536, 3 << 20]) {
      const body = crypto.randomBytes(size);
      const res = await exchange1(chunkedPost('/cgi/chunked', body, [1, 100, 4096, 65536, 7]), { port: port(l, tls), tls });
      const d = dump(res);
      t.is(d.env.CONTENT_LENGTH, String(size));
      t.is(d.body_length, size);
      t.is(d.body_sha256, sha256(body));
      t.false('HTTP_TRANSFER_ENCODING' in d.env);
    }
  });
}

test('PATH_INFO and QUERY_STRING edge cases', async (t) => {
  const l = await envServer();
  const cases: Array<[string, string, string]> = [
    ['/cgi', '', ''],
    ['/cgi/', '/', ''],
    ['/cgi?only=query', '', 'only=query'],
    ['/cgi/login', '/login', ''],
    ['/cgi/a/b/', '/a/b/', ''],
    ['/cgi/caf%C3%A9/%7Euser', '/café/~user', ''],
    ['/cgi/a%2Fb', '/a/b', ''],
    ['/cgi/x?', '/x', ''],
    ['/cgi/x?a=1?b=2&c=%2F+d', '/x', 'a=1?b=2&c=%2F+d'],
    ['/cgi/plus+sign;param', '/plus+sign;param', ''],
  ];
  for (const [target, pathInfo, query] of cases) {
    const { env } = dump(await exchange1(get(target), { port: l.httpPort }));
    t.is(env.PATH_INFO, pathInfo, target);
    t.is(env.QUERY_STRING, query, target);
    t.is(env.REQUEST_URI, target, target);
  }
  for (const bad of ['/cgi/%zz', '/cgi/%00x', '/cgi/%ff']) {
    const res = await exchange1(get(bad), { port: l.httpPort });
    t.is(res.status, 400, bad);
  }
});

test('httpoxy: a Proxy request header never becomes HTTP_PROXY', async (t) => {
  const l = await envServer();
  const { env } = dump(await exchange1(get('/cgi/', 'Proxy: http://evil.example:3128\r\nX_Under: x\r\n'), { port: l.httpPort }));
  t.false('HTTP_PROXY' in env);
  t.false(Object.values(env).includes('http://evil.example:3128'));
  t.false(Object.keys(env).some((k) => k.startsWith('HTTP_X_UNDER')));
});

test('HEAD runs the script with REQUEST_METHOD=HEAD, sends no body, keeps the connection', async (t) => {
  const l = await envServer();
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/head', '', 'HEAD') + get('/cgi/after-head'));
    const [head, after] = await c.readResponses(2, { heads: [true, false] });
    t.is(head!.status, 200);
    t.is(head!.headers['x-request-method'], 'HEAD');
    t.regex(head!.headers['content-length'] ?? '', /^[1-9][0-9]*$/);
    t.is(head!.body.length, 0);
    t.is(dump(after!).env.PATH_INFO, '/after-head');
    t.is(headerCount(after!, 'content-length'), 1);
  });
});

test('keep-alive: pipelined CGI and static requests on one connection', async (t) => {
  const l = await envServer();
  await withConn({ port: l.httpPort }, async (c) => {
    const body = Buffer.from('x=1');
    await c.write(Buffer.concat([Buffer.from(get('/cgi/one')), post('/cgi/two', body), Buffer.from(get('/index.html')), Buffer.from(get('/cgi/three'))]));
    const [one, two, stat, three] = await c.readResponses(4);
    t.is(dump(one!).env.PATH_INFO, '/one');
    t.is(dump(two!).body_sha256, sha256(body));
    t.is(stat!.status, 200);
    t.regex(stat!.body.toString(), /lisod test default/);
    t.is(dump(three!).env.PATH_INFO, '/three');
    t.is(three!.headers.connection?.toLowerCase(), 'keep-alive');
  });
});

test('HTTP/1.0 request without Host: SERVER_PROTOCOL HTTP/1.0, SERVER_NAME from config', async (t) => {
  const l = await server('named', { script: script('env.cgi') }, { config: { server_name: 'cgi-test.example' } });
  const res = await exchange1('GET /cgi/old HTTP/1.0\r\n\r\n', { port: l.httpPort });
  const { env } = dump(res);
  t.is(env.SERVER_PROTOCOL, 'HTTP/1.0');
  t.is(env.SERVER_NAME, 'cgi-test.example');
  t.false('HTTP_HOST' in env);
});

// With request_buffering = false (streaming): pipe backpressure must reach the client. The
// default (buffered) mode is covered by test/app_seam.test.ts (spooled to an unnamed file).
test('upload backpressure: a 64 MiB POST to a script that reads late is not buffered', async (t) => {
  const l = await server('env-streaming', { script: script('env.cgi'), request_buffering: false });
  const body = crypto.randomBytes(64 << 20);
  const before = rssKiB(l.pid);
  await withConn({ port: l.httpPort }, async (c) => {
    const writing = c.write(post('/cgi/slow-reader?delay=1.5', body));
    await sleep(1000); // the script sleeps: everything not in pipes/sockets would pile up in lisod
    const during = rssKiB(l.pid);
    await writing;
    const res = await c.readResponse({ timeoutMs: 30_000 });
    const d = dump(res);
    t.is(d.body_length, body.length);
    t.is(d.body_sha256, sha256(body));
    t.true(during - before < 24 * 1024, `lisod RSS grew by ${during - before} KiB while the script was not reading`);
  });
});

// ---- Output forms: Status, Location, NPH, streaming ----

const statusServer = (): Promise<Lisod> => server('status', { script: script('status.cgi') });

test('Status header sets the status line; other headers and body relayed', async (t) => {
  const l = await statusServer();
  const res = await exchange1(get('/cgi/notfound'), { port: l.httpPort });
  t.is(res.status, 404);
  t.is(res.reason, 'Not Found');
  t.is(res.headers['x-script'], 'status');
  t.is(res.headers['content-type'], 'text/plain');
  t.is(res.framing, 'chunked');
  t.is(res.body.toString(), 'no such thing\n');
  const tea = await exchange1(get('/cgi/teapot'), { port: l.httpsPort, tls: true });
  t.is(tea.status, 418);
  t.is(tea.body.toString(), 'short and stout\n');
});

test('client redirect: absolute Location without Status → 302', async (t) => {
  const l = await statusServer();
  const res = await exchange1(get('/cgi/client-redirect'), { port: l.httpPort });
  t.is(res.status, 302);
  t.is(res.headers.location, 'http://example.org/elsewhere?x=1');
});

test('Location with a Status is relayed, not followed', async (t) => {
  const l = await statusServer();
  const res = await exchange1(get('/cgi/moved'), { port: l.httpPort });
  t.is(res.status, 301);
  t.is(res.headers.location, '/cgi/target');
  t.regex(res.body.toString(), /moved/);
});

test('local redirect is re-dispatched inside lisod as a GET', async (t) => {
  const l = await statusServer();
  const res = await exchange1(get('/cgi/local'), { port: l.httpPort });
  t.is(res.status, 200);
  t.is(res.body.toString(), 'target reached by GET with query from=local\n');
  t.false('location' in res.headers);
  const fromPost = await exchange1(post('/cgi/local', Buffer.from('a=b')), { port: l.httpsPort, tls: true });
  t.is(fromPost.status, 200);
  t.is(fromPost.body.toString(), 'target reached by GET with query from=local\n');
});

test('local redirect outside /cgi/ becomes a 302; a redirect loop ends in 500', async (t) => {
  const l = await statusServer();
  const out = await exchange1(get('/cgi/local-static'), { port: l.httpPort });
  t.is(out.status, 302);
  t.is(out.headers.location, '/index.html');
  const loop = await exchange1(get('/cgi/loop'), { port: l.httpPort, timeoutMs: 20_000 });
  t.is(loop.status, 500);
  t.regex(loop.headers['content-type'] ?? '', /^text\/html/);
});

test('204 from a script: no body sent, connection reusable', async (t) => {
  const l = await statusServer();
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/nocontent') + get('/cgi/target?again'));
    const [none, next] = await c.readResponses(2);
    t.is(none!.status, 204);
    t.is(none!.body.length, 0);
    t.is(next!.body.toString(), 'target reached by GET with query again\n');
  });
});

test('output streams as the script writes it', async (t) => {
  const l = await statusServer();
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/slow'));
    const deadline = Date.now() + 5000;
    while (!c.peek().includes('tick 0') && Date.now() < deadline) await sleep(10);
    t.true(c.peek().includes('tick 0'));
    t.false(c.peek().includes('tick 2'), 'first line arrived only after the script finished');
    const res = await c.readResponse();
    t.is(res.body.toString(), 'tick 0\ntick 1\ntick 2\n');
  });
});

test('download backpressure: a client that stops reading blocks the script', async (t) => {
  const l = await statusServer();
  const marker = path.join(l.dirs.base, `big-${process.hrtime.bigint()}`);
  const mib = 48; // well above what sockets, pipes and lisod's high-water mark can hold
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: l.httpPort, agent: false,
      path: `/cgi/big?mib=${mib}&marker=${encodeURIComponent(marker)}` }, resolve).on('error', reject);
  });
  res.pause();
  await sleep(1500);
  t.false(fs.existsSync(marker), `the script wrote ${mib} MiB although nobody read it`);
  const hash = crypto.createHash('sha256');
  let length = 0;
  res.on('data', (d: Buffer) => {
    hash.update(d);
    length += d.length;
  });
  res.resume();
  await new Promise((resolve) => res.on('end', resolve));
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = i & 0xff;
  const expected = crypto.createHash('sha256');
  for (let i = 0; i < mib; i++) expected.update(block);
  t.is(res.statusCode, 200);
  t.is(res.headers['transfer-encoding'], 'chunked');
  t.is(length, mib << 20);
  t.is(hash.digest('hex'), expected.digest('hex'));
  t.true(fs.existsSync(marker));
});

test('HTTP/1.0 client: close-delimited body', async (t) => {
  const l = await statusServer();
  const res = await exchange1('GET /cgi/big?mib=1 HTTP/1.0\r\nHost: localhost\r\n\r\n', { port: l.httpPort });
  t.is(res.status, 200);
  t.is(res.framing, 'close');
  t.is(res.body.length, 1 << 20);
});

const nphServer = (): Promise<Lisod> => server('nph', { script: script('nph.cgi') });

for (const tls of [false, true]) {
  test(`${tls ? 'https' : 'http'}: NPH output is relayed byte for byte; its Content-Length keeps the connection`, async (t) => {
    const l = await nphServer();
    await withConn({ port: port(l, tls), tls }, async (c) => {
      await c.write(get('/cgi/nph/path'));
      const body = 'nph says hello to GET /nph/path';
      const expected = `HTTP/1.1 299 Custom NPH\r\nServer: Liso/1.0\r\nContent-Type: text/plain\r\nX-Nph: yes\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const deadline = Date.now() + 5000;
      while (c.peek().length < expected.length && Date.now() < deadline) await sleep(10);
      t.is(c.peek().toString('latin1'), expected);
      await c.readResponse();
      // Issue 9: the script's own head framed the body and did not say close: reuse works.
      await c.write(get('/cgi/second'));
      const second = await c.readResponse();
      t.is(second.status, 299);
      t.is(second.body.toString(), 'nph says hello to GET /second');
      t.true(await c.quietFor(200), 'nothing after the second response');
    });
  });
}

test('NPH keep-alive: chunked on HTTP/1.1 keeps the connection; EOF-delimited, short, Connection: close, HTTP/1.0 close it', async (t) => {
  const l = await nphServer();
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/chunked'));
    const res = await c.readResponse();
    t.is(res.framing, 'chunked');
    t.is(res.body.toString(), 'hello world');
    await c.write(get('/cgi/long'));
    const long = await c.readResponse();
    t.is(long.body.toString(), 'hello', 'bytes beyond the script\'s Content-Length are not relayed');
    await c.write(get('/cgi/after-long'));
    t.is((await c.readResponse()).body.toString(), 'nph says hello to GET /after-long');
  });
  for (const [name, request] of [
    ['eof', get('/cgi/eof')],
    ['close', get('/cgi/close')],
    ['short', get('/cgi/short')], // fewer bytes than its Content-Length: the client must see the close
    ['http/1.0', 'GET /cgi/x HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n'],
  ] as const) {
    await withConn({ port: l.httpPort }, async (c) => {
      await c.write(request);
      const raw = (await c.readToEnd()).toString('latin1');
      t.regex(raw, /^HTTP\/1\.1 2\d\d /, name);
      t.true(raw.endsWith('nph says hello to GET /' + (name === 'http/1.0' ? 'x' : name)), name);
    });
  }
});

test('NPH answer to HEAD: head only, connection kept', async (t) => {
  const l = await nphServer();
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/x', '', 'HEAD'));
    const head = await c.readResponse({ head: true });
    t.is(head.status, 299);
    t.is(head.body.length, 0);
    await c.write(get('/cgi/y'));
    const next = await c.readResponse();
    t.is(next.body.toString(), 'nph says hello to GET /y');
  });
});

// ---- Failures ----

test('crashing script → 500 page; its stderr lines reach the error log', async (t) => {
  const l = await server('crash', { script: script('crash.cgi') });
  for (const tls of [false, true]) {
    const res = await exchange1(get('/cgi/'), { port: port(l, tls), tls });
    t.is(res.status, 500);
    t.regex(res.headers['content-type'] ?? '', /^text\/html/);
    t.regex(res.body.toString(), /500/);
    t.false(res.body.toString().includes('deliberate'), 'no stack trace to the client');
  }
  const log = await errorLog(l, /deliberate crash for the test/);
  t.regex(log, /crash\.cgi\[\d+\]: crash\.cgi: about to fail on purpose/);
  t.regex(log, /crash\.cgi\[\d+\]: RuntimeError: deliberate crash for the test/);
});

test('garbage output → 502; connection still usable', async (t) => {
  const l = await server('garbage', { script: script('garbage.cgi') });
  await withConn({ port: l.httpPort }, async (c) => {
    await c.write(get('/cgi/') + get('/index.html'));
    const [bad, stat] = await c.readResponses(2);
    t.is(bad!.status, 502);
    t.regex(bad!.body.toString(), /502/);
    t.false(bad!.body.toString().includes('garbage'));
    t.is(stat!.status, 200);
  });
  t.regex(await errorLog(l, /malformed header line/), /malformed header line/);
});

test('script that cannot be executed → 500', async (t) => {
  const base = testTempDir(t, 'lisod-cgi-noexec-');
  const plain = path.join(base, 'plain.cgi');
  fs.copyFileSync(script('hello.cgi'), plain);
  fs.chmodSync(plain, 0o755); // lisod refuses to start with a non-executable one: it loses x later
  const noInterp = path.join(base, 'nointerp.cgi');
  fs.writeFileSync(noInterp, '#!/nonexistent/interpreter\n', { mode: 0o755 });
  for (const [name, file] of [['noexec', plain], ['nointerp', noInterp]] as const) {
    const l = await server(name, { script: file });
    if (name === 'noexec') fs.chmodSync(plain, 0o644);
    const res = await exchange1(get('/cgi/'), { port: l.httpPort });
    t.is(res.status, 500, name);
    t.regex(res.body.toString(), /500/);
  }
});

test('silent script: killed with its process group after the timeout → 504; static keeps flowing', async (t) => {
  const pidFile = path.join(testTempDir(t, 'lisod-cgi-sleep-'), 'child.pid');
  const l = await server('sleep', { script: script('sleep.cgi'), timeout: 3, env: { SLEEP_PIDFILE: pidFile } });
  const started = Date.now();
  let settled = false;
  const slow = exchange1(get('/cgi/'), { port: l.httpPort, timeoutMs: 10_000 }).finally(() => { settled = true; });
  const childPid = await scriptChild(t, pidFile);
  // Static requests are answered while the script sleeps.
  for (let i = 0; i < 4; i++) {
    const res = await exchange1(get('/index.html'), { port: i % 2 ? l.httpsPort : l.httpPort, tls: i % 2 === 1 });
    t.is(res.status, 200);
  }
  t.false(settled, 'static responses waited for the CGI script');
  const res = await slow;
  t.is(res.status, 504);
  t.true(Date.now() - started >= 2900, 'killed before the configured timeout');
  await sleep(100);
  t.false(alive(childPid), 'the script\'s background child survived the timeout');
});

test('process limit: one running, one queued, the rest 503', async (t) => {
  const l = await server('limit', { script: script('sleep.cgi'), timeout: 2, max_processes: 1, max_queue: 1 });
  const conns = await Promise.all([0, 1, 2].map(() => Conn.open({ port: l.httpPort })));
  try {
    for (const c of conns) {
      await c.write(get('/cgi/'));
      await sleep(100); // arrival order: running, queued, rejected
    }
    const [a, b, c] = await Promise.all(conns.map((x) => x.readResponse({ timeoutMs: 10_000 })));
    t.is(c!.status, 503);
    t.is(c!.headers['retry-after'], '1');
    t.is(a!.status, 504);
    t.is(b!.status, 504);
  } finally {
    for (const c of conns) c.destroy();
  }
});

test('script that ignores a large upload: answered, lisod not stuck', async (t) => {
  const l = await server('ignores', { script: script('ignores-stdin.cgi') });
  const body = crypto.randomBytes(32 << 20);
  await withConn({ port: l.httpPort }, async (c) => {
    c.write(post('/cgi/', body)).catch(() => {}); // the server may close once it answered
    const res = await c.readResponse({ timeoutMs: 20_000 });
    t.is(res.status, 200);
    t.is(res.body.toString(), 'I did not read your upload\n');
  });
  const again = await exchange1(get('/cgi/'), { port: l.httpPort });
  t.is(again.status, 200);
  const stat = await exchange1(get('/index.html'), { port: l.httpsPort, tls: true });
  t.is(stat.status, 200);
});

// A hang-up abandons the request: a full close, or a FIN alone (half-close). lisod polls a
// connection awaiting its application for readable and hang-up at once.
for (const [how, leave] of [['disconnects', (c: Conn) => c.destroy()], ['half-closes', (c: Conn) => c.end()]] as const) {
  test(`client that ${how} mid-request: the script is stopped`, async (t) => {
    const pidFile = path.join(testTempDir(t, `lisod-cgi-${how}-`), 'child.pid');
    const l = await server(how, { script: script('sleep.cgi'), timeout: 30, env: { SLEEP_PIDFILE: pidFile } });
    const c = await Conn.open({ port: l.httpPort });
    await c.write(get('/cgi/'));
    const childPid = await scriptChild(t, pidFile);
    leave(c);
    const deadline = Date.now() + 5000;
    while (alive(childPid) && Date.now() < deadline) await sleep(50);
    t.false(alive(childPid));
    if (how === 'half-closes') t.true(await c.closesWithin(5000), 'the connection is closed');
  });
}

test('a request pipelined while the script works is answered after it, in order', async (t) => {
  const pidFile = path.join(testTempDir(t, 'lisod-cgi-pipe-'), 'child.pid');
  const l = await server('pipe', { script: script('sleep.cgi'), timeout: 2, env: { SLEEP_PIDFILE: pidFile } });
  const c = await Conn.open({ port: l.httpPort });
  try {
    await c.write(get('/cgi/'));
    await scriptChild(t, pidFile);
    await c.write(get('/index.html'));  // readable while lisod awaits the application
    const [slow, next] = await c.readResponses(2, { timeoutMs: 15_000 });
    t.is(slow!.status, 504);
    t.is(next!.status, 200);
    t.regex(next!.body.toString(), /lisod test default/);
  } finally {
    c.destroy();
  }
});
