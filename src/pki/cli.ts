// `lisod pki init|issue|revoke|crl|list`: a small CA for client (and server) certificates.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseAllowEntry } from '../config_access.js';
import { createCa, issueLeaf, subjectOf } from './ca.js';
import { PkiError, loadSigner, paths, readIndex, writeCrl, writeFileAtomic, writeIndex, type IndexEntry } from './store.js';

export const kPkiUsage = `Usage: lisod pki init DIR [--cn NAME] [--days N]
       lisod pki issue DIR server NAME [--san NAME_OR_IP]... [--days N]
       lisod pki issue DIR client NAME [--subject "O=Ops,OU=Dev"] [--days N]
       lisod pki revoke DIR NAME
       lisod pki crl DIR [--days N]
       lisod pki list DIR

init creates DIR/ca.key (0600), DIR/ca.crt, an empty DIR/crl.pem and DIR/index.tsv.
issue writes DIR/issued/NAME.key and NAME.crt (certificate + CA); a client certificate
also gets DIR/issued/NAME.p12 for browsers (its password is printed). revoke marks every
unrevoked certificate of NAME and rewrites DIR/crl.pem; then run \`lisod reload\`. CRLs are
valid for 30 days: re-sign with \`lisod pki crl DIR\` before then. Keys are ECDSA P-256.`;

const kDefaults = { caDays: 3650, serverDays: 397, clientDays: 365, crlDays: 30 } as const;
const kName = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface PkiIo {
  out(text: string): void;
  err(text: string): void;
}

class UsageError extends Error {}

function days(v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 36500) throw new UsageError(`--days must be a whole number of days 1–36500, got '${v}'`);
  return n;
}

function name(v: string | undefined, what: string): string {
  if (v === undefined) throw new UsageError(`missing ${what}`);
  if (!kName.test(v)) throw new UsageError(`${what} '${v}' must be letters, digits, '.', '_', '@' or '-' (at most 64), starting with a letter or digit`);
  return v;
}

/** `openssl pkcs12 -export`: @peculiar/x509 does not build PKCS#12, OpenSSL's CLI does. */
function writeP12(dir: string, n: string): string {
  const password = crypto.randomBytes(12).toString('base64url');
  const issued = paths(dir).issued;
  const r = spawnSync('openssl', ['pkcs12', '-export', '-inkey', `${n}.key`, '-in', `${n}.crt`, '-name', n,
    '-passout', 'env:LISOD_P12_PASSWORD', '-out', `${n}.p12`], {
    cwd: issued, env: { ...process.env, LISOD_P12_PASSWORD: password }, encoding: 'utf8',
  });
  if (r.error || r.status !== 0) throw new PkiError(`openssl pkcs12 failed: ${r.error?.message ?? r.stderr.trim()}`);
  fs.chmodSync(path.join(issued, `${n}.p12`), 0o600);
  return password;
}

async function init(dir: string, o: { cn?: string; days?: string }, io: PkiIo): Promise<void> {
  const p = paths(dir);
  if (fs.existsSync(p.key)) throw new PkiError(`${p.key} exists: ${dir} already holds a CA`);
  fs.mkdirSync(p.issued, { recursive: true, mode: 0o700 });
  const ca = await createCa({ cn: o.cn ?? `lisod CA ${path.basename(path.resolve(dir))}`, days: days(o.days, kDefaults.caDays) });
  writeFileAtomic(p.key, ca.key, 0o600);
  writeFileAtomic(p.cert, ca.cert, 0o644);
  writeIndex(dir, []);
  await writeCrl(dir, await loadSigner(dir), [], kDefaults.crlDays);
  io.out(`created CA '${subjectOf(ca.cert)}' in ${dir}: ca.crt (give it to lisod as tls_client_ca), ca.key (keep it secret), crl.pem (tls_crl)\n`);
}

async function issue(dir: string, kind: string | undefined, n: string, o: { san?: string[]; subject?: string; days?: string }, io: PkiIo): Promise<void> {
  if (kind !== 'server' && kind !== 'client') throw new UsageError(`issue needs 'server' or 'client', got '${kind ?? ''}'`);
  if (kind === 'server' && o.subject !== undefined) throw new UsageError('--subject is for client certificates');
  if (kind === 'client' && o.san !== undefined) throw new UsageError('--san is for server certificates');
  let subject: Array<[string, string]> = [['CN', n]];
  if (o.subject !== undefined) {
    try {
      const extra = parseAllowEntry(o.subject);
      if (extra === null || extra.some(([a]) => a === 'CN')) throw new Error("give attributes other than CN (CN is NAME), e.g. --subject 'O=Ops,OU=Dev'");
      subject = [...subject, ...extra];
    } catch (e) {
      throw new UsageError(`--subject: ${(e as Error).message}`);
    }
  }
  const signer = await loadSigner(dir);
  const entries = readIndex(dir);
  const leaf = await issueLeaf(signer, {
    kind, subject, sans: kind === 'server' ? [n, ...(o.san ?? [])] : undefined,
    days: days(o.days, kind === 'server' ? kDefaults.serverDays : kDefaults.clientDays),
  });
  const issued = paths(dir).issued;
  fs.mkdirSync(issued, { recursive: true, mode: 0o700 });
  writeFileAtomic(path.join(issued, `${n}.key`), leaf.key, 0o600);
  writeFileAtomic(path.join(issued, `${n}.crt`), leaf.cert + signer.cert, 0o644);
  entries.push({ serial: leaf.serial, kind, name: n, subject: subjectOf(leaf.cert), notAfter: leaf.notAfter, revoked: null });
  writeIndex(dir, entries);
  io.out(`issued ${kind} certificate '${subjectOf(leaf.cert)}' (serial ${leaf.serial}, until ${leaf.notAfter.toISOString().slice(0, 10)}): ` +
    `${path.join(issued, `${n}.crt`)}, ${path.join(issued, `${n}.key`)}\n`);
  if (kind === 'client') {
    const password = writeP12(dir, n);
    io.out(`for browsers: ${path.join(issued, `${n}.p12`)} (password: ${password})\n`);
  }
}

async function revoke(dir: string, n: string, io: PkiIo): Promise<void> {
  const signer = await loadSigner(dir);
  const entries = readIndex(dir);
  const now = new Date();
  const hit = entries.filter((e) => e.name === n && e.revoked === null);
  if (hit.length === 0) throw new PkiError(`no unrevoked certificate named '${n}' in ${dir} (see lisod pki list ${dir})`);
  for (const e of hit) e.revoked = now;
  writeIndex(dir, entries);
  await writeCrl(dir, signer, entries, kDefaults.crlDays);
  io.out(`revoked ${hit.map((e) => e.serial).join(', ')} (${n}); ${paths(dir).crl} rewritten.\n` +
    'Run `lisod reload` (or send lisod SIGHUP) so that new connections see it.\n');
}

async function crl(dir: string, o: { days?: string }, io: PkiIo): Promise<void> {
  const d = days(o.days, kDefaults.crlDays);
  await writeCrl(dir, await loadSigner(dir), readIndex(dir), d);
  io.out(`${paths(dir).crl} re-signed, valid for ${d} days; run \`lisod reload\`.\n`);
}

function list(dir: string, io: PkiIo): void {
  const now = Date.now();
  for (const e of readIndex(dir)) {
    const state = e.revoked !== null ? `revoked ${e.revoked.toISOString().slice(0, 10)}`
      : e.notAfter.getTime() < now ? 'expired' : 'valid';
    io.out(`${e.serial}  ${e.kind.padEnd(6)}  ${e.subject}  until ${e.notAfter.toISOString().slice(0, 10)}  ${state}\n`);
  }
}

/** Runs `lisod pki …` (argv after "pki"); resolves with the exit status. */
export async function pkiMain(argv: string[], io: PkiIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { cn: { type: 'string' }, days: { type: 'string' }, san: { type: 'string', multiple: true },
        subject: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
    if (values.help) {
      io.out(`${kPkiUsage}\n`);
      return 0;
    }
    const [verb, dir, ...rest] = positionals;
    if (dir === undefined) throw new UsageError(verb === undefined ? 'missing command' : `${verb}: missing DIR`);
    const extra = (n: number): void => {
      if (rest.length > n) throw new UsageError(`unexpected argument '${rest[n]}'`);
    };
    switch (verb) {
      case 'init': extra(0); await init(dir, values, io); break;
      case 'issue': extra(2); await issue(dir, rest[0], name(rest[1], 'NAME'), values, io); break;
      case 'revoke': extra(1); await revoke(dir, name(rest[0], 'NAME'), io); break;
      case 'crl': extra(0); await crl(dir, values, io); break;
      case 'list': extra(0); list(dir, io); break;
      default: throw new UsageError(`unknown command '${verb}'`);
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError || (e as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`lisod pki: ${(e as Error).message}\n${kPkiUsage}\n`);
      return 2;
    }
    if (e instanceof PkiError || (e as NodeJS.ErrnoException).code !== undefined) {
      io.err(`lisod pki: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}
