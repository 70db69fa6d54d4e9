#!/usr/bin/env node
// Handshake cost with a client certificate: lisod (tls_client_auth = "optional", CA + CRL) vs
// nginx (ssl_verify_client optional, ssl_client_certificate, ssl_crl). wrk cannot send client
// certificates, so `openssl s_time -new` makes full handshakes (ECDSA P-256 server and client,
// no resumption) one after another, each fetching /1k.html; the server's CPU time per handshake
// comes from /proc (its whole process tree), so the client's own cost does not enter the ratio.
//   node bench/client_cert.mjs [--seconds 10] [--passes 3]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeCerts, makeDocroot } from './lib/fixtures.mjs';
import { snapshotAll, treeOf, ticksToUs } from './lib/procfs.mjs';
import { Supervisor } from './lib/servers.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, passes: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const passes = Number(values.passes);
const twoCores = os.availableParallelism() >= 2;
const taskset = (cpu, cmd, args) => (twoCores ? ['taskset', ['-c', cpu, cmd, ...args]] : [cmd, args]);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lisod-bench-cc-'));
fs.chmodSync(dir, 0o755);
const docroot = makeDocroot(dir);
const certs = makeCerts(dir);

// Client PKI from lisod pki's code: a root, a client certificate, an empty CRL.
const { createCa, createCrl, importSigningKey, issueLeaf } = await import(pathToFileURL(path.join(repo, 'dist', 'pki', 'ca.js')).href);
const root = await createCa({ cn: 'bench client root', days: 7 });
const signer = { cert: root.cert, key: await importSigningKey(root.key) };
const leaf = await issueLeaf(signer, { kind: 'client', subject: [['CN', 'bench'], ['O', 'Ops']], days: 7 });
const file = (name, text) => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode: 0o644 });
  return p;
};
const clientCa = { ca: file('client-ca.crt', root.cert), crl: file('client-crl.pem', await createCrl(signer, [], 7)) };
const clientCert = file('client.crt', leaf.cert);
const clientKey = file('client.key', leaf.key);

const ctx = {
  dir, docroot, certs, repo, lisodMain: path.join(repo, 'dist', 'main.js'), lighttpdModDir: null,
  serverCpu: twoCores ? '1' : null, lisodResumptionKey: 'tls_session_resumption',
};
const variant = { cert: 'ecdsa', resumption: false, cgiScript: '/bin/true', cgiEnv: {}, clientCa };
const sup = new Supervisor(path.join(dir, 'servers'));
process.on('SIGINT', () => { void sup.stopAll().then(() => process.exit(130)); });

const treeTicks = (pid) => treeOf(snapshotAll(), pid).reduce((sum, s) => sum + s.ticks, 0);

/** Full handshakes for `secs` seconds; returns the number made. */
function sTime(port, secs) {
  const [cmd, args] = taskset('0', 'openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(secs),
    '-cert', clientCert, '-key', clientKey, '-CAfile', certs.ca, '-www', '/1k.html']);
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const m = /(\d+) connections in (\d+) real seconds/.exec(r.stdout);
  if (!m) throw new Error(`openssl s_time: ${r.stderr || r.stdout}`);
  return Number(m[1]);
}

/** The server really checks the certificate: one from a foreign CA gets no page (lisod refuses
 *  the handshake; nginx completes it and answers 400). */
async function checkVerifies(port) {
  const other = await createCa({ cn: 'foreign', days: 1 });
  const bad = await issueLeaf({ cert: other.cert, key: await importSigningKey(other.key) }, { kind: 'client', subject: [['CN', 'x']], days: 1 });
  const r = spawnSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', certs.ca, '--cert', file('bad.crt', bad.cert),
    '--key', file('bad.key', bad.key), `https://127.0.0.1:${port}/1k.html`], { encoding: 'utf8' });
  return r.stdout === '000' || r.stdout === '400';
}

const results = { lisod: [], nginx: [] };
try {
  for (let pass = 0; pass < passes; pass++) {
    for (const name of pass % 2 === 0 ? ['lisod', 'nginx'] : ['nginx', 'lisod']) {
      const srv = await sup.startServer(ctx, name, variant);
      if (!(await checkVerifies(srv.httpsPort))) throw new Error(`${name} accepted a certificate from a foreign CA`);
      sTime(srv.httpsPort, 1); // warm up
      const before = treeTicks(srv.pid);
      const n = sTime(srv.httpsPort, seconds);
      const us = ticksToUs(treeTicks(srv.pid) - before);
      results[name].push({ rate: n / seconds, cpuUs: us / n });
      await sup.stop(srv.pid);
    }
  }
} finally {
  await sup.stopAll();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const lisodCpu = median(results.lisod.map((r) => r.cpuUs));
const nginxCpu = median(results.nginx.map((r) => r.cpuUs));
console.log(`Full TLS handshake + GET /1k.html with a client certificate (ECDSA P-256 both sides, CRL on),`);
console.log(`openssl s_time -new, ${seconds} s x ${passes} passes, server ${twoCores ? 'pinned to CPU 1, client to CPU 0' : 'unpinned'}; medians:`);
console.log('| server | handshakes/s (sequential) | server CPU per handshake |');
console.log('|---|---:|---:|');
for (const [name, rs] of Object.entries(results)) {
  console.log(`| ${name} | ${median(rs.map((r) => r.rate)).toFixed(0)} | ${median(rs.map((r) => r.cpuUs)).toFixed(0)} µs |`);
}
console.log(`lisod / nginx server CPU per handshake: ${(lisodCpu / nginxCpu).toFixed(2)}x (target ≤ 1.2x)`);
fs.rmSync(dir, { recursive: true, force: true });
