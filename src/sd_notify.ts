// systemd readiness protocol (sd_notify(3)) over $NOTIFY_SOCKET through the addon:
// READY=1, RELOADING=1 with MONOTONIC_USEC, STOPPING=1, STATUS=, and the watchdog.
import { native } from './native.js';

export interface Notifier {
  /** True when $NOTIFY_SOCKET is set, i.e. systemd (Type=notify) waits for us. */
  readonly enabled: boolean;
  /** Every listener bound, lock taken, privileges dropped: the service is up. */
  ready(status?: string): void;
  /** SIGHUP received; follow with ready() when the reload is over (ok or not). */
  reloading(): void;
  /** Graceful stop begun. */
  stopping(): void;
  status(text: string): void;
  /** Sends WATCHDOG=1 at half of $WATCHDOG_USEC when systemd asks for it (WatchdogSec=).
   *  Returns the stop function; the timer never keeps the process alive. */
  startWatchdog(): () => void;
}

/** One line, no '\n' (a newline would start a new assignment in the datagram). */
function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ');
}

/** CLOCK_MONOTONIC in µs: libuv's hrtime reads CLOCK_MONOTONIC on Linux, the clock
 *  systemd compares MONOTONIC_USEC against. */
export function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

export function reloadingMessage(now: bigint = monotonicUsec()): string {
  return `RELOADING=1\nMONOTONIC_USEC=${now}`;
}

/** The watchdog period in ms, or null when systemd did not ask this process for one. */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv = process.env, pid = process.pid): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isSafeInteger(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return null;
  return Math.max(1, Math.floor(usec / 2000));
}

/**
 * A notifier whose sends never throw: a failed send is reported to `warn` (systemd would
 * then time the unit out, which the log line explains). Without $NOTIFY_SOCKET every call
 * is a no-op.
 */
export function createNotifier(warn: (message: string) => void): Notifier {
  const send = (message: string): void => {
    try {
      native.sdNotify(message);
    } catch (e) {
      warn(`sd_notify ${message.split('\n', 1)[0]} failed: ${(e as Error).message}`);
    }
  };
  return {
    get enabled(): boolean {
      return (process.env.NOTIFY_SOCKET ?? '') !== '';
    },
    ready(status?: string): void {
      send(status === undefined ? 'READY=1' : `READY=1\nSTATUS=${oneLine(status)}`);
    },
    reloading(): void {
      send(reloadingMessage());
    },
    stopping(): void {
      send('STOPPING=1');
    },
    status(text: string): void {
      send(`STATUS=${oneLine(text)}`);
    },
    startWatchdog(): () => void {
      const interval = watchdogIntervalMs();
      if (interval === null) return () => {};
      const timer = setInterval(() => send('WATCHDOG=1'), interval);
      timer.unref();
      return () => clearInterval(timer);
    },
  };
}
