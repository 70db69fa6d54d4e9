// Finds out what wrk itself does over TLS on this machine — which protocol version it
// negotiates and whether it resumes sessions on `Connection: close` — by pointing it for one
// second at an nginx that logs $ssl_protocol and $ssl_session_reused. The resumption rows
// rest on this.
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './servers.mjs';
import { runWrk } from './wrk.mjs';

/**
 * @param {import('./servers.mjs').Supervisor} sup @param {{key:string, cert:string}} cert
 * @param {string} docroot @param {string} dir
 * @returns {Promise<string>} a one-line finding for RESULTS.md
 */
export async function probeWrkTls(sup, cert, docroot, dir) {
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const port = await freePort();
  const log = path.join(dir, 'access.log');
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(conf, `daemon off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events {}
http {
  log_format probe '$ssl_protocol $ssl_session_reused';
  access_log ${log} probe;
  client_body_temp_path ${dir};
  ssl_session_cache shared:SSL:1m; ssl_session_tickets on; ssl_protocols TLSv1.2 TLSv1.3;
  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key}; root ${docroot}; }
}
`);
  const { child } = sup.spawn('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { log: path.join(dir, 'output.log') });
  try {
    await sleep(500);
    await runWrk(sup, ['-t1', '-c2', '-d1s', '-H', 'Connection: close', `https://127.0.0.1:${port}/1k.html`], { cpu: null, log: path.join(dir, 'wrk.log') });
  } finally {
    await sup.stop(/** @type {number} */ (child.pid));
  }
  const counts = new Map();
  let reused = 0;
  let total = 0;
  for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
    const [proto, r] = line.split(' ');
    counts.set(proto, (counts.get(proto) ?? 0) + 1);
    total++;
    if (r === 'r') reused++;
  }
  if (!total) return 'probe failed (no requests logged)';
  return `wrk negotiates ${[...counts].map(([p, n]) => `${p} (${n})`).join(', ')} and, with Connection: close against a server that allows it, ` +
    `resumed ${((reused / total) * 100).toFixed(0)}% of ${total} connections`;
}
