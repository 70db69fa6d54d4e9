// Config of client certificates and [[access]]: parsing and file:line errors (pure), CA/CRL
// file checks (unreadable, not a CRL, expired, expiring soon), and `lisod -t` on them.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, finishConfig, loadConfig, parseConfigText, toServerConfig } from '../src/config.js';
import { parseAllowEntry } from '../src/config_access.js';
import { tlsClientWarnings } from '../src/config_tls_client.js';
import { getClientPki, type ClientPki } from './helpers/client_pki.js';
import { mainJs } from './helpers/lisod.js';
import { getPki } from './helpers/pki.js';
import { tempDir } from './helpers/tmp.js';

const kBase = `http_port = 8080
https_port = 8443
www = "www"
cgi = "app.cgi"
tls_key = "key.pem"
tls_cert = "cert.pem"
`;

function finished(text: string) {
  return finishConfig(parseConfigText(text, 'lisod.conf', '/srv/site/lisod.conf'), 'host.example');
}

function errorOf(text: string): ConfigError {
  try {
    finished(text);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

test('client certificate keys: defaults, paths against the file, native view', (t) => {
  const c = finished(`${kBase}tls_client_ca = "pki/ca.crt"\ntls_client_auth = "optional"\ntls_crl = "pki/crl.pem"\n`);
  t.deepEqual(c.tlsClient, { auth: 'optional', ca: '/srv/site/pki/ca.crt', crl: '/srv/site/pki/crl.pem', verifyDepth: 4 });
  const s = toServerConfig(c);
  t.is(s.tlsClientAuth, 'optional');
  t.is(s.tlsClientCa, '/srv/site/pki/ca.crt');
  t.is(s.tlsCrl, '/srv/site/pki/crl.pem');
  t.is(s.tlsVerifyDepth, 4);
  t.is(finished(kBase).tlsClient, null, 'off by default');
  t.is(finished(`${kBase}tls_client_ca = "ca.crt"\n`).tlsClient, null, 'a CA alone does not ask for certificates');
  t.is(finished(`${kBase}tls_client_ca = "ca.crt"\ntls_client_auth = "require"\ntls_verify_depth = 2\n`).tlsClient?.verifyDepth, 2);
});

test('client certificate keys: wrong values and missing companions are file:line errors', (t) => {
  let e = errorOf(`${kBase}tls_client_auth = "yes"\n`);
  t.regex(e.message, /^lisod\.conf:7: tls_client_auth must be "off", "optional" or "require", got "yes"/);
  e = errorOf(`${kBase}tls_client_auth = "require"\n`);
  t.regex(e.message, /^lisod\.conf:7: tls_client_auth = "require" needs tls_client_ca/);
  e = errorOf(`${kBase}tls_verify_depth = -1\n`);
  t.regex(e.message, /^lisod\.conf:7: tls_verify_depth must be an integer ≥ 0/);
  e = errorOf(`${kBase}tls_client_cert = "x"\n`);
  t.regex(e.message, /unknown key 'tls_client_cert'.*did you mean 'tls_client_ca'/);
  e = errorOf(`http_port = 8080\nwww = "www"\ncgi = "app.cgi"\ntls_client_ca = "ca.crt"\ntls_client_auth = "optional"\n`);
  t.regex(e.message, /needs https_port/);
});

test('[[access]]: parsed into rules; unknown keys, bad paths and entries are errors with the table line', (t) => {
  const tls = 'tls_client_ca = "ca.crt"\ntls_client_auth = "optional"\n';
  const c = finished(`${kBase}${tls}\n[[access]]\npath = "/private/"\nallow = ["O=Ops", "CN=bob,O=Dev"]\n\n[[access]]\npath = "/any"\nallow = ["*"]\n`);
  t.deepEqual(c.access, [
    { path: '/private/', any: false, allow: [[['O', 'Ops']], [['CN', 'bob'], ['O', 'Dev']]] },
    { path: '/any', any: true, allow: [] },
  ]);
  t.deepEqual(toServerConfig(c).access, c.access);
  const bad: Array<[string, RegExp]> = [
    ['path = "/p"\nallow = ["O=Ops"]\nallw = 1\n', /^lisod\.conf:10: unknown key 'allw' in \[\[access\]\].*did you mean 'allow'/],
    ['path = "p"\nallow = ["O=Ops"]\n', /^lisod\.conf:10: \[\[access\]\] path must be a string starting with "\/"/],
    ['path = "/a/../b"\nallow = ["O=Ops"]\n', /plain decoded path/],
    ['path = "/%70"\nallow = ["O=Ops"]\n', /plain decoded path/],
    ['path = "/p"\nallow = []\n', /allow must be a non-empty array of strings/],
    ['path = "/p"\nallow = ["Ops"]\n', /'Ops' is not "\*" or ATTR=value pairs/],
    ['path = "/p"\nallow = ["Org=Ops"]\n', /'Org' in 'Org=Ops' is not a subject attribute/],
    ['path = "/p"\n', /allow must be a non-empty array/],
  ];
  for (const [body, re] of bad) t.regex(errorOf(`${kBase}${tls}\n[[access]]\n${body}`).message, re, body);
  t.regex(errorOf(`${kBase}${tls}\n[[access]]\npath = "/p/"\nallow = ["*"]\n[[access]]\npath = "/p"\nallow = ["*"]\n`).message,
    /^lisod\.conf:13: \[\[access\]\] path '\/p' is already covered by the rule at line 10/);
  t.regex(errorOf(`${kBase}\n[[access]]\npath = "/p"\nallow = ["*"]\n`).message,
    /\[\[access\]\] rules need client certificates: set tls_client_ca and tls_client_auth = "optional"/);
});

test('allow entries: escapes and exact pairs', (t) => {
  t.deepEqual(parseAllowEntry('CN=Smith\\, John,O=Ops'), [['CN', 'Smith, John'], ['O', 'Ops']]);
  t.is(parseAllowEntry('*'), null);
  t.throws(() => parseAllowEntry('CN='));
  t.throws(() => parseAllowEntry('=x'));
});

/** A site directory with the files checkPaths wants and the given client settings. */
function site(pki: ClientPki, extra: string): string {
  const dir = tempDir('lisod-idconf-');
  fs.mkdirSync(path.join(dir, 'www'));
  fs.writeFileSync(path.join(dir, 'app.cgi'), '#!/bin/sh\necho\n', { mode: 0o755 });
  const file = path.join(dir, 'lisod.conf');
  fs.writeFileSync(file, `http_port = 0\nhttps_port = 0\nwww = "www"\ncgi = "app.cgi"\ntls_key = "${pkiServer.key}"\ntls_cert = "${pkiServer.cert}"\n` +
    `tls_client_ca = "${pki.caFile}"\ntls_client_auth = "optional"\n${extra}`);
  return file;
}
let pkiServer: { key: string; cert: string };
test.before(async () => {
  pkiServer = (await getPki()).rsa;
});

function load(file: string) {
  return loadConfig({ configFile: file, liso: null, bind: null, cwd: path.dirname(file) });
}

test('CA and CRL files: unreadable, not a CRL and expired CRLs are errors; expiring soon is a warning', async (t) => {
  const pki = await getClientPki();
  t.deepEqual(load(site(pki, `tls_crl = "${pki.crlFile}"\n`)).warnings, []);
  const missing = site(pki, 'tls_crl = "nope.pem"\n');
  t.throws(() => load(missing), { message: /tls_crl '.*nope\.pem' cannot be read: no such file/ });
  const notCrl = site(pki, `tls_crl = "${pki.caFile}"\n`);
  t.throws(() => load(notCrl), { message: /tls_crl file '.*root\.crt' holds no usable PEM CRL/ });
  const expired = site(pki, `tls_crl = "${pki.crlExpiredFile}"\n`);
  t.throws(() => load(expired), { message: /lisod\.conf:9: tls_crl '.*': the CRL of 'CN=lisod test client root' expired on .*every client certificate would be refused/ });
  const soon = load(site(pki, `tls_crl = "${pki.crlExpiringFile}"\n`)).warnings;
  t.is(soon.length, 2, 'one warning per CRL in the file');
  t.regex(soon[0]!, /expires on .*re-sign it \(lisod pki crl DIR\) and reload/);
  const noCa = site(pki, '').replace(/$/, '');
  fs.writeFileSync(noCa, fs.readFileSync(noCa, 'utf8').replace(pki.caFile, '/nonexistent/ca.crt'));
  t.throws(() => load(noCa), { message: /tls_client_ca '\/nonexistent\/ca\.crt' cannot be read/ });
  const garbage = path.join(tempDir('lisod-garbage-'), 'ca.crt');
  fs.writeFileSync(garbage, 'hello\n');
  const garbageCa = site(pki, '');
  fs.writeFileSync(garbageCa, fs.readFileSync(garbageCa, 'utf8').replace(pki.caFile, garbage));
  t.throws(() => load(garbageCa), { message: /tls_client_ca '.*' holds no PEM certificate/ });
});

test('lisod -t: validates the client CA and CRL like a start would', async (t) => {
  const pki = await getClientPki();
  const run = (file: string) => spawnSync(process.execPath, [mainJs, '-t', '-c', file], { encoding: 'utf8' });
  const good = run(site(pki, `tls_crl = "${pki.crlFile}"\n\n[[access]]\npath = "/admin"\nallow = ["O=Ops"]\n`));
  t.is(good.status, 0, good.stderr);
  t.regex(good.stdout, /is valid/);
  const expired = run(site(pki, `tls_crl = "${pki.crlExpiredFile}"\n`));
  t.is(expired.status, 1);
  t.regex(expired.stderr, /^lisod: .*lisod\.conf:9: tls_crl .* expired on/m);
  const soon = run(site(pki, `tls_crl = "${pki.crlExpiringFile}"\n`));
  t.is(soon.status, 0);
  t.regex(soon.stderr, /^lisod: warning: tls_crl .* expires on/m);
  const broken = path.join(tempDir('lisod-broken-'), 'crl.pem');
  fs.writeFileSync(broken, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
  const bad = run(site(pki, `tls_crl = "${broken}"\n`));
  t.is(bad.status, 1);
  t.regex(bad.stderr, /tls_crl file '.*crl\.pem' holds no usable PEM CRL/);
});

test('warnings: a CA while client certificates are off; identity names under [cgi]', (t) => {
  const draft = (text: string) => parseConfigText(text, 'lisod.conf', '/srv/site/lisod.conf');
  t.deepEqual(tlsClientWarnings(draft(kBase)), []);
  t.regex(tlsClientWarnings(draft(`${kBase}tls_client_ca = "ca.crt"\n`)).join(), /ignored while tls_client_auth is "off"/);
  t.deepEqual(tlsClientWarnings(draft(`${kBase}tls_client_ca = "ca.crt"\ntls_client_auth = "optional"\n`)), []);
  const w = tlsClientWarnings(draft(`${kBase.replace('cgi = "app.cgi"\n', '')}[cgi]\nscript = "app.cgi"\npass_env = ["REMOTE_USER", "LANG"]\n[cgi.env]\nSSL_CLIENT_VERIFY = "SUCCESS"\n`));
  t.deepEqual(w, ['[cgi] SSL_CLIENT_VERIFY, REMOTE_USER: set by lisod from the client certificate for each request; the configured value is never passed']);
});
