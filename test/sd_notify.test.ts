// sd_notify through the addon against a real unix datagram socket (a tiny /usr/bin/python3
// listener: Node has no unix datagram sockets): path and '@abstract' addresses, the
// READY/RELOADING/STOPPING/STATUS/WATCHDOG messages, and failures that never throw.
import test, { type ExecutionContext } from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { native } from '../src/native.js';
import { createNotifier, reloadingMessage, watchdogIntervalMs } from '../src/sd_notify.js';
import { tempDir } from './helpers/tmp.js';

const kPython = '/usr/bin/python3';
const kListener = `
import json, socket, sys, time
address = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + address[1:] if address.startswith('@') else address)
print(json.dumps({'bound': True}), flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps({'msg': data.decode(), 'monoUsec': time.monotonic_ns() // 1000}), flush=True)
`;

interface Datagram {
  msg: string;
  monoUsec: number; // the listener's CLOCK_MONOTONIC at receipt
}

interface Listener {
  next(timeoutMs?: number): Promise<Datagram>;
  stop(): void;
}

async function listen(address: string, children: ChildProcess[]): Promise<Listener> {
  const child = spawn(kPython, ['-c', kListener, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const read = async (timeoutMs: number): Promise<Record<string, unknown>> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no datagram within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const r = await Promise.race([lines.next(), timeout]);
      if (r.done) throw new Error('listener ended');
      return JSON.parse(r.value as string) as Record<string, unknown>;
    } finally {
      clearTimeout(timer);
    }
  };
  const first = await read(10_000);
  if (first.bound !== true) throw new Error('listener did not bind');
  return {
    next: async (timeoutMs = 5000) => (await read(timeoutMs)) as unknown as Datagram,
    stop: () => child.kill('SIGKILL'),
  };
}

/** Sets (or, for undefined, deletes) environment variables; the result restores them. */
function withEnv(vars: Record<string, string | undefined>): () => void {
  const set = (name: string, value: string | undefined): void => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  const saved = Object.keys(vars).map((name) => [name, process.env[name]] as const);
  for (const [name, value] of Object.entries(vars)) set(name, value);
  return () => {
    for (const [name, value] of saved) set(name, value);
  };
}

/** A listener on `address` with NOTIFY_SOCKET pointing at it, both undone after the test. */
async function notifySocket(t: ExecutionContext, address: string): Promise<Listener> {
  const children: ChildProcess[] = [];
  t.teardown(() => children.forEach((c) => c.kill('SIGKILL')));
  const listener = await listen(address, children);
  t.teardown(withEnv({ NOTIFY_SOCKET: address }));
  return listener;
}

const haveListener = fs.existsSync(kPython);

// Every test changes process.env.NOTIFY_SOCKET, so they run one at a time.
(haveListener ? test.serial : test.serial.skip)('READY, RELOADING with MONOTONIC_USEC, STOPPING and STATUS reach a socket path', async (t) => {
  const listener = await notifySocket(t, path.join(tempDir('lisod-notify-'), 'notify.sock'));

  const warnings: string[] = [];
  const notifier = createNotifier((m) => warnings.push(m));
  t.true(notifier.enabled);

  notifier.ready('serving on 2 listeners\nsecond line');
  t.is((await listener.next()).msg, 'READY=1\nSTATUS=serving on 2 listeners second line');

  notifier.reloading();
  const reloading = await listener.next();
  const m = /^RELOADING=1\nMONOTONIC_USEC=([0-9]+)$/.exec(reloading.msg);
  t.truthy(m, reloading.msg);
  // Same clock as the listener's CLOCK_MONOTONIC: sent before it was received, and recently.
  const sentUsec = Number(m![1]);
  t.true(sentUsec <= reloading.monoUsec, `${sentUsec} <= ${reloading.monoUsec}`);
  t.true(reloading.monoUsec - sentUsec < 5_000_000, `${reloading.monoUsec - sentUsec} µs apart`);

  notifier.ready();
  t.is((await listener.next()).msg, 'READY=1');
  notifier.status('draining 3 connections');
  t.is((await listener.next()).msg, 'STATUS=draining 3 connections');
  notifier.stopping();
  t.is((await listener.next()).msg, 'STOPPING=1');

  t.true(native.sdNotify('EXTEND_TIMEOUT_USEC=5000000'));
  t.is((await listener.next()).msg, 'EXTEND_TIMEOUT_USEC=5000000');
  t.deepEqual(warnings, []);
});

(haveListener ? test.serial : test.serial.skip)('an @abstract NOTIFY_SOCKET is reached in the abstract namespace', async (t) => {
  const address = `@lisod-test-${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
  const listener = await notifySocket(t, address);

  t.true(native.sdNotify('READY=1'));
  t.is((await listener.next()).msg, 'READY=1');
  // A file of that name was not involved.
  t.false(fs.existsSync(address));
});

(haveListener ? test.serial : test.serial.skip)('the watchdog pings at half of WATCHDOG_USEC and stops when told', async (t) => {
  const listener = await notifySocket(t, path.join(tempDir('lisod-notify-'), 'watchdog.sock'));
  t.teardown(withEnv({ WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid) }));

  const stop = createNotifier(() => {}).startWatchdog();
  t.is((await listener.next(2000)).msg, 'WATCHDOG=1');
  t.is((await listener.next(2000)).msg, 'WATCHDOG=1');
  stop();
  await t.throwsAsync(listener.next(400), { message: /no datagram/ });
});

test.serial('without NOTIFY_SOCKET nothing is sent and nothing throws', (t) => {
  t.teardown(withEnv({ NOTIFY_SOCKET: undefined }));
  t.false(native.sdNotify('READY=1'));
  const warnings: string[] = [];
  const notifier = createNotifier((m) => warnings.push(m));
  t.false(notifier.enabled);
  notifier.ready();
  notifier.reloading();
  notifier.stopping();
  t.deepEqual(warnings, []);
});

test.serial('send failures are warnings naming the socket, never exceptions', (t) => {
  const missing = path.join(tempDir('lisod-notify-'), 'absent.sock');
  t.teardown(withEnv({ NOTIFY_SOCKET: missing }));
  const e = t.throws(() => native.sdNotify('READY=1')) as NodeJS.ErrnoException;
  t.is(e.code, 'ENOENT');
  t.true(e.message.includes(missing), e.message);

  const warnings: string[] = [];
  createNotifier((m) => warnings.push(m)).ready();
  t.is(warnings.length, 1);
  t.true(warnings[0].includes('READY=1') && warnings[0].includes(missing), warnings[0]);

  process.env.NOTIFY_SOCKET = 'relative/notify.sock';
  t.throws(() => native.sdNotify('READY=1'), { message: /neither an absolute path nor an @abstract name/ });
});

test('watchdogIntervalMs honours WATCHDOG_USEC and WATCHDOG_PID', (t) => {
  t.is(watchdogIntervalMs({}, 10), null);
  t.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 10), 15_000);
  t.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '10' }, 10), 15_000);
  t.is(watchdogIntervalMs({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '11' }, 10), null);
  t.is(watchdogIntervalMs({ WATCHDOG_USEC: 'abc' }, 10), null);
  t.is(watchdogIntervalMs({ WATCHDOG_USEC: '0' }, 10), null);
});

test('reloadingMessage carries the given monotonic time', (t) => {
  t.is(reloadingMessage(123456789n), 'RELOADING=1\nMONOTONIC_USEC=123456789');
});
