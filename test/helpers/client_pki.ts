// Per-run client-certificate PKI, made with lisod's own CA code (src/pki/ca.ts): root →
// intermediate → clients (valid, other subject, revoked, expired, wrong purpose) plus a
// foreign CA's client, and CRL files (current, expired, expiring soon).
import fs from 'node:fs';
import path from 'node:path';
import { createCa, createCrl, importSigningKey, issueLeaf, type Issued, type Signer } from '../../src/pki/ca.js';
import { tempDir } from './tmp.js';

export interface ClientCert {
  key: string; // PEM text
  cert: string; // PEM text: leaf + intermediate (what a client sends)
  leaf: string; // PEM text of the leaf alone
  serial: string; // upper-case hex, as SSL_CLIENT_M_SERIAL
}

export interface ClientPki {
  dir: string;
  caFile: string; // root only: the trust anchor for tls_client_ca
  caWithIntermediateFile: string; // root + intermediate
  foreignCaFile: string; // the foreign root (trusting it instead is a CA change)
  crlFile: string; // root's CRL (empty) + intermediate's CRL (carol revoked)
  crlNoneRevokedFile: string; // both CRLs, nobody revoked
  crlAliceRevokedFile: string; // both CRLs, alice revoked (for the SIGHUP reload test)
  crlExpiredFile: string; // nextUpdate 10 days ago
  crlExpiringFile: string; // nextUpdate in 3 days
  intermediateDn: string; // RFC 4514
  alice: ClientCert; // CN=alice,O=Ops
  bob: ClientCert; // CN=bob,O=Dev
  spaced: ClientCert; // CN=Mallory "Quote" Smith,O=Ops (for log escaping)
  utf8: ClientCert; // CN=Zoë Åström,O=Ops+Dev (UTF-8, a '+' to escape)
  carol: ClientCert; // CN=carol,O=Ops, revoked
  dave: ClientCert; // CN=dave,O=Ops, expired
  serverPurpose: ClientCert; // CN=srv,O=Ops, extendedKeyUsage serverAuth only
  foreign: ClientCert; // CN=alice,O=Ops from a CA lisod does not trust
}

const kDayMs = 24 * 3600 * 1000;

function client(leaf: Issued, intermediate: string): ClientCert {
  return { key: leaf.key, cert: leaf.cert + intermediate, leaf: leaf.cert, serial: leaf.serial.toUpperCase() };
}

async function create(): Promise<ClientPki> {
  const dir = tempDir('lisod-client-pki-');
  const root = await createCa({ cn: 'lisod test client root', days: 30 });
  const rootSigner: Signer = { cert: root.cert, key: await importSigningKey(root.key) };
  const int = await createCa({ cn: 'lisod test client intermediate', days: 30, parent: rootSigner, pathLength: 0 });
  const intSigner: Signer = { cert: int.cert, key: await importSigningKey(int.key) };
  const foreignRoot = await createCa({ cn: 'lisod test foreign root', days: 30 });
  const foreignSigner: Signer = { cert: foreignRoot.cert, key: await importSigningKey(foreignRoot.key) };

  const leaf = (signer: Signer, subject: Array<[string, string]>, extra: Partial<Parameters<typeof issueLeaf>[1]> = {}) =>
    issueLeaf(signer, { kind: 'client', subject, days: 10, ...extra });
  const [alice, bob, spaced, utf8, carol, dave, srv, foreign] = await Promise.all([
    leaf(intSigner, [['CN', 'alice'], ['O', 'Ops']]),
    leaf(intSigner, [['CN', 'bob'], ['O', 'Dev']]),
    leaf(intSigner, [['CN', 'Mallory "Quote" Smith'], ['O', 'Ops']]),
    leaf(intSigner, [['CN', 'Zoë Åström'], ['O', 'Ops+Dev']]),
    leaf(intSigner, [['CN', 'carol'], ['O', 'Ops']]),
    leaf(intSigner, [['CN', 'dave'], ['O', 'Ops']], { notBefore: new Date(Date.now() - 10 * kDayMs), days: 2 }),
    leaf(intSigner, [['CN', 'srv'], ['O', 'Ops']], { kind: 'server', sans: ['localhost'] }),
    leaf(foreignSigner, [['CN', 'alice'], ['O', 'Ops']]),
  ]);

  const write = (name: string, text: string): string => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, text, { mode: 0o644 });
    return p;
  };
  const now = new Date();
  const rootCrl = await createCrl(rootSigner, [], 30);
  const crls = async (revoked: Issued[], days = 30, at = now) =>
    (await createCrl(rootSigner, [], days, at)) + (await createCrl(intSigner, revoked.map((l) => ({ serial: l.serial, date: at })), days, at));
  return {
    dir,
    caFile: write('root.crt', root.cert),
    caWithIntermediateFile: write('root-int.crt', root.cert + int.cert),
    foreignCaFile: write('foreign-root.crt', foreignRoot.cert),
    crlFile: write('crl.pem', rootCrl + (await createCrl(intSigner, [{ serial: carol.serial, date: now }], 30))),
    crlNoneRevokedFile: write('crl-none.pem', await crls([])),
    crlAliceRevokedFile: write('crl-alice.pem', await crls([alice, carol])),
    crlExpiredFile: write('crl-expired.pem', await crls([], 30, new Date(now.getTime() - 40 * kDayMs))),
    crlExpiringFile: write('crl-expiring.pem', await crls([], 3)),
    intermediateDn: 'CN=lisod test client intermediate',
    alice: client(alice, int.cert),
    bob: client(bob, int.cert),
    spaced: client(spaced, int.cert),
    utf8: client(utf8, int.cert),
    carol: client(carol, int.cert),
    dave: client(dave, int.cert),
    serverPurpose: client(srv, int.cert),
    foreign: client(foreign, foreignRoot.cert),
  };
}

let cached: Promise<ClientPki> | undefined;

/** The client PKI for this test process, created on first use. */
export function getClientPki(): Promise<ClientPki> {
  cached ??= create();
  return cached;
}
