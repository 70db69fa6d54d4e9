#!/usr/bin/env node
// `npm run bench`: lisod side by side with nginx, lighttpd and Node's http/https (issue 5).
// Reads top to bottom: options → tool check → fixtures → passes of rows → re-runs → RESULTS.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { checkTools, collectEnvironment, lighttpdModDir } from './lib/env.mjs';
import { makeDocroot, makeCerts, makeTrivialCgi, makeTrivialExitCgi, flaskrEnv } from './lib/fixtures.mjs';
import { Supervisor, SERVER_NAMES, FPM_BINARY, findLisodResumptionKey } from './lib/servers.mjs';
import { selectScenarios, SCENARIOS } from './lib/scenarios.mjs';
import { runRow } from './lib/rows.mjs';
import { summarise, renderResults, spreadOf, keyMetric, VARY_LIMIT, bytesRate, usTime } from './lib/report.mjs';
import { CLK_TCK } from './lib/procfs.mjs';
import { mergeRuns } from './lib/merge.mjs';
import { probeWrkTls } from './lib/wrkprobe.mjs';

const BENCH = path.dirname(new URL(import.meta.url).pathname);
const REPO = path.dirname(BENCH);

const USAGE = `usage: npm run bench -- [options]
  --quick               1 pass, 3 s per row, 1 s warm-up, no re-runs (development)
  --duration <s>        seconds per measured wrk run (default 10)
  --warmup <s>          seconds of warm-up before each measured run (default 2)
  --passes <n>          passes over all rows; servers alternate within a pass (default 3)
  --reruns <n>          extra passes for rows that vary > 15% or ran on a busy machine (default 1)
  --only <regex>        scenarios whose id matches (ids: see bench/lib/scenarios.mjs)
  --extra               also the 100 KiB / 10 MiB rows
  --servers <list>      comma-separated subset of ${SERVER_NAMES.join(',')}
  --idle-conns <n>      idle keep-alive connections for the memory rows (default 10000)
  --cgi-script <path>   the trivial CGI script (default: a generated Python script)
  --flaskr <path>       the Flaskr CGI entry point (default cgi-bin/flaskr.cgi)
  --lisod <path>        lisod's main.js (default dist/main.js)
  --lisod-b <path>      another build's main.js, run as server lisod-b beside lisod in every row (A/B)
  --busy <pct>          other processes' CPU (% of one core) that marks a pass busy (default 15)
  --out <file>          results file (default bench/RESULTS.md)
  --json <file>         also write every raw sample (and what the report needs) as JSON
  --render <file>       only rewrite the results file from such a JSON file
  --merge <file>        keep the rows this run does not measure from an earlier --json file
                        (RESULTS.md marks each with the commit and date it was measured at)
  --no-pin              do not pin server/client to CPUs 0/1
  --keep                keep the temp dir (configs, logs) for inspection`;

const { values: a } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    passes: { type: 'string' },
    reruns: { type: 'string' },
    only: { type: 'string' },
    extra: { type: 'boolean', default: false },
    servers: { type: 'string' },
    'idle-conns': { type: 'string', default: '10000' },
    'cgi-script': { type: 'string' },
    flaskr: { type: 'string', default: path.join(REPO, 'cgi-bin', 'flaskr.cgi') },
    lisod: { type: 'string', default: path.join(REPO, 'dist', 'main.js') },
    'lisod-b': { type: 'string' },
    busy: { type: 'string', default: '15' },
    out: { type: 'string', default: path.join(BENCH, 'RESULTS.md') },
    json: { type: 'string' },
    render: { type: 'string' },
    merge: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (a.help) {
  console.log(USAGE);
  process.exit(0);
}
if (a.render) {
  writeResults(JSON.parse(fs.readFileSync(a.render, 'utf8')));
  process.exit(0);
}
if (a.merge && !fs.existsSync(a.merge)) {
  console.error(`bench: --merge ${a.merge}: no such file (give the --json file of an earlier run)`);
  process.exit(2);
}
const num = (v, d) => (v === undefined ? d : Number(v));
const opts = {
  seconds: num(a.duration, a.quick ? 3 : 10),
  warmup: num(a.warmup, a.quick ? 1 : 2),
  passes: num(a.passes, a.quick ? 1 : 3),
  reruns: num(a.reruns, a.quick ? 0 : 1),
  idleConns: num(a['idle-conns'], 10000),
  busyPct: num(a.busy, 15),
};
for (const [k, v] of Object.entries(opts)) {
  if (!Number.isFinite(v) || v < 0) {
    console.error(`bench: bad value for ${k}\n${USAGE}`);
    process.exit(2);
  }
}

// Servers and scenarios.
let servers = a.servers ? a.servers.split(',').map((s) => s.trim()).filter(Boolean) : SERVER_NAMES.filter((s) => s !== 'lisod-b');
if (a['lisod-b'] && !servers.includes('lisod-b')) servers.push('lisod-b');
if (servers.includes('lisod-b') && !(a['lisod-b'] && fs.existsSync(a['lisod-b']))) {
  console.error('bench: lisod-b needs --lisod-b PATH, the main.js of an existing build');
  process.exit(2);
}
const unknown = servers.filter((s) => !SERVER_NAMES.includes(s));
if (unknown.length) {
  console.error(`bench: unknown server(s) ${unknown.join(', ')}; known: ${SERVER_NAMES.join(', ')}`);
  process.exit(2);
}
const scenarios = selectScenarios(a.only, a.extra);
if (!scenarios.length) {
  console.error(`bench: --only ${a.only} matches no scenario`);
  process.exit(2);
}

// The harness installs nothing: say what is missing and stop.
const tools = checkTools(servers);
if (tools.missing.length) {
  console.error(`bench: missing ${tools.missing.join(', ')}.\nInstall with: sudo apt-get install ${tools.packages.join(' ')}` +
    '\n(or leave the missing servers out with --servers)');
  process.exit(1);
}
const skipped = [];
const lisodMain = path.resolve(a.lisod);
if (servers.some((s) => s.startsWith('lisod')) && !fs.existsSync(lisodMain)) {
  skipped.push(`lisod rows: ${lisodMain} not found (build with \`npm run build\`)`);
  servers = servers.filter((s) => !s.startsWith('lisod'));
}
const flaskr = path.resolve(a.flaskr);
const flaskrOk = fs.existsSync(flaskr);
if (!flaskrOk && scenarios.some((s) => s.cgi === 'flaskr')) skipped.push(`cgi-flaskr: ${flaskr} not found (give one with --flaskr)`);
const fpmOk = fs.existsSync(FPM_BINARY);
if (!fpmOk && scenarios.some((s) => s.fpm)) skipped.push(`php-fpm rows: ${FPM_BINARY} not found (apt-get install php-fpm)`);
const pin = !a['no-pin'] && os.availableParallelism() >= 2;

// Temp dir, processes, and cleanup on every way out.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lisod-bench-'));
fs.chmodSync(tmp, 0o755); // nginx workers may run as nobody
const sup = new Supervisor(path.join(tmp, 'runs'));
fs.mkdirSync(sup.dir, { mode: 0o755 });
let cleaning = null;
function cleanup() {
  cleaning ??= sup.stopAll().then(() => {
    if (!a.keep) fs.rmSync(tmp, { recursive: true, force: true });
    else console.error(`bench: kept ${tmp}`);
  });
  return cleaning;
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, stopping servers`);
    cleanup().finally(() => process.exit(130));
  });
}

try {
  await main();
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.stack : e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}

async function main() {
  console.error(`bench: temp dir ${tmp}`);
  const docroot = makeDocroot(tmp);
  const certs = makeCerts(tmp);
  const trivial = a['cgi-script'] ? path.resolve(a['cgi-script']) : makeTrivialCgi(tmp);
  const trivialExit = makeTrivialExitCgi(tmp);
  const fenv = flaskrEnv(tmp);
  const env = collectEnvironment(REPO);
  const lisodResumptionKey = fs.existsSync(lisodMain) ? findLisodResumptionKey(lisodMain) : null;
  /** @type {import('./lib/servers.mjs').Context} */
  const ctx = { dir: tmp, docroot, certs, repo: REPO, lisodMain, lisodMainB: a['lisod-b'] ? path.resolve(a['lisod-b']) : undefined, lighttpdModDir: lighttpdModDir(), serverCpu: pin ? '0' : null, lisodResumptionKey };
  let wrkTls = 'not probed (needs nginx and a TLS scenario)';
  if (tools.paths.nginx && scenarios.some((sc) => sc.scheme === 'https' && sc.kind === 'wrk')) {
    wrkTls = await probeWrkTls(sup, certs.rsa, docroot, path.join(tmp, 'wrk-probe')).catch((e) => `probe failed: ${e.message}`);
    console.error(`bench: ${wrkTls}`);
  }
  const rowOpts = { seconds: opts.seconds, warmup: opts.warmup, quick: Boolean(a.quick), clientCpu: pin ? '1' : null, quietSeconds: a.quick ? 0.5 : 1,
    busyPct: opts.busyPct, idleConns: opts.idleConns, ca: certs.ca };

  /** @type {Map<string, import('./lib/rows.mjs').Sample[]>} */
  const samples = new Map();
  const commands = new Map();
  const configs = new Map();
  const variantOf = (sc) => ({
    cert: sc.cert,
    resumption: sc.resumption,
    cgiScript: sc.cgi === 'flaskr' ? flaskr : sc.cgi === 'trivial-exit' ? trivialExit : trivial,
    cgiEnv: sc.cgi === 'flaskr' ? fenv : {},
    fcgi: sc.fcgi ? { command: path.join(path.dirname(flaskr), 'flaskr.fcgi'), processes: 2 } : null,
    fpm: sc.fpm ? { processes: 2 } : null,
    workers: sc.workers,
    pinned: sc.pinned,
    h2: sc.kind === 'h2load',
    deflate: Boolean(sc.acceptEncoding),
    cgiEnd: Boolean(sc.cgiEnd),
  });
  const plan = scenarios.filter((sc) => (sc.cgi !== 'flaskr' || flaskrOk) && (!sc.fpm || fpmOk))
    .map((sc) => ({ sc, servers: sc.servers.flatMap((s) => (s === 'lisod' ? ['lisod', 'lisod-b'] : [s])).filter((s) => servers.includes(s)) }))
    .filter((p) => p.servers.length);

  const one = async (sc, server, pass, label) => {
    const s = await runRow(sup, ctx, sc, server, variantOf(sc), rowOpts, pass);
    const key = `${sc.id}\t${server}`;
    if (!samples.has(key)) samples.set(key, []);
    samples.get(key).push(s);
    if (s.command && !commands.has(sc.id)) commands.set(sc.id, s.command);
    const ck = `${server}${sc.resumption ? '' : ' (resumption off)'}${sc.cgi === 'flaskr' ? ` (Flaskr${sc.fcgi ? ', FastCGI' : ''})` : ''}${sc.fpm ? ' (php-fpm)' : ''}` +
      `${sc.workers != null ? ' (scaling rows)' : ''}${sc.kind === 'h2load' ? ' (HTTP/2 rows)' : ''}${sc.acceptEncoding && sc.kind !== 'h2load' ? ' (gzip row)' : ''}`;
    if (s.serverCommand && !configs.has(ck)) configs.set(ck, `$ ${s.serverCommand}${s.serverConfig ? `\n\n${s.serverConfig}` : ''}`);
    console.error(`${label} ${sc.id.padEnd(24)} ${server.padEnd(9)} ${describe(s)}`);
    return s;
  };

  // Passes: every scenario, servers alternating (the order rotates each pass).
  for (let pass = 1; pass <= opts.passes; pass++) {
    for (const { sc, servers: list } of plan) {
      const order = list.map((_, i) => list[(i + pass - 1) % list.length]);
      for (const server of order) await one(sc, server, pass, `[pass ${pass}/${opts.passes}]`);
    }
  }
  // Re-runs: rows that varied more than the limit, or whose passes were all busy.
  for (let r = 1; r <= opts.reruns; r++) {
    const again = [];
    for (const { sc, servers: list } of plan) {
      for (const server of list) {
        const got = (samples.get(`${sc.id}\t${server}`) ?? []).filter((s) => s.ok);
        const quiet = got.filter((s) => !s.busy);
        if (!got.length) continue;
        if (!quiet.length || spreadOf(quiet.map(keyMetric)) > VARY_LIMIT) again.push({ sc, server });
      }
    }
    if (!again.length) break;
    console.error(`bench: re-running ${again.length} row(s) that varied > ${VARY_LIMIT * 100}% or ran busy`);
    for (const { sc, server } of again) await one(sc, server, opts.passes + r, `[re-run ${r}]`);
  }

  const settings = {
    passes: opts.passes,
    'seconds per run': opts.seconds,
    'warm-up seconds': a.quick ? opts.warmup : `${opts.warmup} (rows with a floor: ${[...new Set(scenarios.filter((sc) => (sc.minWarmup ?? 0) > opts.warmup).map((sc) => `${sc.id} ${sc.minWarmup}`))].join(', ') || 'none'})`,
    're-runs': opts.reruns,
    'server pinning': pin ? 'taskset -c 0' : 'none',
    'client pinning': pin ? 'taskset -c 1' : '',
    'scaling rows (-t2)': 'server and wrk unpinned, sharing all cores',
    'busy threshold': `${opts.busyPct}%`,
    'idle connections': opts.idleConns,
    'wrk over TLS': wrkTls,
    'lisod resumption key': lisodResumptionKey ?? 'none found (lisod resumption not configurable yet)',
  };
  // Everything the report needs, so `--render` can redo RESULTS.md from a --json file.
  let run = {
    env, argv: process.argv.slice(2), settings, skipped, quick: a.quick, clkTck: CLK_TCK,
    plan: plan.map((p) => ({ id: p.sc.id, servers: p.servers })),
    samples: [...samples.values()].flat().map(({ serverConfig, ...rest }) => rest), // configs are in `configs`
    commands: [...commands], configs: [...configs],
  };
  if (a.merge) run = mergeRuns(JSON.parse(fs.readFileSync(a.merge, 'utf8')), run, SCENARIOS.map((sc) => sc.id));
  const json = JSON.stringify(run, null, 1).replaceAll(tmp, '$TMP');
  if (a.json) fs.writeFileSync(a.json, json);
  writeResults(JSON.parse(json));
}

/** Summarises a run's samples into rows and writes RESULTS.md. */
function writeResults(run) {
  const byId = new Map(SCENARIOS.map((sc) => [sc.id, sc]));
  const rows = new Map();
  for (const p of run.plan) {
    const list = p.servers.map((server) => run.samples.filter((s) => s.scenario === p.id && s.server === server)).filter((x) => x.length);
    rows.set(p.id, list.map(summarise));
  }
  const text = renderResults({ ...run, scenarios: run.plan.map((p) => byId.get(p.id)).filter(Boolean),
    rows, commands: new Map(run.commands), configs: new Map(run.configs) });
  fs.writeFileSync(a.out, text);
  console.error(`bench: wrote ${a.out}`);
}

/** One progress line. @param {import('./lib/rows.mjs').Sample} s */
function describe(s) {
  if (!s.ok) return `FAILED: ${s.error}`;
  const extra = `${s.busy ? ' BUSY' : ''}${s.notes.length ? ` [${s.notes.join('; ')}]` : ''}`;
  if (s.idle) {
    return `${s.idle.open} held, RSS ${(s.idle.rssBefore / 1048576).toFixed(1)} → ${(s.idle.rssAfter / 1048576).toFixed(1)} MiB, ` +
      `${(s.idle.perConn / 1024).toFixed(2)} KiB/conn${extra}`;
  }
  return `${Math.round(s.rps ?? 0).toString().padStart(7)} req/s ${bytesRate(s.bps).padStart(11)} p99 ${usTime(s.p99).padStart(8)} ` +
    `cpu ${(s.cpuUsPerReq ?? NaN).toFixed(1).padStart(6)} µs/req${s.ownUsPerReq !== undefined ? `, own ${s.ownUsPerReq.toFixed(1)}` : ''} (server ${(s.serverCpuPct ?? 0).toFixed(0)}%, wrk ${(s.wrkCpuPct ?? 0).toFixed(0)}%, ` +
    `others ${s.otherPct.toFixed(0)}%)${extra}`;
}
