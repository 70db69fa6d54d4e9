// What a newcomer meets first: warnings on the terminal for an exposed default Flaskr login and
// for root, --http-port / --https-port, a CGI script that cannot run stopping the start in one
// line, and Flaskr's one default database whichever way lisod starts.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exposureWarnings, isLoopback } from '../src/exposure.js';
import { finishConfig, parseConfigText, type LisodConfig } from '../src/config.js';
import { withoutRootWarning } from './helpers/assert.js';
import { exchange1, get } from './helpers/client.js';
import { repoRoot, runLisodExpectFailure, runningAsRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { getPki } from './helpers/pki.js';
import { tempDir } from './helpers/tmp.js';

const started: Lisod[] = [];
test.after.always(async () => {
  await Promise.all(started.map((l) => l.stop()));
});

const kExposed = /^lisod: warning: listening on :: \(beyond loopback\) while Flaskr still accepts the tutorial login admin \/ default: set FLASKR_USERNAME and FLASKR_PASSWORD under \[cgi\.env\], or bind 127\.0\.0\.1 \/ ::1$/m;
const kRoot = 'lisod: warning: running as root: CGI scripts run as root too; set user = "…" to switch after binding';

/** An executable stand-in named flaskr.cgi (the warning looks at the script's name). */
function flaskrStandIn(): string {
  const file = path.join(tempDir('lisod-qs-'), 'flaskr.cgi');
  fs.writeFileSync(file, '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nflaskr stand-in\\n"\n', { mode: 0o755 });
  return file;
}

/** A finished config from `text` (+ `cgi = "cgi-bin/flaskr.cgi"` unless it has a [cgi] table). */
function config(text: string): LisodConfig {
  const cgi = text.includes('[cgi]') ? '' : 'cgi = "cgi-bin/flaskr.cgi"\n';
  return finishConfig(parseConfigText(`http_port = 1\nwww = "."\n${cgi}${text}`, 'c.conf', '/x/c.conf'), 'h');
}

test('exposureWarnings: beyond loopback with the default Flaskr login; root without user', (t) => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.true(isLoopback(a), a);
  for (const a of ['::', '0.0.0.0', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1']) t.false(isLoopback(a), a);

  t.deepEqual(exposureWarnings(config('bind = ["127.0.0.1", "::1"]'), 1000, {}), []);
  const open = exposureWarnings(config('bind = ["127.0.0.1", "0.0.0.0"]'), 1000, {});
  t.is(open.length, 1);
  t.regex(open[0]!, /^listening on 0\.0\.0\.0 \(beyond loopback\) while Flaskr still accepts the tutorial login admin \/ default/);
  // A password of its own, from [cgi.env] or passed through from lisod's environment, ends it.
  t.deepEqual(exposureWarnings(config('bind = ["::"]\n[cgi]\nscript = "cgi-bin/flaskr.cgi"\n[cgi.env]\nFLASKR_PASSWORD = "s3cret"'), 1000, {}), []);
  const passed = config('bind = ["::"]\n[cgi]\nscript = "cgi-bin/flaskr.cgi"\npass_env = ["FLASKR_PASSWORD"]');
  t.deepEqual(exposureWarnings(passed, 1000, { FLASKR_PASSWORD: 'x' }), []);
  t.is(exposureWarnings(passed, 1000, {}).length, 1);
  // Another application: its login is not ours to judge.
  const other = finishConfig(parseConfigText('http_port = 1\nwww = "."\ncgi = "app.cgi"\nbind = ["::"]\n', 'c', '/x/c'), 'h');
  t.deepEqual(exposureWarnings(other, 1000, {}), []);

  t.deepEqual(exposureWarnings(config('bind = ["::1"]'), 0, {}), [kRoot.replace('lisod: warning: ', '')]);
  t.deepEqual(exposureWarnings(config('bind = ["::1"]\nuser = "nobody"'), 0, {}), []);
});

test('-t prints the exposure warning on the terminal (nothing is bound); a Flaskr password silences it', async (t) => {
  const cgi = flaskrStandIn();
  const exposed = await runLisodExpectFailure({ cgi, config: { bind: ['::'] }, argv: ['--config', '{config}', '-t'] });
  t.is(exposed.code, 0, exposed.stderr);
  t.regex(exposed.stderr, kExposed);
  t.is(exposed.stderr.includes(kRoot), runningAsRoot);

  const quiet = await runLisodExpectFailure({
    cgi, config: { bind: ['::'], cgi: { env: { FLASKR_PASSWORD: 'not the default' } } }, argv: ['--config', '{config}', '-t'],
  });
  t.is(quiet.code, 0, quiet.stderr);
  t.is(withoutRootWarning(quiet.stderr), '');
});

test('serving on loopback: no exposure warning; as root the root warning is on the terminal and in the log', async (t) => {
  const l = await startLisod({ cgi: flaskrStandIn() });
  started.push(l);
  t.false(kExposed.test(l.stderr()));
  t.is(l.stderr(), runningAsRoot ? `${kRoot}\n` : '');
  await l.stop();
  const log = fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');
  t.is(/ warn lisod\[\d+\]: running as root: CGI scripts run as root too/.test(log), runningAsRoot);
});

test('--http-port / --https-port replace the configured ports', async (t) => {
  // The configured ports are taken: lisod can only start on the ones the options give.
  const taken: number[] = [];
  for (let i = 0; i < 2; i++) {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    t.teardown(() => busy.close());
    taken.push((busy.address() as net.AddressInfo).port);
  }
  const l = await startLisod({ config: { http_port: taken[0]!, https_port: taken[1]! }, args: ['--http-port', '0', '--https-port', '0'] });
  started.push(l);
  t.false(taken.includes(l.httpPort) || taken.includes(l.httpsPort));
  const res = await exchange1(get('/', 'Connection: close\r\n'), { port: l.httpsPort, tls: true });
  t.is(res.status, 200);
  t.is(res.body.toString(), '<!doctype html><p>lisod test default</p>\n');

  const bad = await runLisodExpectFailure({ args: ['--https-port', '70000'] });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^lisod: --https-port '70000' is not a port number \(0–65535\)\n/);
});

test('a missing or non-executable CGI script stops the start and -t: exit 1, one line naming it', async (t) => {
  const dir = tempDir('lisod-qs-');
  const plain = path.join(dir, 'plain.cgi');
  fs.writeFileSync(plain, '#!/bin/sh\n', { mode: 0o644 });
  fs.chmodSync(plain, 0o644);
  const gone = path.join(dir, 'gone.cgi');
  for (const [cgi, what] of [[gone, 'no such file or directory'], [plain, `not executable (hint: chmod +x ${plain})`]] as const) {
    for (const mode of [['--foreground'], ['-t'], []]) { // foreground, check, daemon launcher
      const r = await runLisodExpectFailure({ cgi, argv: ['--config', '{config}', ...mode] });
      t.is(r.code, 1, `${mode.join(' ')}: ${r.stderr}`);
      t.false(r.listened);
      t.regex(withoutRootWarning(r.stderr), new RegExp(`^lisod: \\S+lisod\\.conf:\\d+: cgi script '${cgi}': ${what.replace(/[()+]/g, '\\$&')}\\n$`), mode.join(' '));
    }
  }
  // The Liso form names its argument.
  const pki = await getPki();
  const site = tempDir('lisod-qs-');
  const liso = ['0', '0', path.join(site, 'l.log'), path.join(site, 'l.lock'), site, gone, pki.rsa.key, pki.rsa.cert];
  const r = await runLisodExpectFailure({ argv: liso });
  t.is(r.code, 1);
  t.is(withoutRootWarning(r.stderr), `lisod: <cgi>: cgi script '${gone}': no such file or directory\n`);
  t.false(fs.existsSync(path.join(site, 'l.lock')), 'no daemon was started');
});

test('a CGI script removed while lisod runs: 500, and the error log names it once', async (t) => {
  const dir = tempDir('lisod-qs-');
  const cgi = path.join(dir, 'vanishing.cgi');
  fs.writeFileSync(cgi, '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nhere\\n"\n', { mode: 0o755 });
  const l = await startLisod({ cgi });
  started.push(l);
  t.is((await exchange1(get('/cgi/', 'Connection: close\r\n'), { port: l.httpPort })).body.toString(), 'here\n');
  fs.rmSync(cgi);
  const res = await exchange1(get('/cgi/', 'Connection: close\r\n'), { port: l.httpPort });
  t.is(res.status, 500);
  await l.stop();
  const log = fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');
  const lines = log.split('\n').filter((s) => s.includes(cgi));
  t.is(lines.length, 1, log);
  t.is(lines[0]!.split('cannot run').length - 1, 1, lines[0]);
});

const hasFlask = spawnSync('/usr/bin/python3', ['-c', 'import flask'], { stdio: 'ignore' }).status === 0;

(hasFlask ? test : test.skip)(`Flaskr keeps one database, <checkout>/var/flaskr.sqlite, in the Liso form and under lisod.conf${hasFlask ? '' : ' (skipped: python3-flask is not installed)'}`, async (t) => {
  t.timeout(60_000);
  // A copy of the checkout's CGI side, so the test never touches the real var/.
  const checkout = tempDir('lisod-qs-checkout-');
  fs.cpSync(path.join(repoRoot, 'cgi-bin'), path.join(checkout, 'cgi-bin'), {
    recursive: true, filter: (f) => !/__pycache__|instance/.test(f),
  });
  const script = path.join(checkout, 'cgi-bin', 'flaskr.cgi');
  const db = path.join(checkout, 'var', 'flaskr.sqlite');
  const pki = await getPki();
  const www = path.join(checkout, 'www');
  fs.mkdirSync(www);
  fs.mkdirSync(path.join(checkout, 'logs'));
  const liso = ['0', '0', path.join(checkout, 'logs', 'l.log'), path.join(checkout, 'logs', 'l.lock'), www, script, pki.rsa.key, pki.rsa.cert];

  const lisoForm = await startLisod({ argv: ['--foreground', '--bind', '127.0.0.1', ...liso] });
  started.push(lisoForm);
  const first = await exchange1(get('/cgi/', 'Connection: close\r\n'), { port: lisoForm.httpPort });
  t.is(first.status, 200, first.body.toString());
  await lisoForm.stop();
  t.true(fs.existsSync(db), 'the Liso form created var/flaskr.sqlite');
  const made = fs.statSync(db).ino;

  // The shipped lisod.conf sets no FLASKR_DATABASE: the config form uses the same file.
  t.false(/^\s*FLASKR_DATABASE\s*=/m.test(fs.readFileSync(path.join(repoRoot, 'lisod.conf'), 'utf8')));
  const configForm = await startLisod({ cgi: script });
  started.push(configForm);
  t.is((await exchange1(get('/cgi/', 'Connection: close\r\n'), { port: configForm.httpPort })).status, 200);
  await configForm.stop();
  t.is(fs.statSync(db).ino, made);
  t.false(fs.existsSync(path.join(checkout, 'cgi-bin', 'instance')));

  // The systemd configuration keeps its own state directory.
  t.regex(fs.readFileSync(path.join(repoRoot, 'systemd', 'lisod.conf.example'), 'utf8'), /^FLASKR_DATABASE = "\/var\/lib\/lisod\/flaskr\.sqlite"/m);
});
