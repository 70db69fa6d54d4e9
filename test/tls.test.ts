// HTTPS end to end: verification against the run's test CA, protocol versions (1.2/1.3 in,
// 1.1 out), ECDHE, RSA and ECDSA certificates, chain files, session resumption, 10 MiB.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Conn, exchange1, get, sleep } from './helpers/client.js';
import { assertFile } from './helpers/assert.js';
import type { DocFile } from './helpers/docroot.js';
import { startLisod } from './helpers/lisod.js';
import { getPki, type Pki } from './helpers/pki.js';
import { useLisod } from './helpers/use_lisod.js';

let pki: Pki;
test.before(async () => {
  pki = await getPki();
});

const site = useLisod(test, {
  servers: async () => ({
    rsa: { tls: 'rsa' },
    ecdsa: { tls: 'ecdsa' },
    chain: { tls: 'chain' },
    leafOnly: { tls: (await getPki()).chainLeafOnly },
    noResume: { tls: 'rsa', config: { tls_session_resumption: false } },
  }),
});

const file = (p: string): DocFile => site.www.files.get(p)!;

/** Handshake with the given client options; resolves with the socket or the error. */
function handshake(port: number, opts: tls.ConnectionOptions): Promise<tls.TLSSocket | Error> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: pki.ca, ...opts });
    const timer = setTimeout(() => { s.destroy(); resolve(new Error('handshake timeout')); }, 10_000);
    s.once('secureConnect', () => { clearTimeout(timer); resolve(s); });
    s.once('error', (e) => { clearTimeout(timer); s.destroy(); resolve(e); });
  });
}

async function getOver(port: number, opts: tls.ConnectionOptions, target = '/hello.txt'): Promise<Conn> {
  const c = await Conn.open({ port, tls: true, tlsOptions: opts });
  await c.write(get(target));
  return c;
}

test('certificate verifies against the test CA for "localhost"', async (t) => {
  const c = await getOver(site.rsa.httpsPort, {});
  assertFile(t, await c.readResponse(), file('/hello.txt'));
  const cert = c.tls.getPeerCertificate();
  t.is(cert.subject.CN, 'localhost');
  t.is(cert.issuer.CN, 'lisod test root CA');
  t.true(c.tls.authorized);
  c.destroy();
});

test('a client without the test CA refuses the certificate (verification is real)', async (t) => {
  const r = await handshake(site.rsa.httpsPort, { ca: undefined });
  t.true(r instanceof Error, 'handshake must fail without the CA');
  t.regex((r as Error).message, /self[- ]signed|unable to (get local issuer|verify)/i);
});

test('TLS 1.3 is the default', async (t) => {
  const c = await getOver(site.rsa.httpsPort, {});
  assertFile(t, await c.readResponse(), file('/hello.txt'));
  t.is(c.tls.getProtocol(), 'TLSv1.3');
  c.destroy();
});

for (const [name, server] of [['RSA', () => site.rsa], ['ECDSA', () => site.ecdsa]] as const) {
  test(`TLS 1.2 is accepted with an ECDHE AEAD cipher (${name})`, async (t) => {
    const c = await getOver(server().httpsPort, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
    assertFile(t, await c.readResponse(), file('/hello.txt'));
    t.is(c.tls.getProtocol(), 'TLSv1.2');
    const cipher = c.tls.getCipher().name;
    t.regex(cipher, new RegExp(`^ECDHE-${name}-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$`), cipher);
    c.destroy();
  });
}

test('server cipher preference: the client\'s order does not change the negotiated cipher', async (t) => {
  const suites12 = ['ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-RSA-CHACHA20-POLY1305'];
  const suites13 = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
  for (const [v, suites] of [['TLSv1.2', suites12], ['TLSv1.3', suites13]] as const) {
    const picked: string[] = [];
    for (const order of [suites, [...suites].reverse()]) {
      const opts: tls.ConnectionOptions = { minVersion: v, maxVersion: v };
      if (v === 'TLSv1.2') opts.ciphers = order.join(':');
      else opts.ciphers = `${order.join(':')}:${suites12.join(':')}`;
      const r = await handshake(site.rsa.httpsPort, opts);
      t.false(r instanceof Error, `${v} handshake: ${r instanceof Error ? r.message : ''}`);
      if (r instanceof Error) return;
      picked.push(r.getCipher().standardName);
      r.destroy();
    }
    t.is(picked[0], picked[1], `${v}: client order changed the cipher (${picked.join(' vs ')})`);
    // AES-128-GCM first under both versions (Mozilla intermediate), not OpenSSL's AES-256-first 1.3 default.
    t.is(picked[0], v === 'TLSv1.2' ? 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256' : 'TLS_AES_128_GCM_SHA256');
  }
});

test('TLS 1.2 without ECDHE (static RSA key exchange, CBC) is refused', async (t) => {
  const r = await handshake(site.rsa.httpsPort, {
    minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'AES128-SHA:AES256-SHA:AES128-SHA256:AES256-SHA256',
  });
  t.true(r instanceof Error, `legacy cipher negotiated: ${r instanceof Error ? '' : r.getCipher().name}`);
  if (!(r instanceof Error)) r.destroy();
});

test('TLS 1.1 and 1.0 are refused', async (t) => {
  const legacy: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' };
  // Control: this client really can speak TLS 1.1 to a server that allows it.
  const control = tls.createServer({
    key: fs.readFileSync(pki.rsa.key), cert: fs.readFileSync(pki.rsa.cert), minVersion: 'TLSv1', ciphers: 'DEFAULT:@SECLEVEL=0',
  }, (s) => s.end());
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  const ok = await handshake((control.address() as net.AddressInfo).port, legacy);
  control.close();
  t.false(ok instanceof Error, `control handshake failed: ${ok instanceof Error ? ok.message : ''}`);
  if (!(ok instanceof Error)) {
    t.is(ok.getProtocol(), 'TLSv1.1');
    ok.destroy();
  }
  const r = await handshake(site.rsa.httpsPort, legacy);
  t.true(r instanceof Error, `lisod accepted ${r instanceof Error ? '' : r.getProtocol()}`);
  if (!(r instanceof Error)) r.destroy();
  const r10 = await handshake(site.rsa.httpsPort, { ...legacy, maxVersion: 'TLSv1' });
  t.true(r10 instanceof Error, 'lisod accepted TLS 1.0');
  if (!(r10 instanceof Error)) r10.destroy();
});

test('ECDSA P-256 certificate works (TLS 1.3 and 1.2)', async (t) => {
  for (const v of ['TLSv1.3', 'TLSv1.2'] as const) {
    const c = await getOver(site.ecdsa.httpsPort, { minVersion: v, maxVersion: v });
    assertFile(t, await c.readResponse(), file('/hello.txt'));
    const cert = c.tls.getPeerCertificate();
    t.is(cert.asn1Curve, 'prime256v1');
    t.is(c.tls.getProtocol(), v);
    c.destroy();
  }
});

test('chain file: the intermediate is sent, so a client trusting only the root verifies', async (t) => {
  const c = await getOver(site.chain.httpsPort, {});
  assertFile(t, await c.readResponse(), file('/hello.txt'));
  const cert = c.tls.getPeerCertificate(true);
  t.is(cert.subject.CN, 'localhost');
  t.is(cert.issuer.CN, 'lisod test intermediate CA');
  t.is(cert.issuerCertificate?.subject.CN, 'lisod test intermediate CA');
  c.destroy();
});

test('control: the same leaf without its intermediate does not verify', async (t) => {
  const r = await handshake(site.leafOnly.httpsPort, {});
  t.true(r instanceof Error);
  t.regex((r as Error).message, /unable to (verify the first certificate|get local issuer)/i);
});

test('session resumption with TLS 1.3 tickets', async (t) => {
  const c1 = await getOver(site.rsa.httpsPort, {});
  assertFile(t, await c1.readResponse(), file('/hello.txt'));
  for (let i = 0; i < 100 && c1.sessions.length === 0; i++) await sleep(20);
  t.true(c1.sessions.length > 0, 'server sent a session ticket');
  t.false(c1.tls.isSessionReused());
  c1.destroy();
  const c2 = await getOver(site.rsa.httpsPort, { session: c1.sessions.at(-1) });
  assertFile(t, await c2.readResponse(), file('/hello.txt'));
  t.true(c2.tls.isSessionReused(), 'second connection resumed the session');
  c2.destroy();
});

test('session resumption with TLS 1.2 tickets', async (t) => {
  const v: tls.ConnectionOptions = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' };
  const c1 = await getOver(site.rsa.httpsPort, v);
  assertFile(t, await c1.readResponse(), file('/hello.txt'));
  for (let i = 0; i < 100 && c1.sessions.length === 0; i++) await sleep(20);
  t.true(c1.sessions.length > 0, 'session available');
  t.truthy(c1.tls.getTLSTicket(), 'server issued a TLS 1.2 session ticket');
  c1.destroy();
  const c2 = await getOver(site.rsa.httpsPort, { ...v, session: c1.sessions.at(-1) });
  assertFile(t, await c2.readResponse(), file('/hello.txt'));
  t.true(c2.tls.isSessionReused(), 'second connection resumed the session');
  c2.destroy();
});

test('tls_session_resumption = false: no tickets, an offered session is not resumed (TLS 1.3 and 1.2)', async (t) => {
  for (const v of [{}, { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' }] as tls.ConnectionOptions[]) {
    // A session from a server that does resume, offered to the one that must not.
    const c1 = await getOver(site.rsa.httpsPort, v);
    assertFile(t, await c1.readResponse(), file('/hello.txt'));
    for (let i = 0; i < 100 && c1.sessions.length === 0; i++) await sleep(20);
    c1.destroy();
    const c2 = await getOver(site.noResume.httpsPort, v);
    assertFile(t, await c2.readResponse(), file('/hello.txt'));
    await sleep(100);
    t.falsy(c2.tls.getTLSTicket(), 'no session ticket issued');
    const offered = c2.sessions.at(-1) ?? c1.sessions.at(-1);
    c2.destroy();
    const c3 = await getOver(site.noResume.httpsPort, { ...v, session: offered });
    assertFile(t, await c3.readResponse(), file('/hello.txt'));
    t.false(c3.tls.isSessionReused(), 'full handshake every time');
    c3.destroy();
  }
});

test('10 MiB file over HTTPS (RSA and ECDSA), then the connection is still usable', async (t) => {
  for (const server of [site.rsa, site.ecdsa]) {
    const c = await Conn.open({ port: server.httpsPort, tls: true });
    await c.write(get('/big.bin') + get('/hello.txt'));
    const [big, small] = await c.readResponses(2, { timeoutMs: 30_000 });
    c.destroy();
    assertFile(t, big!, file('/big.bin'), { type: 'application/octet-stream' });
    assertFile(t, small!, file('/hello.txt'));
  }
});

test('10 MiB over HTTPS to a slowly reading client (bounded buffer, WANT_WRITE)', async (t) => {
  const c = await Conn.open({ port: site.rsa.httpsPort, tls: true });
  c.socket.pause();
  await c.write(get('/big.bin'));
  for (let i = 0; i < 10; i++) {
    await sleep(50);
    c.socket.resume();
    await sleep(5);
    c.socket.pause();
  }
  c.socket.resume();
  const res = await c.readResponse({ timeoutMs: 30_000 });
  c.destroy();
  assertFile(t, res, file('/big.bin'));
});

test('plain HTTP to the HTTPS port and TLS to the HTTP port fail cleanly; both keep serving', async (t) => {
  // Plaintext on the TLS port: the server must drop it (or alert), never answer in clear.
  const s = net.connect({ host: '127.0.0.1', port: site.rsa.httpsPort });
  await new Promise((r) => s.once('connect', r));
  s.write(get('/hello.txt'));
  const got = await new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('close', () => resolve(Buffer.concat(parts)));
    s.on('error', () => undefined);
    setTimeout(() => { s.destroy(); }, 5000);
  });
  t.false(got.toString('latin1').includes('hello, world'), 'file served in cleartext on the TLS port');
  // TLS on the plain port: handshake fails; the server answers 400 or closes.
  const r = await handshake(site.rsa.httpPort, {});
  t.true(r instanceof Error);
  assertFile(t, await exchange1(get('/hello.txt'), { port: site.rsa.httpPort }), file('/hello.txt'));
  assertFile(t, await exchange1(get('/hello.txt'), { port: site.rsa.httpsPort, tls: true }), file('/hello.txt'));
});

test('IPv6: bind ["127.0.0.1", "::1"] serves HTTP and HTTPS on both', async (t) => {
  const l = await startLisod({ www: site.www.root, config: { bind: ['127.0.0.1', '::1'] } });
  try {
    t.is(l.urls.length, 4, l.urls.join(' '));
    const v6 = l.urls.filter((u) => u.includes('[::1]'));
    t.is(v6.length, 2, l.urls.join(' '));
    for (const u of l.urls) {
      const url = new URL(u);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const c = await Conn.open({ port: Number(url.port), host, tls: url.protocol === 'https:' });
      await c.write(get('/hello.txt'));
      assertFile(t, await c.readResponse(), file('/hello.txt'));
      t.is(c.socket.remoteAddress, host);
      c.destroy();
    }
  } finally {
    await l.stop();
  }
});
