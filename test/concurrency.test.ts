// Many concurrent clients: 1100 plain + 100 TLS connections held open at once (past the
// old 1024/FD_SETSIZE ceiling), a new client is still served; bounded memory for big files.
import test from 'ava';
import fs from 'node:fs';
import { Conn, exchange, exchange1, get, sha256, sleep } from './helpers/client.js';
import { assertFile } from './helpers/assert.js';
import { startLisod } from './helpers/lisod.js';
import { useLisod } from './helpers/use_lisod.js';

const kPlain = 1100;
const kTls = 100;
const kBatch = 100;

const site = useLisod(test);

/** Runs fn over items with at most `width` in flight. */
async function inBatches<T, R>(items: T[], width: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    out.push(...await Promise.all(items.slice(i, i + width).map(fn)));
  }
  return out;
}

/** Resident memory of the lisod process in bytes (Linux /proc). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

// Serial: runs alone in this file before the concurrent tests, so RSS is not disturbed.
test.serial('40 stalled downloads of a 10 MiB file keep lisod\'s memory bounded (no whole-file buffers)', async (t) => {
  const big = site.www.files.get('/big.bin')!;
  // Warm up both paths once so lazily created state is already in the baseline.
  for (const tls of [false, true]) {
    const [r] = await exchange(get('/big.bin'), { port: tls ? site.srv.httpsPort : site.srv.httpPort, tls, timeoutMs: 30_000 });
    t.is(sha256(r!.body), big.sha256);
  }
  await sleep(300);
  const before = rss(site.srv.pid);
  const conns: Conn[] = [];
  try {
    for (let i = 0; i < 40; i++) {
      const tls = i % 2 === 1;
      const c = await Conn.open({ port: tls ? site.srv.httpsPort : site.srv.httpPort, tls });
      c.socket.pause();
      await c.write(get('/big.bin') + get('/big.bin'));
      conns.push(c);
    }
    await sleep(1500);
    const during = rss(site.srv.pid);
    const grew = during - before;
    t.log(`RSS before ${(before / 2 ** 20).toFixed(1)} MiB, during ${(during / 2 ** 20).toFixed(1)} MiB`);
    // 40 × 20 MiB requested; whole-file buffering would need ≥ 400 MiB.
    t.true(grew < 64 * 2 ** 20, `lisod grew by ${(grew / 2 ** 20).toFixed(1)} MiB serving 40 stalled clients`);
  } finally {
    for (const c of conns) c.destroy();
  }
  await sleep(200);
  assertFile(t, await exchange1(get('/hello.txt'), { port: site.srv.httpPort }), site.www.files.get('/hello.txt')!);
});

test('lisod raises its soft fd limit to the hard limit at start-up', async (t) => {
  const hard = Number(/Max open files\s+\d+\s+(\d+)/.exec(fs.readFileSync('/proc/self/limits', 'utf8'))![1]);
  t.true(hard > 1024, `this machine's hard limit ${hard} is too low to tell`);
  const l = await startLisod({ www: site.www.root, wrapper: ['prlimit', '--nofile=1024:' + hard, '--'] });
  try {
    const m = /Max open files\s+(\d+)\s+(\d+)/.exec(fs.readFileSync(`/proc/${l.pid}/limits`, 'utf8'))!;
    t.is(Number(m[2]), hard);
    t.is(Number(m[1]), hard, 'soft limit raised from 1024');
  } finally {
    await l.stop();
  }
});

test(`${kPlain} plain + ${kTls} TLS connections held open; a new client is still served`, async (t) => {
  const hello = site.www.files.get('/hello.txt')!;
  const range = site.www.files.get('/range.txt')!;
  const conns: Conn[] = [];
  try {
    const specs = [...Array(kPlain).fill(false), ...Array(kTls).fill(true)] as boolean[];
    // Open everything first (connections idle at once), then use them.
    const opened = await inBatches(specs, kBatch, (tls) =>
      Conn.open({ port: tls ? site.srv.httpsPort : site.srv.httpPort, tls, timeoutMs: 20_000 }));
    conns.push(...opened);
    t.is(conns.length, kPlain + kTls);

    let ok = 0;
    await inBatches(conns, kBatch, async (c) => {
      await c.write(get('/hello.txt'));
      const r = await c.readResponse({ timeoutMs: 20_000 });
      if (r.status === 200 && sha256(r.body) === hello.sha256) ok++;
    });
    t.is(ok, conns.length, 'every held connection got its first response');
    t.true(conns.every((c) => !c.eof), 'server keeps all of them open');

    // A newcomer on each port while all are held.
    assertFile(t, await exchange1(get('/hello.txt'), { port: site.srv.httpPort }), hello);
    assertFile(t, await exchange1(get('/hello.txt'), { port: site.srv.httpsPort, tls: true }), hello);

    // And every held connection still works.
    ok = 0;
    await inBatches(conns, kBatch * 2, async (c) => {
      await c.write(get('/range.txt'));
      const r = await c.readResponse({ timeoutMs: 20_000 });
      if (r.status === 200 && sha256(r.body) === range.sha256) ok++;
    });
    t.is(ok, conns.length, 'every held connection got its second response');
    t.is(site.srv.proc.exitCode, null);
  } finally {
    for (const c of conns) c.destroy();
  }
});

test('a burst of 300 simultaneous one-shot requests is fully answered', async (t) => {
  const hello = site.www.files.get('/hello.txt')!;
  const results = await Promise.all(Array.from({ length: 300 }, (_, i) =>
    exchange1(get('/hello.txt', i % 2 ? 'Connection: close\r\n' : ''), { port: site.srv.httpPort, timeoutMs: 20_000 })));
  t.is(results.filter((r) => r.status === 200 && sha256(r.body) === hello.sha256).length, 300);
});
