// BodySpool: memory up to the threshold, then an unnamed file read from offset 0; the budget
// is taken as bytes arrive and given back on discard; a full budget throws SpoolFullError.
import test from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { BodySpool, SpoolBudget, SpoolFullError, kMemoryBodyBytes, openAnonymous } from '../src/app_spool.js';
import type { AppBodyFile } from '../src/app_transport.js';
import { testTempDir } from './helpers/tmp.js';

function collect(spool: BodySpool): Promise<Buffer | AppBodyFile> {
  return new Promise((resolve) => spool.finish(resolve));
}

async function feed(spool: BodySpool, body: Buffer, step: number): Promise<void> {
  for (let off = 0; off < body.length; off += step) {
    let drained: () => void = () => {};
    const wait = new Promise<void>((r) => { drained = r; });
    if (!spool.write(body.subarray(off, off + step), drained)) await wait;
  }
}

test('small bodies stay in memory; the budget is given back on discard', async (t) => {
  const budget = new SpoolBudget(1 << 20);
  const spool = new BodySpool(testTempDir(t, 'spool-'), budget, (e) => t.fail(e.message));
  const body = crypto.randomBytes(kMemoryBodyBytes);
  await feed(spool, body, 1000);
  t.is(budget.used, body.length);
  t.deepEqual(await collect(spool), body);
  spool.discard();
  t.is(budget.used, 0);
});

test('large bodies go to an unnamed file that reads back whole from offset 0', async (t) => {
  const dir = testTempDir(t, 'spool-');
  const budget = new SpoolBudget(64 << 20);
  const spool = new BodySpool(dir, budget, (e) => t.fail(e.message));
  const body = crypto.randomBytes(5 << 20);
  await feed(spool, body, 100_000);
  t.deepEqual(fs.readdirSync(dir), [], 'the spool file has no name');
  const got = await collect(spool);
  t.false(Buffer.isBuffer(got));
  const file = got as AppBodyFile;
  t.is(file.length, body.length);
  t.regex(fs.readlinkSync(`/proc/self/fd/${file.fd}`), /\(deleted\)$/);
  const back = Buffer.alloc(body.length + 1);
  t.is(fs.readSync(file.fd, back, 0, back.length, null), body.length, 'reads from the current offset: 0');
  t.true(back.subarray(0, body.length).equals(body));
  fs.closeSync(file.fd);
  t.is(budget.used, body.length, 'held until the exchange ends');
  spool.discard();
  t.is(budget.used, 0);
});

test('a full budget throws SpoolFullError; fits() checks without reserving', (t) => {
  const budget = new SpoolBudget(100);
  const spool = new BodySpool('/tmp', budget, () => {});
  t.true(spool.fits(100));
  t.false(spool.fits(101));
  t.is(budget.used, 0);
  t.true(spool.write(Buffer.alloc(60), () => {}));
  const other = new BodySpool('/tmp', budget, () => {});
  t.throws(() => other.write(Buffer.alloc(60), () => {}), { instanceOf: SpoolFullError, message: /spool_max_bytes \(100\) reached/ });
  other.discard();
  spool.discard();
  t.is(budget.used, 0);
});

test('openAnonymous: a file without a name; an unusable dir throws', (t) => {
  const dir = testTempDir(t, 'spool-');
  const fd = openAnonymous(dir);
  fs.writeSync(fd, 'x');
  t.deepEqual(fs.readdirSync(dir), []);
  fs.closeSync(fd);
  t.throws(() => openAnonymous(`${dir}/missing`), { code: 'ENOENT' });
});
