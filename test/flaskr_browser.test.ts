// Flaskr in a real browser: headless Debian Chromium (playwright-core) over HTTPS to lisod,
// trusting only this run's test certificate (SPKI pin): log in, add an entry, see it.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { getPki, spkiHash } from './helpers/pki.js';
import { repoRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

// Debian's chromium; elsewhere (e.g. Ubuntu, whose chromium is a snap) point LISOD_CHROMIUM at Chrome.
const kChromium = process.env.LISOD_CHROMIUM ?? '/usr/bin/chromium';

/** base64(sha256(SubjectPublicKeyInfo)) of a PEM certificate, as Chromium's SPKI list wants. */
const started: Lisod[] = [];
let context: BrowserContext | undefined;

test.after.always(async () => {
  await context?.close().catch(() => {});
  await Promise.all(started.map((l) => l.stop()));
});

// Debian installs it (scripts/system-deps.sh test); elsewhere there may be none to drive.
const hasChromium = fs.existsSync(kChromium);
(hasChromium ? test : test.skip)(`Chromium over HTTPS (Flaskr via FastCGI): log in, add an entry, see it after a reload; other certs still rejected${hasChromium ? '' : ` (skipped: no ${kChromium}; set LISOD_CHROMIUM)`}`, async (t) => {
  t.timeout(120_000);
  const pki = await getPki();
  const data = tempDir('flaskr-browser-');
  const profile = tempDir('chromium-profile-');
  const flaskr = {
    script: path.join(repoRoot, 'cgi-bin', 'flaskr.cgi'),
    env: { FLASKR_DATABASE: path.join(data, 'flaskr.sqlite'), FLASKR_SECRET_FILE: path.join(data, 'secret') },
  };
  const [l, other] = await Promise.all([
    // Flaskr through FastCGI, as lisod.conf serves it (flaskr.test.ts covers CGI and FastCGI).
    startLisod({ tls: 'rsa', omit: ['cgi'], config: { fastcgi: [{ path: '/cgi/', command: [path.join(repoRoot, 'cgi-bin', 'flaskr.fcgi')], processes: 2, env: flaskr.env }] } }),
    startLisod({ tls: 'ecdsa', config: { cgi: flaskr } }), // a certificate the browser must not accept
  ]);
  started.push(l, other);

  context = await chromium.launchPersistentContext(profile, {
    executablePath: kChromium,
    headless: true,
    ignoreHTTPSErrors: false,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Trust exactly this run's server key; everything else is verified as usual.
      `--ignore-certificate-errors-spki-list=${spkiHash(pki.rsa.cert)}`,
    ],
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  const base = `https://localhost:${l.httpsPort}`;

  const first = await page.goto(`${base}/cgi/`);
  t.is(first?.status(), 200);
  t.is(await page.title(), 'Flaskr');
  // The stylesheet from /cgi/static/ was applied.
  t.is(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(238, 238, 238)');

  await page.click('text=log in');
  await page.waitForURL(`${base}/cgi/login`);
  await page.fill('#username', 'admin');
  await page.fill('#password', 'default');
  await Promise.all([page.waitForURL(`${base}/cgi/`), page.click('input[type=submit]')]);
  t.regex(await page.textContent('.flash') ?? '', /You were logged in/);

  const title = `From Chromium ${crypto.randomBytes(3).toString('hex')} <b>not bold</b>`;
  await page.fill('#title', title);
  await page.fill('#text', 'Posted through lisod over TLS.');
  await Promise.all([page.waitForURL(`${base}/cgi/`), page.click('input[value=Share]')]);
  t.regex(await page.textContent('.flash') ?? '', /New entry was successfully posted/);

  await page.reload();
  const heading = page.locator('.entries li h2').first();
  t.is(await heading.textContent(), title, 'the entry is shown, its HTML as text');
  t.is(await page.locator('.entries li h2 b').count(), 0);
  t.is(await page.locator('.entries .text').first().textContent(), 'Posted through lisod over TLS.');

  // Log out: the add form disappears.
  await Promise.all([page.waitForURL(`${base}/cgi/`), page.click('text=log out')]);
  t.regex(await page.textContent('.flash') ?? '', /You were logged out/);
  t.is(await page.locator('form.add-entry').count(), 0);

  // Certificate verification is on: a server with another key is refused.
  const error = await page.goto(`https://localhost:${other.httpsPort}/cgi/`).then(() => '', (e: Error) => e.message);
  t.regex(error, /ERR_CERT/);
});
