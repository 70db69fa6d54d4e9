#!/usr/bin/env node
// The "Node's http/https" peer: a small static file server written the way people write one
// (stat, headers, fs.createReadStream().pipe(res)) on Node's own http and https modules.
//
// node bench/node_static.mjs --root DIR [--host 127.0.0.1] [--http-port N] [--https-port N]
//   [--key FILE --cert FILE] [--no-resumption]
// Prints `node_static: listening on http://HOST:PORT` per listener once bound (port 0 = any).
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    root: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    'http-port': { type: 'string' },
    'https-port': { type: 'string' },
    key: { type: 'string' },
    cert: { type: 'string' },
    'no-resumption': { type: 'boolean', default: false },
  },
});
if (!opt.root) {
  process.stderr.write('node_static: --root is required\n');
  process.exit(2);
}
const root = path.resolve(opt.root);

const TYPES = {
  '.html': 'text/html',
  '.css': 'text/css',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
};

/** @param {http.IncomingMessage} req @param {http.ServerResponse} res */
function serve(req, res) {
  let file;
  try {
    file = path.join(root, decodeURIComponent((req.url ?? '/').split('?')[0]));
  } catch {
    res.writeHead(400).end();
    return;
  }
  if (file !== root && !file.startsWith(root + path.sep)) {
    res.writeHead(403).end();
    return;
  }
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': st.size,
      'Last-Modified': st.mtime.toUTCString(),
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    fs.createReadStream(file).on('error', () => res.destroy()).pipe(res);
  });
}

/** Keep idle connections as long as the other servers do (the idle-connections row). */
function tune(server) {
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.requestTimeout = 0;
  return server;
}

function listen(server, port, scheme) {
  server.listen(Number(port), opt.host, () => {
    const a = server.address();
    process.stdout.write(`node_static: listening on ${scheme}://${opt.host}:${a.port}\n`);
  });
}

if (opt['http-port'] !== undefined) listen(tune(http.createServer(serve)), opt['http-port'], 'http');
if (opt['https-port'] !== undefined) {
  /** @type {https.ServerOptions} */
  const tlsOptions = {
    key: fs.readFileSync(/** @type {string} */ (opt.key)),
    cert: fs.readFileSync(/** @type {string} */ (opt.cert)),
    minVersion: 'TLSv1.2',
    // The TLS 1.3 suite order every server in the bench uses (bench/lib/servers.mjs kTls13Suites).
    ciphers: `TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:${tls.DEFAULT_CIPHERS}`,
    honorCipherOrder: true,
  };
  if (opt['no-resumption']) {
    // Node keeps no internal server session cache; resumption is by tickets only.
    tlsOptions.secureOptions = crypto.constants.SSL_OP_NO_TICKET;
    tlsOptions.sessionTimeout = 0;
  }
  listen(tune(https.createServer(tlsOptions, serve)), opt['https-port'], 'https');
}

for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
