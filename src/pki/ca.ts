// Certificate authority operations on @peculiar/x509: keys (ECDSA P-256), CA, server and
// client certificates, CRLs. Pure of the file system: PEM in, PEM out (store.ts saves them).
import { webcrypto } from 'node:crypto';
import { toPem, x509 } from './x509.js';

const kEc = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const kSign = { name: 'ECDSA', hash: 'SHA-256' } as const;
const kDayMs = 24 * 3600 * 1000;
const subtle = webcrypto.subtle;

export interface Signer {
  cert: string; // PEM of the issuing CA
  key: CryptoKey; // its private key
}

export interface Issued {
  cert: string; // PEM of the new certificate
  key: string; // PEM (PKCS#8) of its private key
  serial: string; // lower-case hex
  notAfter: Date;
}

/** RFC 4514 §2.4 escaping of an attribute value. */
function escapeValue(v: string): string {
  return v.replace(/["+,;<>\\=]/g, '\\$&').replace(/^[ #]/, '\\$&').replace(/ $/, '\\ ');
}

/** A name in RFC 4514 order (most specific first, "CN=alice,O=Ops") → a DN string in
 *  encoding order (the library's JSON form loses quotes in values). */
function toName(rdns: Array<[string, string]>): string {
  return [...rdns].reverse().map(([attr, value]) => `${attr}=${escapeValue(value)}`).join(', ');
}

/** 16 random bytes, first bit clear (a positive INTEGER), as hex. */
function randomSerial(): string {
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] = (b[0]! & 0x7f) | 0x01;
  return Buffer.from(b).toString('hex');
}

async function newKeys(): Promise<CryptoKeyPair> {
  return subtle.generateKey(kEc, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

async function keyPem(key: CryptoKey): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** Imports a PKCS#8 PEM ECDSA P-256 key for signing. */
export async function importSigningKey(pem: string): Promise<CryptoKey> {
  const der = Buffer.from(pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, ''), 'base64');
  return subtle.importKey('pkcs8', der, kEc, false, ['sign']);
}

export interface CaOptions {
  cn: string;
  days: number;
  parent?: Signer; // an intermediate CA when set (else self-signed root)
  pathLength?: number;
  notBefore?: Date;
}

/** A CA certificate: basicConstraints CA (critical), keyCertSign + cRLSign, key identifiers. */
export async function createCa(o: CaOptions): Promise<Issued> {
  const lib = x509();
  const keys = await newKeys();
  const serial = randomSerial();
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + o.days * kDayMs);
  const extensions: import('@peculiar/x509').Extension[] = [
    new lib.BasicConstraintsExtension(true, o.pathLength, true),
    new lib.KeyUsagesExtension(lib.KeyUsageFlags.keyCertSign | lib.KeyUsageFlags.cRLSign, true),
    await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  let cert;
  if (o.parent) {
    const parent = new lib.X509Certificate(o.parent.cert);
    extensions.push(await lib.AuthorityKeyIdentifierExtension.create(parent));
    cert = await lib.X509CertificateGenerator.create({
      serialNumber: serial, subject: toName([['CN', o.cn]]), issuer: parent.subjectName, notBefore, notAfter,
      publicKey: keys.publicKey, signingKey: o.parent.key, signingAlgorithm: kSign, extensions,
    });
  } else {
    cert = await lib.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial, name: toName([['CN', o.cn]]), notBefore, notAfter, keys, signingAlgorithm: kSign, extensions,
    });
  }
  return { cert: toPem(cert.rawData, 'CERTIFICATE'), key: await keyPem(keys.privateKey), serial, notAfter };
}

export interface LeafOptions {
  kind: 'server' | 'client';
  subject: Array<[string, string]>; // RFC 4514 order, CN first
  sans?: string[]; // server: DNS names and IP addresses
  days: number;
  notBefore?: Date;
}

/** A server (serverAuth, SANs) or client (clientAuth) certificate signed by `ca`. */
export async function issueLeaf(ca: Signer, o: LeafOptions): Promise<Issued> {
  const lib = x509();
  const keys = await newKeys();
  const issuer = new lib.X509Certificate(ca.cert);
  const serial = randomSerial();
  const notBefore = o.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + o.days * kDayMs);
  const extensions: import('@peculiar/x509').Extension[] = [
    new lib.BasicConstraintsExtension(false, undefined, true),
    new lib.KeyUsagesExtension(lib.KeyUsageFlags.digitalSignature, true),
    new lib.ExtendedKeyUsageExtension([o.kind === 'server' ? lib.ExtendedKeyUsage.serverAuth : lib.ExtendedKeyUsage.clientAuth]),
    await lib.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await lib.AuthorityKeyIdentifierExtension.create(issuer),
  ];
  if (o.sans && o.sans.length > 0) {
    const names = o.sans.map((s) => ({ type: /^[0-9.]+$|:/.test(s) ? 'ip' : 'dns', value: s }) as const);
    extensions.push(new lib.SubjectAlternativeNameExtension(names));
  }
  const cert = await lib.X509CertificateGenerator.create({
    serialNumber: serial, subject: toName(o.subject), issuer: issuer.subjectName, notBefore, notAfter,
    publicKey: keys.publicKey, signingKey: ca.key, signingAlgorithm: kSign, extensions,
  });
  return { cert: toPem(cert.rawData, 'CERTIFICATE'), key: await keyPem(keys.privateKey), serial, notAfter };
}

export interface Revocation {
  serial: string; // hex
  date: Date;
}

/** A CRL of `ca` (with CRL number and authority key identifier), PEM as OpenSSL reads it. */
export async function createCrl(ca: Signer, revoked: Revocation[], days: number, now = new Date()): Promise<string> {
  const lib = x509();
  const { AsnConvert } = await import('@peculiar/asn1-schema');
  const { CRLNumber, id_ce_cRLNumber } = await import('@peculiar/asn1-x509');
  const issuer = new lib.X509Certificate(ca.cert);
  const number = Math.floor(now.getTime() / 1000); // increases with every CRL of this CA
  const crl = await lib.X509CrlGenerator.create({
    issuer: issuer.subjectName,
    thisUpdate: now,
    nextUpdate: new Date(now.getTime() + days * kDayMs),
    entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: r.date })),
    extensions: [
      await lib.AuthorityKeyIdentifierExtension.create(issuer),
      new lib.Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(number))),
    ],
    signingKey: ca.key,
    signingAlgorithm: kSign,
  });
  return toPem(crl.rawData, 'X509 CRL');
}

/** Subject of a PEM certificate in RFC 4514 order, e.g. "CN=alice,O=Ops". */
export function subjectOf(pem: string): string {
  const name = new (x509().X509Certificate)(pem).subjectName.toJSON();
  return [...name].reverse().map((rdn) => Object.entries(rdn).map(([k, v]) => `${k}=${v.join('+')}`).join('+')).join(',');
}
