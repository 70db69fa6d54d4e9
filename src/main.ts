#!/usr/bin/env node
// lisod, top to bottom: parse the command line and load the configuration; then check it,
// signal a running lisod, launch the daemon, or serve until a signal stops it.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AppMounts } from './app_mounts.js';
import { kUsage, kUsageExitCode, kUsageHint, parseCli, type ControlVerb, type RunOptions } from './cli.js';
import { ConfigError, loadConfig, toServerConfig, type ConfigSources, type LisodConfig } from './config.js';
import { tlsClientSpec } from './config_tls_client.js';
import { DaemonChild, launchDaemon } from './daemon.js';
import { createEventLoop, type EventLoop } from './event_loop.js';
import { exposureWarnings } from './exposure.js';
import { FastCgiBackends } from './fastcgi/backends.js';
import { Logs, type Logger } from './log.js';
import type { BoundAddress, NativeAddon, NativeHandlers, NativeServer } from './native.js';
import { installSignalHandlers, type SignalHooks } from './signals.js';
import { WorkerLoops, boundListeners, loopShare } from './workers.js';

/** Runs lisod with `argv` (process.argv.slice(2)); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'pki') { // the built-in CA: no configuration, no addon
    const { pkiMain } = await import('./pki/cli.js');
    return pkiMain(argv.slice(1), { out: say, err: complain });
  }
  const cli = parseCli(argv);
  switch (cli.action) {
    case 'help':
      say(`${kUsage}\n`);
      return 0;
    case 'version':
      say(`lisod ${readVersion()}\n`);
      return 0;
    case 'usage-error':
      complain(`lisod: ${cli.message}\n${kUsageHint}\n`);
      return kUsageExitCode;
    case 'control':
      return controlDaemon(cli.verb, cli.options);
  }

  // Every path is resolved against the starting directory, before the daemon leaves it.
  const daemon = DaemonChild.fromEnvironment(); // non-null in the re-spawned daemon only
  const sources: ConfigSources = { ...cli.options, cwd: process.cwd() };
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(sources);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    daemon?.fail(e.message);
    complain(`lisod: ${e.message}\n`);
    return 1;
  }
  const { config } = loaded;
  const warnings = [...loaded.warnings, ...exposureWarnings(config, process.geteuid?.() ?? null, process.env)];
  if (daemon === null) for (const w of warnings) complain(`lisod: warning: ${w}\n`);

  if (cli.action === 'check') return checkConfiguration(config, cli.options);
  if (daemon === null && !cli.options.foreground) return launch(config);
  daemon?.detach(); // cwd '/', umask 027
  return serve(config, { sources, foreground: daemon === null, warnings, daemon });
}

// ---------------------------------------------------------------------------------------
// -t, stop|reload|status, and the launcher.

/** -t: the configuration loaded; also load the key and certificate as the server will. */
async function checkConfiguration(config: LisodConfig, options: RunOptions): Promise<number> {
  if (config.httpsPort !== null) {
    try {
      checkTls(await loadAddon(), config);
    } catch (e) {
      complain(`lisod: ${(e as Error).message}\n`);
      return 1;
    }
  }
  say(`lisod: configuration ${options.configFile ?? '(command line)'} is valid\n`);
  return 0;
}

/** Builds the native TLS context (one HTTPS listener on a loopback ephemeral port) and drops
 *  it: a key that does not match its certificate, or unusable PEM, throws with the file. */
function checkTls(native: NativeAddon, config: LisodConfig): void {
  const noop = (): void => {};
  const handlers: NativeHandlers = { request: noop, body: noop, close: noop, drain: noop, error: noop };
  const probe = new native.Server({ ...toServerConfig(config), listeners: [{ host: '127.0.0.1', port: 0, tls: true }], accessLog: false }, handlers);
  probe.close();
}

/**
 * `lisod … stop|reload|status`. Only the lock file and shutdown_grace are needed, so the
 * configuration is read without checking paths (a missing certificate must not prevent
 * stopping the daemon). reload also validates the new configuration as -t does: when it is
 * invalid the SIGHUP is still sent (logs are reopened, e.g. after logrotate; the daemon
 * keeps its running configuration) and the command says why and exits 1.
 */
async function controlDaemon(verb: ControlVerb, options: RunOptions): Promise<number> {
  const { control, controlSettings, kLsb } = await import('./control.js'); // loads the addon
  const cwd = process.cwd();
  let settings: ReturnType<typeof controlSettings>;
  try {
    settings = controlSettings(options.configFile, options.liso?.lock ?? null, cwd);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    complain(`lisod: ${e.message}\n`);
    return verb === 'status' ? kLsb.unknown : kLsb.notConfigured;
  }
  if (settings.lockFile === null) {
    complain(`lisod: ${verb}: no lock_file in ${options.configFile}; lisod finds the daemon through its lock file\n`);
    return verb === 'status' ? kLsb.unknown : kLsb.notConfigured;
  }
  let invalid: string | null = null;
  if (verb === 'reload') {
    try {
      const full = loadConfig({ ...options, cwd });
      for (const w of full.warnings) complain(`lisod: warning: ${w}\n`);
      if (full.config.httpsPort !== null) checkTls(await loadAddon(), full.config);
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      invalid = e.message;
    }
  }
  const result = await control(verb, settings.lockFile, { stopTimeoutMs: settings.graceMs + 5000 });
  if (invalid !== null && result.code === kLsb.ok) {
    complain(`lisod: ${invalid}; the running lisod only reopens its logs and keeps its configuration\n`);
    return kLsb.failed;
  }
  if (invalid !== null) complain(`lisod: ${invalid}\n`);
  (result.error ? complain : say)(`${result.message}\n`);
  return result.code;
}

/** Starts the daemon and waits until it serves (exit 0) or reports why it cannot (exit 1). */
async function launch(config: LisodConfig): Promise<number> {
  if (config.errorLog === '-') {
    complain('lisod: warning: error_log is "-" (stderr), which is /dev/null once lisod detaches; set a file or use --foreground\n');
  }
  if (config.accessLog === '-') {
    complain('lisod: warning: access_log is "-" (stdout), which is /dev/null once lisod detaches; set a file or use --foreground\n');
  }
  const result = await launchDaemon();
  if (!result.ok) {
    complain(`lisod: ${result.message}\n`);
    return 1;
  }
  say(result.notes.map((n) => `lisod: ${n}\n`).join(''));
  return 0;
}

// ---------------------------------------------------------------------------------------
// Serving.

export interface ServeOptions {
  sources: ConfigSources; // re-read on SIGHUP (cwd: the directory lisod was started from)
  foreground: boolean; // print the "listening on" lines on stdout
  warnings: string[]; // configuration warnings, repeated into the error log
  daemon: DaemonChild | null; // the launcher waiting for "ready"/"error"
}

/** What serve() loads at run time: everything that needs the addon. */
interface Runtime {
  native: NativeAddon;
  lockfile: typeof import('./lockfile.js');
  notify: typeof import('./sd_notify.js');
  privileges: typeof import('./privileges.js');
}

/** The addon is loaded only when serving, so --help, --version and the launcher work without it. */
async function loadAddon(): Promise<NativeAddon> {
  try {
    return (await import('./native.js')).loadNative();
  } catch (e) {
    throw new Error(`cannot load the native addon (${(e as Error).message.split('\n')[0]}); run npm install or npm run build`);
  }
}

async function loadRuntime(): Promise<Runtime> {
  const native = await loadAddon();
  const [lockfile, notify, privileges] = await Promise.all([
    import('./lockfile.js'), import('./sd_notify.js'), import('./privileges.js'),
  ]);
  return { native, lockfile, notify, privileges };
}

/**
 * Serves `config` until SIGTERM/SIGINT (graceful: in-flight requests get shutdown_grace)
 * and reloads on SIGHUP; resolves with the exit status. Start-up failures resolve with 1
 * after one "lisod: <message>" line on stderr (in a daemon: told to the launcher) and leave
 * nothing behind: no lock, no listener.
 */
export async function serve(config: LisodConfig, options: ServeOptions): Promise<number> {
  const { daemon } = options;
  let logs: Logs | null = null;
  let lock: { release(): void } | null = null;
  let server: NativeServer | null = null;
  let cgi: AppMounts | null = null;
  let loops: WorkerLoops | null = null; // the other event loops (workers = N)
  let backends: FastCgiBackends | null = null; // [[fastcgi]] command processes
  let notifier: import('./sd_notify.js').Notifier | null = null;
  let logTargets = { error: config.errorLog, access: config.accessLog }; // what `logs` writes to
  let stopWatchdog = (): void => {};
  let reload: (() => Promise<void>) | null = null; // set once serving
  let stopped = false;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((resolve) => { finish = resolve; });
  const errorToStderr = (): boolean => logs === null || logTargets.error === '-';

  // Log through whatever `logs` is now (SIGHUP may replace it).
  const logger: Logger = {
    error: (m) => logs?.error.error(m),
    warn: (m) => logs?.error.warn(m),
    info: (m) => logs?.error.info(m),
  };

  // Signals first: from here on SIGHUP reloads instead of killing, SIGTERM stops cleanly.
  const hooks: SignalHooks = {
    graceMs: config.shutdownGraceMs,
    stopAccepting: async () => {
      notifier?.stopping();
      server?.stopWhenIdle(); // listeners closed, idle keep-alives closed, responses finish
      // The idle ones close at the end of this loop turn: count after it (and the workers').
      await Promise.all([loops?.stopWhenIdle(), new Promise((r) => setTimeout(r, 0))]);
    },
    inFlight: () => (server?.connectionCount() ?? 0) + (loops?.inFlight() ?? 0),
    close: async () => {
      stopWatchdog();
      cgi?.stop();
      server?.close();
      await loops?.close(); // their last access records are written first
      await backends?.stop();
      logger.info('stopped');
      lock?.release(); // the PID leaves the lock file
      logs?.close();
    },
    reload: async () => {
      if (reload === null) logger.info('still starting: nothing to reload');
      else await reload();
    },
    log: (level, message) => {
      if (logs !== null) logs.error[level](message);
      else complain(`lisod: ${message}\n`);
    },
    exit: (code) => {
      stopped = true;
      finish(code);
    },
  };
  const signals = installSignalHandlers(hooks);

  const fail = (message: string): number => {
    if (!errorToStderr()) logger.error(`cannot start: ${message}`);
    complain(`lisod: ${message}\n`);
    daemon?.fail(message);
    signals.dispose();
    server?.close();
    void backends?.stop();
    lock?.release();
    logs?.close();
    return 1;
  };

  let rt: Runtime;
  try {
    rt = await loadRuntime();
  } catch (e) {
    return fail((e as Error).message);
  }
  if (stopped) { // SIGTERM/SIGINT while the addon loaded
    daemon?.fail('stopped by a signal while starting');
    return finished;
  }

  // 1. Logs: errors from here on are also in the error log.
  try {
    logs = Logs.open(config.errorLog, config.accessLog);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (!errorToStderr()) for (const w of options.warnings) logger.warn(w);
  process.on('exit', () => logs?.close());
  notifier = rt.notify.createNotifier((m) => logger.warn(m));

  // 2. The lock: a second lisod stops here, before touching the first one's ports.
  if (config.lockFile !== null) {
    try {
      lock = rt.lockfile.acquireLock(config.lockFile);
    } catch (e) {
      return fail((e as Error).message);
    }
  }

  // 3. Listeners, certificates, CGI runner; with workers = N, N-1 more event loops (threads)
  //    open the ports the main thread got and must all be listening before lisod is ready.
  //    [[fastcgi]] command mounts get their sockets first: every loop connects to them.
  try {
    backends = new FastCgiBackends(config, logger);
    const wired = backends.wire(config);
    ({ server, cgi } = startServer(rt.native, wired, () => logs!, logger));
    const listeners = boundListeners(toServerConfig(config).listeners, server.addresses());
    loops = await WorkerLoops.start(wired, listeners, () => logs!, logger);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (stopped) { // SIGTERM/SIGINT while the event loops started
    daemon?.fail('stopped by a signal while starting');
    return finished;
  }

  // 4. As root: give up root now that the ports are bound and the key is read; then start
  //    the [[fastcgi]] command processes (as the user, like CGI scripts).
  try {
    dropPrivileges(rt, config, logger, backends.ownedPaths);
    backends.start();
  } catch (e) {
    return fail((e as Error).message);
  }

  process.on('uncaughtException', (e) => {
    logger.error(`internal error: ${e.stack ?? e.message}`);
    daemon?.fail(`internal error: ${e.message}`);
    lock?.release();
    logs?.close();
    complain(`lisod: internal error: ${e.message}\n`);
    process.exit(1);
  });

  // 5. Serving: tell the terminal, systemd and the launcher.
  const urls = server.addresses().map(listenerUrl);
  const loopCount = loops.count > 1 ? `, ${loops.count} event loops` : '';
  logger.info(`lisod ${readVersion()} started (pid ${process.pid}${daemon ? ', daemon' : ''}${loopCount}): serving ${config.www}; listening on ${urls.join(', ')}`);
  if (options.foreground) say(urls.map((u) => `lisod: listening on ${u}\n`).join(''));
  logs.flush();
  notifier.ready(`serving on ${urls.join(', ')}`);
  stopWatchdog = notifier.startWatchdog();
  daemon?.ready([...urls.map((u) => `listening on ${u}`), `running in the background (pid ${process.pid})`]);

  // SIGHUP: reopen the logs, re-read the configuration and the certificates. Applied
  // live: certificates, log files, shutdown_grace; the rest is reported as needing a
  // restart. Anything invalid throws before a change is made (signals.ts logs it).
  reload = async (): Promise<void> => {
    notifier?.reloading();
    try {
      logs!.reopen();
      const next = loadConfig(options.sources);
      for (const w of next.warnings) logger.warn(w);
      const fresh = next.config;
      const moved = fresh.errorLog !== logTargets.error || fresh.accessLog !== logTargets.access;
      const freshLogs = moved ? Logs.open(fresh.errorLog, fresh.accessLog) : null; // throws: nothing changed yet
      try {
        // Certificate, client CA and CRL for new connections; [[access]] for every request.
        const tls = fresh.httpsPort !== null && config.httpsPort !== null
          ? { tlsKey: fresh.tlsKey!, tlsCert: fresh.tlsCert!, tlsClient: fresh.tlsClient } : null;
        if (tls !== null) server!.reloadTls(tls.tlsKey, tls.tlsCert, tlsClientSpec(tls.tlsClient));
        server!.setAccess(fresh.access);
        for (const kept of await loops!.reloadTls(tls, fresh.access)) logger.error(`reload: ${kept}`);
      } catch (e) {
        freshLogs?.close();
        throw e;
      }
      if (freshLogs !== null) {
        logger.info(`now logging to ${fresh.errorLog}${fresh.accessLog !== null ? ` and ${fresh.accessLog}` : ''}`);
        server!.setAccessLog(freshLogs.accessId); // the loops switch, then the old writer goes
        loops!.setAccessLog(freshLogs.accessId);
        logs!.close();
        logs = freshLogs;
        logTargets = { error: fresh.errorLog, access: fresh.accessLog };
      }
      hooks.graceMs = fresh.shutdownGraceMs;
      backends?.reload(); // new code is picked up; requests in flight finish on the old processes
      const pending = restartOnlyChanges(config, fresh);
      if (pending.length > 0) logger.warn(`reload: ${pending.join(', ')} changed; restart lisod to apply`);
      logger.info(`reloaded${config.httpsPort !== null ? ` (certificate ${fresh.tlsCert})` : ''}`);
    } finally {
      logs?.flush();
      notifier?.ready();
    }
  };

  return finished;
}

/** Raises the fd limit, then creates the native server with the CGI runner behind /cgi/. */
function startServer(native: NativeAddon, config: LisodConfig, logs: () => Logs, logger: Logger): EventLoop {
  const fdLimit = native.raiseFdLimit();
  if (fdLimit < config.maxConnections + 64) {
    logger.warn(`open-file limit ${fdLimit} is below max_connections ${config.maxConnections} + 64; ` +
      'raise it (ulimit -n / LimitNOFILE=) or new connections will be refused');
  }
  const share = loopShare(config, 0); // limits are divided among the event loops
  return createEventLoop(native, share, toServerConfig(share), logs().accessId, logger);
}

/** `user = …`: switch to it when root (log files handed over first, for reopening). */
function dropPrivileges(rt: Runtime, config: LisodConfig, logger: Logger, alsoOwned: string[] = []): void {
  if (config.user === null) return; // running as root without it: an exposure warning

  const owned = [config.errorLog, config.accessLog, ...alsoOwned].filter((f): f is string => f !== null && f !== '-');
  const r = rt.privileges.dropPrivileges(config.user, owned);
  if (r.dropped) logger.info(`switched to user ${config.user} (uid ${r.uid}, gid ${r.gid})`);
  else logger.warn(r.reason);
}

/** Settings a reload cannot apply to the running server (it was built with them). */
export function restartOnlyChanges(running: LisodConfig, next: LisodConfig): string[] {
  const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
  const keys: Array<[string, (c: LisodConfig) => unknown]> = [
    ['http_port', (c) => c.httpPort], ['https_port', (c) => c.httpsPort], ['bind', (c) => c.bind],
    ['www', (c) => c.www], ['lock_file', (c) => c.lockFile], ['user', (c) => c.user],
    ['access_log on/off', (c) => c.accessLog === null], ['server_name', (c) => c.serverName],
    ['max_connections', (c) => c.maxConnections], ['max_body_bytes', (c) => c.maxBodyBytes],
    ['max_header_bytes', (c) => c.maxHeaderBytes], ['max_line_bytes', (c) => c.maxLineBytes],
    ['max_target_bytes', (c) => c.maxTargetBytes], ['header_timeout', (c) => c.headerTimeoutMs],
    ['body_timeout', (c) => c.bodyTimeoutMs], ['body_total_timeout', (c) => c.bodyTotalTimeoutMs], ['keep_alive_timeout', (c) => c.keepAliveTimeoutMs],
    ['send_timeout', (c) => c.sendTimeoutMs], ['workers', (c) => c.workers], ['[cgi]', (c) => c.cgi],
    ['tls_session_resumption', (c) => c.tlsResumption], ['spool_dir/spool_max_bytes', (c) => c.spool],
    ['[[fastcgi]]', (c) => c.fastcgi.map(({ origin: _, ...m }) => m)],
    ['http2/http2_max_concurrent_streams', (c) => c.http2],
    ['[compress]', (c) => c.compress],
  ];
  return keys.filter(([, get]) => !same(get(running), get(next))).map(([name]) => name);
}

/** "http://127.0.0.1:8080", "https://[::1]:8443". */
export function listenerUrl(a: BoundAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${a.tls ? 'https' : 'http'}://${host}:${a.port}`;
}

function readVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Writes to stdout/stderr synchronously, ignoring EPIPE (e.g. `lisod --help | head -1`). */
function say(text: string): void {
  writeQuietly(1, text);
}

function complain(text: string): void {
  writeQuietly(2, text);
}

function writeQuietly(fd: 1 | 2, text: string): void {
  const data = Buffer.from(text);
  let off = 0;
  try {
    while (off < data.length) off += fs.writeSync(fd, data, off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return; // EPIPE …: the reader is gone
    const stream = fd === 1 ? process.stdout : process.stderr; // non-blocking pipe: let Node queue it
    stream.on('error', () => {});
    stream.write(data.subarray(off));
  }
}

function invokedDirectly(): boolean {
  if (!process.argv[1]) return false;
  try {
    return fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      complain(`lisod: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
