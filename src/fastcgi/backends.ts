// The supervised backends of one lisod (every [[fastcgi]] mount with `command`), as one
// phase of its lifecycle: sockets made before the event loops, processes started after
// the privilege drop, replaced gracefully on reload, stopped last.
import { inheritedEnv } from '../app_runner.js';
import type { LisodConfig } from '../config.js';
import type { Logger } from '../log.js';
import { FastCgiSupervisor } from './supervisor.js';

export class FastCgiBackends {
  readonly #supervisors: FastCgiSupervisor[] = [];

  /** Makes each command mount's private directory and listening socket; throws (after undoing) on failure. */
  constructor(config: LisodConfig, logger: Logger, runtimeDir?: string) {
    try {
      for (const m of config.fastcgi) {
        if (m.command === null) continue;
        this.#supervisors.push(new FastCgiSupervisor({
          mount: `${m.prefix}/`, command: m.command, processes: m.processes, env: inheritedEnv(m.passEnv, m.env), runtimeDir,
        }, logger));
      }
    } catch (e) {
      void this.stop();
      throw e;
    }
  }

  /** `config` with each command mount's socket set to its supervisor's (what the event loops connect to). */
  wire(config: LisodConfig): LisodConfig {
    let i = 0;
    return { ...config, fastcgi: config.fastcgi.map((m) => (m.command === null ? m : { ...m, socket: this.#supervisors[i++]!.address })) };
  }

  /** Directories and sockets to hand over with the privileges (user = …). */
  get ownedPaths(): string[] {
    return this.#supervisors.flatMap((s) => [s.directory, s.socketPath]);
  }

  /** Starts every process; throws when a command cannot be run. */
  start(): void {
    for (const s of this.#supervisors) s.start();
  }

  reload(): void {
    for (const s of this.#supervisors) s.reload();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#supervisors.map((s) => s.stop()));
  }
}
