// Lock file through the addon: one holder at a time (ELOCKED for the next, in another
// process or this one), PID first line, mode 0640, and a lock freed by SIGKILL even while
// a child of the killed holder lives on (O_CLOEXEC).
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { acquireLock, isLockHeld, isLockedError, readLockPid } from '../src/lockfile.js';
import { tempDir } from './helpers/tmp.js';

const lockfileModule = fileURLToPath(new URL('../src/lockfile.ts', import.meta.url));
const kTsx = `--import=${import.meta.resolve('tsx')}`;

// Runs `code` (an ES module body; `lockfile` is the imported module, `lockPath` the path)
// in a fresh Node process and yields its stdout lines as JSON values.
function runNode(code: string, lockPath: string, children: ChildProcess[]): { child: ChildProcess; next: () => Promise<unknown> } {
  const prologue = `const lockfile = await import(${JSON.stringify(lockfileModule)}); const lockPath = ${JSON.stringify(lockPath)};\n`;
  const child = spawn(process.execPath, [kTsx, '--input-type=module', '-e', prologue + code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return {
    child,
    next: async () => {
      const r = await lines.next();
      if (r.done) throw new Error('child ended without output');
      return JSON.parse(r.value as string) as unknown;
    },
  };
}

function killAll(children: ChildProcess[]): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

const exited = (c: ChildProcess): Promise<void> =>
  new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve())));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('a second holder is refused; SIGKILL of the holder frees the lock although its child lives on', async (t) => {
  const children: ChildProcess[] = [];
  const extraPids: number[] = [];
  t.teardown(() => {
    killAll(children);
    for (const pid of extraPids) if (alive(pid)) process.kill(pid, 'SIGKILL');
  });
  const dir = tempDir('lisod-lock-');
  const lockPath = path.join(dir, 'lisod.lock');

  // Holder: umask 077 must not change the 0640 mode; its `sleep` child must not inherit the lock.
  const holder = runNode(
    `process.umask(0o077);
     lockfile.acquireLock(lockPath);
     const { spawn } = await import('node:child_process');
     const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
     console.log(JSON.stringify({ pid: process.pid, sleeper: sleeper.pid }));
     setInterval(() => {}, 1000);`,
    lockPath,
    children,
  );
  const { pid, sleeper } = (await holder.next()) as { pid: number; sleeper: number };
  extraPids.push(sleeper);

  t.is(fs.readFileSync(lockPath, 'utf8'), `${pid}\n`);
  t.is(readLockPid(lockPath), pid);
  t.is(fs.statSync(lockPath).mode & 0o777, 0o640);
  t.true(isLockHeld(lockPath));

  // Another process is refused with ELOCKED, a message naming the file and the holder's PID,
  // and the file keeps the holder's PID.
  const second = runNode(
    `try { lockfile.acquireLock(lockPath); console.log(JSON.stringify({ ok: true })); }
     catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, pid: e.pid })); }`,
    lockPath,
    children,
  );
  const refused = (await second.next()) as { code: string; message: string; pid: number };
  t.is(refused.code, 'ELOCKED');
  t.is(refused.pid, pid);
  t.true(refused.message.includes(lockPath), refused.message);
  t.true(refused.message.includes(String(pid)), refused.message);
  t.is(readLockPid(lockPath), pid);

  // This process is refused too (flock conflicts between open files, not only processes).
  const err = t.throws(() => acquireLock(lockPath));
  t.true(isLockedError(err));

  holder.child.kill('SIGKILL');
  await exited(holder.child);
  t.true(alive(sleeper), 'the holder\'s child is still running');
  t.false(isLockHeld(lockPath), 'the lock died with the holder');
  t.is(readLockPid(lockPath), pid, 'the stale PID is still in the file');

  const lock = acquireLock(lockPath);
  t.teardown(() => lock.release());
  t.is(fs.readFileSync(lockPath, 'utf8'), `${process.pid}\n`);
  t.true(isLockHeld(lockPath));
});

test('release empties the file and frees the lock; release twice is harmless', (t) => {
  const lockPath = path.join(tempDir('lisod-lock-'), 'x.lock');
  t.false(isLockHeld(lockPath));
  t.is(readLockPid(lockPath), null);

  const lock = acquireLock(lockPath, 4242);
  t.is(lock.path, lockPath);
  t.is(readLockPid(lockPath), 4242);
  const again = t.throws(() => acquireLock(lockPath));
  t.is((again as NodeJS.ErrnoException).code, 'ELOCKED');

  lock.release();
  t.is(fs.readFileSync(lockPath, 'utf8'), '');
  t.false(isLockHeld(lockPath));
  t.notThrows(() => lock.release());

  const next = acquireLock(lockPath);
  t.is(readLockPid(lockPath), process.pid);
  next.release();
});

test('taking the lock truncates longer old content and keeps an existing file\'s mode', (t) => {
  const lockPath = path.join(tempDir('lisod-lock-'), 'old.lock');
  fs.writeFileSync(lockPath, '99999999\nleftover second line\n', { mode: 0o600 });
  fs.chmodSync(lockPath, 0o600);
  const lock = acquireLock(lockPath, 7);
  t.teardown(() => lock.release());
  t.is(fs.readFileSync(lockPath, 'utf8'), '7\n');
  t.is(fs.statSync(lockPath).mode & 0o777, 0o600);
});

test('readLockPid ignores content that is not a PID', (t) => {
  const dir = tempDir('lisod-lock-');
  const cases: Array<[string, number | null]> = [
    ['', null],
    ['\n', null],
    ['abc\n', null],
    ['0\n', null],
    ['-5\n', null],
    ['12 34\n', null],
    ['  123  \nnext\n', 123],
    ['77', 77],
  ];
  for (const [i, [content, expected]] of cases.entries()) {
    const p = path.join(dir, `c${i}`);
    fs.writeFileSync(p, content);
    t.is(readLockPid(p), expected, JSON.stringify(content));
  }
});

test('errors name the path and carry the errno code', (t) => {
  const dir = tempDir('lisod-lock-');
  const missingDir = path.join(dir, 'no', 'such', 'dir', 'lisod.lock');
  const e1 = t.throws(() => acquireLock(missingDir)) as NodeJS.ErrnoException;
  t.is(e1.code, 'ENOENT');
  t.true(e1.message.includes(missingDir), e1.message);

  const e2 = t.throws(() => acquireLock(dir)) as NodeJS.ErrnoException;
  t.is(e2.code, 'EISDIR');
  t.true(e2.message.includes(dir), e2.message);
  t.false(isLockedError(e2));
});
