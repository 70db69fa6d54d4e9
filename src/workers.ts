// workers = N: the main thread's side of the N-1 extra event loops (worker threads running
// worker.ts on the same ports via SO_REUSEPORT): start-up, logs, signals fanned out, restarts.
import { Worker } from 'node:worker_threads';
import type { LisodConfig } from './config.js';
import type { Level, Logger, Logs } from './log.js';
import type { TlsClientConfig } from './config_tls_client.js';
import type { AccessRuleSpec, BoundAddress, ListenerSpec } from './native.js';

/** What a reload hands every loop when HTTPS is on: certificate and client-certificate settings. */
export interface TlsReload {
  tlsKey: string;
  tlsCert: string;
  tlsClient: TlsClientConfig | null;
}

/** What a worker loop is started with (its `workerData`). */
export interface WorkerData {
  index: number; // 1 … workers-1; loop 0 is the main thread
  config: LisodConfig; // this loop's share of the limits (loopShare)
  listeners: ListenerSpec[]; // the main thread's listeners with the ports it bound
  accessLog: number; // the native LogWriter id every loop writes access lines to (0 = off)
}

/** Main thread → worker. */
export type ToWorker =
  | { type: 'stop' } // stop accepting; report connections until none are left
  | { type: 'reload'; seq: number; tls: TlsReload | null; access: AccessRuleSpec[] }
  | { type: 'accessLog'; id: number } // the access log moved (reload): write to this LogWriter
  | { type: 'close' }; // close everything now, flush logs, answer 'closed'

/** One error-log line of a worker's batch (access lines go to the native writer directly). */
export type LogItem = { kind: 'line'; level: Level; message: string };

/** Worker → main thread. */
export type FromWorker =
  | { type: 'ready' } // listening on every port
  | { type: 'failed'; message: string } // could not start (one line, as the main server's errors)
  | { type: 'logs'; items: LogItem[] }
  | { type: 'connections'; count: number } // open connections (every second; every 25 ms once stopping)
  | { type: 'reloaded'; seq: number; error: string | null }
  | { type: 'closed' };

export interface RestartPolicy {
  minMs: number; // first delay before restarting a loop that died
  maxMs: number; // the delay doubles up to this
  stableMs: number; // a loop that ran this long before dying restarts after minMs again
}

export interface WorkerLoopsOptions {
  entry?: URL; // the thread's module (default: worker.js beside this file)
  restart?: Partial<RestartPolicy>;
  startTimeoutMs?: number; // a loop not ready by then is a start failure (default 30 s)
}

const kDefaultRestart: RestartPolicy = { minMs: 100, maxMs: 30_000, stableMs: 60_000 };
const kReplyTimeoutMs = 5000; // reload answers; 'closed' answers
const kCountWaitMs = 500; // stop: wait this long at most for each loop's first count

/** `total` divided among `n` loops: loop `index` gets its part, never less than `min`. */
export function splitLimit(total: number, n: number, index: number, min: number): number {
  return Math.max(min, Math.floor(total / n) + (index < total % n ? 1 : 0));
}

/**
 * Loop `index`'s configuration: max_connections, the [cgi] process and queue limits and each
 * [[fastcgi]] mount's max_conns and max_queue are process-wide totals, divided among the
 * loops (each still runs at least one request per mount).
 */
export function loopShare(config: LisodConfig, index: number): LisodConfig {
  const n = config.workers;
  if (n <= 1) return config;
  return {
    ...config,
    maxConnections: splitLimit(config.maxConnections, n, index, 1),
    cgi: config.cgi && {
      ...config.cgi,
      maxProcesses: splitLimit(config.cgi.maxProcesses, n, index, 1),
      maxRunnable: config.cgi.maxRunnable === 0 ? 0 : splitLimit(config.cgi.maxRunnable, n, index, 1),
      maxQueue: splitLimit(config.cgi.maxQueue, n, index, 0),
    },
    fastcgi: config.fastcgi.map((m) => ({
      ...m, maxConns: splitLimit(m.maxConns, n, index, 1), maxQueue: splitLimit(m.maxQueue, n, index, 0),
    })),
    spool: { ...config.spool, maxBytes: splitLimit(config.spool.maxBytes, n, index, 0) },
  };
}

/** The listeners the other loops open: the configured ones with the ports the main thread got
 *  (port 0 becomes the port the system picked). `bound` is in configuration order. */
export function boundListeners(configured: ListenerSpec[], bound: BoundAddress[]): ListenerSpec[] {
  if (bound.length !== configured.length) throw new Error(`${bound.length} listeners bound for ${configured.length} configured`);
  return configured.map((l, i) => ({ ...l, port: bound[i]!.port }));
}

interface Loop {
  index: number;
  thread: Worker | null; // null while waiting to restart, and once closed
  ready: boolean;
  readySince: number;
  connections: number; // last count reported
  counted: boolean; // a count arrived since 'stop' was sent
  delayMs: number; // next restart delay
  restartTimer: NodeJS.Timeout | null;
  replies: Map<number, (error: string | null) => void>; // reload seq → answer
  closed: (() => void) | null; // waiting for 'closed' or exit
}

/** The extra event loops of one lisod (none when workers = 1). */
export class WorkerLoops {
  readonly #loops: Loop[] = [];
  readonly #logs: () => Logs;
  readonly #logger: Logger;
  readonly #entry: URL;
  readonly #restart: RestartPolicy;
  readonly #startTimeoutMs: number;
  readonly #listeners: ListenerSpec[];
  #config: LisodConfig;
  #seq = 0;
  #stopping = false;
  #closing = false;

  private constructor(config: LisodConfig, listeners: ListenerSpec[], logs: () => Logs, logger: Logger, options: WorkerLoopsOptions) {
    this.#config = config;
    this.#listeners = listeners;
    this.#logs = logs;
    this.#logger = logger;
    this.#entry = options.entry ?? new URL('./worker.js', import.meta.url);
    this.#restart = { ...kDefaultRestart, ...options.restart };
    this.#startTimeoutMs = options.startTimeoutMs ?? 30_000;
  }

  /**
   * Starts loops 1 … workers-1 on the ports the main thread bound (`bound`, in the order of
   * toServerConfig(config).listeners) and resolves once every one of them listens. Rejects
   * with "event loop i of n: <why>" after stopping the others when one cannot start.
   */
  static async start(config: LisodConfig, listeners: ListenerSpec[], logs: () => Logs, logger: Logger,
    options: WorkerLoopsOptions = {}): Promise<WorkerLoops> {
    const loops = new WorkerLoops(config, listeners, logs, logger, options);
    for (let index = 1; index < config.workers; index++) {
      loops.#loops.push({
        index, thread: null, ready: false, readySince: 0, connections: 0, counted: false,
        delayMs: loops.#restart.minMs, restartTimer: null, replies: new Map(), closed: null,
      });
    }
    const started = await Promise.allSettled(loops.#loops.map((l) => loops.#spawn(l)));
    const failed = started.findIndex((r) => r.status === 'rejected');
    if (failed >= 0) {
      await loops.terminate();
      const why = ((started[failed] as PromiseRejectedResult).reason as Error).message;
      throw new Error(`event loop ${failed + 2} of ${config.workers}: ${why}`);
    }
    return loops;
  }

  /** Event loops in all, the main thread's included. */
  get count(): number {
    return this.#loops.length + 1;
  }

  /** Open connections on the worker loops. Once stopping, a loop that has not reported since
   *  counts as one, so that the caller keeps waiting for it. */
  inFlight(): number {
    let n = 0;
    for (const l of this.#loops) {
      if (l.thread === null || !l.ready) continue;
      n += this.#stopping && !l.counted ? 1 : l.connections;
    }
    return n;
  }

  /** SIGTERM/SIGINT: every loop stops accepting and finishes its current responses.
   *  Resolves once every running loop has counted its connections since (idle keep-alives
   *  closed), so that inFlight() is then exact; after kCountWaitMs at most. */
  async stopWhenIdle(): Promise<void> {
    this.#stopping = true;
    for (const l of this.#loops) {
      this.#cancelRestart(l);
      l.counted = false;
      this.#send(l, { type: 'stop' });
    }
    const deadline = Date.now() + kCountWaitMs;
    const waiting = (): boolean => this.#loops.some((l) => l.thread !== null && l.ready && !l.counted);
    while (waiting() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  /**
   * SIGHUP: every running loop loads the new key and certificate (a loop restarted later
   * starts with them). Resolves with one message per loop that kept its old certificate.
   */
  async reloadTls(tls: TlsReload | null, access: AccessRuleSpec[]): Promise<string[]> {
    if (tls !== null) this.#config = { ...this.#config, tlsKey: tls.tlsKey, tlsCert: tls.tlsCert, tlsClient: tls.tlsClient };
    this.#config = { ...this.#config, access };
    const seq = ++this.#seq;
    const answers = await Promise.all(this.#loops.filter((l) => l.thread !== null).map((l) => new Promise<string | null>((resolve) => {
      const timer = setTimeout(() => answer('did not answer within 5 s'), kReplyTimeoutMs);
      const answer = (error: string | null): void => {
        clearTimeout(timer);
        l.replies.delete(seq);
        resolve(error === null ? null : `event loop ${l.index + 1} kept its old certificate: ${error}`);
      };
      l.replies.set(seq, answer);
      this.#send(l, { type: 'reload', seq, tls, access });
    })));
    return answers.filter((a): a is string => a !== null);
  }

  /** Reload moved the access log: every running loop writes to LogWriter `id` from now on
   *  (a loop started later gets it from the logs). */
  setAccessLog(id: number): void {
    for (const l of this.#loops) this.#send(l, { type: 'accessLog', id });
  }

  /** Closes every loop now (after its logs are in), then ends the threads. */
  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#loops.map((l) => new Promise<void>((resolve) => {
      this.#cancelRestart(l);
      if (l.thread === null) return resolve();
      const timer = setTimeout(() => done(), kReplyTimeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        l.closed = null;
        resolve();
      };
      l.closed = done;
      this.#send(l, { type: 'close' });
    })));
    await this.terminate();
  }

  /** Ends every thread at once (start-up failure, after close). */
  async terminate(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#loops.map(async (l) => {
      this.#cancelRestart(l);
      const t = l.thread;
      l.thread = null;
      if (t !== null) await t.terminate();
    }));
  }

  // -------------------------------------------------------------------------------------

  /** Starts loop `l`'s thread; resolves when it listens, rejects with why it could not. */
  #spawn(l: Loop): Promise<void> {
    const data: WorkerData = {
      index: l.index, config: loopShare(this.#config, l.index), listeners: this.#listeners, accessLog: this.#logs().accessId ?? 0,
    };
    const thread = new Worker(this.#entry, { workerData: data });
    l.thread = thread;
    l.ready = false;
    l.connections = 0;
    l.counted = false;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let crash: Error | null = null;
      const settle = (error: Error | null): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === null) {
          l.ready = true;
          l.readySince = Date.now();
          resolve();
        } else {
          if (l.thread === thread) l.thread = null;
          void thread.terminate();
          reject(error);
        }
      };
      const timer = setTimeout(() => settle(new Error(`not listening after ${this.#startTimeoutMs / 1000} s`)), this.#startTimeoutMs);
      thread.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'ready': return settle(null);
          case 'failed': return settle(new Error(m.message));
          case 'logs': return this.#writeLogs(m.items);
          case 'connections':
            l.connections = m.count;
            l.counted = true;
            return;
          case 'reloaded': return l.replies.get(m.seq)?.(m.error);
          case 'closed': return l.closed?.();
        }
      });
      thread.on('error', (e) => {
        crash = e;
        settle(new Error(firstLine(e)));
      });
      thread.on('exit', (code) => {
        if (!settled) settle(new Error(`exited with code ${code} before listening`));
        if (l.thread !== thread) return; // replaced, terminated or never started
        l.thread = null;
        l.ready = false;
        for (const answer of [...l.replies.values()]) answer(null); // its replacement loads the new certificate
        l.closed?.();
        if (!this.#closing) this.#died(l, code, crash);
      });
    });
  }

  /** A loop's thread ended on its own: log it, and restart it unless lisod is stopping. */
  #died(l: Loop, code: number, crash: Error | null): void {
    const name = `event loop ${l.index + 1} of ${this.count}`;
    const why = crash !== null ? `internal error: ${crash.stack ?? crash.message}` : `thread exited with code ${code}`;
    if (this.#stopping) {
      this.#logger.error(`${name} ended while stopping (${why})`);
      return;
    }
    if (Date.now() - l.readySince >= this.#restart.stableMs) l.delayMs = this.#restart.minMs;
    this.#logger.error(`${name} stopped (${why}); restarting it in ${l.delayMs} ms`);
    this.#scheduleRestart(l);
  }

  #scheduleRestart(l: Loop): void {
    const delay = l.delayMs;
    l.delayMs = Math.min(l.delayMs * 2, this.#restart.maxMs);
    l.restartTimer = setTimeout(() => {
      l.restartTimer = null;
      if (this.#closing || this.#stopping) return;
      this.#spawn(l).then(
        () => this.#logger.info(`event loop ${l.index + 1} of ${this.count} restarted`),
        (e: Error) => {
          if (this.#closing || this.#stopping) return;
          this.#logger.error(`event loop ${l.index + 1} of ${this.count} could not restart: ${e.message}; next try in ${l.delayMs} ms`);
          this.#scheduleRestart(l);
        },
      );
    }, delay);
  }

  #cancelRestart(l: Loop): void {
    if (l.restartTimer !== null) clearTimeout(l.restartTimer);
    l.restartTimer = null;
  }

  #send(l: Loop, message: ToWorker): void {
    l.thread?.postMessage(message);
  }

  /** A worker's error lines, written with the main thread's error log (one log stream). */
  #writeLogs(items: LogItem[]): void {
    const logs = this.#logs();
    for (const item of items) logs.error[item.level](item.message);
  }
}

function firstLine(e: Error): string {
  return (e.message || String(e)).split('\n')[0]!;
}
