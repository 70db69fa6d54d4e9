// The CGI transport behind the application seam: one script process per exchange, started
// in its own process group on the addon's spawner thread (src/spawn.ts), its
// stdin/stdout/stderr as the exchange's streams.
import fs from 'node:fs';
import path from 'node:path';
import type { AppBody, AppEnd, AppInput, AppProcess, AppTransport } from './app_transport.js';
import { LateInput } from './late_input.js';
import { ScriptChild, type SpawnOptions } from './spawn.js';

const kKillGraceMs = 2000; // SIGTERM → SIGKILL
const kStragglerMs = 100; // leader exited, pipe still open this long → SIGTERM the group

/**
 * One script run. 'close' comes once the script (the group's leader) has exited and the
 * runner no longer waits for its stdout: at EOF, or at once when the runner called
 * complete(), kill() or terminate(). What the script left behind is then its own business
 * unless it still holds stdout or stderr: such a group gets SIGTERM (SIGKILL after a grace),
 * so a background child cannot keep an exchange's slot or pipes. A script still running
 * after the runner has its whole response is left to finish (it may still be writing to a
 * database); it keeps its slot until it exits or the runner's timeout kills it — unless
 * `endAfterResponse` (`[cgi] end_after_response`): then complete() sends its group SIGTERM
 * at once, as lighttpd's mod_cgi does, which spares an interpreter its exit work.
 */
class CgiProcess extends ScriptChild implements AppProcess {
  readonly #name: string;
  readonly #body: LateInput | null; // the streamed body, queued until the script runs
  readonly #endAfterResponse: boolean;
  #wantsEnd = false; // complete(), kill() or terminate(): stop waiting for EOF
  #signalled: NodeJS.Signals | null = null;
  #closed = false;
  #killTimer: NodeJS.Timeout | undefined;
  #straggler: NodeJS.Timeout | undefined; // leader gone, a pipe still open: SIGTERM unless it closes soon

  /** Started on the addon's thread: a script that cannot be run ends in 'close' with a 500 'fail'. */
  constructor(file: string, options: SpawnOptions, name: string, streamsBody: boolean, endAfterResponse: boolean) {
    super(file, options, true);
    this.#name = name;
    this.#body = streamsBody ? new LateInput() : null;
    this.#endAfterResponse = endAfterResponse;
  }

  get label(): string {
    return this.started ? `${this.#name}[${this.pid}]` : this.#name;
  }

  /** The runner's body stream: only when it streams the body (a buffered one is written at spawn). */
  get stdin(): AppInput | null {
    return this.#body;
  }

  protected override onStarted(): void {
    this.input?.on('error', () => {}); // EPIPE: the script stopped reading; its exit follows
    if (this.#body && this.input) this.#body.attach(this.input);
  }

  protected override onPendingSignal(signal: NodeJS.Signals): void {
    this.#signal(signal);
  }

  protected override onStartFailed(error: Error): void {
    this.#body?.destroy();
    this.#closed = true;
    this.emit('close', { kind: 'fail', status: 500, reason: error.message } satisfies AppEnd);
  }

  protected override onEvents(): void {
    this.#settle();
  }

  complete(): void {
    this.#wantsEnd = true;
    this.stdout.resume(); // keep draining: a blocked writer would never exit
    if (this.#endAfterResponse) this.#signal('SIGTERM');
    this.#settle();
  }

  terminate(): void {
    this.#wantsEnd = true;
    this.stdout.resume();
    this.#signal('SIGTERM');
    this.#settle();
  }

  kill(): void {
    this.#wantsEnd = true;
    this.stdout.resume();
    this.#signal('SIGKILL');
    this.#settle();
  }

  /** Signals the whole process group, whether or not its leader still runs. */
  #signal(signal: NodeJS.Signals): void {
    if (this.stdoutDone && this.stderrDone && this.exited) return; // nothing of it left to reach
    if (this.#signalled === 'SIGKILL') return;
    if (!this.killGroup(signal)) return; // still starting: back here through onPendingSignal
    this.#signalled = signal;
    if (signal === 'SIGTERM' && !this.#killTimer) {
      this.#killTimer = setTimeout(() => this.#signal('SIGKILL'), kKillGraceMs);
      this.#killTimer.unref();
    }
  }

  #settle(): void {
    if (this.stdoutDone && this.stderrDone && this.exited) { // everything is gone
      clearTimeout(this.#killTimer);
      clearTimeout(this.#straggler);
      this.#killTimer = this.#straggler = undefined;
    }
    if (this.#closed || !this.exited) return;
    if (!this.stdoutDone && !this.#wantsEnd) return; // the response may still be coming
    this.#closed = true;
    // The leader exited but something it started may still hold a pipe: end the group. The
    // pipes' EOF may still be unread (one read per wake-up), so look again a little later.
    if ((!this.stdoutDone || !this.stderrDone) && !this.#signalled) {
      this.#straggler = setTimeout(() => {
        if (!this.stdoutDone || !this.stderrDone) this.#signal('SIGTERM');
      }, kStragglerMs);
      this.#straggler.unref();
    }
    const end: AppEnd = { kind: 'exit', code: this.exitCode, signal: this.signalCode };
    this.emit('close', end);
  }
}

/** Runs `script` for every exchange, cwd its directory, with the runner's environment. */
export class CgiTransport implements AppTransport {
  readonly name = 'cgi';
  readonly #script: string;
  readonly #label: string;
  readonly #cwd: string;
  readonly #endAfterResponse: boolean;

  /** endAfterResponse: SIGTERM each script's group once the runner has its whole response. */
  constructor(script: string, endAfterResponse = false) {
    this.#endAfterResponse = endAfterResponse;
    this.#script = path.resolve(script);
    this.#label = path.basename(this.#script);
    this.#cwd = path.dirname(this.#script);
  }

  open(env: Record<string, string>, body: AppBody): AppProcess {
    const file = typeof body === 'object' && !Buffer.isBuffer(body) ? body : null;
    try {
      const stdin = file ? file.fd : body === 'none' ? 'ignore' : body === 'stream' ? 'pipe' : (body as Buffer);
      return new CgiProcess(this.#script, { cwd: this.#cwd, env, stdin }, this.#label, body === 'stream',
        this.#endAfterResponse);
    } catch (e) {
      const message = (e as Error).message; // the addon's messages mostly name the script already
      throw new Error(message.includes(this.#script) ? message : `cannot run ${this.#script}: ${message}`);
    } finally {
      if (file) fs.closeSync(file.fd); // the start has its own copy
    }
  }
}
