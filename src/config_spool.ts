// Top-level keys for buffered request bodies: spool_dir (where bodies above a small memory
// threshold go, as unnamed files) and spool_max_bytes (all buffered bodies together → 503 beyond).
import fs from 'node:fs';
import os from 'node:os';
import type { FileReader } from './config_reader.js';

export const kSpoolKeys = ['spool_dir', 'spool_max_bytes'] as const;
export const kDefaultSpoolMaxBytes = 1024 ** 3; // 1 GiB

export interface SpoolConfig {
  dir: string; // absolute; default os.tmpdir()
  maxBytes: number; // for the whole lisod: each of `workers` event loops gets an equal share
}

/** Reads one of kSpoolKeys from the top level of the file into the draft. */
export function readSpoolKey(r: FileReader, key: (typeof kSpoolKeys)[number], v: unknown): void {
  const kp = [key];
  if (key === 'spool_dir') r.set('spoolDir', kp, r.path(v, kp));
  else r.set('spoolMaxBytes', kp, r.integer(v, kp, 0, 'bytes'));
}

export function finishSpool(v: { spoolDir?: string; spoolMaxBytes?: number }): SpoolConfig {
  return { dir: v.spoolDir ?? os.tmpdir(), maxBytes: v.spoolMaxBytes ?? kDefaultSpoolMaxBytes };
}

/** Start-up check: spool_dir must be a directory lisod can create files in. Returns a problem or null. */
export function checkSpoolDir(dir: string): string | null {
  try {
    if (!fs.statSync(dir).isDirectory()) return `spool_dir '${dir}' is not a directory`;
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    return null;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return `spool_dir '${dir}': ${err.code === 'ENOENT' ? 'no such directory' : err.code === 'EACCES' ? 'not writable' : err.message}`;
  }
}
