// Builds the native unit tests (test/native/binding.gyp, ASan + UBSan) with the local
// node-gyp against /usr/include/node, runs them, and exits non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'test', 'native');
const nodeGyp = join(root, 'node_modules', '.bin', 'node-gyp');
const exe = join(testDir, 'build', 'Release', 'native_tests');

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: testDir, stdio: 'inherit', ...opts });
  if (r.error) {
    console.error(`native: cannot run ${cmd}: ${r.error.message}`);
    return 1;
  }
  return r.status ?? 1;
}

function fail(what) {
  console.error(`native: 0 passed, 1 failed (${what})`);
  process.exit(1);
}

if (!existsSync(nodeGyp)) fail('node_modules/.bin/node-gyp missing: run npm install');

// Configure only when needed so repeated runs rebuild incrementally.
const makefile = join(testDir, 'build', 'Makefile');
const gyp = join(testDir, 'binding.gyp');
const env = { ...process.env, npm_config_nodedir: '/usr' };
const quiet = ['--loglevel=warn', '--nodedir=/usr'];
if (!existsSync(makefile) || statSync(gyp).mtimeMs > statSync(makefile).mtimeMs) {
  if (run(nodeGyp, ['configure', ...quiet], { env }) !== 0) fail('node-gyp configure failed');
}
if (run(nodeGyp, ['build', ...quiet], { env }) !== 0) fail('node-gyp build failed');

// LeakSanitizer cannot run under ptrace (some CI sandboxes); then run without it.
function runTests(detectLeaks) {
  const r = spawnSync(exe, [], {
    cwd: testDir,
    encoding: 'utf8',
    env: {
      ...process.env,
      ASAN_OPTIONS: `detect_leaks=${detectLeaks ? 1 : 0}:abort_on_error=1:strict_string_checks=1`,
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  });
  if (r.error) fail(`cannot run ${exe}: ${r.error.message}`);
  return r;
}

let result = runTests(true);
if (result.status !== 0 && /LeakSanitizer has encountered a fatal error/.test(result.stderr)) {
  console.error('native: LeakSanitizer unavailable here (ptrace?); re-running without leak checks');
  result = runTests(false);
}
process.stdout.write(result.stdout);
process.stderr.write(result.stderr);
if (result.status !== 0) {
  // The executable prints its own summary; a sanitizer abort does not.
  if (!/^native: \d+ passed, \d+ failed$/m.test(result.stdout)) {
    const how = `status ${result.status}, signal ${result.signal}`;
    console.error(`native: 0 passed, 1 failed (test executable died: ${how})`);
  }
  process.exit(1);
}
