// Real lisod processes shared by the tests of one file, one per name: started on first use,
// their error log tails shown when a test fails (it says why a script failed), stopped when
// the file is done.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { startLisod, type Lisod, type LisodOptions } from './lisod.js';

/** The error log of `l` as it is now ('' before the first line). */
export function errorLogText(l: Lisod): string {
  const file = path.join(l.dirs.logs, 'error.log');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
}

/** Registers the file's hooks; returns server(name, make): the lisod `make` describes, started once. */
export function lisodPool(): (name: string, make: () => LisodOptions | Promise<LisodOptions>) => Promise<Lisod> {
  const servers = new Map<string, Promise<Lisod>>();
  test.afterEach.always(async (t) => {
    if (t.passed) return;
    for (const [name, s] of servers) {
      const l = await s.catch(() => undefined);
      if (!l) continue;
      const tail = errorLogText(l).split('\n').slice(-15).map((line) => line.slice(0, 300)).join('\n');
      t.log(`lisod '${name}' error log (tail):\n${tail}\nstderr: ${l.stderr().slice(-2000)}`);
    }
  });
  test.after.always(async () => {
    await Promise.all([...servers.values()].map(async (s) => (await s.catch(() => undefined))?.stop()));
  });
  return (name, make) => {
    let s = servers.get(name);
    if (!s) {
      s = Promise.resolve(make()).then((o) => startLisod(o));
      servers.set(name, s);
    }
    return s;
  };
}
