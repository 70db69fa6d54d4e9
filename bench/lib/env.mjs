// Checks that the external tools exist (the harness installs nothing) and collects the
// versions and machine facts that go at the top of RESULTS.md.
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';

/** Tool → Debian package(s) that provide it. */
const TOOLS = {
  wrk: { bin: 'wrk', packages: ['wrk'] },
  h2load: { bin: 'h2load', packages: ['nghttp2-client'] },
  openssl: { bin: 'openssl', packages: ['openssl'] },
  taskset: { bin: 'taskset', packages: ['util-linux'] },
  nginx: { bin: 'nginx', packages: ['nginx'] },
  lighttpd: { bin: 'lighttpd', packages: ['lighttpd', 'lighttpd-mod-openssl'] },
  python3: { bin: '/usr/bin/python3', packages: ['python3', 'python3-flask'] },
};

/** Finds an executable on PATH (or checks an absolute path). @returns {string|null} */
export function which(bin) {
  const dirs = bin.includes('/') ? [''] : (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  for (const d of dirs) {
    const p = d ? `${d}/${bin}` : bin;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // keep looking
    }
  }
  return null;
}

/**
 * Which tools are needed for the chosen servers and which are missing.
 * lighttpd also needs its mod_openssl (a separate Debian package).
 * @param {string[]} servers
 * @returns {{paths: Record<string,string>, missing: string[], packages: string[]}}
 */
export function checkTools(servers) {
  const needed = ['wrk', 'h2load', 'openssl', 'taskset', 'python3'];
  if (servers.includes('nginx')) needed.push('nginx');
  if (servers.includes('lighttpd')) needed.push('lighttpd');
  /** @type {Record<string,string>} */
  const paths = {};
  const missing = [];
  const packages = new Set();
  for (const t of needed) {
    const p = which(TOOLS[t].bin);
    if (p) paths[t] = p;
    else {
      missing.push(t);
      TOOLS[t].packages.forEach((x) => packages.add(x));
    }
  }
  if (paths.lighttpd && !lighttpdModDir()) {
    missing.push('lighttpd mod_openssl');
    packages.add('lighttpd-mod-openssl');
  }
  if (paths.lighttpd && !fs.existsSync(`${lighttpdModDir() ?? '/usr/lib/lighttpd'}/mod_deflate.so`)) {
    missing.push('lighttpd mod_deflate');
    packages.add('lighttpd-mod-deflate');
  }
  return { paths, missing, packages: [...packages] };
}

/** Directory holding lighttpd's mod_openssl.so, or null. */
export function lighttpdModDir() {
  for (const d of ['/usr/lib/lighttpd', '/usr/lib64/lighttpd', '/usr/local/lib/lighttpd']) {
    if (fs.existsSync(`${d}/mod_openssl.so`)) return d;
  }
  return null;
}

function firstLine(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return text ? text.split('\n')[0].trim() : 'unavailable';
}

/**
 * Versions and machine facts.
 * @param {string} repo the lisod repository (for the commit hash)
 */
export function collectEnvironment(repo) {
  const git = (args) => spawnSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  const head = git(['rev-parse', '--short=12', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--untracked-files=no']).stdout?.trim();
  const commit = head.status === 0
    ? `${head.stdout.trim()}${dirty ? ' (uncommitted changes)' : ''}`
    : 'no commit yet (working tree)';
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    commit,
    node: process.version,
    nodeOpenssl: process.versions.openssl,
    nginx: firstLine('nginx', ['-v']),
    lighttpd: firstLine('lighttpd', ['-v']),
    openssl: firstLine('openssl', ['version']),
    wrk: firstLine('wrk', ['-v']).replace(/\s+Copyright.*/, ''),
    h2load: firstLine('h2load', ['--version']),
    python: firstLine('/usr/bin/python3', ['--version']),
    kernel: `${os.type()} ${os.release()}`,
    cpu: `${cpus[0]?.model ?? 'unknown'} × ${cpus.length}`,
    loadavg: fs.readFileSync('/proc/loadavg', 'latin1').trim(),
  };
}
