// A finished child (ScriptProcess over the addon's ScriptRuns) can be garbage-collected, with
// whatever its listeners close over: a reference kept per run (a callback, a table entry) once
// it is done would keep every CGI run's pipes and state alive — about 3 KiB per request, seen
// before as a steady RSS climb in `npm run soak` with CGI in the mix.
import test from 'ava';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ScriptProcess } from '../src/spawn.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

test('finished children and the objects their listeners close over are collected', async (t) => {
  let finalized = 0;
  const registry = new FinalizationRegistry(() => { finalized++; });
  const kRuns = 100;
  for (let i = 0; i < kRuns; i++) {
    const owner = { payload: Buffer.alloc(1024) }; // a CGI run's state
    const child = new ScriptProcess('/bin/true', { cwd: '/', env: { PATH: '/usr/bin:/bin' }, stdin: 'ignore' });
    await Promise.all([
      new Promise<void>((resolve) => child.stdout.on('end', () => { if (owner.payload) resolve(); })),
      new Promise<void>((resolve) => child.on('close', () => resolve())),
    ]);
    registry.register(owner, i);
    registry.register(child, -i);
  }
  for (let i = 0; i < 10 && finalized < 2 * kRuns; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  t.true(finalized >= 2 * kRuns * 0.9, `${finalized} of ${2 * kRuns} finished runs' objects were collected`);
});
