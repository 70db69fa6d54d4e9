// Starts a CGI script through the addon's posix_spawn (no fork of this large process)
// and exposes it like a ChildProcess: stdin stream, stdout/stderr readers, pid, 'exit'/'close'.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import { native, type NativePipeReader } from './native.js';

export interface SpawnOptions {
  cwd: string;
  env: Record<string, string>;
  stdin: number | 'pipe' | 'ignore'; // an fd to hand over (the caller still closes its copy)
  args?: string[]; // argv[1…]
}

/**
 * A script's stdout or stderr: 'data' (Buffer) per read, then 'end' at end of file (not after
 * a read error), then 'close'. Read by the addon on the loop — a net.Socket per pipe cost
 * ~40% of lisod's own CPU per CGI request.
 */
export class OutputPipe extends EventEmitter {
  readonly #reader: NativePipeReader;
  #paused = false;

  constructor(fd: number) {
    super();
    this.#reader = new native.PipeReader(fd, (chunk, errno) => {
      if (chunk) {
        this.emit('data', chunk);
        return;
      }
      if (errno === 0) this.emit('end');
      this.emit('close');
    });
  }

  pause(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.#reader.pause();
  }

  /** Cheap when not paused (no call into the addon, whose resume re-arms the poll). */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#reader.resume();
  }
}

/** A running script. 'close' (code, signal) follows exit and the end of stdout and stderr. */
export class ScriptProcess extends EventEmitter {
  readonly pid: number;
  readonly stdin: net.Socket | null;
  readonly stdout: OutputPipe;
  readonly stderr: OutputPipe;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  #pending = 3; // exit, stdout closed, stderr closed

  /** Throws an Error with code ENOENT/EACCES/ENOEXEC when the script cannot be started. */
  constructor(file: string, options: SpawnOptions) {
    super();
    const env = Object.entries(options.env).map(([k, v]) => `${k}=${v}`);
    const stdin = typeof options.stdin === 'number' ? options.stdin : options.stdin === 'pipe' ? -1 : -2;
    const p = native.spawnProcess(file, env, options.cwd, stdin, options.args);
    this.pid = p.pid;
    this.stdin = p.stdin >= 0 ? new net.Socket({ fd: p.stdin, readable: false, writable: true }) : null;
    this.stdout = new OutputPipe(p.stdout);
    this.stderr = new OutputPipe(p.stderr);
    for (const s of [this.stdout, this.stderr]) s.once('close', () => this.#settle()); // exit reports what happened
    native.watchExit(p.pidfd, (code, signal) => {
      this.exitCode = code;
      this.signalCode = signal === null ? null : signalName(signal);
      this.emit('exit', this.exitCode, this.signalCode);
      this.#settle();
    });
  }

  #settle(): void {
    if (--this.#pending === 0) this.emit('close', this.exitCode, this.signalCode);
  }
}

function signalName(n: number): NodeJS.Signals {
  const found = Object.entries(os.constants.signals).find(([, v]) => v === n);
  return (found?.[0] ?? 'SIGKILL') as NodeJS.Signals;
}
