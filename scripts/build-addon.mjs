#!/usr/bin/env node
// The native addon, quietly: keep an addon that loads (build/Release, or the prebuilt one in
// prebuilds/<platform>-<arch> that a packed tarball carries), else build it with node-gyp showing one progress line instead of
// gyp's spawn arguments; node-gyp's full output is printed only when the build fails.
//   node scripts/build-addon.mjs            npm's install step (an addon that loads, else build)
//   node scripts/build-addon.mjs --rebuild  always build from source (npm run build)
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));
const say = (msg) => process.stderr.write(`lisod: ${msg}\n`);

/** The addon node-gyp-build would load (build/Release, else prebuilds/<platform>-<arch>) when it
 *  loads in this Node; null when there is none or it does not load (then it is built). */
function loadableAddon() {
  let file;
  try {
    file = require('node-gyp-build').path(root);
  } catch {
    return null; // none for this platform
  }
  try {
    require(file);
    return path.relative(root, file);
  } catch (e) {
    say(`${path.relative(root, file)} does not load here (${e.message.split('\n')[0]}); building from source`);
    return null;
  }
}

/** The node-gyp to run: this package's devDependency, or the one npm bundles. */
function nodeGypCommand() {
  try {
    const pkg = require('node-gyp/package.json');
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin['node-gyp'];
    return [process.execPath, path.join(path.dirname(require.resolve('node-gyp/package.json')), bin)];
  } catch {
    const bundled = process.env.npm_config_node_gyp;
    return bundled ? [process.execPath, bundled] : ['node-gyp'];
  }
}

/** Runs `node-gyp rebuild`, printing "compiling k/n" progress; resolves with its exit status. */
export function buildAddon() {
  const sources = (fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8').match(/"native\/[^"]+\.cc"/g) ?? []).length;
  const env = { ...process.env };
  // Build offline against the installed Node headers instead of downloading them.
  if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  const [cmd, ...pre] = nodeGypCommand();
  const started = Date.now();
  const tty = process.stderr.isTTY;
  say(`building the native addon with node-gyp (${sources} C++ files; a minute or two)`);
  return new Promise((resolve) => {
    const child = spawn(cmd, [...pre, 'rebuild'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    let compiled = 0;
    const collect = (chunk) => {
      const text = chunk.toString();
      log += text;
      for (const m of text.matchAll(/CXX\(target\) \S+\/([^/\s]+)\.o/g)) {
        compiled++;
        if (tty) process.stderr.write(`\rlisod: compiling ${compiled}/${sources} ${m[1]}.cc\x1b[K`);
      }
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (e) => {
      say(`cannot run node-gyp: ${e.message}`);
      resolve(1);
    });
    child.on('close', (code) => {
      if (tty && compiled > 0) process.stderr.write('\n');
      if (code === 0) {
        say(`built build/Release/lisod.node in ${Math.round((Date.now() - started) / 1000)} s`);
      } else {
        process.stderr.write(log);
        say('building the native addon failed (node-gyp output above). It needs a C++ compiler, make, python3');
        say('and the nghttp2 and Brotli headers (the libraries are Node\'s own):');
        say(`  Debian/Ubuntu: sudo apt-get install ${kBuildPackages.join(' ')}   (or: sh scripts/system-deps.sh build)`);
      }
      resolve(code ?? 1);
    });
  });
}

/** Debian packages the build needs beyond Node's own headers (scripts/system-deps.sh, group build). */
const kBuildPackages = ['g++', 'make', 'python3', 'libnghttp2-dev', 'libbrotli-dev'];
/** Headers the addon includes that Node does not ship (its nghttp2 and Brotli are used, not linked). */
const kSystemHeaders = ['/usr/include/nghttp2/nghttp2.h', '/usr/include/brotli/encode.h'];

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rebuild = process.argv.includes('--rebuild') || process.env.npm_config_build_from_source === 'true';
  const installStep = process.argv.includes('--install');
  const existing = rebuild ? null : loadableAddon();
  const missing = kSystemHeaders.filter((h) => !fs.existsSync(h));
  if (existing !== null) {
    say(`native addon ${existing} loads; not building it (npm run build rebuilds it)`);
  } else if (installStep && missing.length > 0) {
    // A fresh checkout: `npm install` never installs system packages; `npm start` and `npm test`
    // run scripts/system-deps.sh first and then build the addon here.
    say(`not building the native addon yet: ${missing.join(', ')} missing (Debian: ${kBuildPackages.join(' ')});`);
    say('npm start and npm test install them (scripts/system-deps.sh) and build it');
  } else {
    process.exitCode = await buildAddon();
  }
}
