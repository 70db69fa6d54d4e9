// Error log ("<ISO time> <level> lisod[<pid>]: <message>") and access log (Combined Log
// Format): buffered, flushed at least once a second and on exit; a failing sink never crashes.
import fs from 'node:fs';
import type { AccessRecord } from './native.js';

/** What other modules (CGI runner, signals, …) log through. */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
}

export type Level = 'error' | 'warn' | 'info';

// ---------------------------------------------------------------------------------------
// Formatting (pure).

const kMonths = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const hex = (c: string): string => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Escapes '"' and '\' with a backslash and control characters as \n, \t, \r or \xHH. */
export function escapeLogField(s: string): string {
  return s.replace(/["\\\x00-\x1f\x7f]/g, (c) => {
    switch (c) {
      case '"': return '\\"';
      case '\\': return '\\\\';
      case '\n': return '\\n';
      case '\r': return '\\r';
      case '\t': return '\\t';
      default: return hex(c);
    }
  });
}

/** One error-log line (with its newline); control characters in the message are escaped. */
export function formatErrorLine(level: Level, message: string, when: Date, pid: number): string {
  const text = message.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => (c === '\n' ? '\\n' : c === '\r' ? '\\r' : hex(c)));
  return `${when.toISOString()} ${level} lisod[${pid}]: ${text}\n`;
}

/**
 * CLF timestamp without brackets, "10/Oct/2000:13:55:36 -0700", in the zone that is
 * `offsetMinutes` east of UTC (default: the local zone at that instant).
 */
export function formatClfTime(ms: number, offsetMinutes = -new Date(ms).getTimezoneOffset()): string {
  const d = new Date(ms + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const off = Math.abs(offsetMinutes);
  return `${pad(d.getUTCDate())}/${kMonths[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} ` +
    `${sign}${pad(Math.floor(off / 60))}${pad(off % 60)}`;
}

/** "-" for an empty field, else the escaped text. */
const field = (s: string): string => (s === '' ? '-' : escapeLogField(s));

/** %u, the verified client certificate's CN: unquoted in CLF, so spaces are escaped too. */
const userField = (s: string): string => (s === '' ? '-' : escapeLogField(s).replaceAll(' ', '\\x20'));

/**
 * One Combined Log Format line (with its newline):
 * host - user [time] "METHOD target VERSION" status bytes "referer" "user-agent".
 * IPv4-mapped IPv6 peers are written as plain IPv4; a request without a method (unparsable)
 * is written as "-"; 0 bytes as "-" (Apache %b).
 */
export function formatAccessRecord(r: AccessRecord, offsetMinutes?: number): string {
  const [remote, ms, method, target, version, status, bytes, referer, agent, user = ''] = r;
  const host = remote === '' ? '-' : remote.replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i, '$1');
  const request = method === '' ? '-' : escapeLogField([method, target, version].filter((x) => x !== '').join(' '));
  return `${host} - ${userField(user)} [${formatClfTime(ms, offsetMinutes)}] "${request}" ${status} ${bytes > 0 ? bytes : '-'} ` +
    `"${field(referer)}" "${field(agent)}"\n`;
}

// ---------------------------------------------------------------------------------------
// Sinks: a file (O_APPEND, reopened on SIGHUP) or a standard stream ("-").

export interface SinkOptions {
  flushIntervalMs?: number; // buffered data is written at least this often (default 1000)
  maxBufferBytes?: number; // beyond this, with the sink blocked (EAGAIN), new lines are dropped
  highWaterBytes?: number; // write as soon as this much is buffered (default 64 KiB)
  onWarning?: (message: string) => void; // told once per failure episode; default: stderr
}

const kFailCodes: Record<string, string> = {
  EPIPE: 'reader went away',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large',
  EIO: 'I/O error',
  EBADF: 'file descriptor closed',
};

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
  private fd_: number;
  private readonly ownsFd_: boolean;
  private pending_: Buffer[] = [];
  private pendingBytes_ = 0;
  private timer_: NodeJS.Timeout | null = null;
  private soon_: NodeJS.Immediate | null = null;
  private failing_ = false; // a warning was given; quiet until a write succeeds again
  private dropped_ = 0;
  private closed_ = false;
  private readonly interval_: number;
  private readonly maxBuffer_: number;
  private readonly highWater_: number;
  private warn_: (message: string) => void;

  /** `target` '-' writes to `stdFd` (1 or 2); a path is opened for appending (0640). */
  constructor(target: string, stdFd: 1 | 2, options: SinkOptions = {}) {
    this.target = target;
    this.interval_ = options.flushIntervalMs ?? 1000;
    this.maxBuffer_ = options.maxBufferBytes ?? 4 << 20;
    this.highWater_ = options.highWaterBytes ?? 64 << 10;
    this.warn_ = options.onWarning ?? ((m) => stderrQuietly(`lisod: ${m}\n`));
    if (target === '-') {
      this.fd_ = stdFd;
      this.ownsFd_ = false;
    } else {
      this.fd_ = LogSink.open(target);
      this.ownsFd_ = true;
    }
  }

  private static open(file: string): number {
    try {
      return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT, 0o640); // libuv adds O_CLOEXEC
    } catch (e) {
      throw new Error(`cannot open log file '${file}': ${(e as Error).message}`);
    }
  }

  get name(): string {
    return this.target === '-' ? (this.fd_ === 1 ? 'stdout' : 'stderr') : this.target;
  }

  /** Routes later warnings elsewhere (e.g. to the error log once it exists). */
  setWarningHandler(handler: (message: string) => void): void {
    this.warn_ = handler;
  }

  /** Buffers text; `soon` writes it on the next turn of the event loop instead of ≤ 1 s. */
  write(text: string, soon = false): void {
    if (this.closed_) return;
    if (this.pendingBytes_ >= this.maxBuffer_) {
      this.dropped_++;
      return;
    }
    const buf = Buffer.from(text);
    this.pending_.push(buf);
    this.pendingBytes_ += buf.length;
    if (this.pendingBytes_ >= this.highWater_) {
      this.flush();
    } else if (soon) {
      this.soon_ ??= setImmediate(() => {
        this.soon_ = null;
        this.flush();
      });
    } else if (this.timer_ === null) {
      this.timer_ = setTimeout(() => {
        this.timer_ = null;
        this.flush();
      }, this.interval_);
      this.timer_.unref();
    }
  }

  /** Writes everything buffered now (synchronously). Never throws. */
  flush(): void {
    if (this.timer_ !== null) {
      clearTimeout(this.timer_);
      this.timer_ = null;
    }
    if (this.soon_ !== null) {
      clearImmediate(this.soon_);
      this.soon_ = null;
    }
    if (this.pendingBytes_ === 0) return;
    const data = this.pending_.length === 1 ? this.pending_[0]! : Buffer.concat(this.pending_);
    this.pending_ = [];
    this.pendingBytes_ = 0;
    let off = 0;
    while (off < data.length) {
      try {
        off += fs.writeSync(this.fd_, data, off);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (code === 'EAGAIN' && !this.closed_) {
          // A non-blocking pipe is full: keep the rest and try again later.
          this.pending_ = [data.subarray(off)];
          this.pendingBytes_ = data.length - off;
          this.timer_ = setTimeout(() => {
            this.timer_ = null;
            this.flush();
          }, Math.min(this.interval_, 100));
          this.timer_.unref();
          return;
        }
        this.fail(code, e as Error);
        return;
      }
    }
    if (this.failing_ || this.dropped_ > 0) {
      const dropped = this.dropped_;
      this.failing_ = false;
      this.dropped_ = 0;
      this.warn_(`log ${this.name}: writing again${dropped > 0 ? ` (${dropped} line batch(es) dropped while blocked)` : ''}`);
    }
  }

  private fail(code: string, e: Error): void {
    if (this.failing_) return; // already reported; drop quietly
    this.failing_ = true;
    this.warn_(`log ${this.name}: ${kFailCodes[code] ?? e.message}; dropping log lines until writes succeed again`);
  }

  /** Reopens the file at the same path (after logrotate moved it). Keeps the old fd on error. */
  reopen(): void {
    if (!this.ownsFd_ || this.closed_) return;
    this.flush();
    let fd: number;
    try {
      fd = LogSink.open(this.target);
    } catch (e) {
      this.warn_(`${(e as Error).message}; still writing to the old file`);
      return;
    }
    const old = this.fd_;
    this.fd_ = fd;
    this.failing_ = false;
    try {
      fs.closeSync(old);
    } catch {
      // already closed
    }
  }

  /** Flushes and closes the file; later writes are ignored. */
  close(): void {
    if (this.closed_) return;
    this.flush();
    this.closed_ = true;
    if (this.ownsFd_) {
      try {
        fs.closeSync(this.fd_);
      } catch {
        // already closed
      }
    }
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

export class AccessLog {
  constructor(
    private readonly sink: LogSink,
    private readonly offsetMinutes?: number, // default: local zone
  ) {}

  /** Formats a batch from the native server; one buffered write. */
  write(records: AccessRecord[]): void {
    let text = '';
    for (const r of records) text += formatAccessRecord(r, this.offsetMinutes);
    if (text !== '') this.sink.write(text);
  }
}

/**
 * Both logs of a running lisod. They share one sink when they name the same file (the Liso
 * form's single log), so lines never interleave mid-line.
 */
export class Logs {
  readonly error: ErrorLog;
  readonly access: AccessLog | null;
  private readonly sinks: LogSink[];

  private constructor(error: ErrorLog, access: AccessLog | null, sinks: LogSink[]) {
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
    return new Logs(error, accessSink ? new AccessLog(accessSink) : null, sinks);
  }

  /** SIGHUP: reopen files moved away by logrotate. */
  reopen(): void {
    for (const s of this.sinks) s.reopen();
  }

  flush(): void {
    for (const s of this.sinks) s.flush();
  }

  close(): void {
    for (const s of this.sinks) s.close();
  }
}
