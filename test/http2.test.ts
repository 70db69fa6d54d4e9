// HTTP/2 over TLS (http2 = true): ALPN, static answers shared with HTTP/1.1 (200, HEAD,
// 304, 206, 416, 404, 301, 405), 10 MiB under flow control, many streams, the application
// prefix over h2, the access log, and hostile frames (python3-h2): rapid
// reset, CONTINUATION flood, oversized header lists, bad frames, window overflow, stalls.
import test from 'ava';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { nodeHasSafeNghttp2 } from '../src/config_http2.js';
import { repoRoot, runLisodExpectFailure, startLisod } from './helpers/lisod.js';
import { h2Connect, h2Request } from './helpers/h2client.js';
import { getPki, type Pki } from './helpers/pki.js';
import { useLisod } from './helpers/use_lisod.js';

const run = promisify(execFile);
let pki: Pki;
test.before(async () => {
  pki = await getPki();
});

const site = useLisod(test, {
  servers: {
    h2: { config: { http2: true, http2_max_concurrent_streams: 100 } },
    stall: { config: { http2: true, send_timeout: 2 } },
    idle: { config: { http2: true, keep_alive_timeout: 1 } },
    off: { config: { http2: false } },
    byDefault: {},
  },
});

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

const connect = (port: number): http2.ClientHttp2Session => h2Connect(port, pki.ca);
const request = h2Request;

async function frames(port: number, scenario: string, quietSeconds = 3): Promise<{
  alpn: string; goaway: number | null; rst: Record<string, number>; status: Record<string, number>;
  data: Record<string, number>; closed: boolean;
}> {
  const { stdout } = await run('/usr/bin/python3', [path.join(repoRoot, 'test', 'h2', 'frames.py'), String(port),
    pki.caCert, scenario, String(quietSeconds)], { timeout: 90_000 });
  return JSON.parse(stdout);
}

test('curl --http2 negotiates h2 and gets the file bytes', async (t) => {
  const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', pki.caCert, '-o', '-', '-w', '\n%{http_version} %{http_code}',
    '--resolve', `localhost:${site.h2.httpsPort}:127.0.0.1`, `https://localhost:${site.h2.httpsPort}/hello.txt`]);
  t.is(stdout, 'hello, world\n\n2 200');
});

test('nghttp: 10 MiB under flow control, byte for byte', async (t) => {
  const out = path.join(site.h2.dirs.base, 'big.out');
  // nghttp cannot be told a CA; the byte check is ours, the verification is curl's and Node's.
  await run('nghttp', ['-n', '--no-verify-peer', `https://127.0.0.1:${site.h2.httpsPort}/big.bin`], { timeout: 60_000 });
  const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', pki.caCert, '-o', out, '-w', '%{http_version} %{size_download}',
    '--resolve', `localhost:${site.h2.httpsPort}:127.0.0.1`, `https://localhost:${site.h2.httpsPort}/big.bin`]);
  t.is(stdout, `2 ${10 * 1024 * 1024}`);
  t.is(sha(fs.readFileSync(out)), sha(site.www.files.get('/big.bin')!.body));
});

test('static answers over h2 match HTTP/1.1: HEAD, 304, 206, 416, 404, 301, 405', async (t) => {
  const s = connect(site.h2.httpsPort);
  try {
    const hello = site.www.files.get('/hello.txt')!.body;
    const get = await request(s, { ':path': '/hello.txt' });
    t.is(get.status, 200);
    t.deepEqual(get.body, hello);
    t.is(get.headers['content-length'], String(hello.length));
    t.is(get.headers['content-type'], 'text/plain; charset=utf-8');
    t.is(get.headers.server, 'Liso/1.0');
    t.is(get.headers.connection, undefined);
    const head = await request(s, { ':method': 'HEAD', ':path': '/hello.txt' });
    t.is(head.status, 200);
    t.is(head.body.length, 0);
    t.is(head.headers['content-length'], String(hello.length));
    const ims = await request(s, { ':path': '/hello.txt', 'if-modified-since': String(get.headers['last-modified']) });
    t.is(ims.status, 304);
    t.is(ims.body.length, 0);
    const range = await request(s, { ':path': '/range.txt', range: 'bytes=2-5' });
    t.is(range.status, 206);
    t.is(range.body.toString(), '2345');
    t.is(range.headers['content-range'], 'bytes 2-5/36');
    const bad = await request(s, { ':path': '/range.txt', range: 'bytes=100-' });
    t.is(bad.status, 416);
    t.is(bad.headers['content-range'], 'bytes */36');
    t.is((await request(s, { ':path': '/nope.txt' })).status, 404);
    const dir = await request(s, { ':path': '/sub?x=1' });
    t.is(dir.status, 301);
    t.is(dir.headers.location, '/sub/?x=1');
    const put = await request(s, { ':method': 'PUT', ':path': '/hello.txt' }, Buffer.from('x'));
    t.is(put.status, 405);
    t.is(put.headers.allow, 'GET, HEAD, POST');
    const post = await request(s, { ':method': 'POST', ':path': '/hello.txt' }, Buffer.alloc(100_000, 1));
    t.is(post.status, 200);
    t.deepEqual(post.body, hello);
    t.is((await request(s, { ':path': '/../outside/secret.txt' })).status, 400);
  } finally {
    s.close();
  }
});

test('ETag, If-None-Match and gzip over h2 come from the same static code as HTTP/1.1', async (t) => {
  const page = Buffer.from(`<!doctype html>\n${'<p>compress me over h2</p>\n'.repeat(200)}`);
  fs.writeFileSync(path.join(site.www.root, 'h2-coding.html'), page);
  const s = connect(site.h2.httpsPort);
  try {
    const gz = await request(s, { ':path': '/h2-coding.html', 'accept-encoding': 'gzip' });
    t.is(gz.status, 200);
    t.is(gz.headers['content-encoding'], 'gzip');
    t.is(gz.headers.vary, 'Accept-Encoding');
    t.deepEqual(zlib.gunzipSync(gz.body), page);
    t.is(gz.headers['content-type'], 'text/html; charset=utf-8');
    t.is(gz.headers['accept-ranges'], undefined, 'no byte ranges of a compressed representation');
    const etag = String(gz.headers.etag);
    t.regex(etag, /^"[0-9a-f]+-[0-9a-f]+-gz\d"$/);
    // The second answer's fields come from the compressed entry's cache (h2_head.cc).
    const second = await request(s, { ':path': '/h2-coding.html', 'accept-encoding': 'gzip' });
    for (const h of ['content-type', 'content-encoding', 'last-modified', 'etag', 'vary', 'accept-ranges', 'content-length']) {
      t.is(second.headers[h], gz.headers[h], h);
    }
    t.deepEqual(zlib.gunzipSync(second.body), page);
    // A precompressed sibling: the page's type, the sibling's bytes, twice the same.
    fs.writeFileSync(path.join(site.www.root, 'h2-pre.html'), page);
    const packed = zlib.gzipSync(page, { level: 1 });
    fs.writeFileSync(path.join(site.www.root, 'h2-pre.html.gz'), packed);
    for (let i = 0; i < 2; ++i) {
      const pre = await request(s, { ':path': '/h2-pre.html', 'accept-encoding': 'gzip' });
      t.is(pre.headers['content-type'], 'text/html; charset=utf-8');
      t.is(pre.headers['content-encoding'], 'gzip');
      t.regex(String(pre.headers.etag), /^"[0-9a-f]+-[0-9a-f]+-gz"$/);
      t.deepEqual(pre.body, packed);
    }
    const plain = await request(s, { ':path': '/h2-coding.html', 'accept-encoding': 'identity' });
    t.deepEqual(plain.body, page);
    t.not(plain.headers.etag, etag, 'each representation has its own ETag');
    const again = await request(s, { ':path': '/h2-coding.html', 'accept-encoding': 'gzip', 'if-none-match': etag });
    t.is(again.status, 304);
    t.is(again.body.length, 0);
    t.is(again.headers.vary, 'Accept-Encoding');
    const match = await request(s, { ':path': '/h2-coding.html', 'if-match': '"nope"' });
    t.is(match.status, 412);
  } finally {
    s.close();
  }
});

test('many concurrent streams on one connection all complete', async (t) => {
  const s = connect(site.h2.httpsPort);
  try {
    const want = site.www.files.get('/range.txt')!.body;
    const replies = await Promise.all(Array.from({ length: 250 }, () => request(s, { ':path': '/range.txt' })));
    t.true(replies.every((r) => r.status === 200 && r.body.equals(want)));
    const raw = await frames(site.h2.httpsPort, 'many_streams');
    t.is(raw.goaway, null);
    // 300 streams opened at once against SETTINGS_MAX_CONCURRENT_STREAMS = 100: the ones
    // over the limit are refused (RST_STREAM REFUSED_STREAM = 7, safe to retry), the rest served.
    const served = Object.values(raw.status).filter((v) => v === 200).length;
    const refused = Object.values(raw.rst).filter((v) => v === 7).length;
    t.true(served >= 100, `served ${served}`);
    t.is(served + refused, 300);
  } finally {
    s.close();
  }
});

test('the application prefix is served over h2 too (test/http2_app.test.ts has the details)', async (t) => {
  const s = connect(site.h2.httpsPort);
  try {
    const r = await request(s, { ':path': '/cgi/x' });
    t.is(r.status, 200);
    t.is((await request(s, { ':path': '/hello.txt' })).status, 200, 'the connection serves on');
  } finally {
    s.close();
  }
  const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', pki.caCert, '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
    '--resolve', `localhost:${site.h2.httpsPort}:127.0.0.1`, `https://localhost:${site.h2.httpsPort}/cgi/x`]);
  t.is(stdout, '2 200');
});

test('access log lines say HTTP/2.0', async (t) => {
  const s = connect(site.h2.httpsPort);
  await request(s, { ':path': '/hello.txt?log-me', 'user-agent': 'h2-agent' });
  s.close();
  const log = path.join(site.h2.dirs.logs, 'access.log');
  for (let i = 0; i < 50 && !fs.readFileSync(log, 'utf8').includes('log-me'); ++i) await new Promise((r) => setTimeout(r, 100));
  t.regex(fs.readFileSync(log, 'utf8'), /"GET \/hello\.txt\?log-me HTTP\/2\.0" 200 13 "-" "h2-agent"/);
});

test('http2 is on by default (ALPN h2, then http/1.1); HTTP/1.1 clients are unaffected', async (t) => {
  const raw = await frames(site.byDefault.httpsPort, 'get', 1);
  t.is(raw.alpn, 'h2');
  t.is(raw.status['1'], 200);
  const curl = async (proto: string): Promise<string> => (await run('curl', ['-sS', proto, '--cacert', pki.caCert, '-o', '/dev/null',
    '-w', '%{http_version} %{http_code}', '--resolve', `localhost:${site.byDefault.httpsPort}:127.0.0.1`,
    `https://localhost:${site.byDefault.httpsPort}/hello.txt`])).stdout;
  t.is(await curl('--http2'), '2 200');
  t.is(await curl('--http1.1'), '1.1 200');
});

test('http2 = false: ALPN h2 is not offered', async (t) => {
  const raw = await frames(site.off.httpsPort, 'get', 1).catch((e: Error) => e);
  const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', pki.caCert, '-o', '/dev/null', '-w', '%{http_version} %{http_code}',
    '--resolve', `localhost:${site.off.httpsPort}:127.0.0.1`, `https://localhost:${site.off.httpsPort}/hello.txt`]);
  t.is(stdout, '1.1 200');
  t.true(raw instanceof Error || raw.alpn !== 'h2');
});

test('rapid reset (CVE-2023-44487) ends that connection with GOAWAY; a few resets do not; others are served', async (t) => {
  const r = await frames(site.h2.httpsPort, 'rapid_reset');
  t.is(r.goaway, 2); // nghttp2's stream reset rate limit answers INTERNAL_ERROR
  t.true(r.closed);
  const some = await frames(site.h2.httpsPort, 'some_resets', 1);
  t.is(some.goaway, null);
  t.is(some.status['101'], 200);
  const s = connect(site.h2.httpsPort);
  t.is((await request(s, { ':path': '/hello.txt' })).status, 200);
  s.close();
});

test('CONTINUATION flood (CVE-2024-28182) gets GOAWAY', async (t) => {
  const r = await frames(site.h2.httpsPort, 'continuation_flood');
  t.not(r.goaway, null, JSON.stringify(r));
  t.is(r.goaway, 11); // ENHANCE_YOUR_CALM
  t.deepEqual(r.status, {});
});

test('a header list over max_header_bytes resets that stream only', async (t) => {
  const r = await frames(site.h2.httpsPort, 'big_headers');
  t.true('1' in r.rst, JSON.stringify(r));
  t.false('1' in r.status);
  t.is(r.status['3'], 200);
  t.is(r.goaway, null);
});

test('an HPACK bomb (one indexed 4 KB field repeated 5,000 times) is refused on its stream; the next is served', async (t) => {
  // On the server no other test loads (only the idle test's one GET), so RSS speaks for the bomb alone.
  const before = fs.readFileSync(`/proc/${site.idle.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1];
  const r = await frames(site.idle.httpsPort, 'hpack_bomb', 1);
  t.false('1' in r.status, JSON.stringify(r));
  t.true('1' in r.rst, JSON.stringify(r)); // RST_STREAM for that stream only
  t.true(r.goaway === null || r.goaway === 0, `no error GOAWAY (NO_ERROR is this server's 1 s idle close): ${r.goaway}`);
  t.is(r.status['3'], 200);
  const after = fs.readFileSync(`/proc/${site.idle.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)![1];
  t.true(Number(after) - Number(before) < 16 * 1024, `RSS grew ${Number(after) - Number(before)} KiB, not the ~20 MB decoded`);
  const s = connect(site.idle.httpsPort);
  t.is((await request(s, { ':path': '/hello.txt' })).status, 200, 'other connections are served');
  s.close();
});

test('an h2 connection idle for keep_alive_timeout gets GOAWAY NO_ERROR and is closed', async (t) => {
  const r = await frames(site.idle.httpsPort, 'get', 5);
  t.is(r.status['1'], 200);
  t.is(r.goaway, 0, JSON.stringify(r));
  t.true(r.closed, JSON.stringify(r));
});

test('bad frames and window overflow are connection errors (GOAWAY), not crashes', async (t) => {
  t.is((await frames(site.h2.httpsPort, 'bad_frame')).goaway, 1); // PROTOCOL_ERROR
  t.is((await frames(site.h2.httpsPort, 'window_overflow')).goaway, 3); // FLOW_CONTROL_ERROR
  const s = connect(site.h2.httpsPort);
  t.is((await request(s, { ':path': '/hello.txt' })).status, 200);
  s.close();
});

test('a client that keeps its flow-control window shut is dropped after send_timeout', async (t) => {
  const r = await frames(site.stall.httpsPort, 'stall', 8);
  t.is(r.status['1'], 200);
  t.is(r.data['1'] ?? 0, 0);
  t.true(r.closed, JSON.stringify(r));
});

test('graceful stop (SIGTERM) sends GOAWAY NO_ERROR to an h2 client', async (t) => {
  const l = await startLisod({ config: { http2: true } });
  const s = connect(l.httpsPort);
  try {
    t.is((await request(s, { ':path': '/index.html' })).status, 200);
    const goaway = new Promise<number>((resolve) => s.once('goaway', (code: number) => resolve(code)));
    process.kill(l.pid, 'SIGTERM');
    t.is(await goaway, 0);
    t.is((await l.exited).code, 0);
  } finally {
    s.destroy();
    await l.stop();
  }
});

test('SIGHUP keeps an h2 connection: a download in flight finishes byte for byte, the session serves on', async (t) => {
  const l = await startLisod({ www: site.www.root, config: { http2: true } });
  const s = connect(l.httpsPort);
  s.on('error', () => {});
  try {
    const errorLog = path.join(l.dirs.logs, 'error.log');
    const reloads = (): number => (fs.readFileSync(errorLog, 'utf8').match(/ reloaded/g) ?? []).length;
    const chunks: Buffer[] = [];
    const req = s.request({ ':path': '/big.bin' });
    const done = new Promise<void>((resolve, reject) => {
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', resolve);
      req.on('error', reject);
    });
    await new Promise((r) => req.once('data', r));
    req.pause(); // the rest waits under flow control across the reload
    process.kill(l.pid, 'SIGHUP');
    for (let i = 0; i < 100 && reloads() === 0; i++) await new Promise((r) => setTimeout(r, 50));
    t.is(reloads(), 1, 'lisod logged the reload');
    req.resume();
    await done;
    t.is(sha(Buffer.concat(chunks)), sha(site.www.files.get('/big.bin')!.body));
    t.is((await request(s, { ':path': '/hello.txt' })).status, 200, 'the same session after the reload');
  } finally {
    s.destroy();
    await l.stop();
  }
});

test('lisod -t checks the http2 keys (file:line messages)', async (t) => {
  const noTls = await runLisodExpectFailure({ config: { http2: true }, omit: ['https_port', 'tls_key', 'tls_cert'], args: ['-t'] });
  t.not(noTls.code, 0);
  t.regex(noTls.stderr, /http2 = true needs https_port/);
  const notBool = await runLisodExpectFailure({ config: { http2: 'yes' }, args: ['-t'] });
  t.regex(notBool.stderr, /:\d+.*http2/);
  const zero = await runLisodExpectFailure({ config: { http2_max_concurrent_streams: 0 }, args: ['-t'] });
  t.regex(zero.stderr, /:\d+.*http2_max_concurrent_streams must be an integer ≥ 1/);
});

test('nodeHasSafeNghttp2: h2 is refused below Node 20.12.1', (t) => {
  t.false(nodeHasSafeNghttp2('20.12.0'));
  t.false(nodeHasSafeNghttp2('18.20.4'));
  t.true(nodeHasSafeNghttp2('20.12.1'));
  t.true(nodeHasSafeNghttp2('20.20.2'));
  t.true(nodeHasSafeNghttp2('22.0.0'));
});
