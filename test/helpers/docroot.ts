// Generates a www root fixture at run time: index pages, a 10 MiB random file, one file
// per MIME extension, directories with and without index, and escapes that leave the root.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sha256 } from './client.js';
import { tempDir } from './tmp.js';

export { sha256 };

export interface DocFile {
  path: string; // absolute path on disk
  body: Buffer;
  sha256: string;
}

export interface Docroot {
  base: string; // parent directory holding root/ and outside/
  root: string; // the www root
  outside: string; // sibling of root holding files that must never be served
  secretMarker: string; // text inside every file under outside/
  files: Map<string, DocFile>; // request path ("/a.css") → file
  bigPath: string; // "/big.bin", 10 MiB of pseudo-random bytes
  /** Content types by request path (type/subtype, without parameters). */
  mime: Map<string, string>;
  unreadable?: string; // "/unreadable.html" (mode 000) when made
}

export const kBigSize = 10 * 1024 * 1024;

export const kMimeFixtures: ReadonlyArray<[string, string]> = [
  ['/m/page.html', 'text/html'],
  ['/m/page.htm', 'text/html'],
  ['/m/style.css', 'text/css'],
  ['/m/app.js', 'text/javascript'], // application/javascript also accepted by tests
  ['/m/data.json', 'application/json'],
  ['/m/pic.png', 'image/png'],
  ['/m/pic.jpg', 'image/jpeg'],
  ['/m/pic.jpeg', 'image/jpeg'],
  ['/m/anim.gif', 'image/gif'],
  ['/m/logo.svg', 'image/svg+xml'],
  ['/m/favicon.ico', 'image/x-icon'], // image/vnd.microsoft.icon also accepted
  ['/m/notes.txt', 'text/plain'],
  ['/m/doc.pdf', 'application/pdf'],
  ['/m/font.woff2', 'font/woff2'],
  ['/m/blob.unknownext', 'application/octet-stream'],
  ['/m/noextension', 'application/octet-stream'],
  ['/m/UPPER.PNG', 'image/png'],
];

function put(d: Docroot, rel: string, body: Buffer | string): DocFile {
  const abs = path.join(d.root, ...rel.split('/').filter(Boolean));
  fs.mkdirSync(path.dirname(abs), { recursive: true, mode: 0o755 });
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
  fs.writeFileSync(abs, buf, { mode: 0o644 });
  const f: DocFile = { path: abs, body: buf, sha256: sha256(buf) };
  d.files.set(rel, f);
  return f;
}

export interface DocrootOptions {
  /** Make /unreadable.html with mode 000 (only meaningful when lisod runs unprivileged). */
  unreadable?: boolean;
  /** Skip the 10 MiB file. */
  noBig?: boolean;
}

/** Creates a fresh docroot in a temp dir; removed when the process exits. */
export function makeDocroot(opts: DocrootOptions = {}): Docroot {
  const base = tempDir('lisod-www-');
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  fs.mkdirSync(root, { mode: 0o755 });
  fs.mkdirSync(outside, { mode: 0o755 });
  const secretMarker = `SECRET-${crypto.randomBytes(8).toString('hex')}`;
  const d: Docroot = {
    base, root, outside, secretMarker, files: new Map(), bigPath: '/big.bin', mime: new Map(),
  };

  put(d, '/index.html', '<!doctype html><title>lisod test</title><h1>root index</h1>\n');
  put(d, '/sub/index.html', '<!doctype html><title>sub</title><h1>sub index</h1>\n');
  put(d, '/sub/page.html', '<!doctype html><p>sub page</p>\n');
  put(d, '/sub/deeper/file.txt', 'deeper file\n');
  put(d, '/hello.txt', 'hello, world\n');
  put(d, '/with space.txt', 'a file whose name has a space\n');
  put(d, '/range.txt', '0123456789abcdefghijklmnopqrstuvwxyz');
  put(d, '/empty.txt', '');
  fs.mkdirSync(path.join(root, 'noindex'), { mode: 0o755 });
  put(d, '/noindex/other.html', '<p>not an index</p>\n');
  for (const [rel, type] of kMimeFixtures) {
    put(d, rel, `${rel} ${crypto.randomBytes(16).toString('hex')}\n`);
    d.mime.set(rel, type);
  }
  if (!opts.noBig) put(d, '/big.bin', crypto.randomBytes(kBigSize));

  // Material outside the root, reachable only through escapes.
  fs.writeFileSync(path.join(outside, 'secret.txt'), `${secretMarker}\n`, { mode: 0o644 });
  fs.writeFileSync(path.join(base, 'secret.txt'), `${secretMarker} (base)\n`, { mode: 0o644 });
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(root, 'link-out.txt'));
  fs.symlinkSync(outside, path.join(root, 'link-outdir'));
  fs.symlinkSync('../outside/secret.txt', path.join(root, 'rel-link-out.txt'));
  // A symlink that stays inside is fine to serve (not required, not asserted).
  fs.symlinkSync('hello.txt', path.join(root, 'link-in.txt'));

  if (opts.unreadable) {
    const f = put(d, '/unreadable.html', '<p>you should not see this</p>\n');
    fs.chmodSync(f.path, 0o000);
    d.unreadable = '/unreadable.html';
  }
  return d;
}

/** Sets a file's mtime to a fixed whole second (so Last-Modified is predictable). */
export function setMtime(file: string, unixSeconds: number): void {
  fs.utimesSync(file, unixSeconds, unixSeconds);
}
