// Builds and runs the libFuzzer target test/native/fuzz_parser.cc (clang,
// -fsanitize=fuzzer,address,undefined). Usage: node scripts/fuzz.mjs [seconds=60]
// [extra libFuzzer flags…]. The growing corpus lives in test/native/build/fuzz-corpus
// (seeded from test/native/fuzz_seeds); crash inputs land in test/native/build/fuzz-artifacts.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'test', 'native');
const outDir = join(testDir, 'build', 'fuzz');
const exe = join(outDir, 'fuzz_parser');
const corpus = join(testDir, 'build', 'fuzz-corpus');
const artifacts = join(testDir, 'build', 'fuzz-artifacts');
const seeds = join(testDir, 'fuzz_seeds');

const sources = [
  join(testDir, 'fuzz_parser.cc'),
  ...['http_parser', 'http_request', 'chunked', 'static_file', 'http_date', 'mime'].map((f) =>
    join(root, 'native', `${f}.cc`),
  ),
];
const headers = ['http_parser', 'http_request', 'chunked', 'static_file'].map((f) =>
  join(root, 'native', `${f}.h`),
);

const [secondsArg, ...extra] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 60);
if (!Number.isFinite(seconds) || seconds <= 0) {
  console.error('usage: node scripts/fuzz.mjs [seconds] [libFuzzer flags…]');
  process.exit(2);
}

const clang = ['clang++', 'clang++-14'].find(
  (c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0,
);
if (!clang) {
  console.error('fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)');
  process.exit(1);
}

for (const d of [outDir, corpus, artifacts]) mkdirSync(d, { recursive: true });

const newest = Math.max(...[...sources, ...headers].map((f) => statSync(f).mtimeMs));
if (!existsSync(exe) || statSync(exe).mtimeMs < newest) {
  console.log(`fuzz: building ${exe}`);
  const build = spawnSync(
    clang,
    [
      '-std=c++20', '-O1', '-g', '-fno-omit-frame-pointer',
      '-fsanitize=fuzzer,address,undefined', '-fno-sanitize-recover=undefined',
      '-Wall', '-Wextra', ...sources, '-o', exe,
    ],
    { stdio: 'inherit' },
  );
  if (build.status !== 0) {
    console.error('fuzz: build failed');
    process.exit(1);
  }
}

const args = [
  `-max_total_time=${seconds}`,
  '-max_len=4096',
  '-timeout=10',
  '-print_final_stats=1',
  `-dict=${join(testDir, 'fuzz_http.dict')}`,
  `-artifact_prefix=${artifacts}/`,
  ...extra,
  corpus,
  seeds,
];
console.log(`fuzz: ${exe} ${args.join(' ')}`);
const run = spawnSync(exe, args, {
  stdio: 'inherit',
  env: { ...process.env, UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1' },
});
process.exit(run.status ?? 1);
