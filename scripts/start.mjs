#!/usr/bin/env node
// `npm start`: builds what is missing (addon, dist/), creates var/ and a development CA +
// certificate, checks Flask, then runs lisod in the foreground with lisod.conf.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const at = (...parts) => path.join(root, ...parts);
const say = (msg) => console.error(`start: ${msg}`);

function die(msg) {
  say(msg);
  process.exit(1);
}

/** Runs a command with inherited stdio; returns its exit status (null if it could not start). */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...options });
  return r.error ? null : r.status;
}

// 1. The native addon: a prebuild for this platform or a local build.
function ensureAddon() {
  const prebuilt = fs.existsSync(at('prebuilds', `${process.platform}-${process.arch}`));
  if (prebuilt || fs.existsSync(at('build', 'Release', 'lisod.node'))) return;
  say('building the native addon (npx node-gyp rebuild)');
  const env = { ...process.env };
  // Build offline against the installed Node headers instead of downloading them.
  if (!env.npm_config_nodedir && fs.existsSync('/usr/include/node/node.h')) env.npm_config_nodedir = '/usr';
  if (run('npx', ['node-gyp', 'rebuild'], { env }) !== 0) {
    die('building the addon failed; on Debian install build-essential and python3, then retry');
  }
}

// 2. dist/: compile TypeScript when a source is newer than its output (or has none).
function ensureDist() {
  const stale = fs.readdirSync(at('src'), { recursive: true })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .some((f) => {
      const out = at('dist', f.replace(/\.ts$/, '.js'));
      return !fs.existsSync(out) || fs.statSync(at('src', f)).mtimeMs > fs.statSync(out).mtimeMs;
    });
  if (!stale) return;
  say('compiling TypeScript (tsc)');
  if (run(process.execPath, [at('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']) !== 0) {
    die('tsc failed');
  }
}

// 3. A development CA and a server certificate for localhost, 127.0.0.1 and ::1, made by the
//    same code as `lisod pki` (dist/pki/ca.js: ECDSA P-256).
async function ensureCertificate() {
  const dir = at('certs');
  const key = path.join(dir, 'dev-key.pem');
  const cert = path.join(dir, 'dev-cert.pem');
  const caKey = path.join(dir, 'dev-ca-key.pem');
  const ca = path.join(dir, 'dev-ca.pem');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });

  const expiring = (file) => {
    try {
      return Date.parse(new crypto.X509Certificate(fs.readFileSync(file)).validTo) < Date.now() + 86400_000;
    } catch {
      return true;
    }
  };
  if (fs.existsSync(key) && fs.existsSync(cert)) {
    // Someone else's certificate (no dev CA key here) is left alone; ours is renewed.
    if (!fs.existsSync(caKey) || !expiring(cert)) return;
    say('the development certificate expires within a day; issuing a new one');
  }

  const { createCa, importSigningKey, issueLeaf } = await import(pathToFileURL(at('dist', 'pki', 'ca.js')).href);
  const write = (file, text, mode) => {
    fs.writeFileSync(file, text, { mode });
    fs.chmodSync(file, mode);
  };
  if (!fs.existsSync(ca) || !fs.existsSync(caKey) || expiring(ca)) {
    say('creating a development CA in certs/dev-ca.pem');
    const created = await createCa({ cn: `lisod development CA (${os.hostname()})`, days: 3650, pathLength: 0 });
    write(caKey, created.key, 0o600);
    write(ca, created.cert, 0o644);
  }

  say('issuing certs/dev-cert.pem for localhost, 127.0.0.1 and ::1');
  const host = os.hostname();
  const sans = ['localhost', '127.0.0.1', '::1'];
  if (/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(host) && host !== 'localhost') sans.push(host);
  const signer = { cert: fs.readFileSync(ca, 'utf8'), key: await importSigningKey(fs.readFileSync(caKey, 'utf8')) };
  const leaf = await issueLeaf(signer, { kind: 'server', subject: [['CN', 'localhost']], sans, days: 397 });
  write(key, leaf.key, 0o600);
  write(cert, leaf.cert, 0o644);
  say(`to trust https://localhost:8443/ in a browser, import ${ca} as a certificate authority`);
}

// 4. Flask for the Flaskr CGI app (Debian's python3-flask, used by /usr/bin/python3).
function ensureFlask() {
  const hasFlask = () => spawnSync('/usr/bin/python3', ['-c', 'import flask'], { stdio: 'ignore' }).status === 0;
  if (hasFlask()) return;
  const canApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (process.getuid?.() === 0 && canApt) {
    say('Flask is missing; installing python3-flask with apt-get');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const install = () => run('apt-get', ['install', '-y', 'python3-flask'], { env }) === 0;
    if (install() || (run('apt-get', ['update'], { env }) === 0 && install())) return;
    say('could not install python3-flask; static pages work, /cgi/ will show an error page');
    return;
  }
  say('Flask is missing, so Flaskr at /cgi/ will show an error page. To install it, run:');
  say('  sudo apt-get install python3-flask');
}

ensureAddon();
ensureDist();
fs.mkdirSync(at('var'), { recursive: true });
await ensureCertificate();
ensureFlask();

// 5. lisod itself, in the foreground; signals are passed on and its exit status returned.
const child = spawn(process.execPath, [at('dist', 'main.js'), '--config', 'lisod.conf', '--foreground', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
const forward = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward);
child.on('error', (e) => die(`cannot start lisod: ${e.message}`));
child.on('exit', (code, signal) => {
  if (signal === null) process.exit(code ?? 1);
  process.removeAllListeners(signal);
  process.kill(process.pid, signal); // die the same way lisod did
  process.exit(128 + (os.constants.signals[signal] ?? 0));
});
