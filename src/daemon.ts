// Daemonizing without fork(): the launcher re-spawns this program detached (setsid) and
// waits on a readiness pipe; the daemon reports "ready" or "error <message>" on it, after
// optional "note <text>" lines the launcher prints on success (e.g. the listening URLs).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Readable } from 'node:stream';

/** Environment variable that marks the re-spawned daemon; its value is the pipe's fd. */
export const kDaemonMarker = 'LISOD_DAEMON_READY_FD';
const kReadyFd = 3;
const kExitWaitMs = 2000;
const kReadyEofWaitMs = 1000; // after "ready", how long the pipe may stay open (see launch())

export type LaunchResult = { ok: true; pid: number; notes: string[] } | { ok: false; message: string };

export interface LaunchOptions {
  /** Arguments after the interpreter (default: this process's execArgv, script and args). */
  argv?: string[];
  /** Time allowed until "ready" (default 10 s); the daemon is killed past it. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `was killed by ${signal}` : `exited with status ${code}`;
}

/**
 * Launcher side. Starts the daemon (same interpreter, flags, script and arguments, same
 * working directory so relative paths resolve as the user meant; the daemon itself then
 * moves to '/') and resolves once it is serving or has failed. On failure no process of
 * the daemon's session is left: the daemon exits by itself after reporting, and is killed
 * (its whole process group) if it has not within 2 s or never reports within timeoutMs.
 */
export function launchDaemon(options: LaunchOptions = {}): Promise<LaunchResult> {
  const argv = options.argv ?? [...process.execArgv, ...process.argv.slice(1)];
  const timeoutMs = options.timeoutMs ?? 10_000;
  const child = spawn(process.execPath, argv, {
    cwd: options.cwd,
    env: { ...(options.env ?? process.env), [kDaemonMarker]: String(kReadyFd) },
    detached: true, // setsid(): new session and process group, no controlling terminal
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
  });
  const pipe = child.stdio[kReadyFd] as Readable;

  return new Promise<LaunchResult>((resolve) => {
    let text = '';
    const notes: string[] = [];
    let settled = false;
    let exited: string | null = null;
    const exitWaiters: Array<() => void> = [];
    child.on('exit', (code, signal) => {
      exited = describeExit(code, signal);
      for (const w of exitWaiters.splice(0)) w();
    });

    const killGroup = (): void => {
      if (child.pid === undefined || exited !== null) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    // Resolves once the daemon is gone, killing its process group if it lingers.
    const reap = (graceMs: number): Promise<void> =>
      new Promise<void>((done) => {
        if (exited !== null || child.pid === undefined) return done();
        exitWaiters.push(done);
        const timer = setTimeout(killGroup, graceMs);
        exitWaiters.push(() => clearTimeout(timer));
      });

    const finish = (result: LaunchResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      pipe.destroy();
      if (result.ok) {
        child.unref();
        resolve(result);
      } else {
        void reap(kExitWaitMs).then(() => resolve(result));
      }
    };

    const deadline = setTimeout(() => {
      killGroup();
      finish({ ok: false, message: `daemon (pid ${child.pid}) did not become ready within ${timeoutMs / 1000} s; killed it` });
    }, timeoutMs);

    // The daemon closes the pipe right after "ready": the launcher returns once it has, so a
    // caller that sees it exit never finds the pipe still open in the daemon. A daemon that
    // keeps it open anyway counts as ready after kReadyEofWaitMs.
    let readyAt: NodeJS.Timeout | null = null;
    const ready = (): void => {
      if (readyAt !== null) clearTimeout(readyAt);
      finish({ ok: true, pid: child.pid as number, notes });
    };
    child.on('error', (e) => finish({ ok: false, message: `cannot start the daemon: ${e.message}` }));
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
      let nl: number;
      while (!settled && (nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        if (line.startsWith('note ')) notes.push(line.slice('note '.length));
        else if (line === 'ready') readyAt ??= setTimeout(ready, kReadyEofWaitMs); // finish at EOF (below)
        else if (line.startsWith('error ')) finish({ ok: false, message: line.slice('error '.length) });
        else finish({ ok: false, message: `daemon sent an unexpected readiness line: ${JSON.stringify(line)}` });
      }
    });
    pipe.on('error', () => {}); // a daemon crash may reset the pipe; 'close'/'exit' report it
    pipe.on('close', () => {
      if (settled) return;
      if (readyAt !== null) return ready(); // "ready" and its EOF: the daemon no longer holds the pipe
      // EOF without a verdict: the daemon died before reporting; wait for its status.
      const report = (): void =>
        finish({ ok: false, message: `daemon ${exited ?? 'closed its readiness pipe'} before it was ready` });
      if (exited !== null) report();
      else exitWaiters.push(report);
    });
  });
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/**
 * Daemon side: the re-spawned process. Created from the environment marker; null in any
 * other process (foreground runs and the launcher).
 */
export class DaemonChild {
  private fd_: number | null;

  private constructor(fd: number) {
    this.fd_ = fd;
  }

  static fromEnvironment(env: NodeJS.ProcessEnv = process.env): DaemonChild | null {
    const value = env[kDaemonMarker];
    if (value === undefined) return null;
    const fd = Number(value);
    if (!Number.isSafeInteger(fd) || fd < 0) return null;
    return new DaemonChild(fd);
  }

  /** Leaves the launcher's context: working directory '/', umask 027, marker removed from
   *  the environment (CGI scripts must not see it). Call after every path is resolved. */
  detach(): void {
    process.chdir('/');
    process.umask(0o027);
    delete process.env[kDaemonMarker];
  }

  /** Tells the launcher the daemon serves; the launcher prints `notes` (one line each) and
   *  exits 0. */
  ready(notes: readonly string[] = []): void {
    this.report([...notes.map((n) => `note ${oneLine(n)}`), 'ready'].join('\n'));
  }

  /** Tells the launcher why the daemon cannot start (one line); the caller then exits
   *  non-zero. The launcher prints the message and exits 1. */
  fail(message: string): void {
    this.report(`error ${oneLine(message)}`);
  }

  private report(line: string): void {
    if (this.fd_ === null) return;
    const fd = this.fd_;
    this.fd_ = null;
    try {
      fs.writeSync(fd, `${line}\n`);
    } catch {
      // the launcher is gone (killed, timed out): nobody to tell
    } finally {
      try {
        fs.closeSync(fd); // also keeps the pipe out of CGI children
      } catch {
        // not open
      }
    }
  }
}
