// Signal handling: SIGTERM/SIGINT stop gracefully within a grace period (a second one stops
// at once); SIGHUP runs the reload hook, one at a time. Callers supply the actions.
export type StopSignal = 'SIGTERM' | 'SIGINT';

export interface SignalHooks {
  /** Seconds' worth of patience for in-flight requests, in ms. */
  graceMs: number;
  /** Stop accepting connections (close listeners, end idle keep-alives, STOPPING=1);
   *  may resolve later, once inFlight() counts what is left. */
  stopAccepting(): void | Promise<void>;
  /** Requests still being served (connections mid-request, running CGI scripts). */
  inFlight(): number;
  /** Close whatever remains, flush logs, release the lock. Exit follows. */
  close(): void | Promise<void>;
  /** Reopen logs, re-read config and certificates. A rejection is logged; the old
   *  state must then remain in force. */
  reload(): Promise<void>;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Default: process.exit. */
  exit?(code: number): void;
}

export interface SignalControl {
  /** Starts the graceful stop as if a signal came (e.g. on a fatal error). */
  stop(reason: string): Promise<void>;
  /** Removes the handlers. */
  dispose(): void;
}

const kPollMs = 50;

export function installSignalHandlers(hooks: SignalHooks): SignalControl {
  const exit = hooks.exit ?? ((code: number) => process.exit(code));
  let stopping: Promise<void> | null = null;
  let hurry: (() => void) | null = null;
  let hurried = false; // a second stop signal came: waitForIdle gives up at once
  let reloading = false;
  let reloadAgain = false;

  const waitForIdle = (deadline: number): Promise<boolean> =>
    new Promise<boolean>((resolve) => {
      const check = (): void => {
        if (hooks.inFlight() === 0) return resolve(true);
        if (hurried) return resolve(false);
        if (Date.now() >= deadline) return resolve(false);
        timer = setTimeout(check, kPollMs);
      };
      let timer: NodeJS.Timeout | undefined;
      hurry = () => {
        clearTimeout(timer);
        resolve(false);
      };
      check();
    });

  const stop = (reason: string): Promise<void> => {
    if (stopping !== null) return stopping;
    stopping = (async () => {
      const graceS = hooks.graceMs / 1000;
      const deadline = Date.now() + hooks.graceMs;
      let code = 0;
      try {
        await hooks.stopAccepting(); // the count below is then fresh and without idle keep-alives
        hooks.log('info', `${reason}: stopping (grace period ${graceS} s, ${hooks.inFlight()} in flight)`);
        const idle = await waitForIdle(deadline);
        if (!idle) hooks.log('warn', `closing ${hooks.inFlight()} unfinished request(s)`);
        await hooks.close();
      } catch (e) {
        code = 1;
        hooks.log('error', `error while stopping: ${(e as Error).message}`);
      }
      exit(code);
    })();
    return stopping;
  };

  const onStop = (signal: StopSignal): void => {
    if (stopping === null) {
      void stop(`received ${signal}`);
    } else if (!hurried) {
      hooks.log('info', `received ${signal} again: not waiting for in-flight requests`);
      hurried = true;
      hurry?.();
    }
  };

  const reload = async (): Promise<void> => {
    if (stopping !== null) return;
    if (reloading) {
      reloadAgain = true; // coalesce: one more pass after the current one
      return;
    }
    reloading = true;
    try {
      do {
        reloadAgain = false;
        hooks.log('info', 'received SIGHUP: reloading');
        try {
          await hooks.reload();
        } catch (e) {
          hooks.log('error', `reload failed, keeping the running configuration: ${(e as Error).message}`);
        }
      } while (reloadAgain && stopping === null);
    } finally {
      reloading = false;
    }
  };

  const onTerm = (): void => onStop('SIGTERM');
  const onInt = (): void => onStop('SIGINT');
  const onHup = (): void => void reload();
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  process.on('SIGHUP', onHup);

  return {
    stop,
    dispose(): void {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHup);
    },
  };
}
