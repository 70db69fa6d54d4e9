// Running lisod (or a module of it) as `nobody` when the tests run as root. `nobody` must be
// able to read what it runs, which a checkout under a 0700 directory forbids (root's home on
// Debian, anything `mktemp -d` makes): then what it runs is staged, once per test process, in
// a world-readable temp dir. Where even that is impossible, tests skip with nobodySkipReason().
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './tmp.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export const runningAsRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** uid and gid of `nobody` as `id` reports them; null when there is no such user. */
export function nobodyIds(): { uid: number; gid: number } | null {
  const id = (flag: string): number | null => {
    const r = spawnSync('id', [flag, 'nobody'], { encoding: 'utf8' });
    return r.status === 0 ? Number(r.stdout.trim()) : null;
  };
  const uid = id('-u');
  const gid = id('-g');
  return uid === null || gid === null ? null : { uid, gid };
}

/** True when `nobody` can read `file` (every directory above it included). */
function nobodyCanRead(file: string, ids: { uid: number; gid: number }): boolean {
  return spawnSync('test', ['-r', file], { ...ids, stdio: 'ignore' }).status === 0;
}

/** Packages `name` needs at run time, itself included, as found in node_modules. */
function closure(names: string[], modules: string): string[] {
  const seen = new Set<string>();
  const visit = (name: string): void => {
    const dir = path.join(modules, name);
    if (seen.has(name) || !fs.existsSync(dir)) return; // absent optional dependency
    seen.add(name);
    const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep);
  };
  names.forEach(visit);
  return [...seen];
}

let staged: string | null = null;

/** A copy of the checkout's run-time files (dist/, src/, the addon, the npm packages lisod and
 *  tsx load) that `nobody` can read; the checkout itself when `nobody` can read it already. */
export function nobodyRoot(): string {
  const ids = nobodyIds();
  if (ids === null || nobodyCanRead(path.join(repoRoot, 'dist', 'main.js'), ids)) return repoRoot;
  if (staged !== null) return staged;
  const dir = tempDir('lisod-as-nobody-');
  const copy = (rel: string): void => fs.cpSync(path.join(repoRoot, rel), path.join(dir, rel), { recursive: true });
  for (const rel of ['package.json', 'dist', 'src', path.join('build', 'Release', 'lisod.node')]) copy(rel);
  const modules = path.join(repoRoot, 'node_modules');
  for (const name of closure(['smol-toml', 'node-gyp-build', 'tsx'], modules)) copy(path.join('node_modules', name));
  spawnSync('chmod', ['-R', 'a+rX', dir]);
  staged = dir;
  return dir;
}

/** `file` of the checkout as `nobody` sees it (in the staged copy when there is one). */
export function forNobody(file: string): string {
  const rel = path.relative(repoRoot, file);
  return rel.startsWith('..') ? file : path.join(nobodyRoot(), rel);
}

/** Why a test cannot run something as `nobody` here, or null when it can. */
export function nobodySkipReason(): string | null {
  if (!runningAsRoot) return 'needs root';
  if (nobodyIds() === null) return 'no user nobody on this machine';
  return null;
}
