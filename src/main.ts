#!/usr/bin/env node
// lisod, top to bottom: parse the command line, load the configuration, open the logs, start
// the native server with the CGI runner behind /cgi/, announce the listeners, stop on a signal.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CgiRunner } from './cgi.js';
import { kUsage, kUsageExitCode, kUsageHint, parseCli, type RunOptions } from './cli.js';
import { ConfigError, loadConfig, toServerConfig, type LisodConfig } from './config.js';
import { Logs } from './log.js';
import type { BoundAddress, NativeAddon, NativeServer } from './native.js';

/** Runs lisod with `argv` (process.argv.slice(2)); resolves with the exit status. */
export async function main(argv: string[]): Promise<number> {
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
  }

  const loaded = readConfiguration(cli.options);
  if (loaded === null) return 1;
  for (const w of loaded.warnings) complain(`lisod: warning: ${w}\n`);
  if (cli.action === 'check') {
    say(`lisod: configuration ${cli.options.configFile ?? '(command line)'} is valid\n`);
    return 0;
  }

  // Until daemonizing lands, the Liso form and --config both run in the foreground.
  return serve(loaded.config, { foreground: true, warnings: loaded.warnings });
}

function readConfiguration(options: RunOptions): ReturnType<typeof loadConfig> | null {
  try {
    return loadConfig({ ...options, cwd: process.cwd() });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    complain(`lisod: ${e.message}\n`);
    return null;
  }
}

export interface ServeOptions {
  foreground: boolean; // print the "listening on" lines on stdout
  warnings: string[]; // configuration warnings, repeated into the error log
  onReady?(addresses: BoundAddress[]): void; // every listener bound (daemon readiness)
  onStartFailure?(message: string): void; // start-up failed with this one-line message
}

/**
 * Serves `config` until SIGINT/SIGTERM; resolves with the exit status (1 when start-up
 * fails, after one "lisod: <message>" line on stderr). The daemon's re-spawned child calls
 * this too.
 */
export async function serve(config: LisodConfig, options: ServeOptions): Promise<number> {
  const toStderr = config.errorLog === '-'; // then the error log already is stderr
  const fail = (message: string, logs?: Logs): number => {
    if (!toStderr) logs?.error.error(message);
    logs?.close();
    complain(`lisod: ${message}\n`);
    options.onStartFailure?.(message);
    return 1;
  };

  let logs: Logs;
  try {
    logs = Logs.open(config.errorLog, config.accessLog);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (!toStderr) for (const w of options.warnings) logs.error.warn(w);
  process.on('exit', () => logs.close());

  let server: NativeServer;
  try {
    server = await startServer(config, logs);
  } catch (e) {
    return fail((e as Error).message, logs);
  }
  process.on('uncaughtException', (e) => {
    logs.error.error(`internal error: ${e.stack ?? e.message}`);
    logs.close();
    complain(`lisod: internal error: ${e.message}\n`);
    process.exit(1);
  });

  const stopSignal = nextStopSignal(); // before announcing: a signal right after must not kill us
  const addresses = server.addresses();
  const urls = addresses.map(listenerUrl);
  logs.error.info(`lisod ${readVersion()} serving ${config.www}; listening on ${urls.join(', ')}`);
  if (options.foreground) say(urls.map((u) => `lisod: listening on ${u}\n`).join(''));
  options.onReady?.(addresses);

  const signal = await stopSignal;
  logs.error.info(`received ${signal}: stopping`);
  server.stopAccepting();
  server.close();
  logs.error.info('stopped');
  logs.close();
  return 0;
}

/** Raises the fd limit, then creates the native server with its JavaScript handlers. */
async function startServer(config: LisodConfig, logs: Logs): Promise<NativeServer> {
  const native = await loadAddon();

  const fdLimit = native.raiseFdLimit();
  if (fdLimit < config.maxConnections + 64) {
    logs.error.warn(`open-file limit ${fdLimit} is below max_connections ${config.maxConnections} + 64; ` +
      'raise it (ulimit -n / LimitNOFILE=) or new connections will be refused');
  }

  const cgi = new CgiRunner({ ...config.cgi, serverName: config.serverName }, logs.error);
  const server = new native.Server(toServerConfig(config), {
    request: (req) => cgi.handlers.request(req),
    body: (id, chunk) => cgi.handlers.body(id, chunk),
    close: (id) => cgi.handlers.close(id),
    drain: (id) => cgi.handlers.drain(id),
    log: (records) => logs.access?.write(records),
    error: (level, message) => logs.error[level](message),
  });
  cgi.attach(server);
  return server;
}

/** The addon is loaded only when serving, so --help, --version and -t work without it. */
async function loadAddon(): Promise<NativeAddon> {
  try {
    return (await import('./native.js')).native;
  } catch (e) {
    throw new Error(`cannot load the native addon (${(e as Error).message.split('\n')[0]}); run npm install or npm run build`);
  }
}

/** "http://127.0.0.1:8080", "https://[::1]:8443". */
export function listenerUrl(a: BoundAddress): string {
  const host = a.host.includes(':') ? `[${a.host}]` : a.host;
  return `${a.tls ? 'https' : 'http'}://${host}:${a.port}`;
}

function nextStopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const once = (signal: NodeJS.Signals): void => {
      // Later signals are ignored: the stop under way is synchronous and exits.
      process.on('SIGINT', () => {});
      process.on('SIGTERM', () => {});
      resolve(signal);
    };
    process.once('SIGINT', once);
    process.once('SIGTERM', once);
  });
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
