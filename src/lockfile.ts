// Single-instance lock file: an flock held through the addon for the daemon's whole life,
// the daemon's PID on its first line. The kernel drops the lock when the process dies.
import fs from 'node:fs';
import { native } from './native.js';

/** A held lock. The file is never unlinked: unlinking a locked file lets two daemons
 *  each lock a different inode under the same name. */
export interface HeldLock {
  readonly path: string;
  readonly fd: number;
  /** Empties the file (no PID left behind) and drops the lock. Idempotent. */
  release(): void;
}

/** Error thrown by acquireLock when another process holds the lock. */
export interface LockedError extends Error {
  code: 'ELOCKED';
  path: string;
  pid?: number; // PID read from the file, when it had one
}

export function isLockedError(e: unknown): e is LockedError {
  return e instanceof Error && (e as { code?: unknown }).code === 'ELOCKED';
}

/**
 * Takes the lock on `path` (created mode 0640 when missing) and writes `pid` as its first
 * line. Throws a LockedError when another process holds it, or an errno Error naming the
 * path (EACCES, ENOENT of the directory …).
 */
export function acquireLock(path: string, pid: number = process.pid): HeldLock {
  const fd = native.lockFile(path, `${pid}\n`);
  let held = true;
  return {
    path,
    fd,
    release(): void {
      if (!held) return;
      held = false;
      try {
        fs.ftruncateSync(fd, 0);
      } finally {
        native.unlockFile(fd);
      }
    },
  };
}

/** The PID on the first line of the lock file, or null when it is missing or has none. */
export function readLockPid(path: string): number | null {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const first = text.split('\n', 1)[0].trim();
  if (!/^[1-9][0-9]{0,9}$/.test(first)) return null;
  return Number(first);
}

/** Whether some process holds the lock on `path` (false when the file does not exist). */
export function isLockHeld(path: string): boolean {
  return native.isLocked(path);
}
