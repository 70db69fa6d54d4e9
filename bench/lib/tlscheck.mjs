// Checks whether a server actually resumes TLS sessions (TLS 1.3 and TLS 1.2): connect, keep
// the session the server gave, reconnect offering it, ask OpenSSL whether it was reused.
// Rows "with resumption disabled" are only honest if this says no for every server.
import tls from 'node:tls';
import fs from 'node:fs';

/**
 * One connection: handshake, one `Connection: close` request, read to the end.
 * @returns {Promise<{reused:boolean, session:Buffer|null}>}
 */
function once(port, ca, maxVersion, session) {
  return new Promise((resolve, reject) => {
    let last = null;
    let reused = false;
    const s = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost', maxVersion, session: session ?? undefined });
    const timer = setTimeout(() => { s.destroy(); reject(new Error('resumption check timed out')); }, 5000);
    s.on('session', (sess) => { last = sess; });
    s.once('secureConnect', () => {
      reused = s.isSessionReused();
      s.write('GET /1k.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    s.on('data', () => {});
    s.once('error', (e) => { clearTimeout(timer); reject(e); });
    s.once('close', () => { clearTimeout(timer); resolve({ reused, session: last }); });
  });
}

/**
 * @param {number} port @param {string} caFile
 * @returns {Promise<{tls13:boolean|null, tls12:boolean|null, error?:string}>} null = check failed
 */
export async function checkResumption(port, caFile) {
  const ca = fs.readFileSync(caFile);
  const out = { tls13: null, tls12: null };
  const errors = [];
  for (const [key, ver] of [['tls13', 'TLSv1.3'], ['tls12', 'TLSv1.2']]) {
    try {
      const first = await once(port, ca, ver, null);
      out[key] = first.session ? (await once(port, ca, ver, first.session)).reused : false;
    } catch (e) {
      errors.push(`${ver}: ${/** @type {Error} */ (e).message}`);
    }
  }
  return errors.length ? { ...out, error: errors.join('; ') } : out;
}
