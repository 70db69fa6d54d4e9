// The shipped systemd files: the unit passes `systemd-analyze verify` (when installed) and
// carries the settings docs/service.md promises; the example config is a valid lisod config.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { finishConfig, parseConfigText } from '../src/config.js';
import { testTempDir } from './helpers/tmp.js';

const unitPath = fileURLToPath(new URL('../systemd/lisod.service', import.meta.url));
const examplePath = fileURLToPath(new URL('../systemd/lisod.conf.example', import.meta.url));
const logrotatePath = fileURLToPath(new URL('../systemd/lisod.logrotate', import.meta.url));

function which(command: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** [Section] → key → values (a key may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | null = null;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1], current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || current === null) throw new Error(`unparsable unit line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const systemdAnalyze = which('systemd-analyze');
const systemdVersion = systemdAnalyze
  ? Number(/systemd (\d+)/.exec(spawnSync(systemdAnalyze, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? 0)
  : 0;
const noAnalyze = ' (skipped: systemd-analyze is not installed)';

(systemdAnalyze ? test : test.skip)(`systemd-analyze verify accepts lisod.service${systemdAnalyze ? '' : noAnalyze}`, (t) => {
  const r = spawnSync(systemdAnalyze!, ['verify', unitPath], { encoding: 'utf8' });
  // verify prints problems on stderr and may still exit 0 for some of them.
  const problems = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    // Environment noise, not the unit: no running systemd as PID 1 in containers.
    .filter((l) => !/Failed to (connect to|initialize) .*bus|System has not been booted with systemd/i.test(l));
  t.is(r.status, 0, r.stderr);
  t.deepEqual(problems, [], r.stderr);
});

// `security --offline` exists since systemd 250.
const canRateOffline = systemdVersion >= 250;
(canRateOffline ? test : test.skip)(
  `systemd-analyze security rates the unit OK (exposure < 3)${canRateOffline ? '' : ' (skipped: needs systemd-analyze >= 250)'}`,
  (t) => {
  const r = spawnSync(systemdAnalyze!, ['security', '--offline=yes', '--no-pager', unitPath], { encoding: 'utf8' });
  const m = /Overall exposure level for \S+: ([0-9.]+)/.exec(r.stdout);
  t.truthy(m, r.stdout + r.stderr);
  t.true(Number(m![1]) < 3, `exposure ${m![1]}`);
  },
);

test('the unit is Type=notify, reloads with HUP and has the promised hardening', (t) => {
  const unit = parseUnit(fs.readFileSync(unitPath, 'utf8'));
  const service = unit.get('Service');
  t.truthy(service);
  const one = (key: string): string | undefined => service!.get(key)?.at(-1);

  t.is(one('Type'), 'notify');
  t.is(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  t.regex(one('ExecStart') ?? '', /--config \/etc\/lisod\/lisod\.conf --foreground$/);
  t.is(one('User'), 'lisod');
  t.is(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  t.is(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE');
  for (const key of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) t.is(one(key), 'yes', key);
  t.is(one('ProtectSystem'), 'strict');
  t.deepEqual(one('ReadWritePaths')?.split(/\s+/).sort(), ['/var/lib/lisod', '/var/log/lisod']);
  t.is(one('RuntimeDirectory'), 'lisod');
  // V8's JIT needs W+X pages: this setting would crash node at start.
  t.is(service!.get('MemoryDenyWriteExecute'), undefined);
  // The stop timeout leaves room for the configured grace period.
  const grace = finishConfig(parseConfigText(fs.readFileSync(examplePath, 'utf8'), examplePath, examplePath), 'h').shutdownGraceMs;
  t.true(Number(one('TimeoutStopSec')) * 1000 > grace);
  t.is(unit.get('Install')?.get('WantedBy')?.[0], 'multi-user.target');
});

test('the example config is valid and uses the directories the unit makes writable', (t) => {
  const text = fs.readFileSync(examplePath, 'utf8');
  const config = finishConfig(parseConfigText(text, examplePath, examplePath), 'host');
  t.is(config.httpPort, 80);
  t.is(config.httpsPort, 443);
  t.is(config.lockFile, '/run/lisod/lisod.lock');
  t.true(config.errorLog.startsWith('/var/log/lisod/'));
  t.true(config.accessLog?.startsWith('/var/log/lisod/'));
  t.is(config.cgi!.env.FLASKR_DATABASE, '/var/lib/lisod/flaskr.sqlite');
  t.true(config.cgi!.env.FLASKR_SECRET_FILE.startsWith('/var/lib/lisod/'));
  t.is(config.user, null);
});

test('the logrotate snippet rotates the logs and runs `lisod … reload` once', (t) => {
  const text = fs.readFileSync(logrotatePath, 'utf8');
  t.regex(text, /^\/var\/log\/lisod\/\*\.log \{$/m);
  t.regex(text, /^\s+create 0640 lisod lisod$/m);
  const logrotate = which('logrotate');
  if (logrotate === null) {
    t.log('logrotate is not installed: the snippet was not run');
    return;
  }
  // Run the snippet for real on a scratch directory: same text, with the log directory,
  // the lisod command and the user swapped for ones that exist here.
  const dir = testTempDir(t, 'lisod-logrotate-');
  const logDir = path.join(dir, 'log');
  fs.mkdirSync(logDir, { mode: 0o750 });
  fs.writeFileSync(path.join(logDir, 'error.log'), 'an error line\n');
  fs.writeFileSync(path.join(logDir, 'access.log'), 'an access line\n');
  const calls = path.join(dir, 'calls');
  const fakeLisod = path.join(dir, 'lisod');
  fs.writeFileSync(fakeLisod, `#!/bin/sh\necho "$*" >> '${calls}'\n`, { mode: 0o755 });
  const user = os.userInfo().username;
  const group = spawnSync('id', ['-gn'], { encoding: 'utf8' }).stdout.trim();
  const conf = path.join(dir, 'lisod.logrotate');
  fs.writeFileSync(
    conf,
    text.replaceAll('/var/log/lisod', logDir).replaceAll('/usr/local/bin/lisod', fakeLisod).replaceAll('lisod lisod', `${user} ${group}`),
    { mode: 0o644 },
  );
  fs.chmodSync(dir, 0o755); // su: the fake command must be reachable by `user`
  const r = spawnSync(logrotate, ['--force', '--state', path.join(dir, 'state'), conf], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);

  const names = fs.readdirSync(logDir).sort();
  t.is(names.length, 4, names.join(' '));
  for (const log of ['access.log', 'error.log']) {
    t.is(fs.readFileSync(path.join(logDir, log), 'utf8'), '', `${log} recreated empty`);
    t.is(fs.statSync(path.join(logDir, log)).mode & 0o777, 0o640, `${log} mode`);
    const rotated = names.find((n) => n.startsWith(`${log}-`));
    t.truthy(rotated, names.join(' '));
    t.regex(fs.readFileSync(path.join(logDir, rotated!), 'utf8'), /line\n$/);
  }
  // sharedscripts: one reload for both files, with the production config.
  t.is(fs.readFileSync(calls, 'utf8'), '--config /etc/lisod/lisod.conf reload\n');
});

test('docs/service.md matches the shipped unit and names every install step', (t) => {
  const doc = fs.readFileSync(fileURLToPath(new URL('../docs/service.md', import.meta.url)), 'utf8');
  for (const needle of [
    'useradd --system',
    'systemctl enable --now lisod',
    '/etc/logrotate.d/lisod',
    'systemd-analyze verify',
    '/etc/lisod/lisod.conf',
    'Type=notify',
  ]) {
    t.true(doc.includes(needle), needle);
  }
  const unit = parseUnit(fs.readFileSync(unitPath, 'utf8')).get('Service')!;
  t.true(doc.includes(`ExecStart=${unit.get('ExecStart')![0]}`), 'ExecStart quoted as shipped');
  // The addon file the unit's node loads is installed where node-gyp-build looks for it.
  t.true(doc.includes('/opt/lisod/build/Release/lisod.node'));
  t.true(unit.get('ExecStart')![0].includes('/opt/lisod/dist/main.js'));
});
