// ScriptProcess (posix_spawn + pidfd) and its OutputPipe readers (the addon's PipeReader):
// every byte in order, 'end' then 'close', pause really stops reading, no fd left open.
// Serial: the fd count of this process is part of what is checked.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ScriptProcess, type OutputPipe } from '../src/spawn.js';
import { testTempDir } from './helpers/tmp.js';

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/usr/bin/python3\nimport os, sys, time\n${body}\n`, { mode: 0o755 });
  return file;
}

function collect(pipe: OutputPipe): Promise<{ data: Buffer; events: string[] }> {
  const chunks: Buffer[] = [];
  const events: string[] = [];
  pipe.on('data', (c: Buffer) => chunks.push(c));
  pipe.on('end', () => events.push('end'));
  return new Promise((resolve) => pipe.on('close', () => {
    events.push('close');
    resolve({ data: Buffer.concat(chunks), events });
  }));
}

const openFds = (): string[] => fs.readdirSync('/proc/self/fd').map((fd) => { try { return fd + ' ' + fs.readlinkSync('/proc/self/fd/' + fd); } catch { return fd; } });

test.serial('stdout and stderr arrive whole and in order, then end, close and exit', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const file = script(dir, 'out.py', [
    'data = bytes(range(256)) * 16384  # 4 MiB',
    'sys.stdout.buffer.write(data); sys.stdout.flush()',
    'sys.stderr.buffer.write("caf\\u00e9 \\u2713\\n".encode()); sys.stderr.flush()',
    'sys.exit(3)',
  ].join('\n'));
  const before = openFds();
  const child = new ScriptProcess(file, { cwd: dir, env: { PATH: '/usr/bin:/bin' }, stdin: 'ignore' });
  const closed = new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  const [out, err, [code, signal]] = await Promise.all([collect(child.stdout), collect(child.stderr), closed]);
  const expected = Buffer.alloc(4 * 1024 * 1024, 0).map((_, i) => i & 0xff);
  t.is(out.data.length, expected.length);
  t.is(crypto.createHash('sha256').update(out.data).digest('hex'), crypto.createHash('sha256').update(expected).digest('hex'));
  t.deepEqual(out.events, ['end', 'close']);
  t.is(err.data.toString('utf8'), 'café ✓\n');
  t.is(code, 3);
  t.is(signal, null);
  // libuv closes the fds in the close phase after this one: two turns of the loop.
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  // Only what the child could leave behind counts: other modules (tsx's cache files) open
  // and close files of their own meanwhile.
  const leaked = openFds().filter((fd) => !before.includes(fd) && /pipe:|pidfd|socket:/.test(fd));
  t.deepEqual(leaked, [], 'pipes and pidfd are closed');
});

test.serial('pause stops reading until resume (the script blocks on a full pipe meanwhile)', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const file = script(dir, 'big.py', [
    'chunk = b"x" * 65536',
    'for _ in range(64): sys.stdout.buffer.write(chunk)',
  ].join('\n'));
  const child = new ScriptProcess(file, { cwd: dir, env: { PATH: '/usr/bin:/bin' }, stdin: 'ignore' });
  let received = 0;
  let whilePaused = 0;
  let paused = false;
  let pausedOnce = false;
  const done = new Promise<void>((resolve) => child.stdout.on('end', () => resolve()));
  child.stdout.on('data', (c: Buffer) => {
    received += c.length;
    if (paused) whilePaused += c.length;
    if (received >= 65536 && !pausedOnce) {
      paused = pausedOnce = true;
      child.stdout.pause();
      setTimeout(() => {
        paused = false;
        child.stdout.resume();
      }, 200);
    }
  });
  await done;
  t.is(whilePaused, 0);
  t.is(received, 64 * 65536);
});

test.serial('a script that exits without output: end and close on both pipes, exit code 0', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const file = script(dir, 'quiet.py', 'pass');
  const child = new ScriptProcess(file, { cwd: dir, env: {}, stdin: 'ignore' });
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const [out, err, code] = await Promise.all([collect(child.stdout), collect(child.stderr), closed]);
  t.is(out.data.length + err.data.length, 0);
  t.deepEqual(out.events, ['end', 'close']);
  t.is(code, 0);
});
