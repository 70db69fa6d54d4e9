// Error log ("<ISO time> <level> lisod[<pid>]: <message>") and access log (Combined Log
// Format, written by the native event loops): buffered in a native writer thread, flushed
// at least once a second and on exit; a failing sink never crashes.
import fs from 'node:fs';
import { native, type AccessRecord, type NativeLogWriter } from './native.js';

/** What other modules (CGI runner, signals, …) log through. */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
}

export type Level = 'error' | 'warn' | 'info';

// ---------------------------------------------------------------------------------------
// Formatting.

const hex = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** One error-log line (with its newline); control characters in the message are escaped. */
export function formatErrorLine(level: Level, message: string, when: Date, pid: number): string {
  const text = message.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : hex(c)));
  return `${when.toISOString()} ${level} lisod[${pid}]: ${text}\n`;
}

/**
 * One Combined Log Format line (with its newline), exactly as the native event loops write
 * them (native/access_log.cc): host - user [time] "METHOD target VERSION" status bytes
 * "referer" "user-agent", time in the zone `offsetMinutes` east of UTC (default: local).
 */
export function formatAccessRecord(r: AccessRecord, offsetMinutes?: number): string {
  return native.formatAccessRecord(r, offsetMinutes);
}

// ---------------------------------------------------------------------------------------
// Sinks: a file (O_APPEND, reopened on SIGHUP) or a standard stream ("-"), written by a
// native writer thread (native/log_writer.h) that the event loops' access logs share.

export interface SinkOptions {
  flushIntervalMs?: number; // buffered data is written at least this often (default 1000)
  maxBufferBytes?: number; // beyond this, with the sink blocked, new lines are dropped (default 4 MiB)
  highWaterBytes?: number; // write as soon as this much is buffered (default 64 KiB)
  onWarning?: (message: string) => void; // told once per failure episode; default: stderr
}

/** Writes to stderr, ignoring every error (last resort for warnings). */
function stderrQuietly(text: string): void {
  try {
    fs.writeSync(2, text);
  } catch {
    // nowhere left to complain
  }
}

/** A buffered append-only destination shared by the loggers that write to the same place. */
export class LogSink {
  readonly target: string; // absolute path, or '-' for the standard stream
  readonly #writer: NativeLogWriter;
  readonly #stdFd: 1 | 2;
  #closed = false;
  #warn: (message: string) => void;

  /** `target` '-' writes to `stdFd` (1 or 2); a path is opened for appending (0640).
   *  Throws "cannot open log file '…': ENOENT: …". */
  constructor(target: string, stdFd: 1 | 2, options: SinkOptions = {}) {
    this.target = target;
    this.#stdFd = stdFd;
    this.#warn = options.onWarning ?? ((m) => stderrQuietly(`lisod: ${m}\n`));
    const { flushIntervalMs, maxBufferBytes, highWaterBytes } = options;
    this.#writer = new native.LogWriter(target, stdFd, { flushIntervalMs, maxBufferBytes, highWaterBytes }, (m) => this.#warn(m));
  }

  /** The native writer's process-wide id: event loops (any thread) write access lines to it. */
  get id(): number {
    return this.#closed ? 0 : this.#writer.id;
  }

  get name(): string {
    return this.target === '-' ? (this.#stdFd === 1 ? 'stdout' : 'stderr') : this.target;
  }

  /** Routes later warnings elsewhere (e.g. to the error log once it exists). */
  setWarningHandler(handler: (message: string) => void): void {
    this.#warn = handler;
  }

  /** Buffers whole lines; `soon` has them written at once instead of within the interval. */
  write(text: string, soon = false): void {
    if (!this.#closed) this.#writer.write(text, soon);
  }

  /** Writes everything buffered now (waits at most a second for a blocked pipe). Never throws. */
  flush(): void {
    if (!this.#closed) this.#writer.flush();
  }

  /** Reopens the file at the same path (after logrotate moved it). Keeps the old file on error. */
  reopen(): void {
    if (this.target === '-' || this.#closed) return;
    try {
      this.#writer.reopen();
    } catch (e) {
      this.#warn(`${(e as Error).message}; still writing to the old file`);
    }
  }

  /** Flushes and lets go of the file; later writes are ignored. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer.close();
  }
}

// ---------------------------------------------------------------------------------------
// The two logs.

export class ErrorLog implements Logger {
  constructor(
    private readonly sink: LogSink,
    private readonly pid = process.pid,
    private readonly now: () => Date = () => new Date(),
  ) {}

  log(level: Level, message: string): void {
    this.sink.write(formatErrorLine(level, message, this.now(), this.pid), true);
  }

  error(msg: string): void {
    this.log('error', msg);
  }

  warn(msg: string): void {
    this.log('warn', msg);
  }

  info(msg: string): void {
    this.log('info', msg);
  }
}

/**
 * Both logs of a running lisod. They share one sink when they name the same file (the Liso
 * form's single log): one native writer owns the file, error lines (from here) and access
 * lines (from the event loops) go through it whole, so they never interleave mid-line.
 */
export class Logs {
  readonly error: ErrorLog;
  readonly access: LogSink | null; // the event loops write to it by its id
  private readonly sinks: LogSink[];

  private constructor(error: ErrorLog, access: LogSink | null, sinks: LogSink[]) {
    this.error = error;
    this.access = access;
    this.sinks = sinks;
  }

  /** errorLog: path or '-' (stderr); accessLog: path, '-' (stdout) or null (off). Throws
   *  "cannot open log file '…': …" when a file cannot be opened. */
  static open(errorLog: string, accessLog: string | null, options: SinkOptions = {}): Logs {
    const errorSink = new LogSink(errorLog, 2, options);
    const sinks = [errorSink];
    let accessSink: LogSink | null = null;
    if (accessLog !== null) {
      if (accessLog !== '-' && accessLog === errorLog) {
        accessSink = errorSink;
      } else {
        try {
          accessSink = new LogSink(accessLog, 1, options);
        } catch (e) {
          errorSink.close();
          throw e;
        }
        sinks.push(accessSink);
      }
    }
    const error = new ErrorLog(errorSink);
    if (accessSink !== null && accessSink !== errorSink) {
      accessSink.setWarningHandler((m) => error.warn(m)); // access-log trouble goes to the error log
    }
    return new Logs(error, accessSink, sinks);
  }

  /** The access log's native writer for ServerConfig.accessLogWriter; 0 when off. */
  get accessId(): number {
    return this.access?.id ?? 0;
  }

  /** SIGHUP: reopen files moved away by logrotate. */
  reopen(): void {
    for (const s of this.sinks) s.reopen();
  }

  flush(): void {
    for (const s of this.sinks) s.flush();
  }

  /** The access log first: a warning it gives on its last flush still reaches the error log. */
  close(): void {
    for (const s of [...this.sinks].reverse()) s.close();
  }
}
