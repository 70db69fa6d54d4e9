// Runs h2load (nghttp2-client) for the HTTP/2 rows and parses its report into the shape
// wrk.mjs gives (requests/s, transfer/s, failures), so rows.mjs measures both alike.
// h2load prints no percentiles: p50 carries its mean "time for request", p99 stays empty.

/**
 * @typedef {{url:string, threads?:number, conns:number, streams:number, seconds:number, acceptEncoding?:string}} H2loadSpec
 */

/** h2load's argument list (the exact command goes into RESULTS.md). @param {H2loadSpec} s */
export function h2loadArgs(s) {
  const args = [`-t${s.threads ?? 1}`, `-c${s.conns}`, `-m${s.streams}`, '-D', String(s.seconds)];
  if (s.acceptEncoding) args.push('-H', `accept-encoding: ${s.acceptEncoding}`);
  args.push(s.url);
  return args;
}

const TIME = { us: 1, ms: 1e3, s: 1e6 };
const SIZE = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/**
 * Parses h2load 1.x output.
 * @param {string} text @returns {import('./wrk.mjs').WrkResult & {protocol:string|null, tls:string|null}}
 */
export function parseH2load(text) {
  const fin = /finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s, ([\d.]+)(B|KB|MB|GB)\/s/.exec(text);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  if (!fin || !req) throw new Error(`cannot parse h2load output:\n${text.slice(-1500)}`);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(text);
  const mean = /time for request:\s+[\d.]+(?:us|ms|s)\s+[\d.]+(?:us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(text);
  const traffic = /traffic: [\d.]+\w+ \((\d+)\) total/.exec(text);
  const proto = /Application protocol: (\S+)/.exec(text);
  const tls = /TLS Protocol: (\S+)\s+Cipher: (\S+)/.exec(text);
  const seconds = (Number(fin[1]) * TIME[fin[2]]) / 1e6;
  const succeeded = Number(req[4]);
  return {
    requests: succeeded,
    seconds,
    bytes: traffic ? Number(traffic[1]) : NaN,
    rps: Number(fin[3]),
    bps: Number(fin[4]) * SIZE[fin[5]],
    latency: mean ? { p50: Number(mean[1]) * TIME[mean[2]] } : {},
    errors: { connect: 0, read: Number(req[6]), write: Number(req[5]), timeout: Number(req[7]) },
    non2xx: codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0,
    protocol: proto ? proto[1] : null,
    tls: tls ? `${tls[1]} ${tls[2]}` : null,
  };
}
