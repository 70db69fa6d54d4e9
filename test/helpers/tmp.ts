// Temporary directories for one test process, removed when that process exits (or, with
// testTempDir, as soon as the test that made them ends).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const dirs = new Set<string>();
process.on('exit', () => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** mkdtemp under the OS temp dir, mode 0755 (an unprivileged lisod may need to read it). */
export function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(d, 0o755);
  dirs.add(d);
  return d;
}

/** A tempDir that is removed when the test `t` ends (its teardown), not only at exit. */
export function testTempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const d = tempDir(prefix);
  t.teardown(() => {
    fs.rmSync(d, { recursive: true, force: true });
    dirs.delete(d);
  });
  return d;
}
