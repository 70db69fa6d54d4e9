// The X.509 library behind lisod pki: @peculiar/x509 on Node's WebCrypto, loaded on first
// use (the server itself never loads it: its CRL checks go through OpenSSL in the addon).
import { createRequire } from 'node:module';
import { webcrypto } from 'node:crypto';

export type X509 = typeof import('@peculiar/x509');

const require = createRequire(import.meta.url);
let loaded: X509 | undefined;

/** The library, with Node's WebCrypto as its provider. */
export function x509(): X509 {
  if (loaded === undefined) {
    require('reflect-metadata'); // tsyringe (used inside @peculiar/x509) needs it first
    loaded = require('@peculiar/x509') as X509;
    loaded.cryptoProvider.set(webcrypto as unknown as Crypto);
  }
  return loaded;
}

/** PEM with the given label, 64 columns (what OpenSSL writes and reads). */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}
