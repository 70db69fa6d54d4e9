// Client certificates: the tls_client_ca, tls_client_auth, tls_crl and tls_verify_depth keys,
// their defaults and checks, and the CA/CRL file checks `lisod -t`, start and reload run.
import fs from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { isIdentityVariable } from './cgi_env.js';
import { ConfigError, describe, type ConfigDraft, type DraftKey, type FileReader, type Origin } from './config_reader.js';
import type { TlsClientSpec } from './native.js';
import { native } from './native.js';

export const kTlsClientKeys = ['tls_client_ca', 'tls_client_auth', 'tls_crl', 'tls_verify_depth'] as const;
const kModes = ['off', 'optional', 'require'] as const;
const kCrlWarnMs = 7 * 24 * 3600 * 1000;

export interface TlsClientConfig {
  auth: 'optional' | 'require';
  ca: string; // absolute path of the PEM trust anchors
  crl: string | null; // absolute path of the PEM CRLs
  verifyDepth: number;
}

/** Reads one top-level key if it is a client-certificate key; false when it is not one. */
export function readTlsClientKey(r: FileReader, key: string, v: unknown): boolean {
  const kp = [key];
  switch (key as (typeof kTlsClientKeys)[number]) {
    case 'tls_client_ca': r.set('tlsClientCa', kp, r.path(v, kp)); return true;
    case 'tls_crl': r.set('tlsCrl', kp, r.path(v, kp)); return true;
    case 'tls_client_auth':
      if (!kModes.includes(v as (typeof kModes)[number])) {
        r.fail(kp, `tls_client_auth must be "off", "optional" or "require", got ${describe(v)}`,
          '"optional": a certificate is checked when sent; "require": no valid certificate, no connection');
      }
      r.set('tlsClientAuth', kp, v as (typeof kModes)[number]);
      return true;
    case 'tls_verify_depth': r.set('tlsVerifyDepth', kp, r.integer(v, kp, 0, 'intermediate CAs between a client certificate and its root')); return true;
    default: return false;
  }
}

/** Relations between the keys (no file system): null when client certificates are off. */
export function finishTlsClient(draft: ConfigDraft, at: (key: DraftKey) => Origin | null): TlsClientConfig | null {
  const v = draft.values;
  const auth = v.tlsClientAuth ?? 'off';
  const rules = v.access ?? [];
  if (auth !== 'off' && v.tlsClientCa === undefined) {
    throw new ConfigError(`tls_client_auth = "${auth}" needs tls_client_ca`, at('tlsClientAuth'),
      'tls_client_ca = "pki/ca.crt" (the CA that issues client certificates; lisod pki init makes one)');
  }
  if (rules.length > 0 && (v.tlsClientCa === undefined || auth === 'off')) {
    throw new ConfigError('[[access]] rules need client certificates: set tls_client_ca and tls_client_auth = "optional"',
      at('access'), 'without them no client can be verified and every protected path would answer 403');
  }
  if (auth === 'off') return null;
  if (v.httpsPort === undefined) {
    throw new ConfigError(`tls_client_auth = "${auth}" needs https_port`, at('tlsClientAuth'), 'client certificates come with TLS');
  }
  return { auth, ca: v.tlsClientCa!, crl: v.tlsCrl ?? null, verifyDepth: v.tlsVerifyDepth ?? 4 };
}

/** The native server's view of the settings. */
export function tlsClientSpec(c: TlsClientConfig | null): TlsClientSpec {
  if (c === null) return { tlsClientAuth: 'off' };
  const spec: TlsClientSpec = { tlsClientAuth: c.auth, tlsClientCa: c.ca, tlsVerifyDepth: c.verifyDepth };
  if (c.crl !== null) spec.tlsCrl = c.crl;
  return spec;
}

function readFile(file: string, name: string, origin: Origin | null): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(`${name} '${file}' cannot be read: ${err.code === 'ENOENT' ? 'no such file' : err.code === 'EACCES' ? 'permission denied' : err.message}`,
      origin, err.code === 'ENOENT' ? 'lisod pki init DIR makes DIR/ca.crt and DIR/crl.pem' : undefined);
  }
}

/** Settings that do nothing as written: a CA or CRL while tls_client_auth is off, and
 *  [cgi.env] / pass_env names that only the connection may set (they are never passed). */
export function tlsClientWarnings(draft: ConfigDraft): string[] {
  const v = draft.values;
  const warnings: string[] = [];
  if ((v.tlsClientAuth ?? 'off') === 'off' && (v.tlsClientCa !== undefined || v.tlsCrl !== undefined)) {
    warnings.push('tls_client_ca / tls_crl are ignored while tls_client_auth is "off"; set it to "optional" or "require"');
  }
  const reserved = [...Object.keys(v.cgiEnv ?? {}), ...(v.cgiPassEnv ?? [])].filter(isIdentityVariable);
  if (reserved.length > 0) {
    warnings.push(`[cgi] ${reserved.join(', ')}: set by lisod from the client certificate for each request; the configured value is never passed`);
  }
  return warnings;
}

/**
 * Checks the CA and CRL files on disk: readable, PEM certificates / CRLs, CRLs not expired
 * (an expired CRL fails every client: an error) and not expiring within 7 days (a warning).
 * `now` for tests. Returns warnings; throws ConfigError.
 */
export function checkTlsClientFiles(c: TlsClientConfig | null, at: (key: DraftKey) => Origin | null, now = Date.now()): string[] {
  if (c === null) return [];
  const warnings: string[] = [];
  const caText = readFile(c.ca, 'tls_client_ca', at('tlsClientCa'));
  const pems = caText.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (pems.length === 0) {
    throw new ConfigError(`tls_client_ca '${c.ca}' holds no PEM certificate`, at('tlsClientCa'), 'give the CA certificate(s) in PEM, e.g. DIR/ca.crt from lisod pki init');
  }
  for (const pem of pems) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch (e) {
      throw new ConfigError(`tls_client_ca '${c.ca}' holds a broken certificate: ${(e as Error).message}`, at('tlsClientCa'));
    }
    if (!cert.ca) warnings.push(`tls_client_ca '${c.ca}': '${cert.subject.replaceAll('\n', ', ')}' is not a CA certificate; it cannot issue client certificates`);
    if (Date.parse(cert.validTo) < now) warnings.push(`tls_client_ca '${c.ca}': '${cert.subject.replaceAll('\n', ', ')}' expired on ${cert.validTo}`);
  }
  if (c.crl === null) return warnings;
  readFile(c.crl, 'tls_crl', at('tlsCrl'));
  let crls: Array<{ issuer: string; nextUpdate: number | null }>;
  try {
    crls = native.crlInfo(c.crl); // OpenSSL, as the TLS context will read it
  } catch (e) {
    throw new ConfigError((e as Error).message, at('tlsCrl'));
  }
  for (const crl of crls) {
    if (crl.nextUpdate === null) continue;
    const left = crl.nextUpdate - now;
    const when = new Date(crl.nextUpdate).toISOString();
    if (left < 0) {
      throw new ConfigError(`tls_crl '${c.crl}': the CRL of '${crl.issuer}' expired on ${when}; every client certificate would be refused`,
        at('tlsCrl'), 're-sign it (lisod pki crl DIR) and reload');
    }
    if (left < kCrlWarnMs) {
      warnings.push(`tls_crl '${c.crl}': the CRL of '${crl.issuer}' expires on ${when}; re-sign it (lisod pki crl DIR) and reload before then`);
    }
  }
  return warnings;
}
