// One extra event loop (workers = N), run in a worker thread: its own native server on the main
// thread's ports (SO_REUSEPORT) and its own CGI runner. Access lines go straight to the main
// thread's native log writer; error lines, readiness and signals go through the main thread
// (workers.ts), which owns the log files, the lock and the signal handlers.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { toServerConfig } from './config.js';
import { tlsClientSpec } from './config_tls_client.js';
import type { Level, Logger } from './log.js';
import { createEventLoop, type EventLoop } from './event_loop.js';
import { native } from './native.js';
import type { FromWorker, LogItem, ToWorker, WorkerData } from './workers.js';

const kCountEveryMs = 1000; // connection count to the main thread while serving …
const kCountStoppingMs = 25; // … and while finishing in-flight requests

if (parentPort === null) throw new Error('worker.ts is the entry of a lisod worker thread, not a program');
const port: MessagePort = parentPort;
const post = (m: FromWorker): void => port.postMessage(m);

// Error lines are collected and posted once per turn of the event loop, so the main thread
// gets one message per burst.
let outbox: LogItem[] = [];
let flushing: NodeJS.Immediate | null = null;
const flush = (): void => {
  if (flushing !== null) clearImmediate(flushing);
  flushing = null;
  if (outbox.length === 0) return;
  post({ type: 'logs', items: outbox });
  outbox = [];
};
const queue = (item: LogItem): void => {
  outbox.push(item);
  flushing ??= setImmediate(flush);
};
const line = (level: Level) => (message: string): void => queue({ kind: 'line', level, message });
const logger: Logger = { error: line('error'), warn: line('warn'), info: line('info') };

/** This loop's server and CGI runner on the main thread's ports; null (after telling the main
 *  thread why) when they cannot be created. */
function start(data: WorkerData): EventLoop | null {
  try {
    const serverConfig = { ...toServerConfig(data.config), listeners: data.listeners, reusePort: true };
    return createEventLoop(native, data.config, serverConfig, data.accessLog, logger);
  } catch (e) {
    flush();
    post({ type: 'failed', message: (e as Error).message });
    port.close(); // nothing else keeps the thread alive: it ends
    return null;
  }
}

/** Serves until the main thread says 'close'. */
function serve({ server, cgi }: EventLoop): void {
  const countConnections = (): void => post({ type: 'connections', count: server.connectionCount() });
  let counter = setInterval(countConnections, kCountEveryMs);
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'stop':
        server.stopWhenIdle();
        setTimeout(countConnections, 0); // after this turn, in which the idle ones close
        clearInterval(counter);
        counter = setInterval(countConnections, kCountStoppingMs);
        return;
      case 'reload': {
        let error: string | null = null;
        try {
          if (m.tls !== null) server.reloadTls(m.tls.tlsKey, m.tls.tlsCert, tlsClientSpec(m.tls.tlsClient));
          server.setAccess(m.access);
        } catch (e) {
          error = (e as Error).message;
        }
        post({ type: 'reloaded', seq: m.seq, error });
        return;
      }
      case 'accessLog':
        try {
          server.setAccessLog(m.id);
        } catch (e) {
          logger.error(`cannot switch the access log: ${(e as Error).message}`);
        }
        return;
      case 'close':
        clearInterval(counter);
        cgi.stop();
        server.close(); // its last access lines are in the shared writer
        flush();
        post({ type: 'closed' });
        port.close();
        return;
    }
  });
  post({ type: 'ready' });
}

const loop = start(workerData as WorkerData);
if (loop !== null) serve(loop);
