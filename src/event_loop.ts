// One event loop of lisod, on the main thread or a worker thread: the native server with
// the application mounts (/cgi/ and any [[fastcgi]]), access lines to a native log writer,
// errors to the logger.
import { AppMounts, nativeAppMounts } from './app_mounts.js';
import type { LisodConfig } from './config.js';
import type { Logger } from './log.js';
import type { NativeAddon, NativeServer, ServerConfig } from './native.js';

export interface EventLoop {
  server: NativeServer;
  cgi: AppMounts; // every application mount of this loop
}

/** Binds and starts serving; throws (with the native message) when a port or key fails.
 *  accessLogWriter: the LogSink id the loop writes access lines to natively (0 = none). */
export function createEventLoop(native: NativeAddon, config: LisodConfig, serverConfig: ServerConfig,
  accessLogWriter: number, logger: Logger): EventLoop {
  const cgi = new AppMounts(config, logger, nativeAppMounts(config));
  const server = new native.Server({ ...serverConfig, accessLogWriter }, {
    ...cgi.handlers,
    error: (level, message) => logger[level](message),
  });
  cgi.attach(server);
  return { server, cgi };
}
