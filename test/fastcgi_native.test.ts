// The native FastCGI client (native/fastcgi_client.h) against the TypeScript runner it
// stands in for: the PARAMS it builds equal src/cgi_env.ts buildCgiEnv's for a table of
// requests (HTTP and HTTPS, with and without a client certificate, command-style and root
// mounts), and what is new natively: pool reuse, a backend that dies before or in the middle
// of its answer, records for the wrong request, a client that never reads.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exchange1, get, slowGet, withConn, type HttpResponse } from './helpers/client.js';
import { getClientPki, type ClientCert, type ClientPki } from './helpers/client_pki.js';
import { startLisod, type Lisod, type TomlTable } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';
import { FakeBackend } from './helpers/fastcgi.js';
import { waitFor } from './helpers/daemon.js';

/** The recording backend's answers, by the first PATH_INFO segment. */
function answer(s: net.Socket, id: number, env: Record<string, string>): void {
  const out = (text: string | Buffer): Buffer => FakeBackend.stdout(id, text);
  const end = FakeBackend.end(id);
  switch ((env.PATH_INFO ?? '').split('/')[1] ?? '') {
    case 'die-before': s.destroy(); return;
    case 'die-after': // a head promising 100 bytes, 10 of them, then the connection drops
      s.write(out('Content-Length: 100\r\n\r\n0123456789'), () => s.destroy());
      return;
    case 'wrong-id': s.write(FakeBackend.stdout(id + 1, 'Status: 200\r\n\r\nx')); return;
    case 'big': { // 4 MiB in 64 KiB records: more than any socket buffer holds
      const chunk = Buffer.alloc(65_536, 'b');
      s.write(Buffer.concat([out('Content-Type: application/octet-stream\r\n\r\n'), ...Array.from({ length: 64 }, () => out(chunk)), end]));
      return;
    }
    case 'redirect': s.write(Buffer.concat([out(`Location: ${env.SCRIPT_NAME}/target?from=redirect\r\n\r\n`), end])); return;
    default: s.write(Buffer.concat([out('Content-Type: text/plain\r\n\r\nrecorded'), end]));
  }
}

interface Setup { native: Lisod; js: Lisod; rec: FakeBackend; pki: ClientPki; root: string }
let setup: Promise<Setup> | undefined;
function servers(): Promise<Setup> {
  setup ??= (async () => {
    const dir = tempDir('lisod-fcgi-native-');
    const rec = new FakeBackend(dir, answer);
    await rec.listening();
    const root = path.join(dir, 'root');
    fs.mkdirSync(path.join(root, 'r', 'sub'), { recursive: true });
    fs.writeFileSync(path.join(root, 'r', 'a.php'), '');
    fs.writeFileSync(path.join(root, 'r', 'sub', 'index.php'), '');
    const pki = await getClientPki();
    const config: TomlTable = {
      tls_client_ca: pki.caFile, tls_client_auth: 'optional', tls_crl: pki.crlFile,
      fastcgi: [
        { path: '/rec/', socket: `unix:${rec.socketPath}`, env: { APP_MODE: 'test', SERVER_NAME: 'ignored', HTTP_X: 'forged' }, pass_env: ['LANG'] },
        { path: '/r/', socket: `unix:${rec.socketPath}`, root, index: 'index.php' },
      ],
    };
    const [native, js] = await Promise.all([
      startLisod({ config, env: { ...process.env, LANG: 'C.UTF-8' } }),
      startLisod({ config, env: { ...process.env, LANG: 'C.UTF-8', LISOD_FASTCGI_NATIVE: '0' } }),
    ]);
    return { native, js, rec, pki, root };
  })();
  return setup;
}

test.after.always(async () => {
  const s = await setup?.catch(() => undefined);
  await Promise.all([s?.native.stop(), s?.js.stop()]);
  await s?.rec.close();
});

const errorLog = (l: Lisod): string => fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');
/** The error log once it matches `re` (lines are written after the response may have gone out). */
const logLine = (l: Lisod, re: RegExp): Promise<string> => waitFor(() => (re.test(errorLog(l)) ? errorLog(l) : ''), 10_000, `${re} in the error log`);

async function send(l: Lisod, raw: string | Buffer, tls: boolean, cert?: ClientCert): Promise<HttpResponse> {
  return exchange1(raw, {
    port: tls ? l.httpsPort : l.httpPort, tls, timeoutMs: 20_000, tlsOptions: cert ? { key: cert.key, cert: cert.cert } : undefined,
  });
}

/** The PARAMS the backend got for the request whose REQUEST_URI carries rid, with the per-connection values masked. */
function paramsOf(rec: FakeBackend, rid: string, l: Lisod): Record<string, string> {
  const env = rec.params.find((p) => (p.REQUEST_URI ?? '').includes(`rid=${rid}`));
  if (!env) throw new Error(`no PARAMS recorded for ${rid}`);
  const masked = { ...env };
  for (const k of ['REMOTE_PORT', 'SERVER_PORT']) if (k in masked) masked[k] = '*';
  if (masked.SERVER_PORT && ![String(l.httpPort), String(l.httpsPort)].includes(env.SERVER_PORT!)) masked.SERVER_PORT = 'wrong';
  return masked;
}

// [name, raw request with RID where the request id goes, tls, client certificate]
type Row = [string, string, boolean, 'alice' | 'utf8' | null];
const rows: Row[] = [
  ['plain GET', get('/rec/some/where?rid=RID&q=%20x'), false, null],
  ['mount root, no slash', get('/rec?rid=RID'), false, null],
  ['headers joined, cookies with ";", httpoxy, underscores, Host with port',
    'GET /rec/h?rid=RID HTTP/1.1\r\nHost: Example.org:8080\r\nAccept: a\r\naccept: b\r\nCookie: a=1\r\nCookie: b=2\r\n' +
    'Proxy: http://evil/\r\nX_Under: no\r\nX-Dash: yes\r\nUser-Agent: t\r\nContent-Type: text/x\r\n\r\n', false, null],
  ['unusable Host → server_name', 'GET /rec/?rid=RID HTTP/1.1\r\nHost: bad_host\r\n\r\n', false, null],
  ['HTTP/1.0 without Host', 'GET /rec/x?rid=RID HTTP/1.0\r\n\r\n', false, null],
  ['absolute-form target', 'GET http://example.com/rec/abs?rid=RID HTTP/1.1\r\nHost: example.com\r\n\r\n', false, null],
  ['percent-encoded UTF-8 path', get('/rec/%C3%A9t%C3%A9/x%2Fy?rid=RID'), false, null],
  ['POST with a body', 'POST /rec/post?rid=RID HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2', false, null],
  ['POST with Content-Length: 0', 'POST /rec/post0?rid=RID HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n', false, null],
  ['HEAD', get('/rec/head?rid=RID', '', 'HEAD'), false, null],
  ['root: script with PATH_INFO', get('/r/a.php/extra/info?rid=RID'), false, null],
  ['root: index of a directory', get('/r/sub/?rid=RID'), false, null],
  ['HTTPS without a certificate', get('/rec/tls?rid=RID'), true, null],
  ['HTTPS with a verified certificate', get('/rec/cert?rid=RID'), true, 'alice'],
  ['HTTPS with a UTF-8 subject', get('/r/a.php?rid=RID'), true, 'utf8'],
];

test('the native PARAMS equal the TypeScript runner\'s (cgi_env.ts) for a table of requests', async (t) => {
  const { native, js, rec, pki } = await servers();
  for (const [i, [name, raw, tls, who]] of rows.entries()) {
    const cert = who === null ? undefined : pki[who];
    const [a, b] = [`n${i}`, `j${i}`];
    const ra = await send(native, raw.replace('RID', a), tls, cert);
    const rb = await send(js, raw.replace('RID', b), tls, cert);
    t.is(ra.status, rb.status, name);
    t.is(ra.status, 200, name);
    const pa = paramsOf(rec, a, native);
    const pb = paramsOf(rec, b, js);
    pb.REQUEST_URI = pb.REQUEST_URI!.replace(`rid=${b}`, `rid=${a}`);
    pb.QUERY_STRING = pb.QUERY_STRING!.replace(`rid=${b}`, `rid=${a}`);
    t.deepEqual(pa, pb, name);
    if (who === 'alice') t.like(pa, { SSL_CLIENT_VERIFY: 'SUCCESS', REMOTE_USER: 'alice', AUTH_TYPE: 'Cert', HTTPS: 'on' });
  }
  t.like(paramsOf(rec, 'n0', native), { APP_MODE: 'test', LANG: 'C.UTF-8', REDIRECT_STATUS: '200', SCRIPT_NAME: '/rec', PATH_INFO: '/some/where' });
  t.false('HTTP_X' in paramsOf(rec, 'n0', native), 'an inherited HTTP_* variable is dropped');
  t.regex(errorLog(native), /fastcgi \/rec\/: served by the native FastCGI client/);
  t.notRegex(errorLog(js), /served by the native FastCGI client/);
});

// Serial: AVA runs it before the concurrent tests, whose failures open fresh connections.
test.serial('keep-conn connections are reused: sequential requests share one backend connection', async (t) => {
  const { native, rec } = await servers();
  await send(native, get('/rec/warm'), false); // may open one
  const before = rec.connections;
  for (let i = 0; i < 5; i++) t.is((await send(native, get(`/rec/again?${i}`), false)).status, 200);
  t.is(rec.connections - before, 0, 'new connections for 5 requests');
});

test('a local redirect is followed natively as a GET, with the same connection identity', async (t) => {
  const { native, rec } = await servers();
  const r = await send(native, 'POST /rec/redirect?rid=lr HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc', false);
  t.is(r.status, 200);
  t.is(r.body.toString(), 'recorded');
  const env = rec.params.find((p) => p.REQUEST_URI === '/rec/target?from=redirect');
  t.like(env, { REQUEST_METHOD: 'GET', PATH_INFO: '/target', QUERY_STRING: 'from=redirect' });
  t.is(env?.CONTENT_LENGTH, undefined);
});

test('a backend that closes before answering → 502; one that dies mid-body → the response is cut', async (t) => {
  const { native } = await servers();
  const before = await send(native, get('/rec/die-before'), false);
  t.is(before.status, 502);
  t.regex(await logLine(native, /fastcgi GET \/rec\/die-before: 502 /), /fastcgi GET \/rec\/die-before: 502 \/rec\/#\d+: the backend connection failed: connection closed/);
  // The head went out with Content-Length: 100; only 10 bytes follow, then the connection closes.
  const raw = await withConn({ port: native.httpPort }, async (c) => {
    await c.write(get('/rec/die-after'));
    return c.readToEnd(20_000);
  });
  const text = raw.toString('latin1');
  t.regex(text, /^HTTP\/1\.1 200 /);
  t.regex(text, /content-length: 100\r\n/i);
  t.true(text.endsWith('\r\n\r\n0123456789'), JSON.stringify(text.slice(-40)));
  t.is((await send(native, get('/rec/fine'), false)).status, 200, 'lisod keeps serving');
});

test('records for another request id → 502 and the backend connection is dropped', async (t) => {
  const { native, rec } = await servers();
  const closedBefore = rec.closed;
  const r = await send(native, get('/rec/wrong-id'), false);
  t.is(r.status, 502);
  t.regex(await logLine(native, /FastCGI record type 6 for request/), /502 \/rec\/#\d+: FastCGI record type 6 for request \d+, expected \d+/);
  for (let i = 0; i < 50 && rec.closed === closedBefore; i++) await new Promise((res) => setTimeout(res, 20));
  t.true(rec.closed > closedBefore, 'lisod closed the connection');
});

test('a client that reads slowly gets every byte of a 4 MiB answer (backpressure to the backend)', async (t) => {
  const { native } = await servers();
  // Stalls 1.5 s (lisod's buffers fill, the backend must wait), then reads with pauses.
  const { res, raw } = await slowGet(native.httpPort, '/rec/big', 1500, 2);
  t.truthy(res, `cut short after ${raw.length} bytes`);
  t.is(res?.status, 200);
  t.is(res?.body.length, 64 * 65_536);
  t.true(res?.body.every((b) => b === 0x62));
});
