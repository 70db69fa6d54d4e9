// The application seam: what the shared runner (src/app_runner.ts) needs from a way of running
// an application — a CGI process per request, or a FastCGI backend connection. The runner owns
// everything else (environment, Status/Location rules, body buffering, limits, timeouts).

/**
 * One running application exchange: the request body in, the CGI-style response (RFC 3875 §6:
 * header lines, a blank line, the body — or an NPH status line) out.
 *
 * Contract:
 * - `stdout` emits 'data' chunks and then 'end' once at the end of the response stream; the
 *   runner may pause() it for backpressure and resume() it later.
 * - 'close' is emitted exactly once, after which the runner frees the exchange's slot. It comes
 *   after stdout's 'end', after `complete()`, `kill()` or `terminate()` once the transport has
 *   nothing left running for this exchange (CGI: the script process itself has exited; what it
 *   left behind has been signalled), or on failure (`kind: 'fail'`) — possibly without 'end'.
 * - `complete()`: the runner has the whole response (its framing said so, or it will discard
 *   the rest) and reads nothing more; the transport keeps draining stdout without emitting
 *   to it if it must, ends the exchange as soon as it can and then emits 'close'.
 * - None of the methods throws; calling any of them after 'close' does nothing.
 */
export interface AppProcess {
  readonly label: string; // for logs, e.g. "flaskr.cgi[1234]", "fastcgi /php/#3"
  readonly stdin: AppInput | null; // null unless the transport was opened with body 'stream'
  readonly stdout: AppOutput; // the CGI response stream (head + body)
  readonly stderr: AppOutput; // lines go to the error log with the label
  on(event: 'close', cb: (end: AppEnd) => void): this;
  /** The response is complete or no longer wanted: finish quickly, then 'close'. */
  complete(): void;
  /** Client gone / shutdown: graceful (CGI: SIGTERM group, SIGKILL later; FastCGI: drop the backend connection). */
  terminate(): void;
  /** Timeout / bad output: at once (CGI: SIGKILL the whole process group, leader alive or not). */
  kill(): void;
}

export type AppEnd =
  | { kind: 'exit'; code: number | null; signal: string | null } // CGI: the script's exit; FastCGI: appStatus
  | { kind: 'fail'; status: 500 | 502 | 503 | 504; reason: string }; // e.g. cannot start, backend refused, overloaded

/** The request body as a stream (body 'stream'); a Writable-like subset. */
export interface AppInput {
  write(b: Buffer): boolean; // false: wait for 'drain'
  end(): void; // after the last write
  once(e: 'drain', cb: () => void): void;
  on(e: 'close' | 'error', cb: (...a: unknown[]) => void): void; // 'close': takes no more (stop sending)
  destroy(): void;
}

export interface AppOutput {
  on(e: 'data', cb: (b: Buffer) => void): void;
  on(e: 'end', cb: () => void): void;
  pause(): void;
  resume(): void;
}

/** A request body as the runner hands it over: none, streamed via stdin, or fully buffered. */
export type AppBody = 'none' | 'stream' | Buffer | AppBodyFile;

/** A buffered body in an (already unlinked) spool file: the transport owns `fd` and closes it. */
export interface AppBodyFile {
  fd: number;
  length: number;
}

export interface AppTransport {
  readonly name: string; // "cgi" | "fastcgi" — for messages
  /**
   * Starts one exchange. `env` is the complete RFC 3875 environment built by the runner (the
   * transport adds nothing request-specific). Throws an Error (the runner answers 500) when the
   * application cannot be started at all; failures found later (a CGI script that cannot be
   * run: 500) arrive as 'close' with `kind: 'fail'`. When `body` is a file, the transport owns
   * its fd even when it throws.
   */
  open(env: Record<string, string>, body: AppBody): AppProcess;
  /** Shutdown of this event loop: nothing new is opened afterwards. Optional. */
  stop?(): void;
}
