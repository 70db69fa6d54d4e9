// ETag, conditional requests and content coding of static files end to end over HTTP and
// HTTPS: If-None-Match/If-Match/If-Range, precompressed .br/.gz siblings, on-the-fly gzip
// and Brotli (decoded bytes = the file), q-values, 406, HEAD, Range, Vary on 304s, the
// compress cache (no second compression) and its invalidation, [compress] config errors.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { exchange1, get, sha256, type HttpResponse } from './helpers/client.js';
import { describe } from './helpers/assert.js';
import { getClientPki } from './helpers/client_pki.js';
import { setMtime } from './helpers/docroot.js';
import { runLisodExpectFailure, startLisod, type Lisod } from './helpers/lisod.js';

const kMtime = 1_700_000_000; // Tue, 14 Nov 2023 22:13:20 GMT
const kDate = 'Tue, 14 Nov 2023 22:13:20 GMT';
const page = Buffer.from('<!doctype html><title>t</title>\n' + '<p>lisod serves compressed pages.</p>\n'.repeat(600));
const appJs = Buffer.from('export const x = 1;\n'.repeat(400));
const style = Buffer.from('body { color: #333; }\n'.repeat(300));
const small = Buffer.from('tiny text\n');
const png = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(4000, 7)]);
const cached = Buffer.from('A'.repeat(8000));
// Above the open-file cache's in-memory size: compressed from the descriptor, then sent from memory.
const big = Buffer.from(Array.from({ length: 12000 }, (_, i) => `line ${i} of a larger text file\n`).join(''));

let srv: Lisod;
let guarded: Lisod; // the same files with [[access]] on /private/
let www: string;
let outside: string;
const files = new Map<string, Buffer>();

function put(rel: string, data: Buffer, mtime = kMtime): void {
  const p = path.join(www, rel);
  fs.writeFileSync(p, data);
  setMtime(p, mtime);
  files.set(rel, data);
}

test.before(async () => {
  www = fs.mkdtempSync(path.join(os.tmpdir(), 'lisod-compress-'));
  outside = fs.mkdtempSync(path.join(os.tmpdir(), 'lisod-compress-out-'));
  put('index.html', page);
  put('page.html', page);
  put('app.js', appJs);
  put('app.js.gz', zlib.gzipSync(appJs, { level: 9 }), kMtime + 5);
  put('app.js.br', zlib.brotliCompressSync(appJs), kMtime + 5);
  put('style.css', style, kMtime + 100);
  put('style.css.gz', Buffer.from('stale sibling, not gzip at all'), kMtime); // older than style.css
  put('small.txt', small);
  put('image.png', png);
  put('cached.txt', cached);
  put('big.txt', big);
  put('leak.js', appJs);
  fs.writeFileSync(path.join(outside, 'leak.js.gz'), zlib.gzipSync(Buffer.from('secret outside the root')));
  fs.symlinkSync(path.join(outside, 'leak.js.gz'), path.join(www, 'leak.js.gz'));
  fs.mkdirSync(path.join(www, 'private'));
  put('pub.js', appJs);
  put('private/pub.js.gz', zlib.gzipSync(Buffer.from('protected bytes')), kMtime + 5);
  fs.symlinkSync(path.join(www, 'private', 'pub.js.gz'), path.join(www, 'pub.js.gz'));
  // Each is kept as soon as it runs, so the after hook stops it even if the other fails.
  await Promise.all([
    startLisod({ www }).then((l) => { srv = l; }),
    getClientPki().then((pki) => startLisod({
      www,
      startTimeoutMs: 30_000,
      config: { tls_client_ca: pki.caFile, tls_client_auth: 'optional', access: [{ path: '/private/', allow: ['O=Ops'] }] },
    })).then((l) => { guarded = l; }),
  ]);
});

test.after.always(async () => {
  await Promise.all([srv?.stop(), guarded?.stop()]);
  fs.rmSync(www, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

const fetch1 = (raw: string, tls = false) => exchange1(raw, { port: tls ? srv.httpsPort : srv.httpPort, tls });
const fetchHead = (raw: string) => exchange1(raw, { port: srv.httpPort, heads: [true] });
const etagOf = (mtime: number, size: number, suffix = '') => `"${mtime.toString(16)}-${size.toString(16)}${suffix}"`;

function decoded(res: HttpResponse): Buffer {
  const enc = res.headers['content-encoding'];
  if (enc === 'gzip') return zlib.gunzipSync(res.body);
  if (enc === 'br') return zlib.brotliDecompressSync(res.body);
  if (enc === undefined) return res.body;
  throw new Error(`unexpected Content-Encoding ${enc}`);
}

// ---- ETag and preconditions ------------------------------------------------------------

test('ETag is nginx\'s "mtime-size" in hex; If-None-Match → 304 with the ETag and Vary', async (t) => {
  const tag = etagOf(kMtime, page.length);
  const res = await fetch1(get('/page.html'));
  t.is(res.status, 200, describe(res));
  t.is(res.headers['etag'], tag);
  t.is(res.headers['vary'], 'Accept-Encoding');
  t.is(sha256(res.body), sha256(page));
  for (const inm of [tag, `W/${tag}`, `"nope", ${tag}`, '*']) {
    const nm = await fetch1(get('/page.html', `If-None-Match: ${inm}\r\n`));
    t.is(nm.status, 304, `${inm}: ${describe(nm)}`);
    t.is(nm.headers['etag'], tag);
    t.is(nm.headers['vary'], 'Accept-Encoding', '304s carry Vary too');
    t.is(nm.body.length, 0);
    t.false('content-length' in nm.headers);
  }
});

test('If-None-Match overrides If-Modified-Since (RFC 9110 §13.1.3)', async (t) => {
  const res = await fetch1(get('/page.html', `If-None-Match: "other"\r\nIf-Modified-Since: ${kDate}\r\n`));
  t.is(res.status, 200, describe(res));
  t.is(sha256(res.body), sha256(page));
  const ims = await fetch1(get('/page.html', `If-Modified-Since: ${kDate}\r\n`));
  t.is(ims.status, 304, 'If-Modified-Since alone still works');
  t.is(ims.headers['vary'], 'Accept-Encoding');
});

test('If-Match: a strong match proceeds, a miss or a weak tag → 412; If-Unmodified-Since', async (t) => {
  const tag = etagOf(kMtime, page.length);
  t.is((await fetch1(get('/page.html', `If-Match: ${tag}\r\n`))).status, 200);
  t.is((await fetch1(get('/page.html', 'If-Match: *\r\n'))).status, 200);
  for (const im of ['"nope"', `W/${tag}`]) {
    const res = await fetch1(get('/page.html', `If-Match: ${im}\r\n`));
    t.is(res.status, 412, `${im}: ${describe(res)}`);
    t.is(res.headers['connection'], 'keep-alive', 'a 412 consumed the request exactly');
  }
  t.is((await fetch1(get('/page.html', 'If-Unmodified-Since: Mon, 13 Nov 2023 00:00:00 GMT\r\n'))).status, 412);
  t.is((await fetch1(get('/page.html', `If-Unmodified-Since: ${kDate}\r\n`))).status, 200);
  const post = await fetch1('POST /page.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n' + `If-None-Match: ${tag}\r\n\r\n`);
  t.is(post.status, 412, 'If-None-Match on a POST fails instead of 304');
});

test('If-Range: a strong ETag or the exact date applies the range; otherwise the whole file', async (t) => {
  const tag = etagOf(kMtime, page.length);
  for (const ir of [tag, kDate]) {
    const res = await fetch1(get('/page.html', `Range: bytes=0-9\r\nIf-Range: ${ir}\r\n`));
    t.is(res.status, 206, `${ir}: ${describe(res)}`);
    t.deepEqual(res.body, page.subarray(0, 10));
  }
  for (const ir of ['"stale"', `W/${tag}`, 'Wed, 15 Nov 2023 00:00:00 GMT']) {
    const res = await fetch1(get('/page.html', `Range: bytes=0-9\r\nIf-Range: ${ir}\r\n`));
    t.is(res.status, 200, `${ir}: ${describe(res)}`);
    t.is(sha256(res.body), sha256(page));
  }
});

// ---- on-the-fly gzip and Brotli --------------------------------------------------------

for (const tls of [false, true]) {
  for (const [coding, suffix] of [['gzip', '-gz6'], ['br', '-br5']] as const) {
    test(`${tls ? 'HTTPS' : 'HTTP'}: Accept-Encoding ${coding} → on-the-fly ${coding}, decoded bytes = the file`, async (t) => {
      const res = await fetch1(get('/page.html', `Accept-Encoding: ${coding}\r\n`), tls);
      t.is(res.status, 200, describe(res));
      t.is(res.headers['content-encoding'], coding);
      t.is(res.headers['vary'], 'Accept-Encoding');
      t.is(res.headers['content-type'], 'text/html; charset=utf-8');
      t.is(res.headers['etag'], etagOf(kMtime, page.length, suffix), 'its own ETag (coding and level)');
      t.is(Number(res.headers['content-length']), res.body.length);
      t.true(res.body.length < page.length / 5, `compressed: ${res.body.length} bytes`);
      t.false('accept-ranges' in res.headers, 'ranges of a compressed body are not offered');
      t.is(sha256(decoded(res)), sha256(page));
    });
  }
}

test('a file too large to be held by the open-file cache is compressed from its descriptor', async (t) => {
  for (const coding of ['gzip', 'br']) {
    for (const tls of [false, true]) {
      const res = await fetch1(get('/big.txt', `Accept-Encoding: ${coding}\r\n`), tls);
      t.is(res.status, 200, describe(res));
      t.is(res.headers['content-encoding'], coding);
      t.is(Number(res.headers['content-length']), res.body.length);
      t.is(sha256(decoded(res)), sha256(big), `${coding} over ${tls ? 'HTTPS' : 'HTTP'}`);
    }
  }
  const plain = await fetch1(get('/big.txt'));
  t.is(sha256(plain.body), sha256(big), 'identity still sent with sendfile from the file');
});

test('q-values decide: br;q=0.5, gzip;q=1 → gzip; both q=0 → identity; * → br', async (t) => {
  const cases: Array<[string, string | undefined]> = [
    ['br;q=0.5, gzip;q=1', 'gzip'],
    ['gzip, br', 'br'],
    ['gzip;q=0, br;q=0', undefined],
    ['gzip;q=0.5, identity;q=1', undefined],
    ['*', 'br'],
    ['*;q=0, gzip', 'gzip'],
    ['deflate, zstd', undefined],
    ['', undefined],
  ];
  for (const [ae, want] of cases) {
    const res = await fetch1(get('/page.html', `Accept-Encoding: ${ae}\r\n`));
    t.is(res.status, 200, `${ae}: ${describe(res)}`);
    t.is(String(res.headers['content-encoding']), String(want), `Accept-Encoding: ${ae}`);
    t.is(res.headers['vary'], 'Accept-Encoding');
    t.is(sha256(decoded(res)), sha256(page), ae);
  }
});

test('identity;q=0: a compressible file is compressed even below min_bytes; otherwise 406', async (t) => {
  const tiny = await fetch1(get('/small.txt', 'Accept-Encoding: gzip, identity;q=0\r\n'));
  t.is(tiny.status, 200, describe(tiny));
  t.is(tiny.headers['content-encoding'], 'gzip');
  t.deepEqual(decoded(tiny), small);
  const plainTiny = await fetch1(get('/small.txt', 'Accept-Encoding: gzip\r\n'));
  t.false('content-encoding' in plainTiny.headers, 'below min_bytes: sent as it is');
  t.is(plainTiny.headers['vary'], 'Accept-Encoding', 'but the coding was negotiable');
  for (const ae of ['identity;q=0', '*;q=0', 'gzip, identity;q=0']) {
    const res = await fetch1(get('/image.png', `Accept-Encoding: ${ae}\r\n`));
    t.is(res.status, 406, `${ae}: ${describe(res)}`);
    t.is(res.headers['connection'], 'keep-alive');
  }
  const img = await fetch1(get('/image.png', 'Accept-Encoding: gzip, br\r\n'));
  t.is(img.status, 200);
  t.false('content-encoding' in img.headers, 'image/png is not compressed');
  t.false('vary' in img.headers, 'and nothing was negotiable');
  t.deepEqual(img.body, png);
});

test('HEAD: the same headers and Content-Length as GET, no body', async (t) => {
  for (const ae of ['gzip', 'br', 'identity']) {
    const g = await fetch1(get('/page.html', `Accept-Encoding: ${ae}\r\n`));
    const h = await fetchHead(get('/page.html', `Accept-Encoding: ${ae}\r\n`, 'HEAD'));
    t.is(h.status, 200);
    t.is(h.body.length, 0);
    for (const name of ['content-length', 'content-encoding', 'etag', 'vary', 'content-type']) {
      t.is(h.headers[name], g.headers[name], `${ae}: ${name}`);
    }
  }
});

test('Range with Accept-Encoding: the identity bytes of the range, with Vary', async (t) => {
  const res = await fetch1(get('/page.html', 'Accept-Encoding: gzip, br\r\nRange: bytes=100-199\r\n'));
  t.is(res.status, 206, describe(res));
  t.false('content-encoding' in res.headers);
  t.is(res.headers['vary'], 'Accept-Encoding');
  t.is(res.headers['content-range'], `bytes 100-199/${page.length}`);
  t.deepEqual(res.body, page.subarray(100, 200));
  const refused = await fetch1(get('/page.html', 'Accept-Encoding: gzip, identity;q=0\r\nRange: bytes=0-9\r\n'));
  t.is(refused.status, 200, 'identity refused: the Range is ignored, the whole body compressed');
  t.is(refused.headers['content-encoding'], 'gzip');
  t.is(sha256(decoded(refused)), sha256(page));
});

test('a compressed representation revalidates with its own ETag (304 with Vary)', async (t) => {
  const gz = await fetch1(get('/page.html', 'Accept-Encoding: gzip\r\n'));
  const tag = gz.headers['etag']!;
  const nm = await fetch1(get('/page.html', `Accept-Encoding: gzip\r\nIf-None-Match: ${tag}\r\n`));
  t.is(nm.status, 304, describe(nm));
  t.is(nm.headers['etag'], tag);
  t.is(nm.headers['vary'], 'Accept-Encoding');
  const other = await fetch1(get('/page.html', `If-None-Match: ${tag}\r\n`));
  t.is(other.status, 200, 'the identity representation does not match the gzip ETag');
  t.is(sha256(other.body), sha256(page));
});

// ---- precompressed siblings ------------------------------------------------------------

test('precompressed siblings: app.js.br / app.js.gz are sent as they are', async (t) => {
  for (const [ae, sib, enc, suffix] of [['br', 'app.js.br', 'br', '-br'], ['gzip', 'app.js.gz', 'gzip', '-gz']] as const) {
    for (const tls of [false, true]) {
      const res = await fetch1(get('/app.js', `Accept-Encoding: ${ae}\r\n`), tls);
      const bytes = files.get(sib)!;
      t.is(res.status, 200, describe(res));
      t.is(res.headers['content-encoding'], enc);
      t.is(res.headers['content-type'], 'text/javascript; charset=utf-8');
      t.is(res.headers['vary'], 'Accept-Encoding');
      t.is(Number(res.headers['content-length']), bytes.length);
      t.is(res.headers['etag'], etagOf(kMtime + 5, bytes.length, suffix));
      t.is(sha256(res.body), sha256(bytes), 'the sibling\'s exact bytes');
      t.is(sha256(decoded(res)), sha256(appJs));
    }
  }
  const direct = await fetch1(get('/app.js.gz'));
  t.is(direct.headers['content-type'], 'application/gzip', 'the sibling itself stays a plain file');
});

test('a sibling older than its file, or one outside the root, is not used', async (t) => {
  const stale = await fetch1(get('/style.css', 'Accept-Encoding: gzip\r\n'));
  t.is(stale.status, 200, describe(stale));
  t.is(stale.headers['content-encoding'], 'gzip');
  t.is(stale.headers['etag'], etagOf(kMtime + 100, style.length, '-gz6'), 'compressed on the fly instead');
  t.is(sha256(decoded(stale)), sha256(style));
  const leak = await fetch1(get('/leak.js', 'Accept-Encoding: gzip\r\n'));
  t.is(leak.headers['content-encoding'], 'gzip');
  t.is(sha256(decoded(leak)), sha256(appJs), 'not the symlinked file outside the root');
});

test('[[access]] applies to a sibling\'s resolved path: a protected one is not used', async (t) => {
  const res = await exchange1(get('/pub.js', 'Accept-Encoding: gzip\r\n'), { port: guarded.httpPort });
  t.is(res.status, 200, describe(res));
  t.is(res.headers['etag'], etagOf(kMtime, appJs.length, '-gz6'), 'compressed on the fly, not the sibling');
  t.is(sha256(decoded(res)), sha256(appJs));
  const open = await fetch1(get('/pub.js', 'Accept-Encoding: gzip\r\n'));
  t.is(decoded(open).toString(), 'protected bytes', 'without the rule the sibling is used (the control)');
});

// ---- the cache -------------------------------------------------------------------------

test('compressed bodies are cached by file identity; a changed file is compressed again', async (t) => {
  const first = await fetch1(get('/cached.txt', 'Accept-Encoding: gzip\r\n'));
  t.deepEqual(decoded(first), cached);
  // Same size, same mtime, same inode, other bytes: only a cache can still answer the old
  // bytes, so this shows the second request did not compress the file again.
  const p = path.join(www, 'cached.txt');
  const fd = fs.openSync(p, 'r+');
  fs.writeSync(fd, Buffer.from('B'.repeat(cached.length)), 0, cached.length, 0);
  fs.closeSync(fd);
  setMtime(p, kMtime);
  const second = await fetch1(get('/cached.txt', 'Accept-Encoding: gzip\r\n'));
  t.deepEqual(second.body, first.body, 'the cached compressed body');
  // A new mtime is a new file: compressed again, the new bytes come out.
  setMtime(p, kMtime + 60);
  let fresh = second;
  for (let i = 0; i < 40 && decoded(fresh).equals(cached); i++) {
    await new Promise((r) => setTimeout(r, 100)); // the open-file cache re-checks once a second
    fresh = await fetch1(get('/cached.txt', 'Accept-Encoding: gzip\r\n'));
  }
  t.deepEqual(decoded(fresh), Buffer.from('B'.repeat(cached.length)));
  t.is(fresh.headers['etag'], etagOf(kMtime + 60, cached.length, '-gz6'));
});

// ---- config ----------------------------------------------------------------------------

test('[compress] errors name the file and line', async (t) => {
  // Tables go after the generated config, a top-level key before it.
  const bad: Array<[string, RegExp]> = [
    ['[compress]\ngzip_level = 10\n', /compress\.gzip_level must be an integer 1–9/],
    ['[compress]\nbrotli_quality = "max"\n', /compress\.brotli_quality must be an integer 0–11/],
    ['[compress]\ntypes = ["text html"]\n', /'text html' is not a media type/],
    ['[compress]\nmax_bytes = 2000\ncache_bytes = 1000\n', /compress\.max_bytes \(2000\) exceeds compress\.cache_bytes \(1000\)/],
    ['[compress]\ngzip = true\n', /unknown key 'gzip' in \[compress\]/],
    ['compress = "yes"\n', /compress must be a table/],
  ];
  for (const [text, want] of bad) {
    const r = await runLisodExpectFailure({ transformConfig: (s) => (text.startsWith('[') ? `${s}\n${text}` : `${text}${s}`) });
    t.not(r.code, 0);
    t.regex(r.stderr, want, text);
    t.regex(r.stderr, /lisod\.conf:\d+: /, `file:line in ${r.stderr}`);
  }
});
