#!/usr/bin/env node
// Idle keep-alive connections for the memory row: opens N connections (HTTP or HTTPS), sends
// one keep-alive GET on each, reads the whole response, then holds them open.
//
// node bench/idle_client.mjs --port P --count N [--tls --ca FILE] [--path /1k.html]
// stdout, one JSON line each: {"open":n,"failed":f,"ms":t} once all are established; then on
// stdin "check\n" → {"open":n} (connections still open), "close\n" → closes all and exits.
import net from 'node:net';
import tls from 'node:tls';
import fs from 'node:fs';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
  options: {
    port: { type: 'string' },
    count: { type: 'string', default: '10000' },
    tls: { type: 'boolean', default: false },
    ca: { type: 'string' },
    path: { type: 'string', default: '/1k.html' },
    parallel: { type: 'string', default: '200' },
  },
});
const port = Number(opt.port);
const count = Number(opt.count);
const ca = opt.tls ? fs.readFileSync(/** @type {string} */ (opt.ca)) : undefined;
const request = `GET ${opt.path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

/** @type {Set<net.Socket>} */
const open = new Set();
let failed = 0;
const firstError = new Map();

/** Opens one connection and resolves once its response has fully arrived. */
function one() {
  return new Promise((resolve) => {
    const s = opt.tls
      ? tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' })
      : net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let need = -1;
    let done = false;
    const finish = (ok, why) => {
      if (done) return;
      done = true;
      if (ok) open.add(s);
      else {
        failed++;
        if (!firstError.has(why)) firstError.set(why, 1);
        s.destroy();
      }
      resolve();
    };
    s.setNoDelay(true);
    s.once(opt.tls ? 'secureConnect' : 'connect', () => s.write(request));
    s.on('data', (d) => {
      if (done) return; // nothing else is expected on an idle connection
      buf = Buffer.concat([buf, d]);
      if (need < 0) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.subarray(0, end).toString('latin1');
        const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
        if (!/^HTTP\/1\.1 200/.test(head) || !m) return finish(false, head.split('\r\n')[0]);
        need = end + 4 + Number(m[1]);
      }
      if (buf.length >= need) {
        buf = Buffer.alloc(0);
        finish(true);
      }
    });
    s.on('error', (e) => finish(false, e.message));
    s.on('close', () => {
      open.delete(s);
      finish(false, 'closed before the response');
    });
  });
}

const started = Date.now();
let next = 0;
async function worker() {
  while (next < count) {
    next++;
    await one();
  }
}
await Promise.all(Array.from({ length: Math.min(Number(opt.parallel), count) }, worker));
process.stdout.write(`${JSON.stringify({ open: open.size, failed, ms: Date.now() - started, errors: [...firstError.keys()].slice(0, 3) })}\n`);

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line === 'check') process.stdout.write(`${JSON.stringify({ open: open.size })}\n`);
  if (line === 'close') {
    for (const s of open) s.destroy();
    process.exit(0);
  }
});
rl.on('close', () => process.exit(0));
