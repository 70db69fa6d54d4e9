// The packed tarball: it carries dist/ and a prebuilt addon, installs into a temp prefix with
// no C++ compiler on PATH (only node, npm and sh), runs `lisod --version` and serves a page.
// The tarball is packed from a staged copy with this checkout's addon in prebuilds/ and
// --ignore-scripts, so the test does not rebuild the addon (npm pack's prepack does).
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { exchange1, get } from './helpers/client.js';
import { repoRoot } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

const kPkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string; files: string[] };
const kPrebuild = path.join('prebuilds', `${process.platform}-${process.arch}`, 'lisod.node'); // as prebuildify names it

/** PATH with node, npm and sh only: no g++, cc, c++, make or python3. */
function bareBin(): string {
  const bin = tempDir('lisod-pkg-bin-');
  const npm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(fs.realpathSync(npm), path.join(bin, 'npm'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  return bin;
}

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', timeout: 180_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` };
}

test('npm pack carries dist/ and prebuilds/; the tarball installs and serves with no compiler', async (t) => {
  t.timeout(240_000);
  // The addon lisod loads here: build/Release, or prebuilds/ after an npm pack (prebuildify
  // moves its build there).
  const addon = (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(repoRoot);

  // Stage: the package as a git checkout has it, plus dist/ and the addon as prebuildify names it.
  const stage = tempDir('lisod-pkg-src-');
  for (const entry of ['package.json', 'dist', 'native', 'binding.gyp', 'cgi-bin', 'www', 'lisod.conf', 'systemd', 'scripts', 'README.md', 'src']) {
    fs.cpSync(path.join(repoRoot, entry), path.join(stage, entry), { recursive: true, filter: (f) => !/__pycache__|instance/.test(f) });
  }
  fs.mkdirSync(path.dirname(path.join(stage, kPrebuild)), { recursive: true });
  fs.copyFileSync(addon, path.join(stage, kPrebuild));
  const bin = bareBin();
  const env = { PATH: bin, HOME: process.env.HOME ?? '/root' };
  t.not(spawnSync('sh', ['-c', 'command -v g++ || command -v c++ || command -v cc || command -v make'], { env }).status, 0, 'a compiler is on the bare PATH');

  const pack = run('npm', ['pack', '--ignore-scripts', '--silent'], { cwd: stage, env });
  t.is(pack.status, 0, pack.out);
  const tarball = path.join(stage, `lisod-${kPkg.version}.tgz`);
  const listing = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).stdout.split('\n');
  for (const want of ['dist/main.js', 'dist/native.js', kPrebuild, 'cgi-bin/flaskr.cgi', 'cgi-bin/flaskr/__init__.py', 'lisod.conf', 'scripts/build-addon.mjs']) {
    t.true(listing.includes(`package/${want}`), `${want} is in the tarball`);
  }
  t.false(listing.some((f) => /^package\/(src|test|node_modules|build)\//.test(f)), 'no sources, tests, modules or build tree');

  // Install it (dependencies from npm's cache when it has them) with no compiler around.
  const prefix = tempDir('lisod-pkg-prefix-');
  const install = run('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', '--fetch-retries=1', '--fetch-timeout=30000', tarball], { cwd: prefix, env });
  t.is(install.status, 0, install.out);
  const installed = path.join(prefix, 'node_modules', 'lisod');
  t.false(fs.existsSync(path.join(installed, 'build')), 'nothing was compiled');
  const lisod = path.join(prefix, 'node_modules', '.bin', 'lisod');
  const version = run(lisod, ['--version'], { cwd: prefix, env });
  t.deepEqual(version, { status: 0, out: `lisod ${kPkg.version}\n` });

  // Serve one page with the installed command.
  const www = tempDir('lisod-pkg-www-');
  fs.writeFileSync(path.join(www, 'index.html'), 'from the tarball\n');
  const conf = path.join(www, '..', `${path.basename(www)}.conf`);
  fs.writeFileSync(conf, `http_port = 0\nbind = ["127.0.0.1"]\nwww = "${www}"\ncgi = "${path.join(installed, 'cgi-bin', 'flaskr.cgi')}"\n`);
  t.teardown(() => fs.rmSync(conf, { force: true }));
  const proc = spawn(lisod, ['--config', conf, '--foreground'], { cwd: prefix, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line: ${out}`)), 15_000);
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /lisod: listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`lisod exited ${code}: ${out}`)); });
  });
  const res = await exchange1(get('/', 'Connection: close\r\n'), { port });
  t.is(res.status, 200);
  t.is(res.body.toString(), 'from the tarball\n');
  proc.kill('SIGTERM');
  t.is(await new Promise((r) => proc.on('exit', r)), 0);
});
