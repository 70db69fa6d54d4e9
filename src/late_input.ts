// A CGI script's stdin before the script runs: the runner may stream the request body from
// the moment it opens the exchange, but the script is started on the addon's thread and its
// stdin pipe (a net.Socket) only exists afterwards. Writes wait here (write() says false, so
// the runner pauses the upload) and go to the pipe when it comes, followed by 'drain'.
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import type { AppInput } from './app_transport.js';

export class LateInput extends EventEmitter implements AppInput {
  #pipe: net.Socket | null = null;
  #queue: Buffer[] = [];
  #ended = false;
  #destroyed = false;

  write(b: Buffer): boolean {
    if (this.#pipe) return this.#pipe.write(b);
    if (!this.#destroyed && !this.#ended) this.#queue.push(b);
    return false;
  }

  end(): void {
    if (this.#pipe) this.#pipe.end();
    else this.#ended = true;
  }

  /** Nothing more goes in; before the pipe exists, 'close' follows on the next tick (as a socket's). */
  destroy(): void {
    if (this.#pipe) {
      this.#pipe.destroy();
      return;
    }
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#queue = [];
    process.nextTick(() => this.emit('close'));
  }

  /** The script runs: what waited goes into its stdin pipe, which carries everything from now on. */
  attach(pipe: net.Socket): void {
    if (this.#destroyed) {
      pipe.destroy();
      return;
    }
    this.#pipe = pipe;
    pipe.on('drain', () => this.emit('drain'));
    pipe.on('close', () => this.emit('close'));
    pipe.on('error', (e) => {
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    let room = true;
    for (const b of this.#queue) room = pipe.write(b);
    this.#queue = [];
    if (this.#ended) pipe.end();
    else if (room) this.emit('drain'); // the runner paused on write()'s false: go on
  }
}
