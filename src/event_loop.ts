// One event loop of lisod, on the main thread or a worker thread: the native server with
// the application mounts (/cgi/ and any [[fastcgi]]), access records to the given sink,
// errors to the logger.
import { AppMounts } from './app_mounts.js';
import type { LisodConfig } from './config.js';
import type { Logger } from './log.js';
import type { AccessRecord, NativeAddon, NativeServer, ServerConfig } from './native.js';

export interface EventLoop {
  server: NativeServer;
  cgi: AppMounts; // every application mount of this loop
}

/** Binds and starts serving; throws (with the native message) when a port or key fails. */
export function createEventLoop(native: NativeAddon, config: LisodConfig, serverConfig: ServerConfig,
  onAccess: (records: AccessRecord[]) => void, logger: Logger): EventLoop {
  const cgi = new AppMounts(config, logger);
  const server = new native.Server(serverConfig, {
    ...cgi.handlers,
    log: onAccess,
    error: (level, message) => logger[level](message),
  });
  cgi.attach(server);
  return { server, cgi };
}
