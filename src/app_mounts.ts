// The application mounts of one event loop: dispatches the native server's application events
// to the runner whose prefix covers the request path (longest prefix, on a segment boundary),
// then by request id. Today only /cgi; FastCGI mounts are more runners in the same list.
import type { AppRunner } from './app_runner.js';
import { splitTarget } from './cgi_env.js';
import type { CgiRequest, NativeHandlers, NativeServer } from './native.js';

export class AppMounts {
  readonly handlers: Pick<NativeHandlers, 'request' | 'body' | 'close' | 'drain'>;
  readonly runners: readonly AppRunner[]; // longest prefix first
  #server: NativeServer | undefined;

  constructor(runners: AppRunner[]) {
    this.runners = [...runners].sort((a, b) => b.prefix.length - a.prefix.length);
    this.handlers = {
      request: (req) => this.#onRequest(req),
      body: (id, chunk) => this.#owner(id)?.handlers.body(id, chunk),
      close: (id) => this.#owner(id)?.handlers.close(id),
      drain: (id) => this.#owner(id)?.handlers.drain(id),
    };
  }

  attach(server: NativeServer): void {
    this.#server = server;
    for (const r of this.runners) r.attach(server);
  }

  /** Shutdown: every runner terminates what it runs. */
  stop(): void {
    for (const r of this.runners) r.stop();
  }

  /** The runner for a request-target, if a mount covers its path. */
  match(target: string): AppRunner | undefined {
    const { path } = splitTarget(target);
    return this.runners.find((r) => path === r.prefix || path.startsWith(r.prefix + '/'));
  }

  #owner(id: number): AppRunner | undefined {
    return this.runners.find((r) => r.owns(id));
  }

  #onRequest(req: CgiRequest): void {
    const runner = this.match(req.target);
    if (runner) {
      runner.handlers.request(req);
      return;
    }
    // The native router sent a path no mount serves (its prefixes and ours disagree).
    const body = Buffer.from('No application is mounted at this path.\n');
    this.#server?.beginResponse(req.id, 404, 'Not Found', ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(body.length)]);
    this.#server?.write(req.id, body);
    this.#server?.end(req.id);
  }
}
