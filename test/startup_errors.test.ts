// Start-up failures through the real binary: bad TLS key/certificate material and config
// file errors end in a non-zero exit and one stderr line naming the file (and line).
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { runLisodExpectFailure, type FailedRun, type LisodOptions } from './helpers/lisod.js';
import { getPki, type KeyPair, type Pki } from './helpers/pki.js';

let pki: Pki;
test.before(async () => {
  pki = await getPki();
});

/** Non-zero exit on its own, no listener, exactly one stderr line containing every `names`. */
function assertOneLineFailure(t: ExecutionContext, r: FailedRun, names: string[][]): void {
  const ctx = `exit ${r.code}/${r.signal}; stderr: ${JSON.stringify(r.stderr)}; stdout: ${JSON.stringify(r.stdout)}`;
  t.false(r.listened, `lisod started listening: ${ctx}`);
  t.is(r.signal, null, `lisod had to be killed: ${ctx}`);
  t.true(r.code !== null && r.code !== 0, `exit status: ${ctx}`);
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 1, `one stderr line: ${ctx}`);
  t.true(lines[0]!.length > 0, `a message: ${ctx}`);
  for (const alternatives of names) {
    t.true(alternatives.some((n) => r.stderr.includes(n)), `message names one of ${alternatives.join(' | ')}: ${ctx}`);
  }
}

const tlsCases: Array<[string, (p: Pki) => KeyPair, (k: KeyPair) => string[], Partial<LisodOptions>?]> = [
  ['missing key file', (p) => p.bad.missingKey, (k) => [k.key]],
  ['missing certificate file', (p) => p.bad.missingCert, (k) => [k.cert]],
  ['key that does not match the certificate', (p) => p.bad.mismatchedKey, (k) => [k.key, k.cert]],
  ['garbage PEM certificate', (p) => p.bad.garbageCert, (k) => [k.cert]],
  ['garbage PEM key', (p) => p.bad.garbageKey, (k) => [k.key]],
  ['empty certificate file', (p) => p.bad.emptyCert, (k) => [k.cert]],
  ['certificate given as key and key as certificate', (p) => ({ key: p.rsa.cert, cert: p.rsa.key }), (k) => [k.key, k.cert]],
  ['unreadable key file', (p) => p.bad.unreadableKey, (k) => [k.key], { unprivileged: true }],
];

for (const [name, pick, named, extra] of tlsCases) {
  test(`start-up error: ${name}`, async (t) => {
    const kp = pick(pki);
    const r = await runLisodExpectFailure({ tls: kp, ...extra });
    assertOneLineFailure(t, r, [named(kp)]);
  });
}

// ---- config file errors ----------------------------------------------------------------

function lineCount(text: string): number {
  return text.endsWith('\n') ? text.split('\n').length - 1 : text.split('\n').length;
}

test('config error: unknown top-level key → file:line', async (t) => {
  const r = await runLisodExpectFailure({ transformConfig: (s) => `bogus_key = 1\n${s}` });
  assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:1`], ['bogus_key']]);
});

test('config error: unknown key at the end of the file (inside [cgi]) → file:line', async (t) => {
  let line = 0;
  const r = await runLisodExpectFailure({
    transformConfig: (s) => {
      const out = `${s}bogus_key = 1\n`;
      line = lineCount(out);
      return out;
    },
  });
  assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:${line}`], ['bogus_key']]);
});

test('config error: misspelt key in the middle of the file → its line', async (t) => {
  let line = 0;
  const r = await runLisodExpectFailure({
    transformConfig: (s) => {
      const lines = s.split('\n');
      lines.splice(2, 0, 'max_conections = 10');
      line = 3;
      return lines.join('\n');
    },
  });
  assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:${line}`], ['max_conections']]);
});

test('config error: wrong value type → file:line', async (t) => {
  let line = 0;
  const r = await runLisodExpectFailure({
    transformConfig: (s) => {
      const lines = s.split('\n');
      line = lines.findIndex((l) => l.startsWith('http_port')) + 1;
      lines[line - 1] = 'http_port = "eighty"';
      return lines.join('\n');
    },
  });
  t.true(line > 0);
  assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:${line}`], ['http_port']]);
});

test('config error: port out of range → file:line', async (t) => {
  let line = 0;
  const r = await runLisodExpectFailure({
    transformConfig: (s) => {
      const lines = s.split('\n');
      line = lines.findIndex((l) => l.startsWith('https_port')) + 1;
      lines[line - 1] = 'https_port = 70000';
      return lines.join('\n');
    },
  });
  t.true(line > 0);
  assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:${line}`], ['https_port']]);
});

test('config error: TOML syntax error → file:line', async (t) => {
  let line = 0;
  const r = await runLisodExpectFailure({
    transformConfig: (s) => {
      const out = `${s}this is not toml\n`;
      line = lineCount(out);
      return out;
    },
  });
  assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:${line}`]]);
});

test('config error: the config file does not exist → names it', async (t) => {
  const missing = path.join(pki.dir, 'no-such-lisod.conf');
  const r = await runLisodExpectFailure({ argv: ['--config', missing, '--foreground'] });
  assertOneLineFailure(t, r, [[missing]]);
});
