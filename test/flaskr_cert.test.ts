// Flaskr's "log in with a certificate", over HTTPS through lisod and the WSGI bridge: an
// allowed CN may post without a password, per request only (nothing in the session cookie);
// other CNs, anonymous clients and forged headers may not. Then the same in Chromium
// (Playwright's clientCertificates), logging in with the .p12 that `lisod pki` issues.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium, type BrowserContext } from 'playwright-core';
import { exchange1, type HttpResponse } from './helpers/client.js';
import { getClientPki, type ClientCert, type ClientPki } from './helpers/client_pki.js';
import { mainJs, repoRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

let pki: ClientPki;
let srv: Lisod;
const started: Lisod[] = [];
let context: BrowserContext | undefined;

function flaskr(data: string) {
  return {
    script: path.join(repoRoot, 'cgi-bin', 'flaskr.cgi'),
    env: {
      FLASKR_DATABASE: path.join(data, 'flaskr.sqlite'), FLASKR_SECRET_FILE: path.join(data, 'secret'),
      FLASKR_CERT_USERS: 'alice, browser',
    },
  };
}

test.before(async () => {
  pki = await getClientPki();
  srv = await startLisod({
    startTimeoutMs: 30_000,
    config: { cgi: flaskr(tempDir('flaskr-cert-')), tls_client_ca: pki.caFile, tls_client_auth: 'optional', tls_crl: pki.crlFile },
  });
  started.push(srv);
});

test.after.always(async () => {
  await context?.close().catch(() => {});
  await Promise.all(started.map((l) => l.stop()));
});

function post(title: string, cert?: ClientCert, extraHeaders = ''): Promise<HttpResponse> {
  const body = `title=${encodeURIComponent(title)}&text=x`;
  const raw = `POST /cgi/add HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n` +
    `Content-Length: ${body.length}\r\n${extraHeaders}\r\n${body}`;
  return exchange1(raw, { port: srv.httpsPort, tls: true, tlsOptions: cert ? { key: cert.key, cert: cert.cert } : {} });
}

/** The JSON inside a Flask session cookie (itsdangerous: optional '.' = zlib, base64url). */
function sessionJson(setCookie: string | undefined): string {
  const value = /session=([^;]+)/.exec(setCookie ?? '')?.[1];
  if (!value) return '';
  const compressed = value.startsWith('.');
  const payload = Buffer.from((compressed ? value.slice(1) : value).split('.')[0]!, 'base64url');
  return (compressed ? zlib.inflateSync(payload) : payload).toString();
}

test('an allowed CN posts without a password; nothing about it goes into the session cookie', async (t) => {
  const title = `by certificate ${crypto.randomBytes(3).toString('hex')}`;
  const r = await post(title, pki.alice);
  t.is(r.status, 302, r.body.toString());
  t.notRegex(sessionJson(r.headers['set-cookie']), /logged_in|alice/);
  const page = await exchange1('GET /cgi/ HTTP/1.1\r\nHost: localhost\r\n\r\n', { port: srv.httpsPort, tls: true, tlsOptions: { key: pki.alice.key, cert: pki.alice.cert } });
  t.regex(page.body.toString(), /logged in as alice \(certificate\)/);
  t.regex(page.body.toString(), /class="add-entry"/);
  t.true(page.body.toString().includes(title));
  // The cookie alice got does not log in a client without her certificate.
  const cookie = /session=[^;]+/.exec(r.headers['set-cookie'] ?? '')?.[0] ?? '';
  t.is((await post('replayed cookie', undefined, `Cookie: ${cookie}\r\n`)).status, 401);
});

test('a CN not on FLASKR_CERT_USERS, no certificate, or forged headers: 401', async (t) => {
  t.is((await post('bob', pki.bob)).status, 401);
  t.is((await post('anonymous')).status, 401);
  t.is((await post('forged', undefined, 'SSL-Client-Verify: SUCCESS\r\nSSL-Client-S-DN-CN: alice\r\n')).status, 401);
});

test('Chromium logs into Flaskr with a client certificate from lisod pki (.p12)', async (t) => {
  t.timeout(120_000);
  const ca = path.join(tempDir('flaskr-browser-ca-'), 'ca');
  const run = (...args: string[]) => spawnSync(process.execPath, [mainJs, 'pki', ...args], { encoding: 'utf8' });
  t.is(run('init', ca).status, 0);
  t.is(run('issue', ca, 'server', 'localhost', '--san', '127.0.0.1').status, 0);
  const issued = run('issue', ca, 'client', 'browser', '--subject', 'O=Ops');
  t.is(issued.status, 0, issued.stderr);
  const passphrase = /password: (\S+)\)/.exec(issued.stdout)![1]!;
  const l = await startLisod({
    startTimeoutMs: 30_000,
    tls: { key: path.join(ca, 'issued', 'localhost.key'), cert: path.join(ca, 'issued', 'localhost.crt') },
    config: {
      cgi: flaskr(tempDir('flaskr-cert-browser-')), tls_client_ca: path.join(ca, 'ca.crt'), tls_client_auth: 'require',
      tls_crl: path.join(ca, 'crl.pem'),
    },
  });
  started.push(l);
  const base = `https://localhost:${l.httpsPort}`;
  context = await chromium.launchPersistentContext(tempDir('chromium-profile-'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    // Playwright's client-certificate proxy makes the TLS connection to lisod itself and can
    // verify only against Node's default CAs, so the server check is off here (tls.test.ts and
    // flaskr_browser.test.ts verify the server); the access log below proves it was this lisod.
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: base, pfxPath: path.join(ca, 'issued', 'browser.p12'), passphrase }],
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  const first = await page.goto(`${base}/cgi/`);
  t.is(first?.status(), 200);
  t.regex(await page.textContent('.metanav') ?? '', /logged in as browser \(certificate\)/);
  const title = `From Chromium with a certificate ${crypto.randomBytes(3).toString('hex')}`;
  await page.fill('#title', title);
  await page.fill('#text', 'No password typed.');
  await Promise.all([page.waitForURL(`${base}/cgi/`), page.click('input[value=Share]')]);
  t.regex(await page.textContent('.flash') ?? '', /New entry was successfully posted/);
  t.is(await page.locator('.entries li h2').first().textContent(), title);
  const logFile = path.join(l.dirs.logs, 'access.log');
  let log = '';
  for (let i = 0; i < 50 && !/POST \/cgi\/add/.test(log); i++) {
    await new Promise((r) => setTimeout(r, 100));
    log = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
  }
  // h2 is on by default: Chromium posts over HTTP/2, and the identity (%u) still comes through.
  t.regex(log, /- browser \[[^\]]+\] "POST \/cgi\/add HTTP\/2\.0" 302 /);
});
