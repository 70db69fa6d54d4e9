// One generated docroot served by one or more lisod instances for a whole test file:
// started in test.before, stopped in test.after.always.
import type { TestFn } from 'ava';
import { makeDocroot, type Docroot, type DocrootOptions } from './docroot.js';
import { startLisod, type Lisod, type LisodOptions } from './lisod.js';

/** The docroot and every server by name; reading them before test.before has run throws. */
export type Site<K extends string> = { readonly www: Docroot } & { readonly [P in K]: Lisod };

export interface UseLisodOptions<K extends string> {
  docroot?: DocrootOptions;
  /** Runs on the fresh docroot before any server starts (e.g. to pin mtimes). */
  prepare?: (www: Docroot) => void;
  /** startLisod options per server name (`www` defaults to the docroot); default { srv: {} }. */
  servers?: Record<K, LisodOptions> | (() => Promise<Record<K, LisodOptions>>);
}

/** Registers the before/after hooks on `test`; the servers start in parallel. */
export function useLisod<K extends string = 'srv'>(
  test: TestFn,
  opts: UseLisodOptions<K> = {},
): Site<K> {
  let www: Docroot | undefined;
  const started: Array<Promise<Lisod>> = [];
  const running = new Map<string, Lisod>();

  test.before(async () => {
    const root = makeDocroot(opts.docroot);
    www = root;
    opts.prepare?.(root);
    const specs = typeof opts.servers === 'function' ? await opts.servers() : opts.servers ?? { srv: {} };
    const entries = Object.entries<LisodOptions>(specs);
    started.push(...entries.map(([, o]) => startLisod({ www: root.root, ...o })));
    const servers = await Promise.all(started);
    entries.forEach(([name], i) => running.set(name, servers[i]!));
  });

  test.after.always(async () => {
    await Promise.all(started.map(async (l) => (await l.catch(() => undefined))?.stop()));
  });

  return new Proxy({} as Site<K>, {
    get(_, name) {
      if (typeof name === 'symbol') return undefined;
      const value = name === 'www' ? www : running.get(name);
      if (value === undefined) throw new Error(`useLisod: '${name}' read before test.before started it`);
      return value;
    },
  });
}
