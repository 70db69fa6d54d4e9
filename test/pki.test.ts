// `lisod pki`: init, issue (server, client + .p12), revoke, crl, list, checked with the
// openssl CLI (`openssl verify -crl_check_all` must accept what it issues), and its errors.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { mainJs } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

function lisod(...args: string[]) {
  return spawnSync(process.execPath, [mainJs, 'pki', ...args], { encoding: 'utf8' });
}

function openssl(cwd: string, ...args: string[]) {
  return spawnSync('openssl', args, { cwd, encoding: 'utf8' });
}

const verify = (dir: string, cert: string, purpose = 'sslclient') =>
  openssl(dir, 'verify', '-purpose', purpose, '-crl_check_all', '-CRLfile', 'crl.pem', '-CAfile', 'ca.crt', cert);

test('init → issue → revoke → crl → list, as OpenSSL sees it', (t) => {
  const dir = path.join(tempDir('lisod-pki-cli-'), 'ca');
  let r = lisod('init', dir, '--cn', 'Example Ops CA');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /created CA 'CN=Example Ops CA'/);
  t.is(fs.statSync(path.join(dir, 'ca.key')).mode & 0o777, 0o600, 'the CA key is private');
  t.regex(openssl(dir, 'x509', '-in', 'ca.crt', '-noout', '-text').stdout, /CA:TRUE[\s\S]*Certificate Sign, CRL Sign[\s\S]*ecdsa-with-SHA256/);
  const crl0 = openssl(dir, 'crl', '-in', 'crl.pem', '-noout', '-text', '-CAfile', 'ca.crt');
  t.regex(crl0.stdout, /No Revoked Certificates/);
  t.regex(crl0.stderr + crl0.stdout, /verify OK/);

  r = lisod('issue', dir, 'client', 'alice', '--subject', 'O=Ops,OU=Night shift');
  t.is(r.status, 0, r.stderr);
  const password = /password: (\S+)\)/.exec(r.stdout)?.[1];
  t.truthy(password, r.stdout);
  t.is(verify(dir, 'issued/alice.crt').stdout.trim(), 'issued/alice.crt: OK');
  t.is(verify(dir, 'issued/alice.crt', 'sslserver').status, 2, 'a client certificate is not a server certificate');
  t.regex(openssl(dir, 'x509', '-in', 'issued/alice.crt', '-noout', '-subject', '-nameopt', 'RFC2253').stdout, /subject=CN=alice,O=Ops,OU=Night shift/);
  t.is(fs.statSync(path.join(dir, 'issued', 'alice.key')).mode & 0o777, 0o600);
  const p12 = openssl(dir, 'pkcs12', '-in', 'issued/alice.p12', '-passin', `pass:${password}`, '-nokeys', '-clcerts');
  t.is(p12.status, 0, p12.stderr);
  t.regex(p12.stdout, /subject=.*CN ?= ?alice/);
  t.not(openssl(dir, 'pkcs12', '-in', 'issued/alice.p12', '-passin', 'pass:wrong', '-nokeys').status, 0);

  r = lisod('issue', dir, 'server', 'localhost', '--san', '127.0.0.1', '--san', '::1');
  t.is(r.status, 0, r.stderr);
  t.is(verify(dir, 'issued/localhost.crt', 'sslserver').stdout.trim(), 'issued/localhost.crt: OK');
  t.regex(openssl(dir, 'x509', '-in', 'issued/localhost.crt', '-noout', '-ext', 'subjectAltName').stdout, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1/);
  t.false(fs.existsSync(path.join(dir, 'issued', 'localhost.p12')), 'no .p12 for servers');

  r = lisod('issue', dir, 'client', 'bob');
  t.is(r.status, 0, r.stderr);
  const bobSerial = /serial ([0-9a-f]+)/.exec(r.stdout)![1]!;
  r = lisod('revoke', dir, 'bob');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /lisod reload/);
  t.regex(verify(dir, 'issued/bob.crt').stdout + verify(dir, 'issued/bob.crt').stderr, /certificate revoked/);
  t.is(verify(dir, 'issued/alice.crt').status, 0, 'others stay valid');
  t.regex(openssl(dir, 'crl', '-in', 'crl.pem', '-noout', '-text').stdout, new RegExp(`Serial Number: ${bobSerial.toUpperCase()}`));

  const before = openssl(dir, 'crl', '-in', 'crl.pem', '-noout', '-nextupdate').stdout;
  r = lisod('crl', dir, '--days', '60');
  t.is(r.status, 0, r.stderr);
  const after = openssl(dir, 'crl', '-in', 'crl.pem', '-noout', '-nextupdate').stdout;
  t.true(Date.parse(after.replace('nextUpdate=', '')) > Date.parse(before.replace('nextUpdate=', '')) + 20 * 86400_000);
  t.regex(verify(dir, 'issued/bob.crt').stdout + verify(dir, 'issued/bob.crt').stderr, /certificate revoked/, 're-signed CRL keeps revocations');

  r = lisod('list', dir);
  t.is(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 3);
  t.regex(lines[0]!, /^[0-9a-f]{32}  client  CN=alice,O=Ops,OU=Night shift  until \d{4}-\d\d-\d\d  valid$/);
  t.regex(lines[1]!, /server  CN=localhost .* valid$/);
  t.regex(lines[2]!, new RegExp(`^${bobSerial}  client  CN=bob  until .*  revoked \\d{4}-\\d\\d-\\d\\d$`));
  const index = fs.readFileSync(path.join(dir, 'index.tsv'), 'utf8');
  t.regex(index, /^# lisod pki index: serial\tkind\tname\tsubject\tnot-after\trevoked\n/);
  t.is(index.trim().split('\n').length, 4);
});

test('errors: one line each, usage errors exit 2, failures exit 1, nothing half-written', (t) => {
  const base = tempDir('lisod-pki-err-');
  const dir = path.join(base, 'ca');
  t.is(lisod('init', dir).status, 0);
  const cases: Array<[string[], number, RegExp]> = [
    [['init', dir], 1, /already holds a CA/],
    [['issue', dir, 'robot', 'x'], 2, /issue needs 'server' or 'client', got 'robot'/],
    [['issue', dir, 'client', '../evil'], 2, /NAME '\.\.\/evil' must be letters/],
    [['issue', dir, 'client', 'x', '--subject', 'Ops'], 2, /--subject: 'Ops' is not "\*" or ATTR=value pairs/],
    [['issue', dir, 'client', 'x', '--subject', 'CN=other'], 2, /give attributes other than CN/],
    [['issue', dir, 'client', 'x', '--days', 'ten'], 2, /--days must be a whole number/],
    [['issue', dir, 'server', 'x', '--subject', 'O=a'], 2, /--subject is for client certificates/],
    [['revoke', dir, 'nobody'], 1, /no unrevoked certificate named 'nobody'/],
    [['list', path.join(base, 'none')], 1, /is not a lisod CA \(no index\.tsv\); run lisod pki init/],
    [['issue', path.join(base, 'none'), 'client', 'x'], 1, /cannot read the CA in .*; run lisod pki init/],
    [['frobnicate', dir], 2, /unknown command 'frobnicate'/],
    [[], 2, /missing command/],
    [['init', dir, '--bogus'], 2, /Unknown option '--bogus'/],
  ];
  for (const [args, status, re] of cases) {
    const r = lisod(...args);
    t.is(r.status, status, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr.split('\n')[0]!, /^lisod pki: /, args.join(' '));
    t.regex(r.stderr, re, args.join(' '));
  }
  t.deepEqual(fs.readdirSync(path.join(dir, 'issued')), [], 'no files from refused commands');
  const help = lisod('--help');
  t.is(help.status, 0);
  t.regex(help.stdout, /lisod pki init DIR/);
});
