// Starts child processes (CGI scripts, FastCGI backends) through the addon's vfork + execve (no
// fork of this large process) and watches them on the loop: ScriptChild is one child with its
// stdout/stderr readers, pid and exit; ScriptProcess adds ChildProcess-like 'exit'/'close'.
// A ScriptChild made with `startAsync` is started on a thread of the addon: vfork suspends the
// thread that calls it until the child has exec'd, which on a busy machine held every
// connection of the loop (see native/spawner.h).
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { native, type NativeScriptRuns } from './native.js';

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  // An fd to hand over (the caller still closes its copy), a new pipe, /dev/null, or a pipe
  // holding these bytes and then closed.
  stdin: number | 'pipe' | 'ignore' | Buffer;
  args?: string[]; // argv[1…]
}

const kPipeBuf = 4096; // POSIX PIPE_BUF on Linux: the least an empty pipe holds

// Event flags of the addon's ScriptRuns (native/script_runs.cc).
const kOutEnd = 1, kOutEof = 2, kErrEnd = 4, kErrEof = 8, kExited = 16, kDone = 32;

/** Who gets a child's events: what one wake-up of the loop found, in one call. */
interface ScriptSink {
  deliver(out: Buffer | undefined, err: Buffer | undefined, flags: number, code: number, signal: number): void;
  begin(pid: number, stdinFd: number, error: Error | null): void; // a startAsync's outcome
}

/** The loop's one native ScriptRuns (per thread: each worker loads its own copy of this module). */
class Runs {
  readonly native: NativeScriptRuns;
  readonly #sinks = new Map<number, ScriptSink>();
  readonly #ids = new Int32Array(3); // spawn's out: token, pid, stdin fd

  constructor() {
    this.native = new native.ScriptRuns((token, out, err, flags, code, signal) => {
      const sink = this.#sinks.get(token);
      if (flags & kDone) this.#sinks.delete(token);
      sink?.deliver(out, err, flags, code, signal);
    }, (token, pid, stdinFd, error) => {
      const sink = this.#sinks.get(token);
      if (error) this.#sinks.delete(token);
      sink?.begin(pid, stdinFd, error);
    });
  }

  /** Throws an Error with code ENOENT/EACCES/ENOEXEC/EMFILE when the child cannot be started. */
  start(file: string, o: SpawnOptions, sink: ScriptSink): { token: number; pid: number; stdin: number } {
    this.native.spawn(file, envBlock(o.env), o.cwd, stdinMode(o.stdin), o.args ?? null, this.#ids);
    const token = this.#ids[0]!;
    this.#sinks.set(token, sink);
    return { token, pid: this.#ids[1]!, stdin: this.#ids[2]! };
  }

  /** The start happens on the addon's thread; sink.begin says how it went. */
  startAsync(file: string, o: SpawnOptions, sink: ScriptSink): number {
    const token = this.native.spawnAsync(file, envBlock(o.env), o.cwd, stdinMode(o.stdin), o.args ?? null);
    this.#sinks.set(token, sink);
    return token;
  }
}

function envBlock(env: Record<string, string>): string {
  let block = '';
  for (const name in env) {
    const value = env[name]!;
    if (!value.includes('\0')) block += `${name}=${value}\0`; // execve cannot carry a NUL
  }
  return block;
}

function stdinMode(stdin: SpawnOptions['stdin']): number {
  return typeof stdin === 'number' ? stdin : stdin === 'ignore' ? -2 : -1;
}

let runs: Runs | undefined;

/**
 * A child's stdout or stderr: 'data' (Buffer) per read, then 'end' at end of file (not after
 * a read error), then 'close'. Read by the addon on the loop (a net.Socket per pipe cost ~40%
 * of lisod's own CPU per CGI request). Plain listener lists: no EventEmitter per pipe.
 */
export class OutputPipe {
  readonly #token: number;
  readonly #pausable: boolean;
  #paused = false;
  #data: Array<(b: Buffer) => void> = [];
  #end: Array<() => void> = [];
  #close: Array<() => void> = [];

  constructor(token: number, pausable: boolean) {
    this.#token = token;
    this.#pausable = pausable;
  }

  on(event: 'data', cb: (b: Buffer) => void): this;
  on(event: 'end' | 'close', cb: () => void): this;
  on(event: 'data' | 'end' | 'close', cb: ((b: Buffer) => void) | (() => void)): this {
    if (event === 'data') this.#data.push(cb as (b: Buffer) => void);
    else (event === 'end' ? this.#end : this.#close).push(cb as () => void);
    return this;
  }

  /** Stops reading (stdout only: stderr is always read, so a chatty script cannot block on it). */
  pause(): void {
    if (this.#paused || !this.#pausable) return;
    this.#paused = true;
    runs!.native.pause(this.#token);
  }

  /** Cheap when not paused (no call into the addon, whose resume re-arms the poll). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    runs!.native.resume(this.#token);
  }

  push(chunk: Buffer): void {
    for (const cb of this.#data) cb(chunk);
  }

  finish(eof: boolean): void {
    if (eof) for (const cb of this.#end) cb();
    for (const cb of this.#close) cb();
    this.#data = [];
    this.#end = [];
    this.#close = [];
  }
}

/**
 * A started child in its own process group (pgid = pid), default signal dispositions,
 * cwd set. Subclasses see its events through `onEvents` after the pipes and exit fields
 * are updated: stdout's data and end, stderr's, then the exit — in that order.
 */
export class ScriptChild extends EventEmitter implements ScriptSink {
  pid = 0; // 0 until started
  started = false;
  input: net.Socket | null = null; // stdin 'pipe', or a Buffer too big to write at once
  readonly stdout: OutputPipe;
  readonly stderr: OutputPipe;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  exited = false;
  stdoutDone = false; // EOF or read error
  stderrDone = false;
  #stdin: SpawnOptions['stdin'] | undefined; // until started (a Buffer body is written then)
  #pending: NodeJS.Signals | null = null; // killGroup before the start: sent once it runs

  /**
   * Started here (throws an Error with code ENOENT/EACCES/ENOEXEC when it cannot be), or with
   * startAsync on the addon's thread: then onStarted or onStartFailed tells the outcome, and
   * until then pid is 0 and input null. An fd given as stdin may be closed at once either way.
   */
  constructor(file: string, options: SpawnOptions, startAsync = false) {
    super();
    runs ??= new Runs();
    let token: number;
    if (startAsync) {
      this.#stdin = options.stdin;
      token = runs.startAsync(file, options, this);
    } else {
      const p = runs.start(file, options, this);
      token = p.token;
      this.#adopt(p.pid, p.stdin, options.stdin);
    }
    this.stdout = new OutputPipe(token, true);
    this.stderr = new OutputPipe(token, false);
  }

  begin(pid: number, stdinFd: number, error: Error | null): void {
    const stdin = this.#stdin;
    this.#stdin = undefined;
    if (error) {
      this.onStartFailed(error);
      return;
    }
    this.#adopt(pid, stdinFd, stdin!);
    this.onStarted();
    const pending = this.#pending;
    this.#pending = null;
    if (pending) this.onPendingSignal(pending);
  }

  /**
   * Signals the child's process group (pgid = pid), whether or not its leader still runs;
   * false when the child has not started yet: the signal then waits (SIGKILL over SIGTERM)
   * and onPendingSignal gets it once the child runs.
   */
  killGroup(signal: NodeJS.Signals): boolean {
    if (!this.started) {
      if (this.#pending !== 'SIGKILL') this.#pending = signal;
      return false;
    }
    try {
      process.kill(-this.pid, signal);
    } catch {
      // Group already empty.
    }
    return true;
  }

  /** A signal asked for before the start, now that the child runs. */
  protected onPendingSignal(signal: NodeJS.Signals): void {
    this.killGroup(signal);
  }

  #adopt(pid: number, stdinFd: number, stdin: SpawnOptions['stdin']): void {
    this.pid = pid;
    this.started = true;
    this.input = stdinFd >= 0 ? openInput(stdinFd, stdin) : null;
  }

  /** A startAsync child runs (pid and input are set). */
  protected onStarted(): void {}

  /** A startAsync child could not be started; no other event follows. */
  protected onStartFailed(_error: Error): void {}

  deliver(out: Buffer | undefined, err: Buffer | undefined, flags: number, code: number, signal: number): void {
    if (out) this.stdout.push(out);
    if (flags & kOutEnd) {
      this.stdoutDone = true;
      this.stdout.finish((flags & kOutEof) !== 0);
    }
    if (err) this.stderr.push(err);
    if (flags & kErrEnd) {
      this.stderrDone = true;
      this.stderr.finish((flags & kErrEof) !== 0);
    }
    if (flags & kExited) {
      this.exited = true;
      this.exitCode = code >= 0 && signal === 0 ? code : null;
      this.signalCode = signal !== 0 ? signalName(signal) : null;
      this.input?.destroy(); // nobody reads it any more (a socket left open leaks its fd)
    }
    this.onEvents(flags);
  }

  protected onEvents(_flags: number): void {}
}

/**
 * A child with 'exit' (code, signal) and then 'close' (code, signal) after both pipes closed;
 * made with startAsync, first 'spawn' once it runs, or 'error' (and nothing else) when it
 * could not be started.
 */
export class ScriptProcess extends ScriptChild {
  get stdin(): net.Socket | null {
    return this.input;
  }

  protected override onStarted(): void {
    this.emit('spawn');
  }

  protected override onStartFailed(error: Error): void {
    this.emit('error', error);
  }

  protected override onEvents(flags: number): void {
    if (flags & kExited) this.emit('exit', this.exitCode, this.signalCode);
    if (flags & kDone) this.emit('close', this.exitCode, this.signalCode);
  }
}

/**
 * The parent's end of a new stdin pipe as a socket, or null once a small Buffer body is in it:
 * up to PIPE_BUF bytes always fit an empty pipe, so that write never blocks (no socket needed).
 */
function openInput(fd: number, stdin: SpawnOptions['stdin']): net.Socket | null {
  if (Buffer.isBuffer(stdin) && stdin.length <= kPipeBuf) {
    try {
      if (stdin.length > 0) fs.writeSync(fd, stdin);
    } catch {
      // EPIPE: the script exited without reading; its exit tells the rest.
    } finally {
      fs.closeSync(fd);
    }
    return null;
  }
  const socket = new net.Socket({ fd, readable: false, writable: true });
  if (Buffer.isBuffer(stdin)) socket.end(stdin); // up to kMemoryBodyBytes: fits the pipe
  return socket;
}

function signalName(n: number): NodeJS.Signals {
  const found = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return (found?.[0] ?? 'SIGKILL') as NodeJS.Signals;
}
