// One event loop of lisod, on the main thread or a worker thread: the native server with
// the CGI runner behind /cgi/, access lines to a native log writer, errors to the logger.
import { SpoolBudget } from './app_spool.js';
import { CgiRunner } from './cgi.js';
import type { LisodConfig } from './config.js';
import type { Logger } from './log.js';
import type { NativeAddon, NativeServer, ServerConfig } from './native.js';

export interface EventLoop {
  server: NativeServer;
  cgi: CgiRunner;
}

/** Binds and starts serving; throws (with the native message) when a port or key fails.
 *  accessLogWriter: the LogSink id the loop writes access lines to natively (0 = none). */
export function createEventLoop(native: NativeAddon, config: LisodConfig, serverConfig: ServerConfig,
  accessLogWriter: number, logger: Logger): EventLoop {
  const spool = { spoolDir: config.spool.dir, spoolBudget: new SpoolBudget(config.spool.maxBytes) }; // every mount of this loop
  const cgi = new CgiRunner({ ...config.cgi, serverName: config.serverName, ...spool }, logger);
  const server = new native.Server({ ...serverConfig, accessLogWriter }, {
    request: (req) => cgi.handlers.request(req),
    body: (id, chunk) => cgi.handlers.body(id, chunk),
    close: (id) => cgi.handlers.close(id),
    drain: (id) => cgi.handlers.drain(id),
    error: (level, message) => logger[level](message),
  });
  cgi.attach(server);
  return { server, cgi };
}
