// Per-run test PKI made with the openssl CLI: a test CA, RSA and ECDSA server
// certificates for localhost/127.0.0.1/::1, a chain variant, and bad material.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tempDir } from './tmp.js';

const run = promisify(execFile);

export interface KeyPair {
  key: string; // absolute path of the PEM private key
  cert: string; // absolute path of the PEM certificate (chain: leaf first)
}

export interface Pki {
  dir: string;
  caCert: string; // path of the root CA certificate
  ca: Buffer; // its PEM bytes, for tls.connect({ ca })
  rsa: KeyPair; // RSA-2048 leaf signed directly by the CA
  ecdsa: KeyPair; // ECDSA P-256 leaf signed directly by the CA
  chain: KeyPair; // leaf signed by an intermediate CA; cert = leaf + intermediate
  chainLeafOnly: KeyPair; // same leaf without the intermediate (clients cannot verify)
  bad: {
    mismatchedKey: KeyPair; // rsa.cert with an unrelated RSA key
    garbageCert: KeyPair; // valid key, cert file with PEM armour around junk
    garbageKey: KeyPair; // key file with PEM armour around junk, valid cert
    emptyCert: KeyPair; // valid key, empty cert file
    missingKey: KeyPair; // key path that does not exist
    missingCert: KeyPair; // cert path that does not exist
    unreadableKey: KeyPair; // key file mode 000 (only unreadable for non-root processes)
  };
}

const kSan = 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1';

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

function write(dir: string, name: string, text: string, mode = 0o644): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text, { mode });
  fs.chmodSync(p, mode);
  return p;
}

async function leaf(dir: string, name: string, keyArgs: string[], caName: string): Promise<KeyPair> {
  await openssl(dir, ['genpkey', ...keyArgs, '-out', `${name}.key`]);
  await openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', '/CN=localhost', '-out', `${name}.csr`]);
  write(
    dir,
    `${name}.ext`,
    [kSan, 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth', ''].join('\n'),
  );
  await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`,
    // A serial file per leaf: leaves are signed in parallel and would race on one ca.srl.
    '-CAserial', `${name}.srl`, '-CAcreateserial', '-days', '3', '-sha256', '-extfile', `${name}.ext`,
    '-out', `${name}.pem`]);
  return { key: path.join(dir, `${name}.key`), cert: path.join(dir, `${name}.pem`) };
}

async function create(): Promise<Pki> {
  const dir = tempDir('lisod-pki-');
  const rsaArgs = ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'];
  const ecArgs = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];

  // Root CA.
  await openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '3', '-sha256', '-subj', '/CN=lisod test root CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  // Intermediate CA signed by the root.
  await openssl(dir, ['genpkey', ...ecArgs, '-out', 'int.key']);
  await openssl(dir, ['req', '-new', '-key', 'int.key', '-subj', '/CN=lisod test intermediate CA', '-out', 'int.csr']);
  write(dir, 'int.ext', 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n');
  await openssl(dir, ['x509', '-req', '-in', 'int.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-days', '3', '-sha256', '-extfile', 'int.ext', '-out', 'int.pem']);

  const [rsa, ecdsa, chainLeaf, other] = await Promise.all([
    leaf(dir, 'rsa', rsaArgs, 'ca'),
    leaf(dir, 'ecdsa', ecArgs, 'ca'),
    leaf(dir, 'chainleaf', ecArgs, 'int'),
    leaf(dir, 'other', rsaArgs, 'ca'),
  ]);
  const chainCert = write(dir, 'chain.pem',
    fs.readFileSync(chainLeaf.cert, 'utf8') + fs.readFileSync(path.join(dir, 'int.pem'), 'utf8'));

  const junk = 'bm90IGEgY2VydGlmaWNhdGUgYXQgYWxs\nZ2FyYmFnZSBnYXJiYWdlIGdhcmJhZ2U=\n';
  const garbageCert = write(dir, 'garbage-cert.pem', `-----BEGIN CERTIFICATE-----\n${junk}-----END CERTIFICATE-----\n`);
  const garbageKey = write(dir, 'garbage-key.pem', `-----BEGIN PRIVATE KEY-----\n${junk}-----END PRIVATE KEY-----\n`);
  const emptyCert = write(dir, 'empty-cert.pem', '');
  const unreadable = path.join(dir, 'unreadable.key');
  fs.copyFileSync(rsa.key, unreadable);
  fs.chmodSync(unreadable, 0o000);
  // Everything else readable by an unprivileged lisod.
  for (const f of fs.readdirSync(dir)) {
    const p = path.join(dir, f);
    if (p !== unreadable) fs.chmodSync(p, 0o644);
  }

  return {
    dir,
    caCert: path.join(dir, 'ca.pem'),
    ca: fs.readFileSync(path.join(dir, 'ca.pem')),
    rsa,
    ecdsa,
    chain: { key: chainLeaf.key, cert: chainCert },
    chainLeafOnly: chainLeaf,
    bad: {
      mismatchedKey: { key: other.key, cert: rsa.cert },
      garbageCert: { key: rsa.key, cert: garbageCert },
      garbageKey: { key: garbageKey, cert: rsa.cert },
      emptyCert: { key: rsa.key, cert: emptyCert },
      missingKey: { key: path.join(dir, 'does-not-exist.key'), cert: rsa.cert },
      missingCert: { key: rsa.key, cert: path.join(dir, 'does-not-exist.pem') },
      unreadableKey: { key: unreadable, cert: rsa.cert },
    },
  };
}

let cached: Promise<Pki> | undefined;

/** The PKI for this process, created on first use. */
export function getPki(): Promise<Pki> {
  cached ??= create();
  return cached;
}

/** base64 sha256 of a certificate's public key (SPKI): what Chromium's --ignore-certificate-errors-spki-list takes. */
export function spkiHash(certFile: string): string {
  const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
  return crypto.createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('base64');
}
