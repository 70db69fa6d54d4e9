// Unit tests for src/log.ts and the native access-log formatter and writer behind it:
// Combined Log Format lines (escaping, time zones), error-log lines, buffering/flush/reopen,
// and tolerance of ENOSPC (/dev/full) and EPIPE.
import test from 'ava';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AccessRecord } from '../src/native.js';
import { ErrorLog, formatAccessRecord, formatErrorLine, LogSink, Logs } from '../src/log.js';
import { tempDir } from './helpers/tmp.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// The example of the Apache documentation: 10/Oct/2000:13:55:36 -0700 is 20:55:36 UTC.
const kApacheMs = Date.UTC(2000, 9, 10, 20, 55, 36);

// Combined Log Format as log analysers (GoAccess, AWStats "combined") read it.
const kCombined = /^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$/;

function record(over: Partial<Record<number, string | number>> = {}): AccessRecord {
  const r: AccessRecord = ['127.0.0.1', kApacheMs, 'GET', '/apache_pb.gif', 'HTTP/1.0', 200, 2326,
    'http://www.example.com/start.html', 'Mozilla/4.08 [en] (Win98; I ;Nav)'];
  for (const [i, v] of Object.entries(over)) (r as unknown[])[Number(i)] = v;
  return r;
}

/** The [time] field of a line for `ms` in the zone `offset` minutes east of UTC. */
function formatClfTime(ms: number, offset?: number): string {
  return /\[([^\]]+)\]/.exec(formatAccessRecord(record({ 1: ms }), offset))![1]!;
}

/** How a quoted field shows `s` (the referer's field). */
function escapeLogField(s: string): string {
  return / \d{3} (?:\d+|-) "([^]*)" "[^"]*"\n$/.exec(formatAccessRecord(record({ 7: s }), 0))![1]!;
}

test('CLF time in a given zone offset', (t) => {
  t.is(formatClfTime(kApacheMs, -420), '10/Oct/2000:13:55:36 -0700');
  t.is(formatClfTime(kApacheMs, 0), '10/Oct/2000:20:55:36 +0000');
  t.is(formatClfTime(kApacheMs, 330), '11/Oct/2000:02:25:36 +0530');
  t.is(formatClfTime(Date.UTC(2024, 0, 1, 0, 0, 5), -30), '31/Dec/2023:23:30:05 -0030');
});

test('CLF time defaults to the local zone', (t) => {
  const offset = -new Date(kApacheMs).getTimezoneOffset();
  t.is(formatClfTime(kApacheMs), formatClfTime(kApacheMs, offset));
});

test('the Apache documentation example, byte for byte', (t) => {
  t.is(formatAccessRecord(record(), -420),
    '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 ' +
    '"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"\n');
});

test('empty referer/agent and zero bytes are "-"; IPv4-mapped peers are plain IPv4', (t) => {
  t.is(formatAccessRecord(record({ 0: '::ffff:10.1.2.3', 5: 304, 6: 0, 7: '', 8: '' }), 0),
    '10.1.2.3 - - [10/Oct/2000:20:55:36 +0000] "GET /apache_pb.gif HTTP/1.0" 304 - "-" "-"\n');
  t.is(formatAccessRecord(record({ 0: '::1' }), 0).split(' ')[0], '::1');
});

test('a request that never parsed is logged as "-"', (t) => {
  t.regex(formatAccessRecord(record({ 2: '', 3: '', 4: '', 5: 400 }), 0), / "-" 400 /);
  t.regex(formatAccessRecord(record({ 4: '' }), 0), / "GET \/apache_pb\.gif" 200 /); // HTTP/0.9-style line
});

test('quotes, backslashes and control characters are escaped in every quoted field', (t) => {
  t.is(escapeLogField('a"b\\c\nd\re\tf\x00g\x1b\x7f'), 'a\\"b\\\\c\\nd\\re\\tf\\x00g\\x1b\\x7f');
  t.is(escapeLogField('plain ünïcode'), 'plain ünïcode');
  const line = formatAccessRecord(record({ 3: '/x"y\\z\r\n', 7: 'ref"\n', 8: 'evil" 200 1 "-" "x' }), 0);
  t.is(line.indexOf('\n'), line.length - 1); // one line
  const m = kCombined.exec(line.slice(0, -1));
  t.truthy(m, line);
  t.is(m![5], 'GET /x\\"y\\\\z\\r\\n HTTP/1.0');
  t.is(m![6], '200');
  t.is(m![8], 'ref\\"\\n');
  t.is(m![9], 'evil\\" 200 1 \\"-\\" \\"x');
});

test('every formatted line parses as Combined Log Format', (t) => {
  const cases: AccessRecord[] = [
    record(),
    record({ 2: 'POST', 3: '/cgi/add?x=1&y=%22', 4: 'HTTP/1.1', 5: 302, 6: 0 }),
    record({ 0: '2001:db8::1', 2: 'HEAD', 7: '', 8: '' }),
    record({ 2: '', 5: 400, 7: '\\', 8: '"' }),
  ];
  for (const r of cases) t.regex(formatAccessRecord(r).slice(0, -1), kCombined);
});

test('error-log lines: ISO time, level, pid; one line per message', (t) => {
  const when = new Date(Date.UTC(2024, 4, 6, 7, 8, 9, 10));
  t.is(formatErrorLine('warn', 'disk is slow', when, 42), '2024-05-06T07:08:09.010Z warn lisod[42]: disk is slow\n');
  t.is(formatErrorLine('error', 'two\nlines\r\x07', when, 1), '2024-05-06T07:08:09.010Z error lisod[1]: two\\nlines\\r\\x07\n');
  t.is(formatErrorLine('info', 'tab\there "q"', when, 1).split(': ')[1], 'tab\there "q"\n');
});

test('sink buffers until flush, then appends', (t) => {
  const file = path.join(tempDir('lisod-log-'), 'a.log');
  fs.writeFileSync(file, 'old\n');
  const sink = new LogSink(file, 1, { flushIntervalMs: 60_000 });
  sink.write('one\n');
  sink.write('two\n');
  t.is(fs.readFileSync(file, 'utf8'), 'old\n');
  sink.flush();
  t.is(fs.readFileSync(file, 'utf8'), 'old\none\ntwo\n');
  t.is(fs.statSync(file).mode & 0o777, 0o644); // existing file's mode kept
  sink.close();
  sink.write('after close\n');
  sink.flush();
  t.is(fs.readFileSync(file, 'utf8'), 'old\none\ntwo\n');
});

test('new log files are created 0640', (t) => {
  const file = path.join(tempDir('lisod-log-'), 'new.log');
  const old = process.umask(0o022);
  try {
    new LogSink(file, 2).close();
  } finally {
    process.umask(old);
  }
  t.is(fs.statSync(file).mode & 0o777, 0o640);
});

test('sink flushes by itself after the interval', async (t) => {
  const file = path.join(tempDir('lisod-log-'), 'timed.log');
  const sink = new LogSink(file, 1, { flushIntervalMs: 20 });
  sink.write('later\n');
  t.is(fs.readFileSync(file, 'utf8'), '');
  for (let i = 0; i < 100 && fs.readFileSync(file, 'utf8') === ''; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(fs.readFileSync(file, 'utf8'), 'later\n');
  sink.close();
});

test('sink writes at once above the high-water mark', async (t) => {
  const file = path.join(tempDir('lisod-log-'), 'big.log');
  const sink = new LogSink(file, 1, { flushIntervalMs: 60_000, highWaterBytes: 10 });
  sink.write('12345\n');
  await new Promise((r) => setTimeout(r, 100));
  t.is(fs.readFileSync(file, 'utf8'), '');
  sink.write('67890\n'); // the writer thread writes it without a flush()
  for (let i = 0; i < 100 && fs.readFileSync(file, 'utf8') === ''; i++) await new Promise((r) => setTimeout(r, 20));
  t.is(fs.readFileSync(file, 'utf8'), '12345\n67890\n');
  sink.close();
});

test('reopen() follows a file moved away (logrotate)', (t) => {
  const dir = tempDir('lisod-log-');
  const file = path.join(dir, 'r.log');
  const sink = new LogSink(file, 1);
  sink.write('before\n');
  sink.flush();
  fs.renameSync(file, `${file}.1`);
  sink.write('still old\n');
  sink.reopen();
  sink.write('after\n');
  sink.close();
  t.is(fs.readFileSync(`${file}.1`, 'utf8'), 'before\nstill old\n');
  t.is(fs.readFileSync(file, 'utf8'), 'after\n');
});

test('reopen() into a vanished directory keeps the old file and warns', (t) => {
  const dir = tempDir('lisod-log-');
  const sub = path.join(dir, 'sub');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'x.log');
  const warnings: string[] = [];
  const sink = new LogSink(file, 1, { onWarning: (m) => warnings.push(m) });
  fs.renameSync(sub, path.join(dir, 'moved'));
  sink.reopen();
  sink.write('kept\n');
  sink.close();
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /cannot open log file .*x\.log.*still writing to the old file/);
  t.is(fs.readFileSync(path.join(dir, 'moved', 'x.log'), 'utf8'), 'kept\n');
});

test('an unopenable log file is one clear error', (t) => {
  t.throws(() => new LogSink('/nonexistent-dir/x.log', 2), { message: /^cannot open log file '\/nonexistent-dir\/x\.log': ENOENT/ });
});

test('ENOSPC (/dev/full): no throw, one warning per failure episode', (t) => {
  if (!fs.existsSync('/dev/full')) return t.pass('no /dev/full here');
  const warnings: string[] = [];
  const sink = new LogSink('/dev/full', 1, { onWarning: (m) => warnings.push(m) });
  for (let i = 0; i < 5; i++) {
    sink.write(`line ${i}\n`);
    t.notThrows(() => sink.flush());
  }
  sink.close();
  t.deepEqual(warnings, ['log /dev/full: no space left on device; dropping log lines until writes succeed again']);
});

test('a failing access log warns once in the error log', (t) => {
  if (!fs.existsSync('/dev/full')) return t.pass('no /dev/full here');
  const file = path.join(tempDir('lisod-log-'), 'error.log');
  const logs = Logs.open(file, '/dev/full');
  for (let i = 0; i < 3; i++) {
    logs.access!.write(formatAccessRecord(record()));
    logs.flush();
  }
  logs.close();
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  t.is(lines.length, 1);
  t.regex(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z warn lisod\[\d+\]: log \/dev\/full: no space left on device/);
});

test('one file for both logs (Liso form) shares a sink: lines stay whole and in order', (t) => {
  const file = path.join(tempDir('lisod-log-'), 'lisod.log');
  const logs = Logs.open(file, file);
  logs.error.info('starting');
  logs.access!.write(formatAccessRecord(record()) + formatAccessRecord(record({ 3: '/second' })));
  logs.error.error('boom');
  logs.close();
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  t.is(lines.length, 5);
  t.regex(lines[0]!, / info lisod\[\d+\]: starting$/);
  t.regex(lines[1]!, kCombined);
  t.regex(lines[2]!, /"GET \/second HTTP\/1\.0"/);
  t.regex(lines[3]!, / error lisod\[\d+\]: boom$/);
  t.is(lines[4], '');
});

test('ErrorLog formats through its sink; lines keep their order', (t) => {
  const file = path.join(tempDir('lisod-log-'), 'x.log');
  const sink = new LogSink(file, 1, { flushIntervalMs: 60_000 });
  new ErrorLog(sink, 7, () => new Date(0)).warn('w');
  sink.write(formatAccessRecord(record(), 0));
  sink.close();
  t.is(fs.readFileSync(file, 'utf8'),
    '1970-01-01T00:00:00.000Z warn lisod[7]: w\n' + formatAccessRecord(record(), 0));
});

test('EPIPE on stdout: the writer keeps running and warns once', async (t) => {
  // A child writes its access log to stdout ("-") after the parent closed the reading end.
  const script = `
    const { LogSink } = await import(${JSON.stringify(path.join(repo, 'src', 'log.ts'))});
    const sink = new LogSink('-', 1);
    process.stdin.once('data', () => {
      for (let i = 0; i < 20; i++) { sink.write('x'.repeat(1000) + '\\n'); sink.flush(); }
      sink.close();
      process.stderr.write('survived\\n');
    });`;
  const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    cwd: repo,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { err += s; });
  child.stdout!.destroy(); // nobody reads stdout any more
  await new Promise((r) => setTimeout(r, 50));
  child.stdin!.end('go\n');
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  t.is(code, 0, err);
  t.is(err.match(/lisod: log stdout: reader went away/g)?.length, 1, err);
  t.regex(err, /survived\n$/);
});
