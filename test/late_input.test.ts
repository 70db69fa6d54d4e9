// LateInput (src/late_input.ts): a CGI script's stdin while the script is still starting.
import test from 'ava';
import { EventEmitter } from 'node:events';
import type net from 'node:net';
import { LateInput } from '../src/late_input.js';

/** A stand-in for the stdin pipe's socket: records what it gets; write() answers `room`. */
class FakePipe extends EventEmitter {
  written: string[] = [];
  ended = false;
  destroyed = false;
  room = true;
  write(b: Buffer): boolean {
    this.written.push(b.toString());
    return this.room;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

const asSocket = (p: FakePipe): net.Socket => p as unknown as net.Socket;

test('writes before the pipe wait, in order, and say false; the pipe gets them, then drain', (t) => {
  const input = new LateInput();
  let drains = 0;
  input.on('drain', () => drains++);
  t.false(input.write(Buffer.from('a')));
  t.false(input.write(Buffer.from('b')));
  const pipe = new FakePipe();
  input.attach(asSocket(pipe));
  t.deepEqual(pipe.written, ['a', 'b']);
  t.is(drains, 1);
  t.true(input.write(Buffer.from('c')));
  t.deepEqual(pipe.written, ['a', 'b', 'c']);
  input.end();
  t.true(pipe.ended);
});

test("a full pipe at attach: no drain until the pipe's own", (t) => {
  const input = new LateInput();
  let drains = 0;
  input.on('drain', () => drains++);
  input.write(Buffer.from('big'));
  const pipe = new FakePipe();
  pipe.room = false;
  input.attach(asSocket(pipe));
  t.is(drains, 0);
  pipe.emit('drain');
  t.is(drains, 1);
});

test('an end before the pipe: the pipe gets the body and its end, no drain', (t) => {
  const input = new LateInput();
  let drains = 0;
  input.on('drain', () => drains++);
  input.write(Buffer.from('body'));
  input.end();
  t.false(input.write(Buffer.from('after end')), 'nothing after the end is kept');
  const pipe = new FakePipe();
  input.attach(asSocket(pipe));
  t.deepEqual(pipe.written, ['body']);
  t.true(pipe.ended);
  t.is(drains, 0);
});

test('destroyed before the pipe: close on the next tick, and the pipe is destroyed when it comes', async (t) => {
  const input = new LateInput();
  input.write(Buffer.from('x'));
  const closed = new Promise<void>((resolve) => input.on('close', () => resolve()));
  input.destroy();
  input.destroy(); // once is enough
  await closed;
  const pipe = new FakePipe();
  input.attach(asSocket(pipe));
  t.true(pipe.destroyed);
  t.deepEqual(pipe.written, []);
});

test("the pipe's close and errors reach the runner; an error nobody listens to is dropped", (t) => {
  const input = new LateInput();
  const pipe = new FakePipe();
  input.attach(asSocket(pipe));
  t.notThrows(() => pipe.emit('error', new Error('EPIPE')));
  const errors: Error[] = [];
  input.on('error', (e: Error) => errors.push(e));
  pipe.emit('error', new Error('EPIPE'));
  t.is(errors.length, 1);
  let closed = false;
  input.on('close', () => { closed = true; });
  pipe.emit('close');
  t.true(closed);
  input.destroy();
  t.true(pipe.destroyed);
});
