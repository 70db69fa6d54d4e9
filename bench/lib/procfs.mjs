// Reads CPU time and memory of processes from /proc (Linux): process trees for the server
// under test, and "everyone else" to notice when the machine is busy with other work.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Clock ticks per second used by utime/stime in /proc/<pid>/stat (USER_HZ). */
export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * One /proc/<pid>/stat line. `ticks` = utime + stime + cutime + cstime: the process's own
 * CPU (all its threads) plus that of children it has already waited for, so a CGI script
 * that ran and was reaped during a run still counts for its server.
 * `childTicks` = cutime + cstime alone (the reaped children's part); `ownTicks` = utime + stime
 * alone (the process's own threads, none of its children's).
 * @typedef {{pid:number, ppid:number, comm:string, ticks:number, childTicks:number, ownTicks:number, startTime:number, rssPages:number}} ProcStat
 */

/** @param {number} pid @returns {ProcStat|null} null when the process is gone. */
export function readStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  // Fields after the command name start at field 3 (state); field n is at index n - 3.
  const f = text.slice(close + 2).split(' ');
  return {
    pid,
    ppid: Number(f[1]),
    comm: text.slice(open + 1, close),
    ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]),
    childTicks: Number(f[13]) + Number(f[14]),
    ownTicks: Number(f[11]) + Number(f[12]),
    startTime: Number(f[19]),
    rssPages: Number(f[21]),
  };
}

/** Every process on the machine, by pid. @returns {Map<number, ProcStat>} */
export function snapshotAll() {
  const all = new Map();
  for (const name of fs.readdirSync('/proc')) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue;
    const s = readStat(Number(name));
    if (s) all.set(s.pid, s);
  }
  return all;
}

/**
 * `root` and all its descendants in a snapshot (/proc/<pid>/task/<tid>/children is not
 * available on every kernel, so the tree is built from ppid links).
 * @param {Map<number, ProcStat>} all @param {number} root @returns {ProcStat[]}
 */
export function treeOf(all, root) {
  const kids = new Map();
  for (const s of all.values()) {
    if (!kids.has(s.ppid)) kids.set(s.ppid, []);
    kids.get(s.ppid).push(s);
  }
  const out = [];
  const first = all.get(root);
  if (!first) return out;
  const stack = [first];
  while (stack.length) {
    const s = /** @type {ProcStat} */ (stack.pop());
    out.push(s);
    for (const k of kids.get(s.pid) ?? []) stack.push(k);
  }
  return out;
}

/**
 * The server's own CPU in a tree, in microseconds: the root and every descendant that runs
 * the same program (nginx's workers; lisod's and lighttpd's single process), without the
 * reaped children's cutime/cstime and without CGI scripts or backends (other comms). Read
 * from the scheduler's sum_exec_runtime of each live thread (/proc/<pid>/task/<tid>/sched,
 * µs resolution) where the kernel has it, else from utime + stime (clock ticks: 10 ms, too
 * coarse for a few hundred CGI requests).
 * @param {ProcStat[]} tree treeOf's answer, root first @returns {number} µs
 */
export function ownCpuUsOf(tree) {
  const root = tree[0];
  if (!root) return 0;
  return tree.filter((s) => s.comm === root.comm).reduce((sum, s) => sum + (threadsRuntimeUs(s.pid) ?? ticksToUs(s.ownTicks)), 0);
}

/** Σ se.sum_exec_runtime (ms in the file) over a process's live threads, in µs; null when unavailable. */
function threadsRuntimeUs(pid) {
  let total = 0;
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const m = /^se\.sum_exec_runtime\s*:\s*([\d.]+)/m.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/sched`, 'latin1'));
      if (!m) return null;
      total += Number(m[1]) * 1e3;
    }
  } catch {
    return null;  // no CONFIG_SCHED_DEBUG, or the process is gone
  }
  return total;
}

/** Pids of a process tree with their start times (to kill leftovers safely later). */
export function treePids(root) {
  return treeOf(snapshotAll(), root).map((s) => ({ pid: s.pid, startTime: s.startTime }));
}

/** Resident set size of a process tree in bytes (VmRSS summed over its processes). */
export function treeRssBytes(root) {
  let total = 0;
  for (const s of treeOf(snapshotAll(), root)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${s.pid}/status`, 'latin1'));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      // exited between the scan and the read
    }
  }
  return total;
}

/**
 * Busy ticks of the whole machine so far, from the first line of /proc/stat: user + nice +
 * system + steal (guest time is inside user). irq/softirq are left out: depending on the
 * kernel's IRQ time accounting they are or are not also charged to the interrupted process.
 */
export function machineBusyTicks() {
  const f = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + (f[7] ?? 0);
}

/**
 * Ticks used between two marks by everything outside the harness's own process tree (the
 * harness, its servers, wrk, the idle client). Summing every other process's ticks instead
 * over-counts: a reaped child's whole lifetime lands in its parent's cutime at once.
 * @param {{machine:number, all:Map<number, ProcStat>}} before @param {{machine:number, all:Map<number, ProcStat>}} after
 * @param {number} root the harness pid
 */
export function otherTicks(before, after, root) {
  const mine = (m) => treeOf(m.all, root).reduce((sum, s) => sum + s.ticks, 0);
  return Math.max(0, after.machine - before.machine - (mine(after) - mine(before)));
}

/** A mark for otherTicks: machine busy ticks and every process. */
export function machineMark() {
  const machine = machineBusyTicks();
  return { machine, all: snapshotAll() };
}

/** 1-minute load average. */
export function loadAvg1() {
  return Number(fs.readFileSync('/proc/loadavg', 'latin1').split(' ')[0]);
}

/** Whether a process with this pid and start time still exists. */
export function alive(pid, startTime) {
  const s = readStat(pid);
  return s !== null && (startTime === undefined || s.startTime === startTime);
}

/** Converts ticks to microseconds. */
export function ticksToUs(ticks) {
  return (ticks * 1e6) / CLK_TCK;
}
