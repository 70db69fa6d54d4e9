// Client certificates end to end: root → intermediate → clients against a real lisod;
// optional and require modes, CRLs (and their reload on SIGHUP), the SSL_* variables a CGI
// script sees, [[access]] rules with encoded paths, symlinks and local redirects, forged
// identity headers, the access log's user field, and session resumption keeping identity.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { Conn, exchange1, get, sleep, type HttpResponse } from './helpers/client.js';
import { getClientPki, type ClientCert, type ClientPki } from './helpers/client_pki.js';
import { repoRoot, startLisod, type Lisod, type LisodOptions } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

let pki: ClientPki;
let www: string;
let marker: string;
const secret = 'private page body\n';
const servers: Lisod[] = [];

test.before(async () => {
  pki = await getClientPki();
  const base = tempDir('lisod-identity-');
  www = path.join(base, 'www');
  marker = path.join(base, 'marker.log');
  fs.mkdirSync(path.join(www, 'private', 'dev'), { recursive: true });
  fs.mkdirSync(path.join(www, 'any'));
  fs.writeFileSync(path.join(www, 'index.html'), 'public\n');
  fs.writeFileSync(path.join(www, 'privatefoo.html'), 'not covered\n');
  fs.writeFileSync(path.join(www, 'private', 'x.html'), secret);
  fs.writeFileSync(path.join(www, 'private', 'dev', 'y.html'), 'dev page\n');
  fs.writeFileSync(path.join(www, 'any', 'z.html'), 'any verified\n');
  fs.symlinkSync('private', path.join(www, 'pub')); // a public name for a protected directory
  fs.writeFileSync(marker, '');
});

test.after.always(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const kAccess = [
  { path: '/private/', allow: ['O=Ops'] },
  { path: '/private/dev', allow: ['CN=bob,O=Dev'] },
  { path: '/any', allow: ['*'] },
  { path: '/cgi/admin', allow: ['O=Ops'] },
];

async function start(extra: LisodOptions['config'] = {}, env: NodeJS.ProcessEnv = {}): Promise<Lisod> {
  const srv = await startLisod({
    www,
    cgi: path.join(repoRoot, 'test', 'cgi-scripts', 'identity.cgi'),
    env: { ...process.env, ...env },
    startTimeoutMs: 30_000, // the whole suite runs in parallel on a shared 2-core machine
    config: {
      tls_client_ca: pki.caFile,
      tls_client_auth: 'optional',
      tls_crl: pki.crlFile,
      access: kAccess,
      cgi: { env: { MARKER: marker, SSL_CLIENT_VERIFY: 'SUCCESS', SSL_CLIENT_S_DN_CN: 'forged', REMOTE_USER: 'forged' }, pass_env: ['AUTH_TYPE'] },
      ...extra,
    },
  });
  servers.push(srv);
  return srv;
}

let optional: Promise<Lisod> | undefined;
const optionalServer = (): Promise<Lisod> => (optional ??= start({}, { AUTH_TYPE: 'forged' }));

function tlsOptions(cert?: ClientCert, extra: tls.ConnectionOptions = {}): tls.ConnectionOptions {
  return cert ? { key: cert.key, cert: cert.cert, ...extra } : extra;
}

async function fetch(srv: Lisod, target: string, cert?: ClientCert, extraHeaders = ''): Promise<HttpResponse> {
  return exchange1(get(target, extraHeaders), { port: srv.httpsPort, tls: true, tlsOptions: tlsOptions(cert) });
}

async function identity(srv: Lisod, cert?: ClientCert, extraHeaders = ''): Promise<Record<string, string>> {
  const r = await fetch(srv, '/cgi/whoami', cert, extraHeaders);
  if (r.status !== 200) throw new Error(`GET /cgi/whoami: ${r.status} ${r.body.toString()}`);
  return JSON.parse(r.body.toString()) as Record<string, string>;
}

/** The handshake (or, under TLS 1.3, the first read) fails: no response arrives. */
async function refused(t: ExecutionContext, srv: Lisod, cert: ClientCert | undefined, what: string, extra: tls.ConnectionOptions = {}): Promise<void> {
  const r = await exchange1(get('/'), { port: srv.httpsPort, tls: true, tlsOptions: tlsOptions(cert, extra), timeoutMs: 5000 })
    .then((res) => `status ${res.status}`, (e: Error) => e);
  t.true(r instanceof Error, `${what}: expected the handshake to be refused, got ${String(r)}`);
  t.notRegex(String(r), /timeout/i, `${what}: refused at once (an alert or a close), not by silence`);
}

/** SIGHUP, then wait for the error log's "reloaded" line; false if it does not come in 5 s. */
async function reload(srv: Lisod): Promise<boolean> {
  const errorLog = path.join(srv.dirs.logs, 'error.log');
  const reloads = (): number => (fs.readFileSync(errorLog, 'utf8').match(/ reloaded/g) ?? []).length;
  const before = reloads();
  process.kill(srv.pid, 'SIGHUP');
  for (let i = 0; i < 100 && reloads() === before; i++) await sleep(50);
  return reloads() === before + 1;
}

test('optional: no certificate is served with SSL_CLIENT_VERIFY=NONE and no user', async (t) => {
  const env = await identity(await optionalServer());
  t.is(env.SSL_CLIENT_VERIFY, 'NONE');
  t.regex(env.SSL_PROTOCOL ?? '', /^TLSv1\.[23]$/);
  t.truthy(env.SSL_CIPHER);
  t.is(env.HTTPS, 'on');
  for (const name of ['REMOTE_USER', 'AUTH_TYPE', 'SSL_CLIENT_S_DN', 'SSL_CLIENT_S_DN_CN', 'SSL_CLIENT_CERT']) {
    t.false(name in env, `${name} must be unset (not even from [cgi.env] or pass_env)`);
  }
});

test('optional: a valid chain gives the mod_ssl variables, REMOTE_USER and AUTH_TYPE', async (t) => {
  const env = await identity(await optionalServer(), pki.alice);
  t.is(env.SSL_CLIENT_VERIFY, 'SUCCESS');
  t.is(env.SSL_CLIENT_S_DN, 'CN=alice,O=Ops');
  t.is(env.SSL_CLIENT_S_DN_CN, 'alice');
  t.is(env.SSL_CLIENT_I_DN, pki.intermediateDn);
  t.is(env.SSL_CLIENT_M_SERIAL, pki.alice.serial);
  t.regex(env.SSL_CLIENT_V_START ?? '', /^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4} GMT$/);
  t.regex(env.SSL_CLIENT_V_END ?? '', /^[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4} GMT$/);
  t.is(env.SSL_CLIENT_CERT, pki.alice.leaf);
  t.is(env.REMOTE_USER, 'alice');
  t.is(env.AUTH_TYPE, 'Cert');
});

test('DNs are RFC 4514: UTF-8 kept, special characters escaped', async (t) => {
  const srv = await optionalServer();
  const utf8 = await identity(srv, pki.utf8);
  t.is(utf8.SSL_CLIENT_S_DN, 'CN=Zoë Åström,O=Ops\\+Dev');
  t.is(utf8.SSL_CLIENT_S_DN_CN, 'Zoë Åström');
  t.is(utf8.REMOTE_USER, 'Zoë Åström');
  t.is((await identity(srv, pki.spaced)).SSL_CLIENT_S_DN, 'CN=Mallory \\"Quote\\" Smith,O=Ops');
});

test('optional: revoked, expired, foreign-CA and wrong-purpose certificates are refused in the handshake', async (t) => {
  const srv = await optionalServer();
  await refused(t, srv, pki.carol, 'revoked');
  await refused(t, srv, pki.dave, 'expired');
  await refused(t, srv, pki.foreign, 'foreign CA');
  await refused(t, srv, pki.serverPurpose, 'serverAuth only');
  await refused(t, srv, pki.carol, 'revoked over TLS 1.2', { maxVersion: 'TLSv1.2' });
  await refused(t, srv, { ...pki.alice, cert: pki.alice.leaf }, 'leaf without its intermediate');
  t.is((await identity(srv, pki.alice)).SSL_CLIENT_VERIFY, 'SUCCESS', 'the server still serves good clients');
});

test('forged identity headers stay HTTP_* variables', async (t) => {
  const env = await identity(await optionalServer(), undefined,
    'SSL-Client-Verify: SUCCESS\r\nSSL-Client-S-DN-CN: alice\r\nRemote-User: alice\r\nAuth-Type: Cert\r\n');
  t.is(env.SSL_CLIENT_VERIFY, 'NONE');
  t.false('REMOTE_USER' in env);
  t.false('SSL_CLIENT_S_DN_CN' in env);
  const r = await fetch(await optionalServer(), '/private/x.html', undefined, 'SSL-Client-Verify: SUCCESS\r\nSSL-Client-S-DN: CN=alice,O=Ops\r\n');
  t.is(r.status, 403);
});

test('[[access]]: the longest prefix decides; entries match attributes exactly', async (t) => {
  const srv = await optionalServer();
  const cases: Array<[string, ClientCert | undefined, number]> = [
    ['/private/x.html', undefined, 403],
    ['/private/x.html', pki.alice, 200],
    ['/private/x.html', pki.bob, 403],
    ['/private/dev/y.html', pki.alice, 403],
    ['/private/dev/y.html', pki.bob, 200],
    ['/private', undefined, 403],
    ['/private/', pki.alice, 404], // covered and allowed; no index.html
    ['/privatefoo.html', undefined, 200], // segment boundary: not covered
    ['/any/z.html', undefined, 403],
    ['/any/z.html', pki.bob, 200],
    ['/index.html', undefined, 200],
  ];
  for (const [target, cert, status] of cases) {
    const r = await fetch(srv, target, cert);
    t.is(r.status, status, `${target} as ${cert ? 'a client with a certificate' : 'anonymous'}`);
    if (status === 403) t.false(r.body.toString().includes(secret), 'no file bytes in a 403');
  }
  t.is((await fetch(srv, '/private/x.html', pki.alice)).body.toString(), secret);
});

test('[[access]]: encoded and dotted paths cannot get around a rule', async (t) => {
  const srv = await optionalServer();
  for (const target of ['/%70rivate/x.html', '/priv%61te/x.html', '//private/x.html', '/./private/x.html',
    '/x/../private/x.html', '/private//x.html', '/private/./x.html', '/any/../private/x.html', '/%2fprivate/x.html',
    'http://localhost/private/x.html']) {
    const r = await fetch(srv, target);
    t.true(r.status === 403 || r.status === 400, `${target}: ${r.status}`);
    t.false(r.body.toString().includes(secret), target);
  }
  t.is((await fetch(srv, '/PRIVATE/x.html')).status, 404, 'case-sensitive prefix; no such file either');
});

test('[[access]]: a symlink in a public place to a protected directory is checked by its target', async (t) => {
  const srv = await optionalServer();
  const anon = await fetch(srv, '/pub/x.html');
  t.is(anon.status, 403);
  t.false(anon.body.toString().includes(secret));
  t.is((await fetch(srv, '/pub/x.html', pki.alice)).status, 200);
});

test('[[access]]: plain HTTP gets 403 on protected paths and the public rest', async (t) => {
  const srv = await optionalServer();
  const r = await exchange1(get('/private/x.html'), { port: srv.httpPort });
  t.is(r.status, 403);
  t.false(r.body.toString().includes(secret));
  t.is((await exchange1(get('/index.html'), { port: srv.httpPort })).status, 200);
  const cgi = await exchange1(get('/cgi/whoami'), { port: srv.httpPort });
  t.is(cgi.status, 200);
  t.false('SSL_CLIENT_VERIFY' in JSON.parse(cgi.body.toString()), 'no TLS, no SSL_* variables');
});

test('[[access]]: a protected CGI path never runs the script; a local redirect into it is refused', async (t) => {
  const srv = await optionalServer();
  const before = fs.readFileSync(marker, 'utf8');
  t.is((await fetch(srv, '/cgi/admin/x')).status, 403);
  t.is((await fetch(srv, '/cgi/%61dmin/x')).status, 403);
  const viaRedirect = await fetch(srv, '/cgi/go');
  t.is(viaRedirect.status, 403);
  t.is(fs.readFileSync(marker, 'utf8'), before, 'the script never ran for /cgi/admin');
  t.is((await fetch(srv, '/cgi/go', pki.alice)).status, 200);
  t.is((await fetch(srv, '/cgi/admin/y', pki.alice)).status, 200);
  t.is(fs.readFileSync(marker, 'utf8'), `${before}/admin/from-redirect\n/admin/y\n`);
});

test('access log: %u is the verified CN, escaped so the line stays one CLF record', async (t) => {
  const srv = await optionalServer();
  await fetch(srv, '/index.html', pki.alice);
  await fetch(srv, '/index.html', pki.spaced);
  await fetch(srv, '/index.html?anon');
  const log = path.join(srv.dirs.logs, 'access.log');
  let text = '';
  for (let i = 0; i < 50 && !/GET \/index\.html\?anon/.test(text); i++) {
    await sleep(100);
    text = fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '';
  }
  t.regex(text, /^127\.0\.0\.1 - alice \[[^\]]+\] "GET \/index\.html HTTP\/1\.1" 200 /m);
  t.regex(text, /^127\.0\.0\.1 - Mallory\\x20\\"Quote\\"\\x20Smith \[[^\]]+\] "GET \/index\.html HTTP\/1\.1" 200 /m);
  t.regex(text, /^127\.0\.0\.1 - - \[[^\]]+\] "GET \/index\.html\?anon HTTP\/1\.1" 200 /m);
});

test('a resumed session keeps the client identity', async (t) => {
  const srv = await optionalServer();
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = await Conn.open({ port: srv.httpsPort, tls: true, tlsOptions: tlsOptions(pki.alice, { maxVersion }) });
    await first.write(get('/cgi/whoami'));
    const [r1] = await first.readResponses(1, {});
    t.is(JSON.parse(r1!.body.toString()).SSL_CLIENT_S_DN_CN, 'alice');
    for (let i = 0; i < 20 && first.sessions.length === 0; i++) await sleep(25);
    const session = first.sessions.at(-1);
    first.destroy();
    t.truthy(session, `${maxVersion}: a session to resume`);
    // Resume without presenting the certificate again: the identity comes from the session.
    const second = await Conn.open({ port: srv.httpsPort, tls: true, tlsOptions: { maxVersion, session } });
    t.true(second.tls.isSessionReused(), `${maxVersion}: resumed`);
    await second.write(get('/cgi/whoami'));
    const [r2] = await second.readResponses(1, {});
    second.destroy();
    const env = JSON.parse(r2!.body.toString()) as Record<string, string>;
    t.is(env.SSL_CLIENT_VERIFY, 'SUCCESS', maxVersion);
    t.is(env.REMOTE_USER, 'alice', maxVersion);
  }
});

test('require: no certificate, no service; a valid one is served', async (t) => {
  const srv = await start({ tls_client_auth: 'require' });
  await refused(t, srv, undefined, 'no certificate (TLS 1.3)');
  await refused(t, srv, undefined, 'no certificate (TLS 1.2)', { maxVersion: 'TLSv1.2' });
  await refused(t, srv, pki.foreign, 'foreign CA');
  t.is((await identity(srv, pki.bob)).REMOTE_USER, 'bob');
});

test('the CertificateRequest names the CAs of tls_client_ca', async (t) => {
  const srv = await optionalServer();
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${srv.httpsPort}`, '-servername', 'localhost', '-tls1_2'],
    { input: '', encoding: 'utf8', timeout: 10_000 });
  t.regex(r.stdout, /Acceptable client certificate CA names\n\/?CN ?= ?lisod test client root\n/);
});

test('tls_verify_depth counts intermediates: alice (one) passes at 1, is refused at 0', async (t) => {
  const [one, zero] = await Promise.all([start({ tls_verify_depth: 1 }), start({ tls_verify_depth: 0 })]);
  t.is((await identity(one, pki.alice)).SSL_CLIENT_VERIFY, 'SUCCESS');
  await refused(t, zero, pki.alice, 'one intermediate > 0');
});

test('intermediates may sit in tls_client_ca; clients then send only their leaf', async (t) => {
  const srv = await start({ tls_client_ca: pki.caWithIntermediateFile });
  t.is((await identity(srv, { ...pki.alice, cert: pki.alice.leaf })).SSL_CLIENT_VERIFY, 'SUCCESS');
  await refused(t, srv, pki.carol, 'revoked');
});

test('SIGHUP reloads the CRL (and rules) for new connections without a restart', async (t) => {
  const crl = path.join(tempDir('lisod-crl-'), 'crl.pem');
  fs.copyFileSync(pki.crlNoneRevokedFile, crl);
  const srv = await start({ tls_crl: crl });
  t.is((await identity(srv, pki.alice)).REMOTE_USER, 'alice');
  fs.copyFileSync(pki.crlAliceRevokedFile, crl);
  t.true(await reload(srv), 'reload logged');
  await refused(t, srv, pki.alice, 'revoked after the reload');
  t.is((await identity(srv, pki.bob)).REMOTE_USER, 'bob');
  t.is(srv.proc.exitCode, null, 'still the same process');
});

test('SIGHUP reloads tls_client_ca and [[access]] from the edited config file', async (t) => {
  const srv = await start();
  t.is((await fetch(srv, '/private/x.html', pki.alice)).status, 200);
  const text = fs.readFileSync(srv.dirs.config, 'utf8');
  t.true(text.includes(pki.caFile) && text.includes('"O=Ops"'));
  fs.writeFileSync(srv.dirs.config, text.replace(pki.caFile, pki.foreignCaFile).replace(/^tls_crl = .*$/m, '')
    .replace('allow = [ "O=Ops" ]', 'allow = [ "O=Nobody" ]').replace('allow = ["O=Ops"]', 'allow = ["O=Nobody"]'));
  t.true(await reload(srv), 'reload logged');
  await refused(t, srv, pki.alice, 'a CA no longer trusted');
  const foreign = await fetch(srv, '/private/x.html', pki.foreign);
  t.is(foreign.status, 403, 'the new CA verifies, the new rule (O=Nobody) refuses');
  t.is((await fetch(srv, '/any/z.html', pki.foreign)).status, 200);
});

test('workers = 2: every event loop applies the rules, the client CA and a reloaded CRL', async (t) => {
  const crl = path.join(tempDir('lisod-crl-w2-'), 'crl.pem');
  fs.copyFileSync(pki.crlNoneRevokedFile, crl);
  const srv = await start({ tls_crl: crl, workers: 2 });
  // The kernel spreads connections over both loops' sockets by address hash: 12 are enough
  // to reach each with near certainty, and every one must behave the same.
  const anon = await Promise.all(Array.from({ length: 12 }, () => fetch(srv, '/private/x.html')));
  t.deepEqual(anon.map((r) => r.status), Array(12).fill(403));
  const alice = await Promise.all(Array.from({ length: 12 }, () => fetch(srv, '/private/x.html', pki.alice)));
  t.deepEqual(alice.map((r) => r.status), Array(12).fill(200));
  fs.copyFileSync(pki.crlAliceRevokedFile, crl);
  t.true(await reload(srv), 'reload logged');
  t.notRegex(fs.readFileSync(path.join(srv.dirs.logs, 'error.log'), 'utf8'), /kept its old certificate/);
  for (let i = 0; i < 12; i++) await refused(t, srv, pki.alice, `revoked after the reload (connection ${i})`);
});
