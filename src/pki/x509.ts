// The X.509 library behind lisod pki and the CRL checks of the config: @peculiar/x509 on
// Node's WebCrypto, loaded on first use (start-up without client certificates never pays).
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

const kCrlBlock = /-----BEGIN X509 CRL-----[\s\S]+?-----END X509 CRL-----/g;

export interface CrlSummary {
  issuer: string;
  thisUpdate: Date;
  nextUpdate: Date | null;
  revokedSerials: string[]; // lower-case hex
}

/** Every CRL of a PEM file (OpenSSL's "X509 CRL" armour). Throws on a broken block. */
export function parseCrls(pemText: string): CrlSummary[] {
  const lib = x509();
  return (pemText.match(kCrlBlock) ?? []).map((block) => {
    const body = block.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, '');
    const crl = new lib.X509Crl(Buffer.from(body, 'base64'));
    return {
      issuer: crl.issuer,
      thisUpdate: crl.thisUpdate,
      nextUpdate: crl.nextUpdate ?? null,
      revokedSerials: crl.entries.map((e) => e.serialNumber.toLowerCase()),
    };
  });
}

/** PEM with the given label, 64 columns (what OpenSSL writes and reads). */
export function toPem(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString('base64');
  return `-----BEGIN ${label}-----\n${b64.replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}
