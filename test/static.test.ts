// Static files end to end: headers, MIME map, directories, HEAD, POST-as-GET, chunked and
// 100-continue request bodies, conditional and range requests, 10 MiB, path traversal.
import test from 'ava';
import { Conn, exchange, exchange1, get, headerCount, httpDate, sha256, sleep } from './helpers/client.js';
import { assertCommonHeaders, assertFile, describe } from './helpers/assert.js';
import { kBigSize, kMimeFixtures, setMtime, type DocFile } from './helpers/docroot.js';
import { useLisod } from './helpers/use_lisod.js';

const kMtime = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT

const site = useLisod(test, {
  prepare: (www) => {
    for (const f of www.files.values()) setMtime(f.path, kMtime);
  },
});

const file = (p: string): DocFile => {
  const f = site.www.files.get(p);
  if (!f) throw new Error(`no fixture ${p}`);
  return f;
};
const fetch1 = (raw: string, tls = false) => exchange1(raw, { port: tls ? site.srv.httpsPort : site.srv.httpPort, tls });

// ---- basics ----------------------------------------------------------------------------

test('GET / serves index.html with every required header', async (t) => {
  const res = await fetch1(get('/'));
  assertFile(t, res, file('/index.html'), { type: 'text/html' });
  t.is(res.headers['last-modified'], 'Tue, 14 Nov 2023 22:13:20 GMT');
  t.is(res.version, 'HTTP/1.1');
  t.regex(res.headers['connection'] ?? '', /^keep-alive$/i, 'HTTP/1.1 default is keep-alive');
});

test('GET / over HTTPS serves the same bytes', async (t) => {
  assertFile(t, await fetch1(get('/'), true), file('/index.html'), { type: 'text/html' });
});

test('directory with trailing slash serves its index.html', async (t) => {
  assertFile(t, await fetch1(get('/sub/')), file('/sub/index.html'), { type: 'text/html' });
});

test('directory without trailing slash: its index.html, or a redirect to the slash form', async (t) => {
  const res = await fetch1(get('/sub'));
  if (res.status === 200) {
    assertFile(t, res, file('/sub/index.html'), { type: 'text/html' });
  } else {
    t.true([301, 302, 307, 308].includes(res.status), `status: ${describe(res)}`);
    assertCommonHeaders(t, res);
    t.regex(res.headers['location'] ?? '', /^(https?:\/\/[^/]+)?\/sub\/$/, `Location: ${describe(res)}`);
  }
});

test('directory without index.html is not listed', async (t) => {
  const res = await fetch1(get('/noindex/'));
  t.true(res.status === 404 || res.status === 403, `status: ${describe(res)}`);
  assertCommonHeaders(t, res);
  t.false(res.body.toString('latin1').includes('other.html'), 'no directory listing');
});

test('a file in a subdirectory, and an empty file', async (t) => {
  assertFile(t, await fetch1(get('/sub/deeper/file.txt')), file('/sub/deeper/file.txt'), { type: 'text/plain' });
  const empty = await fetch1(get('/empty.txt'));
  assertFile(t, empty, file('/empty.txt'));
  t.is(empty.headers['content-length'], '0');
});

test('query string is not part of the file name', async (t) => {
  assertFile(t, await fetch1(get('/hello.txt?x=1&y=%2F..%2F')), file('/hello.txt'));
});

test('percent-decoding of the path', async (t) => {
  assertFile(t, await fetch1(get('/with%20space.txt')), file('/with space.txt'));
  assertFile(t, await fetch1(get('/%68ello.txt')), file('/hello.txt'));
  assertFile(t, await fetch1(get('/sub/%70age.html')), file('/sub/page.html'));
});

test('absolute-form request-target (RFC 9112 §3.2.2)', async (t) => {
  assertFile(t, await fetch1('GET http://localhost/hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n'), file('/hello.txt'));
});

// ---- MIME map --------------------------------------------------------------------------

const kAlternatives: Record<string, RegExp> = {
  'text/javascript': /^(text|application)\/javascript$/,
  'image/x-icon': /^image\/(x-icon|vnd\.microsoft\.icon)$/,
};

for (const [p, type] of kMimeFixtures) {
  if (p === '/m/UPPER.PNG') continue; // case-insensitive extensions are not required by the issue
  test(`MIME type of ${p} is ${type}`, async (t) => {
    assertFile(t, await fetch1(get(p)), file(p), { type: kAlternatives[type] ?? type });
  });
}

test('a file\'s head is formatted once and reused: Date advances, Connection follows each request', async (t) => {
  // lisod caches the head of a whole-file 200 per file and Connection value and rewrites
  // only its Date: the second answer must carry the later date, and a close request on
  // a keep-alive connection gets "close" with the same file headers.
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(get('/hello.txt'));
  const first = await c.readResponse();
  await sleep(1100);
  const before = Date.now();
  await c.write(get('/hello.txt') + get('/hello.txt', 'Connection: close\r\n'));
  const second = await c.readResponse();
  const closing = await c.readResponse();
  c.destroy();
  for (const res of [first, second, closing]) assertFile(t, res, file('/hello.txt'));
  t.not(first.headers['date'], second.headers['date'], 'the cached head got the current Date');
  t.true(Date.parse(second.headers['date'] ?? '') >= Math.floor(before / 1000) * 1000, `Date: ${second.headers['date']}`);
  t.regex(second.headers['connection'] ?? '', /^keep-alive$/i);
  t.regex(closing.headers['connection'] ?? '', /^close$/i);
  for (const h of ['content-type', 'content-length', 'etag', 'last-modified', 'accept-ranges', 'server']) {
    t.is(closing.headers[h], second.headers[h], `keep-alive and close heads agree on ${h}`);
  }
  for (const h of ['date', 'connection', 'content-length']) t.is(headerCount(second, h), 1, `one ${h} field`);
});

// ---- HEAD ------------------------------------------------------------------------------

test('HEAD: same headers as GET and no body bytes (pipelined GET after it parses)', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(get('/m/style.css', '', 'HEAD') + get('/m/style.css') + get('/hello.txt'));
  const head = await c.readResponse({ head: true });
  const body = await c.readResponse();
  const next = await c.readResponse();
  c.destroy();
  assertFile(t, head, file('/m/style.css'), { head: true, type: 'text/css' });
  t.is(head.raw.length, head.raw.indexOf('\r\n\r\n') + 4, 'nothing after the HEAD response head');
  assertFile(t, body, file('/m/style.css'), { type: 'text/css' });
  for (const h of ['content-length', 'content-type', 'last-modified', 'server', 'connection']) {
    t.is(head.headers[h], body.headers[h], `HEAD and GET agree on ${h}`);
  }
  assertFile(t, next, file('/hello.txt'));
});

test('HEAD of the 10 MiB file: Content-Length 10 MiB, no body', async (t) => {
  const [head, next] = await exchange(get('/big.bin', '', 'HEAD') + get('/hello.txt'),
    { port: site.srv.httpPort, count: 2, heads: [true, false] });
  assertFile(t, head!, file('/big.bin'), { head: true, type: 'application/octet-stream' });
  t.is(head!.headers['content-length'], String(kBigSize));
  assertFile(t, next!, file('/hello.txt'));
});

// ---- POST to static, request bodies ----------------------------------------------------

test('POST to a static file answers like GET; its body is consumed', async (t) => {
  const body = 'name=value&other=1';
  const raw = `POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${body.length}\r\n\r\n${body}${get('/range.txt')}`;
  const [r1, r2] = await exchange(raw, { port: site.srv.httpPort, count: 2 });
  assertFile(t, r1!, file('/hello.txt'), { type: 'text/plain' });
  assertFile(t, r2!, file('/range.txt'));
});

test('POST with Content-Length: 0 answers like GET', async (t) => {
  const res = await fetch1('POST /index.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n');
  assertFile(t, res, file('/index.html'), { type: 'text/html' });
});

test('chunked request body (extensions, trailer) to a static POST, then a pipelined GET', async (t) => {
  const chunked = '5\r\nhello\r\n6;name=value\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: yes\r\n\r\n';
  const raw = `POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}${get('/range.txt')}`;
  for (const tls of [false, true]) {
    const [r1, r2] = await exchange(raw, { port: tls ? site.srv.httpsPort : site.srv.httpPort, tls, count: 2 });
    assertFile(t, r1!, file('/hello.txt'));
    assertFile(t, r2!, file('/range.txt'));
  }
});

test('chunked request body sent in tiny pieces', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  const body = Array.from({ length: 20 }, (_, i) => `3\r\nab${i % 10}\r\n`).join('') + '0\r\n\r\n';
  await c.writeSlowly(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${body}${get('/range.txt')}`, 1, 3);
  const [r1, r2] = await c.readResponses(2);
  c.destroy();
  assertFile(t, r1!, file('/hello.txt'));
  assertFile(t, r2!, file('/range.txt'));
});

test('Expect: 100-continue gets "HTTP/1.1 100 Continue" before the body is sent', async (t) => {
  for (const tls of [false, true]) {
    const c = await Conn.open({ port: tls ? site.srv.httpsPort : site.srv.httpPort, tls });
    await c.write('POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n');
    const interim = await c.readResponse({ timeoutMs: 5000 });
    t.is(interim.status, 100, describe(interim));
    t.regex(interim.raw.toString('latin1'), /^HTTP\/1\.1 100 Continue\r\n/);
    await c.write('0123456789');
    assertFile(t, await c.readResponse(), file('/hello.txt'));
    c.destroy();
  }
});

test('Expect: 100-continue with the body sent right away still gets the final response', async (t) => {
  const raw = 'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\nExpect: 100-continue\r\n\r\n0123456789' +
    get('/range.txt');
  const [r1, r2] = await exchange(raw, { port: site.srv.httpPort, count: 2 });
  assertFile(t, r1!, file('/hello.txt'));
  assertFile(t, r2!, file('/range.txt'));
});

test('GET with a Content-Length body: the body is consumed, not parsed as the next request', async (t) => {
  const body = 'GET /x HTTP/1.1\r\n';
  const [r1, r2] = await exchange(
    `GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}${get('/range.txt')}`,
    { port: site.srv.httpPort, count: 2 });
  assertFile(t, r1!, file('/hello.txt'));
  assertFile(t, r2!, file('/range.txt'));
});

test('3 MiB POST bodies (Content-Length and chunked) to a static file are drained', async (t) => {
  const big = Buffer.alloc(3 * 1024 * 1024, 0x61);
  const chunked = Buffer.concat([
    ...Array.from({ length: 48 }, () => Buffer.concat([Buffer.from('10000\r\n'), big.subarray(0, 0x10000), Buffer.from('\r\n')])),
    Buffer.from('0\r\n\r\n'),
  ]);
  for (const tls of [false, true]) {
    const c = await Conn.open({ port: tls ? site.srv.httpsPort : site.srv.httpPort, tls });
    await c.write(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${big.length}\r\n\r\n`);
    await c.write(big);
    await c.write('POST /index.html HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n');
    await c.write(chunked);
    await c.write(get('/range.txt'));
    const [r1, r2, r3] = await c.readResponses(3, { timeoutMs: 30_000 });
    c.destroy();
    assertFile(t, r1!, file('/hello.txt'));
    assertFile(t, r2!, file('/index.html'));
    assertFile(t, r3!, file('/range.txt'));
  }
});

test('a request with 60 ordinary header fields is served', async (t) => {
  const headers = Array.from({ length: 60 }, (_, i) => `X-Header-${i}: value-${i}\r\n`).join('');
  assertFile(t, await fetch1(get('/hello.txt', headers)), file('/hello.txt'));
});

// ---- conditional GET -------------------------------------------------------------------

test('If-Modified-Since equal to Last-Modified → 304 without body', async (t) => {
  const lm = httpDate(kMtime * 1000);
  const [r1, r2] = await exchange(get('/hello.txt', `If-Modified-Since: ${lm}\r\n`) + get('/range.txt'),
    { port: site.srv.httpPort, count: 2 });
  t.is(r1!.status, 304, describe(r1!));
  assertCommonHeaders(t, r1!);
  t.is(r1!.raw.length, r1!.raw.indexOf('\r\n\r\n') + 4, '304 has no body');
  assertFile(t, r2!, file('/range.txt'));
});

test('If-Modified-Since later than the file → 304; earlier → 200; invalid date → 200', async (t) => {
  const later = await fetch1(get('/hello.txt', `If-Modified-Since: ${httpDate((kMtime + 86400) * 1000)}\r\n`));
  t.is(later.status, 304, describe(later));
  const earlier = await fetch1(get('/hello.txt', `If-Modified-Since: ${httpDate((kMtime - 1) * 1000)}\r\n`));
  assertFile(t, earlier, file('/hello.txt'));
  const invalid = await fetch1(get('/hello.txt', 'If-Modified-Since: yesterday-ish\r\n'));
  assertFile(t, invalid, file('/hello.txt'));
});

test('If-Modified-Since in RFC 850 and asctime forms (RFC 9110 §5.6.7)', async (t) => {
  const rfc850 = await fetch1(get('/hello.txt', 'If-Modified-Since: Tuesday, 14-Nov-23 22:13:20 GMT\r\n'));
  t.is(rfc850.status, 304, describe(rfc850));
  const asctime = await fetch1(get('/hello.txt', 'If-Modified-Since: Tue Nov 14 22:13:20 2023\r\n'));
  t.is(asctime.status, 304, describe(asctime));
});

// ---- Range -----------------------------------------------------------------------------

const kAlphabet = '0123456789abcdefghijklmnopqrstuvwxyz'; // /range.txt, 36 bytes

for (const [spec, first, last] of [
  ['bytes=0-9', 0, 9], ['bytes=10-', 10, 35], ['bytes=-5', 31, 35], ['bytes=30-100', 30, 35], ['bytes=35-35', 35, 35],
] as const) {
  test(`Range ${spec} → 206 with Content-Range`, async (t) => {
    const res = await fetch1(get('/range.txt', `Range: ${spec}\r\n`));
    t.is(res.status, 206, describe(res));
    assertCommonHeaders(t, res);
    t.is(res.headers['content-range'], `bytes ${first}-${last}/36`);
    t.is(res.body.toString('latin1'), kAlphabet.slice(first, last + 1));
    t.is(res.headers['last-modified'], httpDate(kMtime * 1000));
    t.regex(res.headers['content-type'] ?? '', /^text\/plain\b/);
  });
}

test('Range beyond the end → 416 with Content-Range: bytes */size', async (t) => {
  for (const spec of ['bytes=36-', 'bytes=100-200']) {
    const res = await fetch1(get('/range.txt', `Range: ${spec}\r\n`));
    t.is(res.status, 416, describe(res));
    assertCommonHeaders(t, res);
    t.is(res.headers['content-range'], 'bytes */36');
  }
});

test('Range inside the 10 MiB file, over HTTP and HTTPS', async (t) => {
  const big = file('/big.bin').body;
  const first = 3 * 1024 * 1024 + 17;
  const last = first + 2 * 1024 * 1024;
  for (const tls of [false, true]) {
    const res = await fetch1(get('/big.bin', `Range: bytes=${first}-${last}\r\n`), tls);
    t.is(res.status, 206, describe(res));
    t.is(res.headers['content-range'], `bytes ${first}-${last}/${kBigSize}`);
    t.is(Number(res.headers['content-length']), last - first + 1);
    t.is(sha256(res.body), sha256(big.subarray(first, last + 1)));
  }
});

test('unknown range unit is ignored → 200 with the whole file', async (t) => {
  assertFile(t, await fetch1(get('/range.txt', 'Range: pages=1-2\r\n')), file('/range.txt'));
});

// ---- 10 MiB ----------------------------------------------------------------------------

test('10 MiB file over HTTP: exact bytes, then the connection is still usable', async (t) => {
  const [r1, r2] = await exchange(get('/big.bin') + get('/hello.txt'), { port: site.srv.httpPort, count: 2, timeoutMs: 30_000 });
  assertFile(t, r1!, file('/big.bin'), { type: 'application/octet-stream' });
  assertFile(t, r2!, file('/hello.txt'));
});

test('10 MiB file over HTTP read slowly by the client (backpressure)', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  c.socket.pause();
  await c.write(get('/big.bin'));
  // Let the server fill the socket buffers, then read in bursts.
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 50));
    c.socket.resume();
    await new Promise((r) => setTimeout(r, 5));
    c.socket.pause();
  }
  c.socket.resume();
  const res = await c.readResponse({ timeoutMs: 30_000 });
  c.destroy();
  assertFile(t, res, file('/big.bin'));
});

// ---- path traversal --------------------------------------------------------------------

const kEscapes = [
  '/../secret.txt',
  '/../outside/secret.txt',
  '/sub/../../outside/secret.txt',
  '/sub/../../../../../../../../etc/passwd',
  '/%2e%2e/outside/secret.txt',
  '/%2E%2E/%2e%2E/secret.txt',
  '/sub/%2e%2e/%2e%2e/outside/secret.txt',
  '/..%2foutside%2fsecret.txt',
  '/sub%2f..%2f..%2foutside%2fsecret.txt',
  '/%2f..%2f..%2fsecret.txt',
  '/..%5coutside%5csecret.txt',
  '/..\\outside\\secret.txt',
  '/%252e%252e/outside/secret.txt',
  '/hello.txt%00.html',
  '/%00../outside/secret.txt',
  '/link-out.txt',
  '/rel-link-out.txt',
  '/link-outdir/secret.txt',
  '/link-outdir/',
  '//outside/secret.txt',
  '/./../outside/secret.txt',
  '/sub/..%2F..%2Foutside/secret.txt',
  '/%c0%ae%c0%ae/outside/secret.txt',
  '/.%2e/outside/secret.txt',
  '/%',
  '/%zz',
  '/%2',
];

for (const target of kEscapes) {
  test(`traversal never leaks: ${target}`, async (t) => {
    const c = await Conn.open({ port: site.srv.httpPort });
    await c.write(get(target));
    const res = await c.readResponse();
    const all = Buffer.concat([res.raw, c.peek()]);
    c.destroy();
    t.true([400, 403, 404].includes(res.status), `status: ${describe(res)}`);
    assertCommonHeaders(t, res);
    t.false(all.toString('latin1').includes(site.www.secretMarker), 'secret file content leaked');
    t.false(all.toString('latin1').includes('root:x:0:0'), '/etc/passwd leaked');
  });
}

test('traversal in absolute-form and relative targets never leaks', async (t) => {
  for (const raw of [
    'GET http://localhost/../outside/secret.txt HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET ../outside/secret.txt HTTP/1.1\r\nHost: localhost\r\n\r\n',
    'GET outside/secret.txt HTTP/1.1\r\nHost: localhost\r\n\r\n',
    `GET ${site.www.outside}/secret.txt HTTP/1.1\r\nHost: localhost\r\n\r\n`,
    'GET /etc/passwd HTTP/1.1\r\nHost: localhost\r\n\r\n',
  ]) {
    const res = await fetch1(raw);
    t.true([400, 403, 404].includes(res.status), `${JSON.stringify(raw)} → ${describe(res)}`);
    t.false(res.raw.toString('latin1').includes(site.www.secretMarker));
    t.false(res.raw.toString('latin1').includes('root:x:0:0'));
  }
});
