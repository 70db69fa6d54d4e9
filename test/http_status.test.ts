// End-to-end status codes of the core issue over real sockets: 400 variants, 403, 404,
// 408, 411, 413, 414, 431 (then close), 405, 501, 503, 505; HTTP and HTTPS.
import test, { type ExecutionContext } from 'ava';
import { Conn, exchange1, get, sha256, sleep, withConn, type HttpResponse } from './helpers/client.js';
import { assertCommonHeaders, assertConnectionHonest, assertError, assertFile, describe } from './helpers/assert.js';
import type { DocFile } from './helpers/docroot.js';
import { useLisod } from './helpers/use_lisod.js';

const kMaxBody = 1024;

const site = useLisod(test, {
  docroot: { unreadable: true },
  servers: {
    // runs unprivileged so a mode-000 file really is unreadable
    srv: { unprivileged: true, config: { max_body_bytes: kMaxBody, max_header_bytes: 16384 } },
    // 1 s header/body/keep-alive/send timeouts
    timeouts: { config: { header_timeout: 1, body_timeout: 1, keep_alive_timeout: 1, send_timeout: 1 } },
    full: { config: { max_connections: 4 } },
  },
});

const hello = (): DocFile => site.www.files.get('/hello.txt')!;

/** Sends raw bytes on a fresh connection, checks the error response and that Connection is honest. */
async function expectError(t: ExecutionContext, raw: string | Buffer, status: number, tls = false): Promise<HttpResponse> {
  return withConn({ port: tls ? site.srv.httpsPort : site.srv.httpPort, tls }, async (c) => {
    await c.write(typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw);
    const res = await c.readResponse();
    assertError(t, res, status);
    await assertConnectionHonest(t, c, res, hello(), '/hello.txt');
    return res;
  });
}

// ---- 400 -------------------------------------------------------------------------------

const kBad: Array<[string, string]> = [
  ['garbage text', 'hello there, server\r\n\r\n'],
  ['binary garbage', '\x00\x01\x02\x03\xff\xfe garbage\r\n\r\n'],
  ['request line without target/version', 'GET\r\n\r\n'],
  ['request line without version', 'GET /hello.txt\r\nHost: localhost\r\n\r\n'],
  ['extra request line token', 'GET /hello.txt HTTP/1.1 extra\r\nHost: localhost\r\n\r\n'],
  ['double space in request line', 'GET  /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n'],
  ['malformed version', 'GET /hello.txt HTTP/1\r\nHost: localhost\r\n\r\n'],
  ['lower-case protocol name', 'GET /hello.txt http/1.1\r\nHost: localhost\r\n\r\n'],
  ['bare CR ending the request line', 'GET /hello.txt HTTP/1.1\rHost: localhost\r\n\r\n'],
  ['bare CR inside a header value', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-A: a\rb\r\n\r\n'],
  ['missing Host on HTTP/1.1', 'GET /hello.txt HTTP/1.1\r\nUser-Agent: t\r\n\r\n'],
  ['empty Host (RFC 9110 §4.2.1)', 'GET /hello.txt HTTP/1.1\r\nHost:\r\n\r\n'],
  ['blank Host', 'GET /hello.txt HTTP/1.1\r\nHost:   \r\n\r\n'],
  ['empty Host on HTTP/1.0', 'GET /hello.txt HTTP/1.0\r\nHost:\r\n\r\n'],
  ['absolute-form without authority', 'GET http:///hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n'],
  ['two Host headers (RFC 9112 §3.2)', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nHost: example.com\r\n\r\n'],
  ['conflicting Content-Length headers',
    'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['conflicting Content-Length list', 'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5, 6\r\n\r\nhello!'],
  ['negative Content-Length', 'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n'],
  ['non-numeric Content-Length', 'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n'],
  ['Content-Length with Transfer-Encoding',
    'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['space inside header name', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n'],
  ['parenthesis in header name', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nBad(Name): x\r\n\r\n'],
  ['whitespace before colon', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Foo : bar\r\n\r\n'],
  ['header line without colon', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n'],
  ['obs-fold continuation line', 'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Foo: a\r\n  folded\r\n\r\n'],
  ['invalid chunk size', 'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
];

for (const [name, raw] of kBad) {
  test(`400: ${name}`, async (t) => {
    await expectError(t, raw, 400);
  });
}

test('400 over TLS too (garbage, missing Host)', async (t) => {
  await expectError(t, 'complete nonsense\r\n\r\n', 400, true);
  await expectError(t, 'GET / HTTP/1.1\r\n\r\n', 400, true);
});

test('HTTP/1.0 without Host is fine (control for the missing-Host 400)', async (t) => {
  const res = await exchange1('GET /hello.txt HTTP/1.0\r\n\r\n', { port: site.srv.httpPort });
  assertFile(t, res, hello());
});

// ---- 403 / 404 -------------------------------------------------------------------------

test('403 for a file the server cannot read', async (t) => {
  await expectError(t, get(site.www.unreadable!), 403);
});

test('404 for missing files, also via HEAD (no body) and over TLS', async (t) => {
  await expectError(t, get('/no-such-file.html'), 404);
  await expectError(t, get('/sub/missing/deeper.txt'), 404);
  await expectError(t, get('/no-such-file.html'), 404, true);
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(get('/nope.txt', '', 'HEAD') + get('/hello.txt'));
  const r1 = await c.readResponse({ head: true });
  assertError(t, r1, 404, { head: true });
  t.is(r1.raw.length, r1.raw.indexOf('\r\n\r\n') + 4, 'HEAD 404 carries no body bytes');
  assertFile(t, await c.readResponse(), hello());
  c.destroy();
});

// ---- 411 / 413 -------------------------------------------------------------------------

test('411: POST without Content-Length or Transfer-Encoding', async (t) => {
  await expectError(t, 'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', 411);
});

test('413: Content-Length over max_body_bytes, answered without waiting for the body', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${kMaxBody * 4}\r\n\r\n`);
  const res = await c.readResponse({ timeoutMs: 5000 });
  assertError(t, res, 413);
  c.destroy();
});

test('413: Expect: 100-continue with a too-large body gets 413, not 100', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: ${kMaxBody + 1}\r\n\r\n`);
  const res = await c.readResponse({ timeoutMs: 5000 });
  assertError(t, res, 413);
  c.destroy();
});

test('413: chunked body that grows over max_body_bytes', async (t) => {
  const chunk = 'a'.repeat(512);
  const body = Array.from({ length: 6 }, () => `200\r\n${chunk}\r\n`).join('') + '0\r\n\r\n';
  await expectError(t, `POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${body}`, 413);
});

test('a body of exactly max_body_bytes is accepted (control for 413)', async (t) => {
  const body = 'b'.repeat(kMaxBody);
  const res = await exchange1(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${kMaxBody}\r\n\r\n${body}`,
    { port: site.srv.httpPort });
  assertFile(t, res, hello());
});

// ---- 414 / 431 -------------------------------------------------------------------------

test('414: request-target over the limit (9000 and 20000 octets, default limits)', async (t) => {
  await expectError(t, get(`/${'a'.repeat(9000)}`), 414);
  await expectError(t, get(`/hello.txt?${'q'.repeat(20000)}`), 414);
});

test('a 7900-octet target is not too long (RFC 9112 §3 recommends 8000)', async (t) => {
  const res = await exchange1(get(`/hello.txt?${'q'.repeat(7880)}`), { port: site.srv.httpPort });
  assertFile(t, res, hello());
});

// 431 closes the connection: what follows an oversized head has no trusted framing, so
// parsing it as the next request would be request smuggling (README: Departures from Liso).
async function expect431ThenClose(t: ExecutionContext, c: Conn): Promise<void> {
  const res = await c.readResponse();
  assertError(t, res, 431);
  t.regex(res.headers['connection'] ?? '', /^close$/i, describe(res));
  const rest = await c.readToEnd(5000);
  t.is(rest.length, 0, `nothing answered after the 431: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`);
  c.destroy();
}

test('431: header line over 8 KiB is answered, then the connection closes (pipelined request not served)', async (t) => {
  const big = `GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'x'.repeat(9000)}\r\nX-After: 1\r\n\r\n`;
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(big + get('/range.txt')).catch(() => undefined);
  await expect431ThenClose(t, c);
});

test('431: long header line arriving in pieces over TLS, then close', async (t) => {
  const c = await Conn.open({ port: site.srv.httpsPort, tls: true });
  const big = `GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'y'.repeat(20000)}\r\n\r\n${get('/range.txt')}`;
  await c.writeSlowly(big, 5, 2048).catch(() => undefined);
  await expect431ThenClose(t, c);
});

test('431: header block over max_header_bytes (lines each under 8 KiB), then close', async (t) => {
  const lines = [1, 2, 3].map((i) => `X-Part-${i}: ${'z'.repeat(7000)}\r\n`).join('');
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(`GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n${lines}\r\n${get('/range.txt')}`).catch(() => undefined);
  await expect431ThenClose(t, c);
});

test('431 on a POST: its body is never served as a second request (smuggling)', async (t) => {
  // The body is itself a complete request; before the fix it was answered 200.
  const smuggled = get('/hello.txt');
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'x'.repeat(9000)}\r\n` +
    `Content-Length: ${smuggled.length}\r\n\r\n${smuggled}`).catch(() => undefined);
  await expect431ThenClose(t, c);
});

test('other errors that leave request bytes unread close too (414, 505, 413, 411)', async (t) => {
  for (const [raw, status] of [
    [get(`/${'a'.repeat(9000)}`) + get('/hello.txt'), 414],
    ['GET /hello.txt HTTP/2.0\r\nHost: localhost\r\n\r\n' + get('/hello.txt'), 505],
    [`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${kMaxBody + 1}\r\n\r\n` + get('/hello.txt'), 413],
    ['POST /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n' + get('/hello.txt'), 411],
  ] as const) {
    const c = await Conn.open({ port: site.srv.httpPort });
    await c.write(raw).catch(() => undefined);
    const res = await c.readResponse();
    assertError(t, res, status);
    t.regex(res.headers['connection'] ?? '', /^close$/i, describe(res));
    t.is((await c.readToEnd(5000)).length, 0, `nothing after the ${status}`);
    c.destroy();
  }
});

test('errors that consumed the whole request keep the connection (404, 405 and 501 without a body)', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(get('/missing.txt') + get('/hello.txt', '', 'DELETE') + get('/hello.txt', '', 'BREW') + get('/hello.txt'));
  const [r404, r405, r501, ok] = await c.readResponses(4);
  for (const [r, status] of [[r404!, 404], [r405!, 405], [r501!, 501]] as const) {
    assertError(t, r, status);
    t.regex(r.headers['connection'] ?? '', /^keep-alive$/i, describe(r));
  }
  assertFile(t, ok!, hello());
  c.destroy();
});

// ---- 501 / 505 -------------------------------------------------------------------------

// Static paths: the other standard methods → 405 with Allow (RFC 9110 §15.5.6); an
// unknown token → 501; a malformed one → 400 (issue 9 item 7). /cgi/ takes them all
// (test/protocol.test.ts).
for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
  test(`405 with Allow: method ${method} on a static file`, async (t) => {
    const body = method === 'PUT' || method === 'PATCH' ? 'Content-Length: 3\r\n\r\nabc' : '\r\n';
    const res = await expectError(t, `${method} /hello.txt HTTP/1.1\r\nHost: localhost\r\n${body}`, 405);
    t.is(res.headers['allow'], 'GET, HEAD, POST', describe(res));
  });
}

test('405 to PUT with Expect: 100-continue comes without a 100 (the body is not wanted), then close', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write('PUT /hello.txt HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
  const res = await c.readResponse();
  assertError(t, res, 405);
  t.regex(res.headers['connection'] ?? '', /^close$/i, describe(res));
  c.destroy();
});

test('405 for OPTIONS * and CONNECT host:port', async (t) => {
  for (const line of ['OPTIONS * HTTP/1.1', 'CONNECT localhost:443 HTTP/1.1']) {
    const res = await expectError(t, `${line}\r\nHost: localhost\r\n\r\n`, 405);
    t.is(res.headers['allow'], 'GET, HEAD, POST', describe(res));
  }
});

for (const method of ['BREW', 'get', 'M-SEARCH']) {
  test(`501: unknown method ${method}`, async (t) => {
    const res = await expectError(t, `${method} /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n`, 501);
    t.false('allow' in res.headers, describe(res));
  });
}

test('400: malformed method token', async (t) => {
  await expectError(t, 'GE(T /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', 400);
  await expectError(t, 'G\x01T /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n', 400);
});

for (const version of ['HTTP/0.1', 'HTTP/2.0', 'HTTP/3.0', 'HTTP/0.9']) {
  test(`505: ${version} in the request line`, async (t) => {
    await expectError(t, `GET /hello.txt ${version}\r\nHost: localhost\r\n\r\n`, 505);
  });
}

test('505 over TLS', async (t) => {
  await expectError(t, 'GET /hello.txt HTTP/2.0\r\nHost: localhost\r\n\r\n', 505, true);
});

// ---- 408 and idle timeouts (header_timeout = body_timeout = keep_alive_timeout = 1 s) -----

test('408: request head not completed within header_timeout, then close', async (t) => {
  const c = await Conn.open({ port: site.timeouts.httpPort });
  await c.write('GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n');
  const res = await c.readResponse({ timeoutMs: 6000 });
  assertError(t, res, 408);
  t.regex(res.headers['connection'] ?? '', /^close$/i, describe(res));
  t.true(await c.closesWithin(3000), 'connection closed after 408');
  c.destroy();
});

test('408: slowloris dribbling header bytes does not reset the header timeout', async (t) => {
  const c = await Conn.open({ port: site.timeouts.httpPort });
  const started = Date.now();
  await c.write('GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n');
  let res: HttpResponse | undefined;
  const reader = c.readResponse({ timeoutMs: 8000 }).then((r) => { res = r; });
  for (let i = 0; i < 30 && !res && !c.eof; i++) {
    await c.write(`X-Drip-${i}: a\r\n`).catch(() => undefined);
    await sleep(200);
  }
  await reader;
  assertError(t, res!, 408);
  t.true(Date.now() - started < 5000, 'the 1 s header timeout is total, not per byte');
  c.destroy();
});

test('408: body not completed within body_timeout', async (t) => {
  const c = await Conn.open({ port: site.timeouts.httpPort });
  await c.write('POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc');
  const res = await c.readResponse({ timeoutMs: 6000 });
  assertError(t, res, 408);
  t.true(await c.closesWithin(3000));
  c.destroy();
});

test('idle keep-alive connection is closed silently after keep_alive_timeout', async (t) => {
  const c = await Conn.open({ port: site.timeouts.httpPort });
  await c.write(get('/hello.txt'));
  const res = await c.readResponse();
  assertFile(t, res, hello());
  t.regex(res.headers['connection'] ?? '', /^keep-alive$/i);
  const rest = await c.readToEnd(6000);
  t.is(rest.length, 0, `nothing sent on an idle close: ${JSON.stringify(rest.toString('latin1'))}`);
});

test('a connection that never sends anything is closed', async (t) => {
  const c = await Conn.open({ port: site.timeouts.httpPort });
  const rest = await c.readToEnd(6000);
  if (rest.length > 0) t.regex(rest.toString('latin1'), /^HTTP\/1\.1 408 /, 'only a 408 may be sent');
  t.pass();
});

test('a client that stops reading is dropped after send_timeout', async (t) => {
  const c = await Conn.open({ port: site.timeouts.httpPort });
  c.socket.pause();
  await c.write(get('/big.bin') + get('/big.bin'));
  await sleep(4000); // send_timeout is 1 s; 20 MiB cannot fit in the socket buffers
  c.socket.resume();
  const got = await c.readToEnd(10_000).catch((e: Error) => e);
  t.true(Buffer.isBuffer(got), `server did not close the stalled connection: ${String(got)}`);
  if (Buffer.isBuffer(got)) {
    t.true(got.length < 2 * site.www.files.get('/big.bin')!.body.length, `received ${got.length} bytes: everything was sent`);
  }
  c.destroy();
});

test('timeouts server still answers promptly sent requests (control)', async (t) => {
  const res = await exchange1(get('/hello.txt'), { port: site.timeouts.httpPort });
  assertFile(t, res, hello());
});

// ---- 503 (max_connections = 4) ---------------------------------------------------------

test('503 when over max_connections; served again once a slot frees', async (t) => {
  // The four held connections are busy (mid-head): idle keep-alive ones would be reclaimed
  // for the newcomer instead (test/hostile.test.ts).
  const held: Conn[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const c = await Conn.open({ port: site.full.httpPort });
      await c.write('GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n');
      held.push(c);
    }
    await sleep(200);
    const extra = await Conn.open({ port: site.full.httpPort });
    await extra.write(get('/hello.txt')).catch(() => undefined);
    const res = await extra.readResponse({ timeoutMs: 5000 });
    assertError(t, res, 503);
    t.regex(res.headers['connection'] ?? '', /^close$/i, describe(res));
    t.true(await extra.closesWithin(3000), 'the refused connection is closed');
    extra.destroy();

    // Over TLS the refusal is an HTTP 503 too (after the handshake).
    const extraTls = await Conn.open({ port: site.full.httpsPort, tls: true });
    await extraTls.write(get('/hello.txt')).catch(() => undefined);
    const resTls = await extraTls.readResponse({ timeoutMs: 5000 });
    assertError(t, resTls, 503);
    extraTls.destroy();

    held.shift()!.destroy();
    // The server notices the close asynchronously; poll until the freed slot is usable.
    let again: HttpResponse | undefined;
    for (let i = 0; i < 40; i++) {
      await sleep(100);
      again = await exchange1(get('/hello.txt'), { port: site.full.httpPort });
      if (again.status !== 503) break;
    }
    assertFile(t, again!, hello());
    // The held connections still work: each completes its request.
    for (const c of held) {
      await c.write('\r\n');
      assertFile(t, await c.readResponse(), hello());
    }
  } finally {
    for (const c of held) c.destroy();
  }
});

test('server process survived every error test', async (t) => {
  // Registered last; ava runs tests concurrently, so poll a little for stragglers.
  await sleep(200);
  t.is(site.srv.proc.exitCode, null, site.srv.stderr());
  const res = await exchange1(get('/hello.txt'), { port: site.srv.httpPort });
  assertCommonHeaders(t, res);
  t.is(res.status, 200);
});
