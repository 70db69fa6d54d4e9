// ScriptProcess (vfork + execve + pidfd) and its OutputPipe readers (the addon's ScriptRuns):
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

test.serial('a Buffer stdin reaches the script whole: written at spawn up to PIPE_BUF, through a socket above', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const file = script(dir, 'cat.py', 'data = sys.stdin.buffer.read(); sys.stdout.buffer.write(b"%d " % len(data) + data)');
  for (const size of [0, 1, 4096, 4097, 65536]) {
    const input = crypto.randomBytes(size);
    const child = new ScriptProcess(file, { cwd: dir, env: {}, stdin: input });
    t.is(child.stdin === null, size <= 4096, `size ${size}: no socket for a body written at once`);
    const out = await collect(child.stdout);
    t.deepEqual(out.data, Buffer.concat([Buffer.from(`${size} `), input]), `size ${size}`);
  }
});

test.serial('events come in order: both pipes\' ends, exit, close; a signal is reported by name', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const file = script(dir, 'order.py', 'print("out"); print("err", file=sys.stderr); sys.stdout.flush(); sys.stderr.flush()');
  const child = new ScriptProcess(file, { cwd: dir, env: {}, stdin: 'ignore' });
  const events: string[] = [];
  child.stdout.on('end', () => events.push('stdout end'));
  child.stderr.on('end', () => events.push('stderr end'));
  child.on('exit', (code: number | null) => events.push(`exit ${code}`));
  await new Promise<void>((resolve) => child.on('close', () => resolve()));
  // The two pipes' ends may come in either order (one batch delivers stdout's first).
  t.deepEqual([...events.slice(0, 2)].sort(), ['stderr end', 'stdout end']);
  t.is(events[2], 'exit 0');

  const sleeper = script(dir, 'sleep.py', 'time.sleep(30)');
  const slow = new ScriptProcess(sleeper, { cwd: dir, env: {}, stdin: 'ignore' });
  const closed = new Promise<[number | null, string | null]>((resolve) => slow.on('close', (c, s) => resolve([c, s])));
  process.kill(-slow.pid, 'SIGKILL');
  t.deepEqual(await closed, [null, 'SIGKILL']);
});

test.serial('a script that cannot start throws ENOENT/EACCES and leaves no fd open', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const before = openFds();
  const missing = path.join(dir, 'missing.py');
  t.throws(() => new ScriptProcess(missing, { cwd: dir, env: {}, stdin: 'pipe' }), { code: 'ENOENT' });
  const plain = path.join(dir, 'plain.txt');
  fs.writeFileSync(plain, 'not executable', { mode: 0o644 });
  t.throws(() => new ScriptProcess(plain, { cwd: dir, env: {}, stdin: 'ignore' }), { code: 'EACCES' });
  const leaked = openFds().filter((fd) => !before.includes(fd) && /pipe:|pidfd|socket:/.test(fd));
  t.deepEqual(leaked, []);
});

test.serial('the child starts clean: default signal dispositions, empty mask, own group, cwd, stdin /dev/null', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const work = fs.mkdirSync(path.join(dir, 'work'), { recursive: true })!;
  // /bin/sh, not Python (which ignores SIGPIPE and SIGXFSZ itself): what exec left is what we set.
  const file = path.join(dir, 'state.sh');
  fs.writeFileSync(file, [
    '#!/bin/sh',
    'grep -E "^(SigBlk|SigIgn|SigCgt):" /proc/self/status',
    'echo "pgid $(cut -d" " -f5 /proc/self/stat) pid $$"',
    'echo "cwd $(pwd)"',
    'echo "stdin $(readlink /proc/self/fd/0)"',
  ].join('\n') + '\n', { mode: 0o755 });
  const child = new ScriptProcess(file, { cwd: work, env: { PATH: '/usr/bin:/bin' }, stdin: 'ignore' });
  const closed = new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  const [out, , [code]] = await Promise.all([collect(child.stdout), collect(child.stderr), closed]);
  const text = out.data.toString();
  t.is(code, 0, text);
  t.regex(text, /^SigBlk:\s+0+$/m);
  t.regex(text, /^SigIgn:\s+0+$/m, 'nothing ignored: Node ignores SIGPIPE, a script must not');
  const ids = /^pgid (\d+) pid (\d+)$/m.exec(text);
  t.truthy(ids);
  t.is(ids![1], ids![2], 'leads its own process group');
  t.is(ids![2], String(child.pid));
  t.regex(text, new RegExp(`^cwd ${fs.realpathSync(work)}$`, 'm'));
  t.regex(text, /^stdin \/dev\/null$/m);
});

test.serial('a file exec refuses (ENOEXEC) and a missing cwd throw; nothing is left open', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const before = openFds();
  const garbage = path.join(dir, 'garbage.bin');
  fs.writeFileSync(garbage, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), { mode: 0o755 }); // a broken ELF header
  t.throws(() => new ScriptProcess(garbage, { cwd: dir, env: {}, stdin: 'ignore' }), { code: 'ENOEXEC' });
  const ok = script(dir, 'ok.py', 'print("x")');
  const err = t.throws(() => new ScriptProcess(ok, { cwd: path.join(dir, 'no-such-dir'), env: {}, stdin: 'pipe' }));
  t.is((err as NodeJS.ErrnoException).code, 'ENOENT');
  const leaked = openFds().filter((fd) => !before.includes(fd) && /pipe:|pidfd|socket:/.test(fd));
  t.deepEqual(leaked, []);
});

test.serial('started on the spawner thread: spawn, then the output; pid 0 until then; a stdin fd may be closed at once', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const file = script(dir, 'echo.py', 'sys.stdout.buffer.write(sys.stdin.buffer.read()); sys.stdout.flush()');
  const input = path.join(dir, 'input.bin');
  const body = crypto.randomBytes(100_000);
  fs.writeFileSync(input, body);
  const before = openFds();
  const fd = fs.openSync(input, 'r');
  const child = new ScriptProcess(file, { cwd: dir, env: { PATH: '/usr/bin:/bin' }, stdin: fd }, true);
  fs.closeSync(fd); // the start has a copy of its own
  t.is(child.pid, 0);
  t.false(child.started);
  const order: string[] = [];
  child.on('spawn', () => order.push(`spawn ${child.pid > 0}`));
  child.stdout.on('data', () => { if (!order.includes('data')) order.push('data'); });
  const closed = new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const out = collect(child.stdout);
  t.is(await closed, 0);
  t.deepEqual(order, ['spawn true', 'data']);
  t.true((await out).data.equals(body));
  for (let i = 0; i < 2; i++) await new Promise((resolve) => setImmediate(resolve));
  const leaked = openFds().filter((f) => !before.includes(f) && /pipe:|pidfd|socket:|input\.bin/.test(f));
  t.deepEqual(leaked, [], 'pipes, pidfd and the stdin copy are closed');
});

test.serial('started on the spawner thread: a start that fails is an error event (ENOENT/EACCES), nothing else, no fd left', async (t) => {
  const dir = testTempDir(t, 'lisod-spawn-');
  const before = openFds();
  const plain = path.join(dir, 'plain.txt');
  fs.writeFileSync(plain, 'not executable', { mode: 0o644 });
  for (const [file, code] of [[path.join(dir, 'missing.py'), 'ENOENT'], [plain, 'EACCES']] as const) {
    const child = new ScriptProcess(file, { cwd: dir, env: {}, stdin: 'pipe' }, true);
    const events: string[] = [];
    for (const e of ['spawn', 'exit', 'close']) child.on(e, () => events.push(e));
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.on('error', resolve));
    t.is(error.code, code);
    t.regex(error.message, new RegExp(path.basename(file).replace('.', '\\.')));
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(events, []);
    t.is(child.pid, 0);
  }
  const leaked = openFds().filter((fd) => !before.includes(fd) && /pipe:|pidfd|socket:/.test(fd));
  t.deepEqual(leaked, []);
});
