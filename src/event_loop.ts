// One event loop of lisod, on the main thread or a worker thread: the native server with
// the application mounts (the CGI runner behind /cgi/), access records to the given sink,
// errors to the logger.
import { AppMounts } from './app_mounts.js';
import { SpoolBudget } from './app_spool.js';
import { CgiRunner } from './cgi.js';
import type { LisodConfig } from './config.js';
import type { Logger } from './log.js';
import type { AccessRecord, NativeAddon, NativeServer, ServerConfig } from './native.js';

export interface EventLoop {
  server: NativeServer;
  apps: AppMounts;
}

/** Binds and starts serving; throws (with the native message) when a port or key fails. */
export function createEventLoop(native: NativeAddon, config: LisodConfig, serverConfig: ServerConfig,
  onAccess: (records: AccessRecord[]) => void, logger: Logger): EventLoop {
  const spool = { spoolDir: config.spool.dir, spoolBudget: new SpoolBudget(config.spool.maxBytes) }; // every mount of this loop
  const apps = new AppMounts([new CgiRunner({ ...config.cgi, serverName: config.serverName, ...spool }, logger)]);
  const server = new native.Server(serverConfig, {
    ...apps.handlers,
    log: onAccess,
    error: (level, message) => logger[level](message),
  });
  apps.attach(server);
  return { server, apps };
}
