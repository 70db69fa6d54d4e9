// Builds and runs the libFuzzer targets in test/native (clang, -fsanitize=fuzzer,address,
// undefined): parser (pure request parsing), connection (the connection state machine over
// a fake transport), tls (lisod's TLS context and transport fed client bytes), cgi_output
// (the CGI response head parser), h2 (the HTTP/2 session fed arbitrary frames), encoding
// (Accept-Encoding, entity-tag lists, preconditions), fastcgi (the FastCGI record decoder).
//
//   node scripts/fuzz.mjs [all|TARGET…] [SECONDS=60] [--quiet] [libFuzzer flags…]
//
// Each target runs SECONDS. The growing corpus lives in test/native/build/fuzz-corpus/TARGET
// (seeded from test/native/fuzz_seeds/TARGET); crash inputs land in
// test/native/build/fuzz-artifacts/TARGET (replay: the printed command plus the file).
// --quiet prints one summary line per target (and the fuzzer's tail on failure): npm test
// uses it. Exits non-zero when any target finds a crash, leak, timeout or failed property.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testDir = join(root, 'test', 'native');
const nativeDir = join(root, 'native');
const buildDir = join(testDir, 'build', 'fuzz');
const objDir = join(buildDir, 'obj');

const native = (...names) => names.map((n) => join(nativeDir, `${n}.cc`));
const pure = ['http_parser', 'http_request', 'chunked', 'static_file', 'http_date', 'mime'];
const connection = [...pure, 'connection', 'connection_app', 'connection_static', 'connection_h2', 'h2_session', 'h2_mem', 'h2_head', 'h2_app', 'response_plan', 'server', 'inner_loop', 'transport', 'tls_socket_bio',
  'tls_context', 'response', 'file_cache', 'static_coding', 'conditional', 'accept_encoding', 'compress_cache', 'access_rules', 'access_log', 'log_writer',
  'tls_identity', 'tls_client_verify'];
const targets = {
  parser: { sources: [join(testDir, 'fuzz_parser.cc'), ...native(...pure)], maxLen: 4096, dict: 'fuzz_http.dict' },
  connection: {
    sources: [join(testDir, 'fuzz_connection.cc'), join(testDir, 'fuzz_bed.cc'), ...native(...connection)],
    libs: ['-luv', '-lssl', '-lcrypto', '-lnghttp2', '-lz', '-lbrotlienc'], maxLen: 8192, dict: 'fuzz_http.dict',
  },
  tls: {
    sources: [join(testDir, 'fuzz_tls.cc'), join(testDir, 'fuzz_bed.cc'), ...native(...connection)],
    libs: ['-luv', '-lssl', '-lcrypto', '-lnghttp2', '-lz', '-lbrotlienc'], maxLen: 8192,
    // OpenSSL's caches make nearly every input allocate more than it frees, and the
    // per-input LeakSanitizer scan that triggers costs 7x the rate: leaks are checked
    // once, at exit, instead (the connection target checks the same code per input).
    perInputLeaks: false,
  },
  h2: {
    // The system libnghttp2 stands in for Node's copy (same API; Debian's headers).
    sources: [join(testDir, 'fuzz_h2.cc'), join(testDir, 'fuzz_bed.cc'), ...native(...connection)],
    libs: ['-luv', '-lssl', '-lcrypto', '-lnghttp2', '-lz', '-lbrotlienc'], maxLen: 16384,
  },
  encoding: {
    sources: [join(testDir, 'fuzz_encoding.cc'), ...native('accept_encoding', 'conditional', 'http_request', 'http_date', 'http_parser')],
    maxLen: 1024,
  },
  cgi_output: {
    sources: [join(testDir, 'fuzz_cgi_output.cc'), ...native('cgi_output', 'nph_framing', 'http_parser', 'http_request')], maxLen: 4096,
  },
  fastcgi: { sources: [join(testDir, 'fuzz_fastcgi.cc'), ...native('fastcgi_record')], maxLen: 4096 },
};

function usage(message) {
  console.error(`fuzz: ${message}\nusage: node scripts/fuzz.mjs [all|${Object.keys(targets).join('|')}…] [seconds] [--quiet] [libFuzzer flags…]`);
  process.exit(2);
}

const names = [];
let seconds = 60;
let quiet = false;
const extra = [];
for (const arg of process.argv.slice(2)) {
  if (arg === 'all') names.push(...Object.keys(targets));
  else if (arg in targets) names.push(arg);
  else if (/^\d+$/.test(arg)) seconds = Number(arg);
  else if (arg === '--quiet') quiet = true;
  else if (arg.startsWith('-')) extra.push(arg);
  else usage(`unknown target '${arg}'`);
}
if (names.length === 0) names.push(...Object.keys(targets));
if (!(seconds > 0)) usage('seconds must be a positive number');

const clang = ['clang++', 'clang++-14'].find((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
if (!clang) {
  console.error('fuzz: clang++ not found; install clang and libclang-rt-14-dev (and libssl-dev libuv1-dev)');
  process.exit(1);
}

const cflags = ['-std=c++20', '-O1', '-g', '-fno-omit-frame-pointer', '-fsanitize=address,undefined',
  '-fno-sanitize-recover=undefined', '-Wall', '-Wextra', '-Wno-unused-parameter'];
const headers = [nativeDir, testDir].flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.h')).map((f) => join(d, f)));
const newestHeader = Math.max(...headers.map((f) => statSync(f).mtimeMs));
const mtime = (f) => (existsSync(f) ? statSync(f).mtimeMs : -1);

function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: 'inherit' });
    child.on('close', (code) => resolve(code === 0));
  });
}

/** Compiles what changed (two at a time: the machine has few cores) and links the target. */
async function build(name) {
  const t = targets[name];
  const exe = join(buildDir, `fuzz_${name}`);
  const objects = t.sources.map((src) => join(objDir, `${src.startsWith(testDir) ? 'test_' : ''}${basename(src, '.cc')}.o`));
  mkdirSync(objDir, { recursive: true });
  const stale = t.sources.filter((src, i) => mtime(objects[i]) < Math.max(mtime(src), newestHeader));
  for (let i = 0; i < stale.length; i += 2) {
    const batch = stale.slice(i, i + 2).map((src) => {
      const obj = objects[t.sources.indexOf(src)];
      if (!quiet) console.log(`fuzz: compiling ${basename(src)}`);
      // The object is dated when its compile started: a source edited meanwhile is newer.
      const started = new Date();
      return run(clang, [...cflags, '-fsanitize=fuzzer-no-link', '-c', src, '-o', obj]).then((ok) => {
        if (ok) utimesSync(obj, started, started);
        return ok;
      });
    });
    if (!(await Promise.all(batch)).every(Boolean)) return null;
  }
  if (mtime(exe) < Math.max(...objects.map(mtime))) {
    if (!quiet) console.log(`fuzz: linking ${exe}`);
    if (!(await run(clang, [...cflags, '-fsanitize=fuzzer', ...objects, ...(t.libs ?? []), '-o', exe]))) return null;
  }
  return exe;
}

/** Runs one target; resolves to { ok, output } (output only kept when quiet). */
function fuzz(name, exe, detectLeaks) {
  const t = targets[name];
  const corpus = join(testDir, 'build', 'fuzz-corpus', name);
  const artifacts = join(testDir, 'build', 'fuzz-artifacts', name);
  const seeds = join(testDir, 'fuzz_seeds', name);
  for (const d of [corpus, artifacts]) mkdirSync(d, { recursive: true });
  const args = [
    `-max_total_time=${seconds}`, `-max_len=${t.maxLen}`, '-timeout=10', '-print_final_stats=1',
    `-detect_leaks=${detectLeaks && t.perInputLeaks !== false ? 1 : 0}`, `-artifact_prefix=${artifacts}/`,
    ...(t.dict ? [`-dict=${join(testDir, t.dict)}`] : []), ...extra, corpus, ...(existsSync(seeds) ? [seeds] : []),
  ];
  if (!quiet) console.log(`fuzz: ${exe} ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(exe, args, {
      stdio: ['ignore', quiet ? 'pipe' : 'inherit', quiet ? 'pipe' : 'pipe'],
      env: {
        ...process.env,
        ASAN_OPTIONS: `detect_leaks=${detectLeaks ? 1 : 0}`,
        UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
      },
    });
    let output = '';
    const keep = (d) => {
      output = (output + d).slice(-200_000);
      if (!quiet) process.stderr.write(d);
    };
    child.stdout?.on('data', keep);
    child.stderr.on('data', keep);
    child.on('close', (code) => resolve({ ok: code === 0, output }));
  });
}

function summary(name, output) {
  const stat = (key) => output.match(new RegExp(`stat::${key}:\\s+(\\d+)`))?.[1] ?? '?';
  const done = [...output.matchAll(/#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+)/g)].pop();
  const cov = done ? `cov ${done[2]}, ft ${done[3]}` : 'cov ?, ft ?';
  return `fuzz ${name}: ${seconds} s, ${stat('number_of_executed_units')} runs, ${cov}, corpus ${stat('new_units_added')} new`;
}

let failed = 0;
for (const name of names) {
  const exe = await build(name);
  if (!exe) {
    console.error(`fuzz ${name}: build failed`);
    failed++;
    continue;
  }
  let result = await fuzz(name, exe, true);
  // LeakSanitizer cannot run under ptrace (some CI sandboxes); then run without it.
  if (!result.ok && /LeakSanitizer has encountered a fatal error/.test(result.output)) {
    console.error(`fuzz ${name}: LeakSanitizer unavailable here (ptrace?); re-running without leak checks`);
    result = await fuzz(name, exe, false);
  }
  if (result.ok) {
    console.log(summary(name, result.output));
  } else {
    failed++;
    if (quiet) process.stderr.write(result.output.split('\n').slice(-80).join('\n'));
    console.error(`fuzz ${name}: FAILED (crash inputs in test/native/build/fuzz-artifacts/${name}/)`);
  }
}
console.log(`fuzz: ${names.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
