// Runs wrk (pinned to the client core) and parses its report: requests/s, transfer/s,
// latency percentiles (--latency), socket errors and non-2xx/3xx responses.
import { spawn } from 'node:child_process';

/**
 * @typedef {{url:string, threads?:number, conns:number, seconds:number, close?:boolean, timeout?:number, acceptEncoding?:string}} WrkSpec
 * @typedef {{requests:number, seconds:number, bytes:number, rps:number, bps:number,
 *   latency:{p50?:number, p75?:number, p90?:number, p99?:number}, errors:{connect:number, read:number, write:number, timeout:number},
 *   non2xx:number}} WrkResult  (latencies in microseconds, bytes per second)
 */

/** wrk's argument list for a spec (the exact command goes into RESULTS.md). @param {WrkSpec} s */
export function wrkArgs(s) {
  const args = [`-t${s.threads ?? 1}`, `-c${s.conns}`, `-d${s.seconds}s`, `--timeout`, `${s.timeout ?? 5}s`, '--latency'];
  if (s.close) args.push('-H', 'Connection: close');
  if (s.acceptEncoding) args.push('-H', `Accept-Encoding: ${s.acceptEncoding}`);
  args.push(s.url);
  return args;
}

/** Shell-quoted command line for the report. */
export function shellLine(cmd, args) {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

const TIME = { us: 1, ms: 1e3, s: 1e6, m: 60e6, h: 3600e6 };
const SIZE = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

function time(v, unit) {
  return Number(v) * TIME[unit];
}

/** Parses wrk 4.x output. @param {string} text @returns {WrkResult} */
export function parseWrk(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const done = /(\d+) requests in ([\d.]+)(us|ms|s|m|h), ([\d.]+)(B|KB|MB|GB|TB) read/.exec(text);
  if (!done) throw new Error(`cannot parse wrk output:\n${text}`);
  const latency = {};
  for (const m of text.matchAll(/^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$/gm)) {
    latency[`p${m[1]}`] = time(m[2], m[3]);
  }
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const transfer = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB|TB)/.exec(text);
  return {
    requests: Number(done[1]),
    seconds: time(done[2], done[3]) / 1e6,
    bytes: Number(done[4]) * SIZE[done[5]],
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    bps: transfer ? Number(transfer[1]) * SIZE[transfer[2]] : NaN,
    latency,
    errors: err
      ? { connect: Number(err[1]), read: Number(err[2]), write: Number(err[3]), timeout: Number(err[4]) }
      : { connect: 0, read: 0, write: 0, timeout: 0 },
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/) || 0,
  };
}

/**
 * Runs wrk (or `o.cmd`: h2load for the HTTP/2 rows) to completion, pinned to `cpu` when given.
 * @param {import('./servers.mjs').Supervisor} sup @param {string[]} args
 * @param {{cpu:string|null, log:string, cmd?:string}} o
 * @returns {Promise<{text:string, code:number|null}>}
 */
export async function runWrk(sup, args, o) {
  const { child, exited } = sup.spawn(o.cmd ?? 'wrk', args, { cpu: o.cpu, log: o.log, stdout: 'pipe' });
  let text = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d) => { text += d; });
  const closed = new Promise((resolve) => child.once('close', resolve));
  await exited;
  await closed;
  sup.live.delete(/** @type {number} */ (child.pid));
  return { text, code: child.exitCode };
}
