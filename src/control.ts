// `lisod stop|reload|status`: finds the daemon through its lock file (held flock + PID on
// the first line) and signals it. Exit codes follow the LSB init-script conventions.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { ConfigError, kDefaults, parseConfigText } from './config.js';
import { isLockHeld, readLockPid } from './lockfile.js';

export type ControlAction = 'stop' | 'reload' | 'status';

export interface ControlResult {
  /** LSB: 0 ok/running, 1 failed, 3 not running (status), 4 unknown/no permission,
   *  6 not configured (no usable configuration / lock file; set by the caller),
   *  7 not running (reload). `stop` of a stopped daemon is success (0). */
  code: number;
  message: string;
  /** Print on stderr rather than stdout. */
  error: boolean;
}

export interface ControlOptions {
  /** How long `stop` waits for the lock to be released (default 15 s; pass
   *  shutdown_grace + a margin). */
  stopTimeoutMs?: number;
  /** Poll period while waiting (default 100 ms). */
  pollMs?: number;
}

export interface ControlSettings {
  lockFile: string | null; // absolute
  graceMs: number; // shutdown_grace in ms
}

/**
 * Where `lisod … stop|reload|status` finds the daemon: the Liso <lock> argument, else
 * lock_file of the config file, and shutdown_grace. Only these keys are read, so a config
 * file with an unrelated mistake (an unknown key, a missing certificate) can still stop or
 * reload the daemon. Throws ConfigError when the file is unreadable or not TOML.
 */
export function controlSettings(configFile: string | null, lisoLock: string | null, cwd: string): ControlSettings {
  const settings: ControlSettings = { lockFile: null, graceMs: kDefaults.shutdownGrace * 1000 };
  if (configFile !== null) {
    const abs = path.resolve(cwd, configFile);
    let text: string;
    try {
      text = fs.readFileSync(abs, 'utf8');
    } catch (e) {
      throw new ConfigError(`cannot read config file '${configFile}': ${(e as Error).message}`, null);
    }
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(text);
    } catch {
      parseConfigText(text, configFile, abs); // throws the syntax error with file:line:column
      throw new ConfigError('not a TOML document', { file: configFile });
    }
    const { lock_file: lock, shutdown_grace: grace } = doc;
    if (typeof lock === 'string' && lock !== '') settings.lockFile = path.resolve(path.dirname(abs), lock);
    if (typeof grace === 'number' && Number.isFinite(grace) && grace >= 0) settings.graceMs = Math.round(grace * 1000);
  }
  if (lisoLock !== null) settings.lockFile = path.resolve(cwd, lisoLock);
  return settings;
}

export const kLsb = { ok: 0, failed: 1, notRunning: 3, unknown: 4, notConfigured: 6, reloadNotRunning: 7 } as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Probe = { state: 'running'; pid: number } | { state: 'stopped'; stalePid: number | null } | { state: 'unknown'; message: string };

async function probe(lockPath: string, pollMs: number): Promise<Probe> {
  try {
    if (!isLockHeld(lockPath)) return { state: 'stopped', stalePid: readLockPid(lockPath) };
    // Held: the holder writes its PID right after locking; give a starting daemon a moment.
    for (let waited = 0; ; waited += pollMs) {
      const pid = readLockPid(lockPath);
      if (pid !== null) return { state: 'running', pid };
      if (waited >= 1000) return { state: 'unknown', message: `lock file ${lockPath} is held but holds no PID` };
      await sleep(pollMs);
      if (!isLockHeld(lockPath)) return { state: 'stopped', stalePid: null };
    }
  } catch (e) {
    return { state: 'unknown', message: (e as Error).message }; // names the lock file
  }
}

function signal(pid: number, sig: NodeJS.Signals): string | null {
  try {
    process.kill(pid, sig);
    return null;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPERM') return `not permitted to signal lisod (pid ${pid}); run as its user or root`;
    if (code === 'ESRCH') return `lisod (pid ${pid}) is gone but its lock is held; check lock file users`;
    return `cannot signal pid ${pid}: ${(e as Error).message}`;
  }
}

export async function control(action: ControlAction, lockPath: string, options: ControlOptions = {}): Promise<ControlResult> {
  const pollMs = options.pollMs ?? 100;
  const found = await probe(lockPath, pollMs);
  if (found.state === 'unknown') return { code: kLsb.unknown, message: `lisod: ${found.message}`, error: true };

  if (found.state === 'stopped') {
    const stale = found.stalePid !== null ? ` (stale PID ${found.stalePid} in ${lockPath})` : '';
    const message = `lisod is not running${stale}`;
    if (action === 'status') return { code: kLsb.notRunning, message, error: false };
    if (action === 'stop') return { code: kLsb.ok, message, error: false };
    return { code: kLsb.reloadNotRunning, message: `lisod: cannot reload: ${message}`, error: true };
  }

  const { pid } = found;
  if (action === 'status') return { code: kLsb.ok, message: `lisod is running (pid ${pid})`, error: false };

  const failure = signal(pid, action === 'stop' ? 'SIGTERM' : 'SIGHUP');
  if (failure !== null) {
    return { code: failure.startsWith('not permitted') ? kLsb.unknown : kLsb.failed, message: `lisod: ${failure}`, error: true };
  }
  if (action === 'reload') return { code: kLsb.ok, message: `lisod (pid ${pid}) is reloading`, error: false };

  const timeoutMs = options.stopTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (!isLockHeld(lockPath)) return { code: kLsb.ok, message: `lisod (pid ${pid}) stopped`, error: false };
    } catch (e) {
      return { code: kLsb.unknown, message: `lisod: ${(e as Error).message}`, error: true };
    }
    if (Date.now() >= deadline) {
      return {
        code: kLsb.failed,
        message: `lisod: pid ${pid} did not stop within ${timeoutMs / 1000} s (still finishing requests? kill -9 ${pid} ends it now)`,
        error: true,
      };
    }
    await sleep(pollMs);
  }
}
