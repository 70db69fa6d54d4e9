// The slot pools of src/app_slots.ts: the runner's own (LocalSlots) and the native client's
// (NativeSlots, over a stand-in for appSlot/appSlotRelease). The runner's use of them is in
// app_runner.test.ts; both paths sharing one pool in a real lisod, in cgi_slots.test.ts.
import test from 'ava';
import { LocalSlots, NativeSlots } from '../src/app_slots.js';

test('LocalSlots: granted up to the limit, then waiting up to the queue, then null; first come first served', (t) => {
  const pool = new LocalSlots(2, 2);
  const granted: string[] = [];
  const a = pool.acquire(() => granted.push('a'))!;
  const b = pool.acquire(() => granted.push('b'))!;
  const c = pool.acquire(() => granted.push('c'))!;
  const d = pool.acquire(() => granted.push('d'))!;
  t.true(a.granted && b.granted);
  t.false(c.granted || d.granted);
  t.is(pool.acquire(() => granted.push('e')), null, 'the queue is full');
  t.deepEqual(granted, [], 'onGrant is only for slots that waited');
  c.release(); // withdrawn: its place is free, no slot changes hands
  t.deepEqual(granted, []);
  const f = pool.acquire(() => granted.push('f'))!;
  t.false(f.granted);
  a.release();
  t.deepEqual(granted, ['d']);
  t.true(d.granted);
  a.release(); // twice: nothing more
  t.deepEqual(granted, ['d']);
  b.release();
  t.deepEqual(granted, ['d', 'f']);
});

test('LocalSlots: a granted slot released inside its onGrant passes on to the next waiter, once', (t) => {
  const pool = new LocalSlots(1, 5);
  const order: string[] = [];
  const first = pool.acquire(() => order.push('first'))!;
  const failing = pool.acquire(() => { order.push('failing'); failing.release(); })!;
  pool.acquire(() => order.push('next'));
  pool.acquire(() => order.push('last'));
  first.release();
  t.deepEqual(order, ['failing', 'next']);
  t.false(pool.acquire(() => {})!.granted, 'next holds the only slot');
});

test('NativeSlots: tickets from appSlot; grant() only for its own waiting ones; release() once', (t) => {
  const results = [5, -6, 0];
  const released: number[] = [];
  const pool = new NativeSlots({ appSlot: () => results.shift()!, appSlotRelease: (n) => { released.push(n); } }, 3);
  const granted: string[] = [];
  const a = pool.acquire(() => granted.push('a'))!;
  const b = pool.acquire(() => granted.push('b'))!;
  t.true(a.granted);
  t.false(b.granted);
  t.is(pool.acquire(() => granted.push('c')), null, '0: the queue is full');
  t.false(pool.grant(5), 'ticket 5 was granted at once, not waiting');
  t.false(pool.grant(7), 'not this pool\'s');
  t.true(pool.grant(6));
  t.deepEqual(granted, ['b']);
  t.true(b.granted);
  t.false(pool.grant(6), 'granted once');
  b.release();
  b.release();
  a.release();
  t.deepEqual(released, [6, 5]);
});

test('NativeSlots: a waiting slot released before its grant is withdrawn, and a late grant is refused', (t) => {
  const released: number[] = [];
  const pool = new NativeSlots({ appSlot: () => -9, appSlotRelease: (n) => { released.push(n); } }, 0);
  let ran = false;
  const s = pool.acquire(() => { ran = true; })!;
  s.release();
  t.deepEqual(released, [9]);
  t.false(pool.grant(9));
  t.false(ran);
});
