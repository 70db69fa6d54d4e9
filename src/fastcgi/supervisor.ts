// Runs the `processes` copies of a [[fastcgi]] `command`: a private 0700 directory with one
// listening Unix socket that every copy inherits as fd 0 (FCGI_LISTENSOCK_FILENO, the
// convention of lighttpd's bin-path and spawn-fcgi), restart on exit with backoff, graceful
// replacement on reload, and stop on shutdown.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from '../log.js';
import { native } from '../native.js';
import { ScriptProcess } from '../spawn.js';
import { forEachLine } from '../app_lines.js';

export interface SupervisorOptions {
  mount: string; // the URL prefix, for log lines
  command: string[]; // [absolute file, ...args]
  processes: number;
  env: Record<string, string>; // the processes' own environment
  runtimeDir?: string; // where the private directory is made (default os.tmpdir())
}

const kBacklog = 128;
const kMinBackoffMs = 100;
const kMaxBackoffMs = 10_000;
const kHealthyMs = 10_000; // a process that ran this long resets the backoff
// Exits with status 0 are normal ends (php-cgi after PHP_FCGI_MAX_REQUESTS) unless more than
// this many happen within a second: then they count as a crash loop.
const kNormalExitsPerSec = 20;
const kSteadyMs = 1000;
const kStopGraceMs = 5_000; // SIGTERM → SIGKILL

interface Backend {
  child: ScriptProcess;
  generation: number;
  startedAt: number;
}

export class FastCgiSupervisor {
  readonly #o: SupervisorOptions;
  readonly #logger: Logger;
  readonly #dir: string;
  readonly socketPath: string;
  #fd = -1;
  #generation = 0;
  #stopping = false;
  readonly #live = new Set<Backend>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #backoffMs = kMinBackoffMs;
  #crashes = 0; // consecutive quick failures
  #normalExits: number[] = []; // times of recent exits with status 0

  /** Creates the socket; throws (with the path and errno) when it cannot. Call start() next. */
  constructor(options: SupervisorOptions, logger: Logger) {
    this.#o = options;
    this.#logger = logger;
    this.#dir = fs.mkdtempSync(path.join(options.runtimeDir ?? os.tmpdir(), 'lisod-fcgi-'));
    fs.chmodSync(this.#dir, 0o700);
    this.socketPath = path.join(this.#dir, 'backend.sock');
    try {
      this.#fd = native.listenUnix(this.socketPath, kBacklog);
    } catch (e) {
      fs.rmSync(this.#dir, { recursive: true, force: true });
      throw e;
    }
  }

  get directory(): string {
    return this.#dir;
  }

  get address(): string {
    return `unix:${this.socketPath}`;
  }

  /** The pids now running (for tests and status). */
  get pids(): number[] {
    return [...this.#live].filter((b) => b.child.started).map((b) => b.child.pid);
  }

  /** Starts `processes` copies; throws when the command cannot be started at all. */
  start(): void {
    for (let i = 0; i < this.#o.processes; i++) this.#spawn(this.#generation);
  }

  /**
   * Graceful restart (SIGHUP): a new generation starts on the same socket, then the old one
   * gets SIGTERM — a responder finishes the request in hand and exits — and SIGKILL after a
   * grace. The listening socket never closes, so no connection attempt is refused meanwhile.
   * Throws, keeping the running generation, when the command cannot be started.
   */
  reload(): void {
    if (this.#stopping) return;
    const old = [...this.#live];
    this.#generation++;
    try {
      this.start();
    } catch (e) {
      // The command cannot be run now: the running generation stays, and is still replaced
      // when one of it exits (what of the new one did start goes again).
      for (const b of this.#live) if (b.generation === this.#generation) this.#terminate(b);
      this.#generation--;
      throw e;
    }
    this.#backoffMs = kMinBackoffMs;
    this.#crashes = 0;
    for (const b of old) this.#terminate(b);
  }

  /** Shutdown: SIGTERM every process (SIGKILL after a grace); resolves once all have exited. */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const exits = [...this.#live].map((b) => new Promise<void>((resolve) => {
      if (b.child.exitCode !== null || b.child.signalCode !== null) resolve();
      else b.child.once('exit', () => resolve()).once('error', () => resolve()); // error: never started
      this.#terminate(b);
    }));
    if (this.#fd >= 0) fs.closeSync(this.#fd);
    this.#fd = -1;
    await Promise.all(exits);
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }

  #terminate(b: Backend): void {
    this.#signal(b, 'SIGTERM');
    const t = setTimeout(() => this.#signal(b, 'SIGKILL'), kStopGraceMs);
    t.unref();
    b.child.once('exit', () => clearTimeout(t));
  }

  #signal(b: Backend, signal: NodeJS.Signals): void {
    if (b.child.exitCode !== null || b.child.signalCode !== null) return;
    b.child.killGroup(signal); // the whole group: what the backend started goes too
  }

  /**
   * Starts one process: here (throws when it cannot be started), or — a replacement, with
   * `failed` — on the addon's spawner thread, so a restart never holds up the event loop;
   * `failed` then hears of a start that did not happen.
   */
  #spawn(generation: number, failed?: (e: Error) => void): void {
    const [file, ...args] = this.#o.command;
    const child = new ScriptProcess(file!, { cwd: path.dirname(file!), env: this.#o.env, stdin: this.#fd, args },
      failed !== undefined);
    const b: Backend = { child, generation, startedAt: Date.now() };
    this.#live.add(b);
    const label = (): string => `fastcgi ${this.#o.mount}[${child.pid}]`;
    // A backend's own stdout/stderr lines go to the error log with its label.
    for (const pipe of [child.stdout, child.stderr]) forEachLine(pipe, (line) => this.#logger.error(`${label()}: ${line}`));
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => this.#onExit(b, label(), code, signal));
    if (!failed) return;
    child.once('spawn', () => { b.startedAt = Date.now(); }); // a signal asked for meanwhile follows
    child.once('error', (e: Error) => {
      this.#live.delete(b);
      if (!this.#stopping && b.generation === this.#generation) failed(e);
    });
  }

  #onExit(b: Backend, label: string, code: number | null, signal: NodeJS.Signals | null): void {
    this.#live.delete(b);
    if (this.#stopping || b.generation !== this.#generation) return;
    const ran = Date.now() - b.startedAt;
    // A normal end (php-cgi after PHP_FCGI_MAX_REQUESTS exits 0): replaced at once.
    const now = Date.now();
    if (code === 0) this.#normalExits = [...this.#normalExits.filter((t) => now - t < 1000), now];
    // While backing off, an exit 0 is normal again only after a process ran a while.
    const normal = this.#crashes === 0 ? this.#normalExits.length <= kNormalExitsPerSec : ran >= kSteadyMs;
    if (code === 0 && normal) {
      this.#logger.info(`${label}: exited after ${ran} ms; starting a new one`);
      this.#backoffMs = kMinBackoffMs;
      this.#crashes = 0;
      this.#respawn(0);
      return;
    }
    if (ran >= kHealthyMs) {
      this.#backoffMs = kMinBackoffMs;
      this.#crashes = 0;
    }
    this.#crashes++;
    const how = signal ? `killed by ${signal}` : `exited with status ${code}`;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, kMaxBackoffMs);
    // One line per crash until it loops; then one line per maximal backoff step.
    if (this.#crashes <= 3) {
      this.#logger.error(`${label}: ${how} after ${ran} ms; restarting in ${delay} ms`);
    } else if (delay === kMaxBackoffMs || this.#crashes === 4) {
      this.#logger.error(`${label}: ${how}; crash loop (${this.#crashes} quick failures), retrying every ${delay} ms`);
    }
    this.#respawn(delay);
  }

  #respawn(delayMs: number): void {
    const generation = this.#generation;
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (this.#stopping || generation !== this.#generation) return;
      const retry = (e: Error): void => {
        this.#logger.error(`fastcgi ${this.#o.mount}: cannot start ${this.#o.command[0]}: ${e.message}`);
        this.#respawn(Math.min(Math.max(delayMs * 2, kMinBackoffMs), kMaxBackoffMs));
      };
      try {
        this.#spawn(generation, retry);
      } catch (e) {
        retry(e as Error);
      }
    }, delayMs);
    this.#timers.add(t);
  }
}
