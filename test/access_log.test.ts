// The access log end to end: lines written by the native event loops (format, escaping,
// local zone), no JavaScript per request, one stream for workers = 2, a full disk, a FIFO,
// stdout under a pipe, logrotate (rename + SIGHUP) and the flush at exit.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { LogSink } from '../src/log.js';
import { native, type NativeHandlers, type ServerConfig } from '../src/native.js';
import { Conn, exchange1, get } from './helpers/client.js';
import { readText, waitFor } from './helpers/daemon.js';
import { startLisod, runLisodExpectFailure, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

// Combined Log Format: host ident user [time] "request" status bytes "referer" "agent".
const kCombined = /^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;
const kErrorLine = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (info|warn|error) lisod\[\d+\]: /;
const kIndexBytes = Buffer.byteLength('<!doctype html><p>lisod test default</p>\n');

const accessFile = (l: Lisod): string => path.join(l.dirs.logs, 'access.log');
const errorText = (l: Lisod): string => readText(path.join(l.dirs.logs, 'error.log'));
const lines = (text: string): string[] => text.split('\n').filter((x) => x !== '');

/** `n` keep-alive GETs of `target` on one connection, each answered 200. */
async function getMany(port: number, n: number, target = '/', extra = ''): Promise<void> {
  const c = await Conn.open({ port });
  try {
    for (let i = 0; i < n; i++) {
      await c.write(get(target, extra));
      const r = await c.readResponse();
      if (r.status !== 200) throw new Error(`status ${r.status}`);
    }
  } finally {
    c.destroy();
  }
}

test('lines are Combined Log Format, in the local zone, escaped, with "-" for empty fields', async (t) => {
  const lisod = await startLisod({ env: { TZ: 'Asia/Kolkata' } }); // +0530, no daylight saving
  t.teardown(() => lisod.stop());
  const agent = Buffer.concat([Buffer.from('evil" 200 1 "-" "x \\ \t '), Buffer.from([0xff, 0xc3, 0xbc])]);
  const raw = Buffer.concat([Buffer.from('GET /?q=%22a%22 HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: '), agent,
    Buffer.from('\r\nConnection: close\r\n\r\n')]);
  t.is((await exchange1(raw, { port: lisod.httpPort })).status, 200);
  t.is((await exchange1(get('/missing', 'Connection: close\r\n', 'HEAD'), { port: lisod.httpPort, heads: [true] })).status, 404);
  t.is((await exchange1('BREW / HTCPCP/1.0\r\n\r\n', { port: lisod.httpPort })).status, 400);
  await lisod.stop();
  const got = lines(readText(accessFile(lisod)));
  t.is(got.length, 3, got.join('\n'));
  const m = got.map((l) => kCombined.exec(l));
  t.true(m.every((x) => x !== null), got.join('\n'));
  t.regex(m[0]![4]!, /^\d\d\/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:\d\d:\d\d:\d\d \+0530$/);
  t.deepEqual(m[0]!.slice(1, 4), ['127.0.0.1', '-', '-']);
  t.is(m[0]![5], 'GET /?q=%22a%22 HTTP/1.1');
  t.deepEqual(m[0]!.slice(6), ['200', String(kIndexBytes), 'http://r/', 'evil\\" 200 1 \\"-\\" \\"x \\\\ \\t \\xffü']);
  t.deepEqual(m[1]!.slice(5), ['HEAD /missing HTTP/1.1', '404', '-', '-', '-']);
  t.is(m[2]![5], '-'); // never parsed
  t.is(m[2]![6], '400');
});

test('no JavaScript runs per request: the handlers are never called and every line arrives', async (t) => {
  const dir = tempDir('lisod-nojs-');
  fs.writeFileSync(path.join(dir, 'index.html'), 'hello\n');
  const sink = new LogSink(path.join(dir, 'a.log'), 1, { flushIntervalMs: 60_000 });
  const calls: string[] = [];
  const handler = (name: string) => (): void => { calls.push(name); };
  const handlers: NativeHandlers = {
    request: handler('request'), body: handler('body'), close: handler('close'), drain: handler('drain'), error: handler('error'),
  };
  const config: ServerConfig = {
    listeners: [{ host: '127.0.0.1', port: 0, tls: false }], root: dir, cgiPrefix: '/cgi', maxConnections: 100,
    maxLineBytes: 8192, maxHeaderBytes: 65536, maxTargetBytes: 8000, maxBodyBytes: 1 << 20, headerTimeoutMs: 10_000,
    bodyTimeoutMs: 10_000, keepAliveTimeoutMs: 10_000, sendTimeoutMs: 10_000, accessLog: true, accessLogWriter: sink.id,
  };
  const server = new native.Server(config, handlers);
  t.teardown(() => { server.close(); sink.close(); });
  const port = server.addresses()[0]!.port;
  await getMany(port, 200, '/index.html');
  sink.flush();
  t.deepEqual(calls, []);
  t.is(lines(fs.readFileSync(path.join(dir, 'a.log'), 'utf8')).filter((l) => l.includes('"GET /index.html HTTP/1.1" 200 6 ')).length, 200);

  // setAccessLog switches the loop to another writer; a closed one is refused.
  const other = new LogSink(path.join(dir, 'b.log'), 1);
  server.setAccessLog(other.id);
  await getMany(port, 3, '/index.html');
  other.flush();
  t.is(lines(fs.readFileSync(path.join(dir, 'b.log'), 'utf8')).length, 3);
  const id = other.id;
  other.close();
  server.setAccessLog(0);
  t.throws(() => server.setAccessLog(id), { message: /access log \(writer \d+\) is already closed/ });
});

test('workers = 2, one file for both logs (Liso <log>): every line whole, none lost', async (t) => {
  const lisod = await startLisod({ config: { workers: 2 }, transformConfig: (text) => text.replace('access.log', 'error.log') });
  t.teardown(() => lisod.stop());
  // 8 connections (spread over both loops) × 40 requests, each with a 3000-byte User-Agent
  // of its own letter: a line from one loop cut into by the other would show.
  const conns = 8;
  await Promise.all(Array.from({ length: conns }, (_, i) =>
    getMany(lisod.httpPort, 40, `/?c=${i}`, `User-Agent: ${String.fromCharCode(97 + i).repeat(3000)}\r\n`)));
  const exit = await lisod.stop();
  t.deepEqual(exit, { code: 0, signal: null });
  const all = lines(errorText(lisod));
  const errors = all.filter((l) => kErrorLine.test(l));
  const got = all.filter((l) => !kErrorLine.test(l));
  t.regex(errors.join('\n'), /started \(pid \d+, 2 event loops\)[^]*\bstopped$/);
  t.is(got.length, conns * 40);
  for (const l of got) {
    const m = kCombined.exec(l);
    if (!m) return t.fail(`not one whole line: ${l.slice(0, 200)}`);
    const i = Number(/c=(\d)/.exec(m[5]!)![1]);
    t.is(m[9], String.fromCharCode(97 + i).repeat(3000));
  }
});

test('a full disk (/dev/full): requests are served, one warning in the error log, a clean stop', async (t) => {
  const lisod = await startLisod({ config: { access_log: '/dev/full' } });
  t.teardown(() => lisod.stop());
  await getMany(lisod.httpPort, 20);
  await waitFor(() => /log \/dev\/full: no space left on device/.test(errorText(lisod)), 5000, 'the warning');
  await getMany(lisod.httpPort, 20);
  t.deepEqual(await lisod.stop(), { code: 0, signal: null });
  t.is(errorText(lisod).match(/no space left on device/g)?.length, 1, errorText(lisod));
});

test('a FIFO gets whole lines; without a reader lisod says so and does not start', async (t) => {
  const dir = tempDir('lisod-fifo-');
  const fifo = path.join(dir, 'access.fifo');
  const mk = spawn('mkfifo', [fifo]);
  await new Promise((r) => mk.once('exit', r));

  const refused = await runLisodExpectFailure({ config: { access_log: fifo } });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /cannot open log file '.*access\.fifo': ENXIO: .*\(a FIFO needs a reader before lisod starts\)/);

  // A reader that starts slowly (the pipe fills: the writer waits instead of dropping).
  const reader = spawn('sh', ['-c', `sleep 0.3; cat "${fifo}"`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  reader.stdout.on('data', (d: Buffer) => chunks.push(d));
  const readerDone = new Promise((r) => reader.once('exit', r));
  // Opening for reading blocks until the writer opens: let `cat` do that; wait for it to be there.
  const holder = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const lisod = await startLisod({ config: { access_log: fifo } });
  t.teardown(() => lisod.stop());
  await Promise.all(Array.from({ length: 4 }, (_, i) => getMany(lisod.httpPort, 50, `/?r=${i}`, `User-Agent: ${'u'.repeat(1500)}\r\n`)));
  t.deepEqual(await lisod.stop(), { code: 0, signal: null });
  fs.closeSync(holder);
  await readerDone;
  const got = lines(Buffer.concat(chunks).toString());
  t.is(got.length, 200);
  t.true(got.every((l) => kCombined.test(l)));
  t.notRegex(errorText(lisod), /log .*fifo/);
});

test('access_log = "-" under a pipe: whole lines on stdout between lisod\'s own', async (t) => {
  const lisod = await startLisod({ config: { access_log: '-' } });
  t.teardown(() => lisod.stop());
  await getMany(lisod.httpPort, 30, '/', `User-Agent: ${'p'.repeat(2000)}\r\n`);
  await lisod.stop();
  const out = lines(lisod.stdout());
  const access = out.filter((l) => !l.startsWith('lisod: '));
  t.is(access.length, 30);
  t.true(access.every((l) => kCombined.test(l)), access.join('\n').slice(0, 500));
});

test('logrotate: rename, SIGHUP, the next lines go to the new file; lines before it stay in the old', async (t) => {
  const lisod = await startLisod();
  t.teardown(() => lisod.stop());
  await getMany(lisod.httpPort, 5, '/?before');
  fs.renameSync(accessFile(lisod), `${accessFile(lisod)}.1`);
  await getMany(lisod.httpPort, 5, '/?between');
  process.kill(lisod.pid, 'SIGHUP');
  await waitFor(() => /reloaded/.test(errorText(lisod)), 5000, 'the reload');
  await getMany(lisod.httpPort, 5, '/?after');
  await lisod.stop();
  const old = readText(`${accessFile(lisod)}.1`);
  const now = readText(accessFile(lisod));
  t.is(lines(old).filter((l) => /\?(before|between) /.test(l)).length, 10);
  t.is(lines(now).length, 5);
  t.true(lines(now).every((l) => l.includes('/?after ')));
});

test('SIGTERM right after the requests: every line is in the file once lisod has exited', async (t) => {
  const lisod = await startLisod();
  t.teardown(() => lisod.stop());
  await getMany(lisod.httpPort, 100);
  t.deepEqual(await lisod.stop(), { code: 0, signal: null });
  t.is(lines(readText(accessFile(lisod))).length, 100);
});
