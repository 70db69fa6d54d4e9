// scripts/system-deps.sh against stand-in dpkg-query / apt-get / id / sudo on a PATH of their
// own (the real system is never changed): what it installs, when it stays silent, what it tells
// users without apt or root; and that only `npm start` / `npm test` / .ci/run call it.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

const kScript = path.join(repoRoot, 'scripts', 'system-deps.sh');
const kTools = ['grep', 'sed', 'tr', 'cat']; // what the script uses besides the stand-ins

interface Stubs {
  installed?: string[]; // packages the stand-in dpkg-query reports as installed
  uid?: number; // what the stand-in `id -u` prints
  sudo?: boolean; // provide a stand-in sudo
  dpkg?: boolean; // provide dpkg-query and apt-get at all (default true)
  aptFails?: 'never' | 'once' | 'always';
  env?: Record<string, string>;
}

/** Runs the script with `args` on a PATH of stand-ins; returns its status, stderr and apt calls. */
function runDeps(args: string[], stubs: Stubs = {}): { status: number | null; err: string; apt: string[] } {
  const bin = tempDir('lisod-deps-bin-');
  const log = path.join(bin, 'apt.log');
  const stub = (name: string, body: string): void => fs.writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  for (const tool of kTools) fs.symlinkSync(spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim(), path.join(bin, tool));
  stub('id', `echo ${stubs.uid ?? 0}`);
  if (stubs.sudo) stub('sudo', `echo "sudo $*" >> ${log}; exec "$@"`);
  if (stubs.dpkg !== false) {
    const installed = (stubs.installed ?? []).map((p) => `installed:${p} `).join('');
    stub('dpkg-query', `printf '%s' '${installed}'`);
    const fail = stubs.aptFails ?? 'never';
    stub('apt-get', `echo "apt-get $*" >> ${log}
case "$1" in update) exit 0 ;; esac
[ ${fail === 'always' ? 1 : 0} = 1 ] && exit 100
if [ ${fail === 'once' ? 1 : 0} = 1 ] && [ ! -e ${bin}/failed ]; then : > ${bin}/failed; exit 100; fi
exit 0`);
  }
  const r = spawnSync('/bin/sh', [kScript, ...args], {
    encoding: 'utf8',
    env: { PATH: bin, LISOD_OS_RELEASE: '/nonexistent', ...stubs.env },
  });
  const apt = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').trim().split('\n') : [];
  return { status: r.status, err: r.stderr, apt };
}

// `run` includes what building the addon needs: npm start from a checkout builds it.
const kRun = ['openssl', 'ca-certificates', 'python3', 'python3-flask', 'g++', 'make', 'libnghttp2-dev', 'libbrotli-dev'];
const kAllButFlask = kRun.filter((p) => p !== 'python3-flask');
const kTest = [...kRun, 'chromium', 'libnss3-tools', 'python3-cryptography', 'curl', 'systemd', 'logrotate', 'util-linux',
  'php-fpm', 'php-cgi', 'python3-h2', 'nghttp2-client', 'clang', 'libclang-rt-14-dev', 'libssl-dev', 'libuv1-dev', 'zlib1g-dev'];
const kBench = ['wrk', 'nginx', 'lighttpd', 'lighttpd-mod-openssl', 'lighttpd-mod-deflate']; // nghttp2-client (h2load) is in kTest
const kInstall = 'apt-get install -y -q --no-install-recommends';

test('everything present: silent, exit 0, apt never called', (t) => {
  for (const group of ['run', 'test', 'bench', 'all']) {
    const r = runDeps([group], { installed: [...kTest, ...kBench] });
    t.deepEqual([r.status, r.err, r.apt], [0, '', []], group);
  }
});

test('installs exactly what is missing, says what and why; the groups nest', (t) => {
  const r = runDeps(['run'], { installed: kAllButFlask });
  t.is(r.status, 0, r.err);
  t.deepEqual(r.apt, [`${kInstall} python3-flask`]);
  t.regex(r.err, /^system-deps: installing missing Debian packages for 'run': python3-flask$/m);
  t.regex(r.err, /^system-deps: why: .*python3-flask: Flaskr, the CGI app at \/cgi\//m);

  const all = runDeps(['test', '--dry-run']);
  t.deepEqual(all.apt, [`apt-get install -s -y --no-install-recommends ${kTest.join(' ')}`]);
  const bench = runDeps(['bench', '--dry-run'], { installed: kTest });
  t.deepEqual(bench.apt, [`apt-get install -s -y --no-install-recommends ${kBench.join(' ')}`]);
  t.regex(bench.err, /would install for 'bench': wrk nginx/);
});

test('not root: through sudo; without sudo it prints the command and exits 1', (t) => {
  const viaSudo = runDeps(['run'], { installed: kAllButFlask, uid: 1000, sudo: true });
  t.is(viaSudo.status, 0, viaSudo.err);
  t.deepEqual(viaSudo.apt, [`sudo ${kInstall} python3-flask`, `${kInstall} python3-flask`]);

  const noSudo = runDeps(['run'], { installed: kAllButFlask, uid: 1000 });
  t.is(noSudo.status, 1);
  t.deepEqual(noSudo.apt, []);
  t.regex(noSudo.err, /not root and no sudo: as root run {3}apt-get install -y python3-flask/);
});

test('a fresh machine without package lists: one apt-get update, then the install again; a failure is exit 1 with advice', (t) => {
  const once = runDeps(['run'], { aptFails: 'once' });
  t.is(once.status, 0, once.err);
  t.deepEqual(once.apt, [`${kInstall} ${kRun.join(' ')}`, 'apt-get update -q', `${kInstall} ${kRun.join(' ')}`]);

  const never = runDeps(['run'], { aptFails: 'always' });
  t.is(never.status, 1);
  t.regex(never.err, /could not install: openssl ca-certificates python3 python3-flask g\+\+ make libnghttp2-dev libbrotli-dev\n.*LISOD_SKIP_SYSTEM_DEPS=1/);
});

test('other systems, Ubuntu\'s chromium snap, the opt-out and a bad group', (t) => {
  const other = runDeps(['test'], { dpkg: false });
  t.is(other.status, 0);
  t.regex(other.err, /not a Debian\/Ubuntu system; install the equivalents of these packages yourself:\n.*python3-flask .*chromium/);

  const release = path.join(tempDir('lisod-deps-os-'), 'os-release');
  fs.writeFileSync(release, 'NAME="Ubuntu"\nID=ubuntu\n');
  const ubuntu = runDeps(['test'], { installed: kTest.filter((p) => p !== 'chromium'), env: { LISOD_OS_RELEASE: release } });
  t.is(ubuntu.status, 0, ubuntu.err);
  t.deepEqual(ubuntu.apt, []); // the snap shim is not installed
  t.regex(ubuntu.err, /chromium package is a snap shim[\s\S]*LISOD_CHROMIUM=/);

  t.deepEqual(runDeps(['all'], { env: { LISOD_SKIP_SYSTEM_DEPS: '1' } }), { status: 0, err: '', apt: [] });
  const bad = runDeps(['everything']);
  t.is(bad.status, 2);
  t.regex(bad.err, /^usage: sh scripts\/system-deps.sh \[run\|build\|test\|bench\|all\]/);
});

test('only the README commands and CI call it: never an npm install lifecycle script', (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.regex(pkg.scripts.start!, /^sh scripts\/system-deps\.sh run && /);
  t.regex(pkg.scripts.test!, /^sh scripts\/system-deps\.sh test && /);
  for (const hook of ['preinstall', 'install', 'postinstall', 'prepare', 'prepack', 'postpack']) {
    t.false((pkg.scripts[hook] ?? '').includes('system-deps') || (pkg.scripts[hook] ?? '').includes('apt'), hook);
  }
  const ci = fs.readFileSync(path.join(repoRoot, '.ci', 'run'), 'utf8');
  t.regex(ci, /^sh scripts\/system-deps\.sh test/m);
  t.false(/apt-get install/.test(ci), '.ci/run keeps no second package list');
});
