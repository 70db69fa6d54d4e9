// Builds what every server shares for a run: the docroot (1 KiB html, 100 KiB, 1 MiB, 10 MiB,
// a 16 KiB compressible page),
// a test CA with RSA-2048 and ECDSA P-256 server certificates (openssl CLI), and CGI scripts.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';

/** Files of the docroot: URL path → size in bytes. */
export const DOCROOT_FILES = {
  '/1k.html': 1024,
  '/100k.bin': 100 * 1024,
  '/1m.bin': 1024 * 1024,
  '/10m.bin': 10 * 1024 * 1024,
  '/page.html': 16 * 1024, // compressible text for the gzip row
};

/**
 * Writes the docroot under `dir`. Contents are random (deterministic per size) so no layer
 * can cheat with compression; the html file is valid HTML padded to exactly 1024 bytes.
 * Directories are 0755 and files 0644: nginx workers may run as `nobody`.
 * @param {string} dir @returns {string} the docroot path
 */
export function makeDocroot(dir) {
  const root = path.join(dir, 'www');
  fs.mkdirSync(root, { recursive: true, mode: 0o755 });
  for (const [url, size] of Object.entries(DOCROOT_FILES)) {
    const file = path.join(root, url.slice(1));
    let data;
    if (url === '/page.html') {
      const line = '<p>lisod bench: a paragraph of ordinary page text, as compressible as html is.</p>\n';
      const head = '<!doctype html>\n<html><head><title>bench</title></head><body>\n';
      const tail = '</body></html>\n';
      const body = line.repeat(Math.ceil(size / line.length)).slice(0, size - head.length - tail.length);
      data = Buffer.from(head + body + tail);
    } else if (url.endsWith('.html')) {
      const head = '<!doctype html>\n<html><head><title>bench</title></head><body><p>';
      const tail = '</p></body></html>\n';
      data = Buffer.from(head + 'x'.repeat(size - head.length - tail.length) + tail);
    } else {
      data = Buffer.alloc(size);
      let block = crypto.createHash('sha256').update(String(size)).digest();
      for (let off = 0; off < size; off += block.length) {
        block.copy(data, off);
        block = crypto.createHash('sha256').update(block).digest();
      }
    }
    fs.writeFileSync(file, data, { mode: 0o644 });
  }
  // The php-fpm row's script (served through FastCGI, never as a file).
  fs.mkdirSync(path.join(root, 'php'), { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'php', 'hello.php'), '<?php echo "hello\\n";\n', { mode: 0o644 });
  return root;
}

function openssl(args, cwd) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A throwaway CA and two server certificates for 127.0.0.1/localhost, one RSA-2048 and one
 * ECDSA P-256, each signed by the CA (ECDSA-with-SHA256 CA, so the chain itself is not what
 * differs between rows).
 * @param {string} dir
 * @returns {{ca:string, rsa:{key:string, cert:string}, ecdsa:{key:string, cert:string}}}
 */
export function makeCerts(dir) {
  const d = path.join(dir, 'certs');
  fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca-key.pem'], d);
  openssl(['req', '-x509', '-new', '-key', 'ca-key.pem', '-sha256', '-days', '7',
    '-subj', '/CN=lisod bench CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.pem'], d);
  fs.writeFileSync(path.join(d, 'ext.cnf'),
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' +
    'extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n');
  const out = { ca: path.join(d, 'ca.pem') };
  for (const kind of ['rsa', 'ecdsa']) {
    const genArgs = kind === 'rsa'
      ? ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', `${kind}-key.pem`]
      : ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${kind}-key.pem`];
    openssl(genArgs, d);
    openssl(['req', '-new', '-key', `${kind}-key.pem`, '-subj', '/CN=localhost', '-out', `${kind}.csr`], d);
    openssl(['x509', '-req', '-in', `${kind}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem',
      '-CAcreateserial', '-days', '7', '-sha256', '-extfile', 'ext.cnf', '-out', `${kind}-cert.pem`], d);
    for (const f of [`${kind}-key.pem`, `${kind}-cert.pem`]) fs.chmodSync(path.join(d, f), 0o644);
    out[kind] = { key: path.join(d, `${kind}-key.pem`), cert: path.join(d, `${kind}-cert.pem`) };
  }
  fs.chmodSync(out.ca, 0o644);
  return /** @type {any} */ (out);
}

/**
 * The trivial CGI script: Python (Debian's interpreter, as the Flaskr CGI), parsed headers,
 * a short body. Written to `dir/cgi/hello.cgi`.
 * @param {string} dir @returns {string}
 */
export function makeTrivialCgi(dir) {
  return writeTrivialCgi(dir, 'hello.cgi', '');
}

/**
 * The same script ending in `os._exit(0)` after its flush, as cgi-bin/flaskr.cgi ends
 * (`end_process`): no interpreter teardown, so lighttpd's SIGTERM once the response is out
 * saves nothing and the row compares spawning and relaying alone. Written to `dir/cgi/hello_exit.cgi`.
 * @param {string} dir @returns {string}
 */
export function makeTrivialExitCgi(dir) {
  return writeTrivialCgi(dir, 'hello_exit.cgi', 'sys.stdout.flush()\nimport os\nos._exit(0)\n');
}

/** @param {string} dir @param {string} name @param {string} tail @returns {string} */
function writeTrivialCgi(dir, name, tail) {
  const d = path.join(dir, 'cgi');
  fs.mkdirSync(d, { recursive: true, mode: 0o755 });
  const file = path.join(d, name);
  fs.writeFileSync(file,
    '#!/usr/bin/python3\n' +
    'import sys\n' +
    'body = b"hello from a trivial CGI script\\n"\n' +
    'sys.stdout.buffer.write(b"Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n" +\n' +
    '    b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)\n' + tail,
    { mode: 0o755 });
  return file;
}

/**
 * Environment and state for the Flaskr CGI script (database and secret file in the run's
 * temp dir), the same on every server.
 * @param {string} dir @returns {Record<string,string>}
 */
export function flaskrEnv(dir) {
  const d = path.join(dir, 'flaskr');
  fs.mkdirSync(d, { recursive: true, mode: 0o777 });
  return {
    FLASKR_DATABASE: path.join(d, 'flaskr.sqlite'),
    FLASKR_SECRET_FILE: path.join(d, 'flaskr-secret'),
  };
}
