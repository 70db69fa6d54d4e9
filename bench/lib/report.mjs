// Turns samples into rows (median over passes, spread, flags, lisod's ratio to the best peer)
// and writes bench/RESULTS.md: environment, method, a summary, one table per scenario, commands.
import { isPeer } from './servers.mjs';

export const VARY_LIMIT = 0.15;
/** A comparison counts as won or lost only from medians of at least this many passes … */
export const MIN_PASSES = 3;

/**
 * One table row: a server on a scenario, summarised over its samples.
 * @typedef {{server:string, scenario:string, samples:import('./rows.mjs').Sample[], used:import('./rows.mjs').Sample[],
 *   rps?:number, bps?:number, p50?:number, p99?:number, cpuUsPerReq?:number, ownUsPerReq?:number, serverCpuPct?:number, wrkCpuPct?:number,
 *   otherPct?:number, perConn?:number, rssBefore?:number, rssAfter?:number, open?:number, spread:number, flags:string[], error?:string}} Row
 */

const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};

/** Relative spread of a metric over samples: (max − min) / median. */
export function spreadOf(xs) {
  const v = xs.filter((x) => Number.isFinite(x));
  if (v.length < 2) return 0;
  const m = median(v);
  return m > 0 ? (Math.max(...v) - Math.min(...v)) / m : 0;
}

/** The metric whose stability decides re-runs: req/s, or RSS per connection on idle rows. */
export const keyMetric = (s) => (s.idle ? s.idle.perConn : s.rps);

/**
 * Summarises samples of one server on one scenario. Samples taken while the machine was busy
 * are left out when at least one quiet sample exists.
 * @param {import('./rows.mjs').Sample[]} samples @returns {Row}
 */
export function summarise(samples) {
  const ok = samples.filter((s) => s.ok);
  const quiet = ok.filter((s) => !s.busy);
  const used = quiet.length ? quiet : ok;
  const m = (f) => median(used.map(f));
  // One note per kind: notes that differ only in their numbers (per-pass sizes) collapse.
  const byShape = new Map();
  for (const n of samples.flatMap((s) => s.notes)) {
    const shape = n.replace(/[\d.]+/g, '#');
    if (!byShape.has(shape)) byShape.set(shape, n);
  }
  const flags = [...byShape.values()];
  const spread = spreadOf(used.map(keyMetric));
  if (spread > VARY_LIMIT) flags.push(`varies ${(spread * 100).toFixed(0)}% between passes`);
  if (used.length && !quiet.length) flags.push(`busy machine (other processes ${m((s) => s.otherPct).toFixed(0)}% of a core)`);
  else if (ok.length > quiet.length) flags.push(`${ok.length - quiet.length} busy pass(es) left out`);
  // wrk -tN can use N cores (its CPU is a share of one core, so up to N × 100%).
  const wrkCores = used[0]?.wrkThreads ?? 1;
  if (used.length && !used[0].idle && m((s) => s.wrkCpuPct) >= 90 * wrkCores) {
    flags.push(`wrk-bound (client ${wrkCores > 1 ? `${wrkCores} cores` : 'core'} ≥ 90%): req/s is a floor`);
  }
  const failed = samples.filter((s) => !s.ok);
  /** @type {Row} */
  const row = {
    server: samples[0].server,
    scenario: samples[0].scenario,
    samples,
    used,
    spread,
    flags,
    error: failed.length ? [...new Set(failed.map((s) => s.error))].join('; ') : undefined,
  };
  if (!used.length) return row;
  if (used[0].idle) {
    Object.assign(row, {
      perConn: m((s) => s.idle.perConn),
      rssBefore: m((s) => s.idle.rssBefore),
      rssAfter: m((s) => s.idle.rssAfter),
      open: m((s) => s.idle.open),
    });
  } else {
    Object.assign(row, {
      rps: m((s) => s.rps),
      bps: m((s) => s.bps),
      p50: m((s) => s.p50),
      p99: m((s) => s.p99),
      cpuUsPerReq: m((s) => s.cpuUsPerReq),
      ownUsPerReq: m((s) => s.ownUsPerReq),
      serverCpuPct: m((s) => s.serverCpuPct),
      wrkCpuPct: m((s) => s.wrkCpuPct),
      otherPct: m((s) => s.otherPct),
    });
  }
  return row;
}

/**
 * Whether `a` beats `b` on CPU µs/req (lower is better): "won" or "lost" only when both
 * medians come from ≥ MIN_PASSES passes whose CPU µs/req spread stays under VARY_LIMIT;
 * otherwise why it does not count.
 * @param {Row} a @param {Row} b @returns {string}
 */
export function verdict(a, b) {
  const passes = Math.min(a.used.length, b.used.length);
  if (passes < MIN_PASSES) return `not counted (${passes} pass${passes === 1 ? '' : 'es'})`;
  const wide = [a, b].map((r) => ({ r, s: spreadOf(r.used.map((x) => x.cpuUsPerReq)) })).filter((x) => x.s >= VARY_LIMIT);
  if (wide.length) return `not counted (${wide.map((x) => `${x.r.server} spread ${(x.s * 100).toFixed(0)}%`).join(', ')})`;
  return a.cpuUsPerReq <= b.cpuUsPerReq ? 'won' : 'lost';
}

/**
 * lisod's ratio to the best peer on the same scenario.
 * @param {Row} row @param {Row[]} all rows of the scenario
 * @returns {{text:string, rpsRatio?:number, cpuRatio?:number, rpsPeer?:string, cpuPeer?:string, memRatio?:number, memPeer?:string}|null}
 */
export function versusBestPeer(row, all) {
  if (isPeer(row.server)) return null;
  const peers = all.filter((r) => isPeer(r.server) && r.used.length);
  if (!peers.length) return { text: 'no peer measured' };
  if (row.perConn !== undefined) {
    const best = peers.reduce((a, b) => (b.perConn < a.perConn ? b : a));
    const memRatio = row.perConn / best.perConn;
    return { text: `memory ${memRatio.toFixed(2)}× ${best.server}`, memRatio, memPeer: best.server };
  }
  if (row.rps === undefined) return null;
  const fast = peers.reduce((a, b) => (b.rps > a.rps ? b : a));
  const lean = peers.reduce((a, b) => (b.cpuUsPerReq < a.cpuUsPerReq ? b : a));
  const rpsRatio = row.rps / fast.rps;
  const cpuRatio = row.cpuUsPerReq / lean.cpuUsPerReq;
  return {
    text: `req/s ${rpsRatio.toFixed(2)}× ${fast.server}; CPU ${cpuRatio.toFixed(2)}× ${lean.server}`,
    rpsRatio, cpuRatio, rpsPeer: fast.server, cpuPeer: lean.server,
  };
}

const int = (n) => (Number.isFinite(n) ? (n < 100 && !Number.isInteger(n) ? n.toFixed(1) : Math.round(n).toLocaleString('en-US')) : '–');
const cpu = (n) => (Number.isFinite(n) ? (n >= 1000 ? Math.round(n).toLocaleString('en-US') : n.toFixed(1)) : '–');
const fixed = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
export function bytesRate(bps) {
  if (!Number.isFinite(bps)) return '–';
  if (bps >= 1024 ** 3) return `${(bps / 1024 ** 3).toFixed(2)} GiB/s`;
  if (bps >= 1024 ** 2) return `${(bps / 1024 ** 2).toFixed(1)} MiB/s`;
  return `${(bps / 1024).toFixed(0)} KiB/s`;
}
export function usTime(us) {
  if (!Number.isFinite(us)) return '–';
  if (us >= 1e6) return `${(us / 1e6).toFixed(2)} s`;
  if (us >= 1e3) return `${(us / 1e3).toFixed(2)} ms`;
  return `${us.toFixed(0)} µs`;
}
const mib = (b) => (Number.isFinite(b) ? `${(b / 1024 ** 2).toFixed(1)} MiB` : '–');
const cell = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Markdown table for one scenario. @param {Row[]} rows */
export function scenarioTable(rows) {
  const idle = rows.some((r) => r.perConn !== undefined) || rows.every((r) => r.samples[0].idle);
  const out = [];
  if (idle) {
    out.push('| server | connections held | RSS before | RSS after | RSS per connection | vs best peer | notes |');
    out.push('|---|---:|---:|---:|---:|---|---|');
    for (const r of rows) {
      const vs = versusBestPeer(r, rows);
      out.push(`| ${r.server} | ${int(r.open)} | ${mib(r.rssBefore)} | ${mib(r.rssAfter)} | ${Number.isFinite(r.perConn) ? `${(r.perConn / 1024).toFixed(2)} KiB` : '–'} | ` +
        `${vs ? cell(vs.text) : ''} | ${cell([...r.flags, r.error ? `error: ${r.error}` : ''].filter(Boolean).join('; '))} |`);
    }
    return out.join('\n');
  }
  // CGI rows: the server's own CPU (without its scripts) beside the whole tree's.
  const own = rows.some((r) => Number.isFinite(r.ownUsPerReq));
  out.push(`| server | req/s | transfer/s | p50 | p99 | server CPU µs/req |${own ? ' own CPU µs/req |' : ''} server CPU | wrk CPU | spread | vs best peer | notes |`);
  out.push(`|---|---:|---:|---:|---:|---:|${own ? '---:|' : ''}---:|---:|---:|---|---|`);
  for (const r of rows) {
    const vs = versusBestPeer(r, rows);
    out.push(`| ${r.server} | ${int(r.rps)} | ${bytesRate(r.bps)} | ${usTime(r.p50)} | ${usTime(r.p99)} | ${cpu(r.cpuUsPerReq)} | ${own ? `${cpu(r.ownUsPerReq)} | ` : ''}` +
      `${Number.isFinite(r.serverCpuPct) ? `${r.serverCpuPct.toFixed(0)}%` : '–'} | ${Number.isFinite(r.wrkCpuPct) ? `${r.wrkCpuPct.toFixed(0)}%` : '–'} | ` +
      `${r.used.length > 1 ? `${(r.spread * 100).toFixed(0)}%` : '–'} | ${vs ? cell(vs.text) : ''} | ` +
      `${cell([...r.flags, r.error ? `error: ${r.error}` : ''].filter(Boolean).join('; '))} |`);
  }
  return out.join('\n');
}

/**
 * The whole RESULTS.md.
 * @param {{env:Record<string,string>, argv:string[], settings:Record<string,string|number|boolean>,
 *   scenarios:import('./scenarios.mjs').Scenario[], rows:Map<string, Row[]>, commands:Map<string,string>,
 *   configs:Map<string,string>, skipped:string[], quick:boolean, clkTck:number}} r
 */
export function renderResults(r) {
  const L = [];
  L.push('# lisod benchmarks: side by side with nginx, lighttpd and Node\'s https');
  L.push('');
  L.push(`Generated by \`npm run bench${r.argv.length ? ` -- ${r.argv.join(' ')}` : ''}\` (bench/run.mjs) on ${r.env.date}.`);
  if (r.quick) L.push('\n**Quick run** (1 short pass per row, for development): do not draw conclusions from these numbers.');
  const carried = Object.entries(r.origins ?? {});
  if (carried.length) {
    L.push('');
    L.push(`**Rows carried over** from an earlier run (\`--merge\`), not re-measured in this one: ${carried
      .map(([id, o]) => `${id} (lisod ${o.commit}, ${o.date.slice(0, 10)})`).join(', ')}. Every other row was measured at the commit below.`);
  }
  L.push('');
  L.push('## Machine and versions');
  L.push('');
  L.push('| | |');
  L.push('|---|---|');
  const labels = { commit: 'lisod commit', node: 'Node.js', nodeOpenssl: 'OpenSSL in Node (lisod, node peer)', nginx: 'nginx', lighttpd: 'lighttpd',
    openssl: 'system OpenSSL (nginx, lighttpd, wrk)', wrk: 'wrk', h2load: 'h2load (HTTP/2 rows)', python: 'CGI interpreter (/usr/bin/python3)', kernel: 'kernel', cpu: 'CPU', loadavg: '/proc/loadavg at start' };
  for (const [k, label] of Object.entries(labels)) L.push(`| ${label} | ${cell(r.env[k] ?? '')} |`);
  for (const [k, v] of Object.entries(r.settings)) L.push(`| ${k} | ${cell(v)} |`);
  L.push('');
  L.push('## Method');
  L.push('');
  L.push('- Every row starts the server fresh, in the foreground, with its own generated config (below), on 127.0.0.1 only, ' +
    'pinned to CPU 0 with `taskset`; the client (wrk, or the idle-connection client) runs pinned to CPU 1. All servers serve the same ' +
    'docroot (1 KiB html, 100 KiB, 1 MiB, 10 MiB of random bytes) with the same RSA-2048 / ECDSA P-256 certificates, TLS 1.2 + 1.3. ' +
    '**Every server logs every request**, as a deployment does: lisod `access_log`, nginx `access_log … combined buffer=64k flush=1s`, ' +
    'lighttpd `mod_accesslog`; `lisod-nolog` is lisod without its access log (to show what logging costs), and node has no access log.');
  L.push('- **Scaling rows** (`*-t2`): wrk -t2 -c100 and the server both run unpinned; `lisod` has 1 event loop, `lisod-w2` 2 ' +
    '(`workers = 2`, worker threads sharing the ports with SO_REUSEPORT), nginx `worker_processes 2`, lighttpd one process as the ' +
    'single-core reference. Server and client share the machine\'s cores, so on a 2-core machine these rows cannot show 2× — ' +
    'they show scaling only on machines with more cores. Server CPU counts every thread and process of the server.');
  L.push('- Before measuring: one request checks status and size; TLS rows that disable or enable resumption check it with a real ' +
    'reconnect offering the previous session (TLS 1.3 and 1.2) and note any server that does not behave as the row says; a warm-up wrk run ' +
    'precedes the measured one (20 s in the trivial CGI rows: at ~120 requests/s lisod\'s JavaScript per request is optimised only ' +
    'after ~2,000 requests, as in a server that has run for a while; lighttpd\'s figures do not change with it).');
  L.push(`- **Server CPU µs/req** = change in utime+stime+cutime+cstime (/proc/<pid>/stat) summed over the server's whole process tree ` +
    `(nginx master + worker, lighttpd + its CGI children, lisod + its scripts; reaped children count through cutime) across the measured run, ` +
    `÷ requests completed. **own CPU µs/req** (CGI rows) = CPU of the server's own processes alone (lisod; lighttpd; ` +
    `nginx master + workers: the scheduler's sum_exec_runtime of their threads, /proc/<pid>/task/<tid>/sched, else utime+stime), without ` +
    `their scripts and without the reaped children's cutime/cstime: spawning compared apart from the script. ` +
    `Clock tick ${(1e3 / r.clkTck).toFixed(0)} ms. **server CPU** / **wrk CPU** = share of one core over the run ` +
    '(wrk near 100% means the client, not the server, was the limit).');
  L.push(`- Servers alternate within each pass (the order rotates every pass); values are medians over passes. **spread** = (max − min) / median ` +
    `of req/s; above ${VARY_LIMIT * 100}% the row is flagged and re-run. Before each row the harness waits for other processes to go quiet; a ` +
    `pass where other processes used more than ${r.settings['busy threshold']} of a core during the run is marked busy, re-run, and left out ` +
    'when a quiet pass exists.');
  L.push('- CGI rows: both servers run the same script with the same environment; a run starts with no script in flight but ends with ' +
    'up to -c scripts part-done, whose CPU counts without their request (the notes give the bound). Scripts run on the server core too. ' +
    'lighttpd sends SIGTERM to a script as soon as its Content-Length is out, which cuts short the Python interpreter\'s teardown ' +
    '(~0.7–2 ms for the trivial script, measured with and without `os._exit`); lisod by default lets every script exit on its own, and ' +
    'does what lighttpd does with `[cgi] end_after_response = true`, which the cgi-trivial row sets (cgi-trivial-exit keeps the default). cgi-bin/flaskr.cgi ' +
    'skips that teardown itself (`end_process` in cgi-bin/wsgi_cgi.py), so on the Flaskr row both servers pay the same script cost. ' +
    'lighttpd starts every request\'s script at once; lisod (`[cgi] max_runnable`, default "auto": the CPUs it may run on + 1, so 2 ' +
    'under `taskset -c 0`) starts a waiting request\'s script only while fewer of its scripts are runnable, up to `max_processes = 16`.');
  L.push('- Idle rows: `bench/idle_client.mjs` opens the connections (one keep-alive GET each, response read) and holds them; RSS is ' +
    'VmRSS summed over the server tree, before (after 100 warm-up connections were opened and closed) and after, ÷ connections still ' +
    'open. nginx preallocates its `worker_connections` (16000) connection and event structures at start, so they are in its "before".');
  L.push('- **wrk-bound**: wrk used ≥ 90% of its core (≥ 180% in the -t2 rows, i.e. both threads), so req/s is a floor for that server (CPU µs/req is still its own).');
  L.push('- **vs best peer** (lisod rows): req/s ÷ the highest peer req/s, and CPU µs/req ÷ the lowest peer CPU µs/req ' +
    '(peers: nginx, lighttpd, node). Above 1× is better for req/s, below 1× is better for CPU and memory.');
  L.push(`- **verdict** (CPU µs/req): a row counts as **won** or **lost** only from medians of at least ${MIN_PASSES} alternating passes ` +
    `whose CPU µs/req spread is under ${VARY_LIMIT * 100}% for both servers compared; anything else says "not counted" and why.`);
  if (r.skipped.length) {
    L.push('');
    L.push('Skipped:');
    for (const s of r.skipped) L.push(`- ${s}`);
  }
  L.push('');
  L.push('## Summary: lisod vs the best peer');
  L.push('');
  L.push('| scenario | lisod req/s | best peer req/s | ratio | lisod CPU µs/req | lowest peer CPU µs/req | ratio | verdict | caveats |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---|---|');
  const caveats = (...rs) => cell([...new Set(rs.flatMap((x) => x.flags.filter((f) => /^(busy|varies|wrk-bound|lisod resumption)|NOT as/.test(f))
    .map((f) => `${x.server}: ${f.replace(/ \(.*$/, '')}`)))].join('; '));
  const rowName = (id) => (r.origins?.[id] ? `${id} (carried over, ${r.origins[id].commit})` : id);
  for (const sc of r.scenarios) {
    const rows = r.rows.get(sc.id) ?? [];
    const l = rows.find((x) => x.server === 'lisod');
    const peers = rows.filter((x) => isPeer(x.server) && x.used.length);
    if (!l || !peers.length) continue;
    if (l.perConn !== undefined) {
      const best = peers.reduce((a, b) => (b.perConn < a.perConn ? b : a));
      L.push(`| ${rowName(sc.id)} | RSS/conn ${(l.perConn / 1024).toFixed(2)} KiB | ${best.server} ${(best.perConn / 1024).toFixed(2)} KiB | ${fixed(l.perConn / best.perConn, 2)}× | | | | | ${caveats(l, best)} |`);
      continue;
    }
    const fast = peers.reduce((a, b) => (b.rps > a.rps ? b : a));
    const lean = peers.reduce((a, b) => (b.cpuUsPerReq < a.cpuUsPerReq ? b : a));
    L.push(`| ${rowName(sc.id)} | ${int(l.rps)} | ${fast.server} ${int(fast.rps)} | ${fixed(l.rps / fast.rps, 2)}× | ${cpu(l.cpuUsPerReq)} | ` +
      `${lean.server} ${cpu(lean.cpuUsPerReq)} | ${fixed(l.cpuUsPerReq / lean.cpuUsPerReq, 2)}× | ${verdict(l, lean)} | ${caveats(l, fast, lean)} |`);
  }
  const logged = r.scenarios.map((sc) => [sc, r.rows.get(sc.id) ?? []])
    .map(([sc, rows]) => [sc, rows.find((x) => x.server === 'lisod'), rows.find((x) => x.server === 'lisod-nolog')])
    .filter(([, l, n]) => l?.cpuUsPerReq !== undefined && n?.cpuUsPerReq !== undefined);
  if (logged.length) {
    L.push('');
    L.push('**What lisod\'s access log costs** (`lisod` logs, `lisod-nolog` does not; issue 13 asks for ≤ 10% of the no-log CPU):');
    L.push('');
    L.push('| scenario | lisod CPU µs/req | lisod-nolog CPU µs/req | logging costs | verdict (≤ 10%) |');
    L.push('|---|---:|---:|---:|---|');
    for (const [sc, l, n] of logged) {
      const cost = l.cpuUsPerReq / n.cpuUsPerReq - 1;
      const counted = verdict(l, n);
      const v = counted.startsWith('not counted') ? counted : cost <= 0.1 ? 'met' : 'missed';
      L.push(`| ${rowName(sc.id)} | ${cpu(l.cpuUsPerReq)} | ${cpu(n.cpuUsPerReq)} | ${(cost * 100).toFixed(1)}% | ${v} |`);
    }
  }
  const spawning = r.scenarios.map((sc) => [sc, (r.rows.get(sc.id) ?? []).filter((x) => Number.isFinite(x.ownUsPerReq))])
    .filter(([, rows]) => rows.length);
  if (spawning.length) {
    L.push('');
    L.push('**CGI rows, the server\'s own CPU** (without its scripts: what spawning and relaying cost apart from the script):');
    L.push('');
    L.push('| scenario | ' + ['server', 'own CPU µs/req', 'whole tree CPU µs/req'].join(' | ') + ' |');
    L.push('|---|---|---:|---:|');
    for (const [sc, rows] of spawning) {
      for (const x of rows) L.push(`| ${rowName(sc.id)} | ${x.server} | ${cpu(x.ownUsPerReq)} | ${cpu(x.cpuUsPerReq)} |`);
    }
  }
  for (const sc of r.scenarios) {
    const rows = r.rows.get(sc.id);
    if (!rows?.length) continue;
    L.push('');
    L.push(`## ${sc.title}`);
    L.push('');
    const cmd = r.commands.get(sc.id);
    const pinned = sc.pinned !== false && r.settings['client pinning'];
    if (cmd) L.push(`\`${pinned ? `${r.settings['client pinning']} ` : ''}${cmd}\``);
    const from = r.origins?.[sc.id];
    if (from) L.push(`\n*Carried over: measured at lisod ${from.commit} on ${from.date}, not in this run.*`);
    L.push('');
    L.push(scenarioTable(rows));
  }
  L.push('');
  L.push('## Server commands and configs');
  L.push('');
  L.push('Paths and ports are those of the run (a fresh temp dir; ports picked free per row).');
  for (const [key, text] of r.configs) {
    L.push('');
    L.push(`<details><summary>${key}</summary>`);
    L.push('');
    L.push('```');
    L.push(text.trimEnd());
    L.push('```');
    L.push('</details>');
  }
  L.push('');
  return L.join('\n');
}
