// scripts/build-addon.mjs, npm's install step: quiet when an addon loads, two lines for a
// build (no gyp spawn arguments), node-gyp's whole output plus what to install when it fails.
// The builds use a one-file stand-in addon in a staged copy, so they take seconds.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

const kBuilder = path.join(repoRoot, 'scripts', 'build-addon.mjs');

/** A package dir with scripts/build-addon.mjs, a one-file binding.gyp and the checkout's modules. */
function stage(source: string): string {
  const dir = tempDir('lisod-install-');
  fs.mkdirSync(path.join(dir, 'scripts'));
  fs.mkdirSync(path.join(dir, 'native'));
  fs.copyFileSync(kBuilder, path.join(dir, 'scripts', 'build-addon.mjs'));
  fs.copyFileSync(path.join(repoRoot, 'package.json'), path.join(dir, 'package.json'));
  fs.symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  fs.writeFileSync(path.join(dir, 'native', 'tiny.cc'), source);
  fs.writeFileSync(path.join(dir, 'binding.gyp'), JSON.stringify({
    targets: [{ target_name: 'lisod', sources: ['native/tiny.cc'] }],
  }));
  return dir;
}

const kTiny = `#include <node_api.h>
static napi_value Init(napi_env env, napi_value exports) { return exports; }
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
`;

function build(dir: string, args: string[], env: NodeJS.ProcessEnv = process.env): { status: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [path.join(dir, 'scripts', 'build-addon.mjs'), ...args], {
    cwd: dir, env: { ...env, npm_config_build_from_source: '' }, encoding: 'utf8', timeout: 120_000,
  });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

test('an addon that loads is kept: one line, no build', (t) => {
  const r = build(repoRoot, []);
  t.is(r.status, 0, r.err);
  t.is(r.out, '');
  t.regex(r.err, /^lisod: native addon (build\/Release|prebuilds\/linux-x64)\/lisod\.node loads; not building it \(npm run build rebuilds it\)\n$/);
});

test('a build prints two lines, not gyp\'s spawn arguments', (t) => {
  t.timeout(120_000);
  const dir = stage(kTiny);
  const r = build(dir, ['--rebuild']);
  t.is(r.status, 0, r.err);
  t.is(r.out, '');
  const lines = r.err.trimEnd().split('\n');
  t.is(lines.length, 2, r.err);
  t.is(lines[0], 'lisod: building the native addon with node-gyp (1 C++ files; a minute or two)');
  t.regex(lines[1]!, /^lisod: built build\/Release\/lisod\.node in \d+ s$/);
  t.true(fs.existsSync(path.join(dir, 'build', 'Release', 'lisod.node')));
  // Without --rebuild the result is now kept.
  t.regex(build(dir, []).err, /^lisod: native addon build\/Release\/lisod\.node loads; not building it/);
});

test('a failed build shows node-gyp\'s whole output and what to install', (t) => {
  t.timeout(120_000);
  const dir = stage(`${kTiny}#error lisod test: this addon does not compile\n`);
  const r = build(dir, ['--rebuild']);
  t.not(r.status, 0);
  t.regex(r.err, /^lisod: building the native addon with node-gyp/);
  t.regex(r.err, /#error lisod test: this addon does not compile/); // the compiler's own words
  t.regex(r.err, /gyp (ERR!|info)/);
  t.regex(r.err, /lisod: building the native addon failed \(node-gyp output above\)\. It needs a C\+\+ compiler, make, python3\n.*\nlisod: {3}Debian\/Ubuntu: sudo apt-get install g\+\+ make python3 libnghttp2-dev libbrotli-dev/);
});
