// A finished native PipeReader can be garbage-collected, with whatever its callback's
// closure holds: before, its strong reference to the callback (a GC root) kept every CGI
// run's reader, pipes and process objects alive — about 3 KiB per request, seen as a
// steady RSS climb in `npm run soak` with CGI in the mix.
import test from 'ava';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadNative } from '../src/native.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test('finished PipeReaders and the objects their callbacks close over are collected', async (t) => {
  const native = loadNative();
  let finalized = 0;
  const registry = new FinalizationRegistry(() => { finalized++; });
  const kRuns = 100;
  for (let i = 0; i < kRuns; i++) {
    const p = native.spawnProcess('/bin/true', ['PATH=/usr/bin:/bin'], '/', -2);
    const owner = { reader: undefined as unknown, payload: Buffer.alloc(1024) }; // a CGI run's state
    await Promise.all([
      new Promise<void>((resolve) => native.watchExit(p.pidfd, () => resolve())),
      new Promise<void>((resolve) => {
        owner.reader = new native.PipeReader(p.stdout, (chunk) => { if (chunk === null && owner.payload) resolve(); });
      }),
      new Promise<void>((resolve) => {
        new native.PipeReader(p.stderr, (chunk) => { if (chunk === null) resolve(); });
      }),
    ]);
    registry.register(owner, i);
  }
  for (let i = 0; i < 10 && finalized < kRuns; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true(finalized >= kRuns * 0.9, `${finalized} of ${kRuns} finished runs were collected`);
});
