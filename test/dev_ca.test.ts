// The README's commands for trusting the dev CA in Chrome/Chromium and Firefox (NSS certutil),
// run as written against a HOME of their own: afterwards NSS accepts a server certificate
// that CA issued, before them (and after the README's undo command) it does not.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/lisod.js';
import { getPki } from './helpers/pki.js';
import { tempDir } from './helpers/tmp.js';

const hasCertutil = spawnSync('sh', ['-c', 'command -v certutil'], { stdio: 'ignore' }).status === 0;

/** The README's shell lines (of the block after "Trusting the dev CA") that start with `prefix`. */
function readmeLine(prefix: string): string {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const block = readme.slice(readme.indexOf('Trusting the dev CA'));
  const line = block.split('\n').find((l) => l.startsWith(prefix));
  if (line === undefined) throw new Error(`README has no line starting with ${prefix}`);
  return line;
}

function sh(command: string, cwd: string, home: string): { status: number | null; out: string } {
  const r = spawnSync('sh', ['-c', command], { cwd, env: { PATH: process.env.PATH, HOME: home }, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

/** Does the NSS database `db` accept `leaf` as an SSL server certificate? */
function serverCertValid(db: string, leaf: string, home: string): boolean {
  sh(`certutil -d sql:${db} -A -t ",," -n leaf -i ${leaf}`, home, home);
  return sh(`certutil -d sql:${db} -V -u V -n leaf`, home, home).status === 0;
}

(hasCertutil ? test : test.skip)(`README: trusting and untrusting the dev CA in NSS (Chrome/Chromium, Firefox)${hasCertutil ? '' : ' (skipped: certutil missing; apt-get install libnss3-tools)'}`, async (t) => {
  const pki = await getPki();
  const home = tempDir('lisod-ca-home-');
  const checkout = tempDir('lisod-ca-checkout-');
  fs.mkdirSync(path.join(checkout, 'certs'));
  fs.copyFileSync(pki.caCert, path.join(checkout, 'certs', 'dev-ca.pem'));

  // Chrome/Chromium: create the per-user database if missing, then import the CA.
  const chromeDb = path.join(home, '.pki', 'nssdb');
  const create = sh(readmeLine('mkdir -p ~/.pki/nssdb'), checkout, home);
  t.is(create.status, 0, create.out);
  t.false(serverCertValid(chromeDb, pki.rsa.cert, home), 'NSS trusts the server certificate before the import');
  const trust = sh(readmeLine('certutil -d sql:$HOME/.pki/nssdb -A'), checkout, home);
  t.is(trust.status, 0, trust.out);
  t.true(serverCertValid(chromeDb, pki.rsa.cert, home), 'the imported CA makes the server certificate valid');
  t.is(sh(readmeLine('mkdir -p ~/.pki/nssdb'), checkout, home).status, 0, 'the first line may run again');

  // Firefox: every *.default* profile gets it.
  const profile = path.join(home, '.mozilla', 'firefox', 'abcd1234.default-release');
  fs.mkdirSync(profile, { recursive: true });
  t.is(sh(`certutil -d sql:${profile} -N --empty-password`, home, home).status, 0);
  const firefox = sh(readmeLine('for p in ~/.mozilla/firefox/'), checkout, home);
  t.is(firefox.status, 0, firefox.out);
  t.true(serverCertValid(profile, pki.rsa.cert, home));

  // Undo (the README's inline command).
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const undo = /To undo: `(certutil -d sql:\$HOME\/\.pki\/nssdb -D -n "lisod development CA")`/.exec(readme)?.[1];
  t.truthy(undo);
  t.is(sh(undo!, checkout, home).status, 0);
  sh(`certutil -d sql:${chromeDb} -D -n leaf`, home, home);
  t.false(serverCertValid(chromeDb, pki.rsa.cert, home), 'still trusted after the undo command');
});
