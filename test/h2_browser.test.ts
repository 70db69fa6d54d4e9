// A page with several assets in headless Chromium (playwright-core) over HTTPS: with
// `http2 = true` every resource arrives over h2 (Performance API nextHopProtocol), byte for
// byte (sha256 in the page against the files); with http2 off the same page says http/1.1.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium, type BrowserContext } from 'playwright-core';
import { getPki, spkiHash } from './helpers/pki.js';
import { startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

const kChromium = process.env.LISOD_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = fs.existsSync(kChromium);

/** A valid w×h RGB PNG of one colour (the browser must decode it: naturalWidth). */
function png(w: number, h: number, rgb: [number, number, number]): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const rows = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rows.set(rgb, y * (w * 3 + 1) + 1 + x * 3);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(rows)), chunk('IEND', Buffer.alloc(0))]);
}

/** The site: index.html with a stylesheet, two scripts (one of 300 KiB: many DATA frames) and three images. */
function makeSite(): { www: string; assets: Record<string, Buffer> } {
  const www = tempDir('h2-browser-www-');
  const filler = crypto.randomBytes(225 * 1024).toString('base64'); // 300 KiB of text
  const assets: Record<string, Buffer> = {
    '/style.css': Buffer.from('body { background-color: rgb(1, 2, 3); }\n'),
    '/app.js': Buffer.from('window.appLoaded = "yes";\n'),
    '/big.js': Buffer.from(`window.bigLength = ${filler.length};\n/* ${filler} */\n`),
    '/red.png': png(7, 5, [255, 0, 0]),
    '/green.png': png(64, 48, [0, 255, 0]),
    '/blue.png': png(300, 200, [0, 0, 255]),
  };
  for (const [p, data] of Object.entries(assets)) fs.writeFileSync(path.join(www, p.slice(1)), data);
  fs.writeFileSync(path.join(www, 'index.html'), `<!doctype html>
<html><head><meta charset="utf-8"><title>h2 page</title>
<link rel="stylesheet" href="/style.css">
<script src="/app.js"></script><script src="/big.js"></script>
</head><body><h1>assets</h1>
<img id="red" src="/red.png"><img id="green" src="/green.png"><img id="blue" src="/blue.png">
</body></html>
`);
  return { www, assets };
}

const started: Lisod[] = [];
const contexts: BrowserContext[] = [];
test.after.always(async () => {
  await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  await Promise.all(started.map((l) => l.stop()));
});

type Loaded = {
  protocols: Record<string, string>;  // path → nextHopProtocol (navigation and resources)
  sizes: Record<string, number>;       // path → decodedBodySize
  hashes: Record<string, string>;      // path → sha256 hex of the bytes fetch() got
  background: string;
  app: string;
  bigLength: number;
  images: Record<string, [number, number]>;
};

async function loadPage(http2: boolean, t: { log: (...a: unknown[]) => void }): Promise<{ loaded: Loaded; assets: Record<string, Buffer>; html: Buffer }> {
  const pki = await getPki();
  const { www, assets } = makeSite();
  const l = await startLisod({ tls: 'rsa', www, config: { http2 } });
  started.push(l);
  const context = await chromium.launchPersistentContext(tempDir('chromium-h2-'), {
    executablePath: kChromium,
    headless: true,
    ignoreHTTPSErrors: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spkiHash(pki.rsa.cert)}`],
  });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  const res = await page.goto(`https://localhost:${l.httpsPort}/`, { waitUntil: 'load' });
  if (res?.status() !== 200) throw new Error(`index: status ${res?.status()}`);
  const loaded = await page.evaluate(async (paths: string[]) => {
    const protocols: Record<string, string> = {};
    const sizes: Record<string, number> = {};
    for (const e of performance.getEntries() as PerformanceResourceTiming[]) {
      if (!('nextHopProtocol' in e)) continue;
      const p = new URL(e.name).pathname;
      protocols[p] = e.nextHopProtocol;
      sizes[p] = e.decodedBodySize;
    }
    const hashes: Record<string, string> = {};
    for (const p of ['/', ...paths]) {
      const buf = await (await fetch(p, { cache: 'no-store' })).arrayBuffer();
      const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
      hashes[p] = Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
    }
    const images: Record<string, [number, number]> = {};
    for (const img of Array.from(document.images)) images[img.id] = [img.naturalWidth, img.naturalHeight];
    const w = window as unknown as { appLoaded: string; bigLength: number };
    return { protocols, sizes, hashes, background: getComputedStyle(document.body).backgroundColor,
      app: w.appLoaded, bigLength: w.bigLength, images };
  }, Object.keys(assets));
  t.log(JSON.stringify(loaded.protocols));
  await context.close();
  return { loaded, assets, html: fs.readFileSync(path.join(www, 'index.html')) };
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

const skip = hasChromium ? '' : ` (skipped: no ${kChromium}; set LISOD_CHROMIUM)`;
(hasChromium ? test : test.skip)(`Chromium loads a page and its css/js/images over h2, byte for byte (http2 = true)${skip}`, async (t) => {
  t.timeout(120_000);
  const { loaded, assets, html } = await loadPage(true, t);
  t.is(loaded.protocols['/'], 'h2', 'the page itself');
  for (const p of Object.keys(assets)) {
    t.is(loaded.protocols[p], 'h2', `${p} over h2`);
    t.is(loaded.sizes[p], assets[p].length, `${p} size`);
    t.is(loaded.hashes[p], sha(assets[p]), `${p} bytes`);
  }
  t.is(loaded.hashes['/'], sha(html));
  t.is(loaded.background, 'rgb(1, 2, 3)');
  t.is(loaded.app, 'yes');
  t.is(loaded.bigLength, 225 * 1024 / 3 * 4);
  t.deepEqual(loaded.images, { red: [7, 5], green: [64, 48], blue: [300, 200] });
});

(hasChromium ? test : test.skip)(`the same page with http2 = false says http/1.1 for every resource${skip}`, async (t) => {
  t.timeout(120_000);
  const { loaded, assets } = await loadPage(false, t);
  t.is(loaded.protocols['/'], 'http/1.1');
  for (const p of Object.keys(assets)) {
    t.is(loaded.protocols[p], 'http/1.1', `${p} over http/1.1`);
    t.is(loaded.hashes[p], sha(assets[p]), `${p} bytes`);
  }
  t.deepEqual(loaded.images, { red: [7, 5], green: [64, 48], blue: [300, 200] });
});
