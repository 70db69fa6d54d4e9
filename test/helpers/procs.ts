// Waiting for a condition, and a process's children as /proc shows them (the tests check
// that lisod leaves no script or backend process behind).
import fs from 'node:fs';
import { sleep } from './client.js';

/** Polls until cond() holds or timeoutMs passes; returns the last value of cond(). */
export async function eventually(cond: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!cond() && Date.now() < deadline) await sleep(20);
  return cond();
}

/** The pids whose parent is process `pid` (whichever of its threads started them). */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
