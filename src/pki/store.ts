// The on-disk CA of `lisod pki`: DIR/ca.key (0600), DIR/ca.crt, DIR/crl.pem, DIR/issued/ and
// DIR/index.tsv, the record of every certificate issued (format documented in README.md):
//   serial<TAB>kind<TAB>name<TAB>subject<TAB>not-after (ISO 8601)<TAB>revoked (ISO 8601 or -)
import fs from 'node:fs';
import path from 'node:path';
import { createCrl, importSigningKey, type Signer } from './ca.js';

export interface IndexEntry {
  serial: string; // lower-case hex
  kind: 'server' | 'client';
  name: string;
  subject: string; // RFC 4514
  notAfter: Date;
  revoked: Date | null;
}

export class PkiError extends Error {}

const kHeader = '# lisod pki index: serial\tkind\tname\tsubject\tnot-after\trevoked\n';

export const paths = (dir: string) => ({
  key: path.join(dir, 'ca.key'),
  cert: path.join(dir, 'ca.crt'),
  crl: path.join(dir, 'crl.pem'),
  index: path.join(dir, 'index.tsv'),
  issued: path.join(dir, 'issued'),
});

/** Writes a file atomically (temp + rename) with the given mode. */
export function writeFileAtomic(file: string, data: string | Buffer, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode });
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

export function readIndex(dir: string): IndexEntry[] {
  let text: string;
  try {
    text = fs.readFileSync(paths(dir).index, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new PkiError(`${dir} is not a lisod CA (no index.tsv); run lisod pki init ${dir}`);
    throw e;
  }
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((line, i) => {
    const f = line.split('\t');
    if (f.length !== 6 || (f[1] !== 'server' && f[1] !== 'client')) throw new PkiError(`${paths(dir).index}:${i + 2}: not 6 tab-separated fields`);
    return {
      serial: f[0]!, kind: f[1], name: f[2]!, subject: f[3]!, notAfter: new Date(f[4]!),
      revoked: f[5] === '-' ? null : new Date(f[5]!),
    };
  });
}

export function writeIndex(dir: string, entries: IndexEntry[]): void {
  const lines = entries.map((e) => [e.serial, e.kind, e.name, e.subject, e.notAfter.toISOString(),
    e.revoked === null ? '-' : e.revoked.toISOString()].join('\t'));
  writeFileAtomic(paths(dir).index, kHeader + lines.map((l) => `${l}\n`).join(''), 0o644);
}

/** The CA's certificate and key, for signing. */
export async function loadSigner(dir: string): Promise<Signer> {
  const p = paths(dir);
  let cert: string;
  let key: string;
  try {
    cert = fs.readFileSync(p.cert, 'utf8');
    key = fs.readFileSync(p.key, 'utf8');
  } catch (e) {
    throw new PkiError(`cannot read the CA in ${dir} (${(e as Error).message}); run lisod pki init ${dir} first`);
  }
  return { cert, key: await importSigningKey(key) };
}

/** Rewrites DIR/crl.pem from the index: every revoked serial, valid for `days`. */
export async function writeCrl(dir: string, signer: Signer, entries: IndexEntry[], days: number): Promise<void> {
  const revoked = entries.filter((e) => e.revoked !== null).map((e) => ({ serial: e.serial, date: e.revoked! }));
  writeFileAtomic(paths(dir).crl, await createCrl(signer, revoked, days), 0o644);
}
