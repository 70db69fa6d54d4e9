// Start-up failures through the real binary: bad TLS key/certificate material and config
// file errors end in a non-zero exit and one stderr line naming the file (and line).
import test, { type ExecutionContext } from 'ava';
import path from 'node:path';
import { withoutRootWarning } from './helpers/assert.js';
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
  const lines = withoutRootWarning(r.stderr).trim().split('\n'); // the error, besides that warning
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

/** An edit of the generated config: the new text and the 1-based line the error must name. */
type ConfigEdit = (text: string) => { text: string; line: number };

const append = (bad: string): ConfigEdit => (s) => {
  const text = `${s}${bad}\n`;
  return { text, line: lineCount(text) };
};

const replaceKey = (key: string, bad: string): ConfigEdit => (s) => {
  const lines = s.split('\n');
  const line = lines.findIndex((l) => l.startsWith(key)) + 1;
  lines[line - 1] = bad;
  return { text: lines.join('\n'), line };
};

// Title, edit, and what else the one stderr line must name besides file:line.
const configCases: Array<[string, ConfigEdit, string[][]]> = [
  ['unknown top-level key → file:line', (s) => ({ text: `bogus_key = 1\n${s}`, line: 1 }), [['bogus_key']]],
  ['unknown key at the end of the file (inside [cgi]) → file:line', append('bogus_key = 1'), [['bogus_key']]],
  ['misspelt key in the middle of the file → its line', (s) => {
    const lines = s.split('\n');
    lines.splice(2, 0, 'max_conections = 10');
    return { text: lines.join('\n'), line: 3 };
  }, [['max_conections']]],
  ['wrong value type → file:line', replaceKey('http_port', 'http_port = "eighty"'), [['http_port']]],
  ['port out of range → file:line', replaceKey('https_port', 'https_port = 70000'), [['https_port']]],
  ['TOML syntax error → file:line', append('this is not toml'), []],
];

for (const [title, edit, names] of configCases) {
  test(`config error: ${title}`, async (t) => {
    let line = 0;
    const r = await runLisodExpectFailure({
      transformConfig: (s) => {
        const edited = edit(s);
        line = edited.line;
        return edited.text;
      },
    });
    t.true(line > 0);
    assertOneLineFailure(t, r, [[`${path.basename(r.dirs.config)}:${line}`], ...names]);
  });
}

test('config error: the config file does not exist → names it', async (t) => {
  const missing = path.join(pki.dir, 'no-such-lisod.conf');
  const r = await runLisodExpectFailure({ argv: ['--config', missing, '--foreground'] });
  assertOneLineFailure(t, r, [[missing]]);
});
