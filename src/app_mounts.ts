// The application mounts of one event loop: the Liso CGI script behind /cgi/ (unless a
// [[fastcgi]] mount serves it) and one runner per [[fastcgi]] mount, each request handed to
// the runner whose prefix the native server matched (CgiRequest.mount).
import path from 'node:path';
import { AppRunner, inheritedEnv } from './app_runner.js';
import { SpoolBudget } from './app_spool.js';
import { CgiRunner, kCgiPrefix } from './cgi.js';
import { appPrefixes, type LisodConfig } from './config.js';
import type { FastCgiMount } from './config_fastcgi.js';
import { FastCgiTransport } from './fastcgi/backend.js';
import { RootRouter } from './fastcgi/route.js';
import type { Logger } from './log.js';
import type { FastCgiNativeMount, NativeHandlers, NativeServer } from './native.js';

interface Shared {
  serverName: string;
  spoolDir: string;
  spoolBudget: SpoolBudget;
}

/** The runner of one [[fastcgi]] mount; `m.socket` is set (for command mounts: the supervisor's). */
/** What every request to mount `m` carries besides its own variables (runner and native client alike). */
function fastCgiInherited(m: FastCgiMount): Record<string, string> {
  // With command, env/pass_env are the processes' own environment, not per-request PARAMS.
  // REDIRECT_STATUS: php-cgi (cgi.force_redirect) serves only requests that carry it, as
  // lighttpd and nginx's fastcgi_params send it.
  return { REDIRECT_STATUS: '200', ...(m.command !== null ? {} : inheritedEnv(m.passEnv, m.env)) };
}

/**
 * The mounts the native FastCGI client serves in the addon's poll loop (no JavaScript per
 * request; native/fastcgi_client.h says which requests it leaves to the runners here).
 * LISOD_FASTCGI_NATIVE=0 in the environment leaves every request to the runners (for
 * comparisons and diagnosis).
 */
export function nativeFastCgiMounts(config: LisodConfig, env: NodeJS.ProcessEnv = process.env): FastCgiNativeMount[] {
  if (env.LISOD_FASTCGI_NATIVE === '0') return [];
  const order = appPrefixes(config);
  return config.fastcgi.map((m) => ({
    mount: order.indexOf(m.prefix),
    prefix: m.prefix,
    address: m.socket ?? '',
    root: m.root,
    index: m.index,
    scriptFilename: m.command?.[0] ?? '',
    inherited: fastCgiInherited(m),
    serverName: config.serverName,
    timeoutMs: m.timeoutMs,
    connectTimeoutMs: m.connectTimeoutMs,
    maxConns: m.maxConns,
    maxQueue: m.maxQueue,
    requestBuffering: m.requestBuffering,
    pipeline: m.pipeline,
  }));
}

/**
 * The [cgi] mount as the native client runs it (native/cgi_run.cc: a process per request in
 * the addon's poll loop, no JavaScript per request; the CgiRunner here keeps what it leaves,
 * see native/fastcgi_client.h). LISOD_CGI_NATIVE=0 leaves every CGI request to the runner.
 */
export function nativeCgiMounts(config: LisodConfig, env: NodeJS.ProcessEnv = process.env): FastCgiNativeMount[] {
  const c = config.cgi;
  if (c === null || env.LISOD_CGI_NATIVE === '0') return [];
  return [{
    mount: appPrefixes(config).indexOf(kCgiPrefix),
    prefix: kCgiPrefix,
    address: '',
    root: null,
    index: null,
    scriptFilename: path.resolve(c.script),
    inherited: inheritedEnv(c.passEnv, c.env),
    serverName: config.serverName,
    timeoutMs: c.timeoutMs,
    connectTimeoutMs: c.timeoutMs,
    maxConns: c.maxProcesses,
    maxQueue: c.maxQueue,
    requestBuffering: c.requestBuffering,
    pipeline: false,
    cgi: true,
    endAfterResponse: c.endAfterResponse,
    maxRunnable: c.maxRunnable,
  }];
}

/** Every mount the native client serves: the [cgi] one and the [[fastcgi]] ones. */
export function nativeAppMounts(config: LisodConfig, env: NodeJS.ProcessEnv = process.env): FastCgiNativeMount[] {
  return [...nativeCgiMounts(config, env), ...nativeFastCgiMounts(config, env)];
}

/** nativeToo: the native client serves the mount's common requests; the runner then keeps
 *  no idle connection of its own, which would hold a backend process (php-fpm child) that
 *  the native pool's connections wait for. */
export function fastCgiRunner(m: FastCgiMount, shared: Shared, logger: Logger, nativeToo = false): AppRunner {
  if (m.socket === null) throw new Error(`[[fastcgi]] ${m.prefix}/: no backend address (is its supervisor running?)`);
  const transport = new FastCgiTransport({
    address: m.socket, mount: `${m.prefix}/`, connectTimeoutMs: m.connectTimeoutMs, maxConns: m.maxConns,
    maxIdle: nativeToo ? 0 : m.maxConns,
  });
  const router = m.root === null ? null : new RootRouter(m.prefix, m.root, m.index);
  return new AppRunner({
    prefix: m.prefix,
    transport,
    scriptFilename: m.command?.[0] ?? '',
    route: router === null ? undefined : (target) => router.route(target),
    timeoutMs: m.timeoutMs,
    maxProcesses: m.maxConns,
    maxQueue: m.maxQueue,
    requestBuffering: m.requestBuffering,
    inherited: fastCgiInherited(m),
    ...shared,
  }, logger);
}

export class AppMounts {
  readonly runners: AppRunner[];
  readonly handlers: Pick<NativeHandlers, 'request' | 'body' | 'close' | 'drain' | 'slot'>;
  #server: NativeServer | undefined;
  readonly #native: FastCgiNativeMount[];

  /** native: the mounts the server's native client serves too (nativeAppMounts), whose slots
   *  and queue the runner of the same mount then shares. */
  constructor(config: LisodConfig, logger: Logger, native: FastCgiNativeMount[] = []) {
    this.#native = native;
    const shared: Shared = {
      serverName: config.serverName, spoolDir: config.spool.dir, spoolBudget: new SpoolBudget(config.spool.maxBytes),
    };
    this.runners = [
      ...(config.cgi ? [new CgiRunner({ ...config.cgi, ...shared }, logger)] : []),
      ...config.fastcgi.map((m) => fastCgiRunner(m, shared, logger, native.some((n) => n.prefix === m.prefix))),
    ];
    const order = appPrefixes(config);
    if (order.join() !== this.runners.map((r) => r.prefix).join()) throw new Error('app mounts out of order');
    // Body, close and drain events carry only the request id: every runner gets them and
    // ignores ids that are not its own (a map lookup each; there are few mounts).
    const runners = this.runners;
    // A granted slot no runner waits for any more is given back, or the mount would lose it.
    const slot = (ticket: number): void => {
      if (!runners.some((r) => r.handlers.slot(ticket))) this.#server?.appSlotRelease(ticket);
    };
    this.handlers = runners.length === 1 ? { ...runners[0]!.handlers, slot } : {
      slot,
      request: (req) => {
        const runner = runners[req.mount ?? 0];
        if (!runner) throw new Error(`request for unknown mount ${req.mount}`);
        runner.handlers.request(req);
      },
      body: (id, chunk) => { for (const r of runners) r.handlers.body(id, chunk); },
      close: (id) => { for (const r of runners) r.handlers.close(id); },
      drain: (id) => { for (const r of runners) r.handlers.drain(id); },
    };
  }

  /** Hands the server its requests' runners, and its native client the mounts it serves. */
  attach(server: NativeServer): void {
    const native = this.#native;
    this.#server = server;
    if (native.length > 0) server.setFastcgi(native);
    for (const r of this.runners) r.attach(server, native.find((m) => m.prefix === r.prefix)?.mount);
  }

  stop(): void {
    for (const r of this.runners) r.stop();
  }
}
