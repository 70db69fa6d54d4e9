// Client identity over HTTP/2: the same [[access]] rules, SSL_* variables and access-log user
// as over HTTP/1.1 (one code path), for static files, a CGI script (including a local redirect
// into a protected path) and a FastCGI mount. Real lisod, real TLS: a root → intermediate →
// client PKI made for the run, node:http2 as the client.
import test from 'ava';
import fs from 'node:fs';
import type http2 from 'node:http2';
import path from 'node:path';
import { sleep } from './helpers/client.js';
import { getClientPki, type ClientCert, type ClientPki } from './helpers/client_pki.js';
import { h2Connect, h2Request, type H2Reply } from './helpers/h2client.js';
import { repoRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { getPki, type Pki } from './helpers/pki.js';
import { tempDir } from './helpers/tmp.js';

const secret = 'private page body over h2\n';
let cpki: ClientPki;
let pki: Pki;
let marker: string;
let srv: Lisod;

test.before(async () => {
  [cpki, pki] = await Promise.all([getClientPki(), getPki()]);
  const base = tempDir('lisod-h2-identity-');
  const www = path.join(base, 'www');
  marker = path.join(base, 'marker.log');
  fs.mkdirSync(path.join(www, 'private'), { recursive: true });
  fs.writeFileSync(path.join(www, 'index.html'), 'public\n');
  fs.writeFileSync(path.join(www, 'private', 'x.html'), secret);
  fs.writeFileSync(marker, '');
  srv = await startLisod({
    www,
    cgi: path.join(repoRoot, 'test', 'cgi-scripts', 'identity.cgi'),
    startTimeoutMs: 30_000,
    config: {
      http2: true,
      tls_client_ca: cpki.caFile,
      tls_client_auth: 'optional',
      tls_crl: cpki.crlFile,
      access: [
        { path: '/private/', allow: ['O=Ops'] },
        { path: '/cgi/admin', allow: ['O=Ops'] },
        { path: '/app/admin', allow: ['O=Ops'] },
      ],
      cgi: { env: { MARKER: marker, REMOTE_USER: 'forged' } },
      fastcgi: [{ path: '/app/', command: [path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi')], processes: 1 }],
    },
  });
});

test.after.always(async () => {
  await srv?.stop();
});

/** One h2 connection (with `cert` as the client certificate, or anonymous) for `fn`. */
async function withSession<T>(cert: ClientCert | undefined, fn: (s: http2.ClientHttp2Session) => Promise<T>): Promise<T> {
  const s = h2Connect(srv.httpsPort, pki.ca, cert ? { key: cert.key, cert: cert.cert } : {});
  s.on('error', () => {});
  try {
    return await fn(s);
  } finally {
    s.close();
  }
}

const get = (s: http2.ClientHttp2Session, p: string): Promise<H2Reply> => h2Request(s, { ':path': p });

test('static [[access]] over h2: 403 without the right certificate, the file with it; encoded paths too', async (t) => {
  await withSession(undefined, async (s) => {
    for (const p of ['/private/x.html', '/%70rivate/x.html', '//private/x.html', '/x/../private/x.html', '/private']) {
      const r = await get(s, p);
      t.true(r.status === 403 || r.status === 400, `${p}: ${r.status}`);
      t.false(r.body.toString().includes(secret), p);
    }
    t.is((await get(s, '/index.html')).status, 200, 'the connection goes on after 403s');
  });
  await withSession(cpki.bob, async (s) => {
    t.is((await get(s, '/private/x.html')).status, 403, 'O=Dev is not O=Ops');
  });
  await withSession(cpki.alice, async (s) => {
    const r = await get(s, '/private/x.html');
    t.is(r.status, 200);
    t.is(r.body.toString(), secret);
  });
});

test('CGI over h2 sees the verified identity; anonymous gets NONE; forged env does not win', async (t) => {
  const alice = await withSession(cpki.alice, (s) => get(s, '/cgi/whoami'));
  t.is(alice.status, 200);
  const env = JSON.parse(alice.body.toString()) as Record<string, string>;
  t.is(env.SSL_CLIENT_VERIFY, 'SUCCESS');
  t.is(env.SSL_CLIENT_S_DN_CN, 'alice');
  t.is(env.SSL_CLIENT_M_SERIAL, cpki.alice.serial);
  t.is(env.REMOTE_USER, 'alice');
  t.is(env.AUTH_TYPE, 'Cert');
  t.is(env.HTTPS, 'on');
  const anon = await withSession(undefined, (s) => get(s, '/cgi/whoami'));
  const anonEnv = JSON.parse(anon.body.toString()) as Record<string, string>;
  t.is(anonEnv.SSL_CLIENT_VERIFY, 'NONE');
  t.false('REMOTE_USER' in anonEnv, '[cgi.env] cannot set REMOTE_USER');
});

test('a protected CGI path never runs the script over h2; a local redirect into it is refused per stream', async (t) => {
  const before = fs.readFileSync(marker, 'utf8');
  await withSession(undefined, async (s) => {
    const [direct, encoded, redirect, other] = await Promise.all([
      get(s, '/cgi/admin/x'), get(s, '/cgi/%61dmin/x'), get(s, '/cgi/go'), get(s, '/cgi/whoami'),
    ]);
    t.is(direct.status, 403);
    t.is(encoded.status, 403);
    t.is(redirect.status, 403);
    t.is(other.status, 200, 'a concurrent stream on the same connection is served');
  });
  t.is(fs.readFileSync(marker, 'utf8'), before, 'the script never ran for /cgi/admin');
  await withSession(cpki.alice, async (s) => {
    t.is((await get(s, '/cgi/go')).status, 200);
  });
  t.is(fs.readFileSync(marker, 'utf8'), `${before}/admin/from-redirect\n`);
});

test('FastCGI over h2: identity variables reach the backend; [[access]] holds before it', async (t) => {
  await withSession(cpki.alice, async (s) => {
    const r = await get(s, '/app/env');
    t.is(r.status, 200);
    const text = r.body.toString();
    t.regex(text, /^SSL_CLIENT_VERIFY=SUCCESS$/m);
    t.regex(text, /^REMOTE_USER=alice$/m);
    t.regex(text, /^AUTH_TYPE=Cert$/m);
    t.regex(text, /^SERVER_PROTOCOL=HTTP\/2\.0$/m);
  });
  await withSession(undefined, async (s) => {
    const r = await get(s, '/app/admin/env');
    t.is(r.status, 403);
    t.false(r.body.toString().includes('SERVER_PROTOCOL'), 'the backend was not asked');
    t.regex((await get(s, '/app/env')).body.toString(), /^SSL_CLIENT_VERIFY=NONE$/m);
  });
});

test('access log over h2: %u is the verified CN and the protocol is HTTP/2.0', async (t) => {
  await withSession(cpki.alice, (s) => get(s, '/index.html?h2-alice'));
  await withSession(undefined, (s) => get(s, '/private/x.html?h2-anon'));
  const log = path.join(srv.dirs.logs, 'access.log');
  let text = '';
  for (let i = 0; i < 50 && !/h2-anon/.test(text); i++) {
    await sleep(100);
    text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  }
  t.regex(text, /^127\.0\.0\.1 - alice \[[^\]]+\] "GET \/index\.html\?h2-alice HTTP\/2\.0" 200 /m);
  t.regex(text, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/private\/x\.html\?h2-anon HTTP\/2\.0" 403 /m);
});
