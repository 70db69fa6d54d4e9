// The servers under test: a config template and command line for each (lisod, lisod without
// its access log, lisod with 2 event loops, nginx, lighttpd, Node's http/https), and a Supervisor
// that starts them in the foreground pinned to one core (unpinned in the scaling rows) and stops
// every process it started, by pid.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { alive, treePids } from './procfs.mjs';

const BENCH_DIR = path.dirname(path.dirname(new URL(import.meta.url).pathname));

/** Server names in their default order; lisod first, then the peers. */
export const SERVER_NAMES = ['lisod', 'lisod-nolog', 'lisod-w2', 'lisod-b', 'nginx', 'lighttpd', 'node'];
/** Servers that write an access log of every request (as a deployment does): all but these. */
export const NO_ACCESS_LOG = ['lisod-nolog', 'node'];
/** Peers are what lisod is compared with ("best peer" in the tables). */
export const isPeer = (name) => !name.startsWith('lisod');

// Every server negotiates the same TLS 1.3 suite (lisod's order, Mozilla "intermediate":
// AES-128-GCM first, server preference): otherwise wrk's default client order (AES-256 first)
// would hand lisod AES-128 and a client-preference peer AES-256, and the HTTPS rows would
// compare ciphers, not servers.
export const kTls13Suites = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';

/**
 * What one row needs from a server.
 * @typedef {{cert:'rsa'|'ecdsa', resumption:boolean, cgiScript:string, cgiEnv:Record<string,string>,
 *   workers?:number|null, pinned?:boolean, clientCa?:{ca:string, crl:string},
 *   fcgi?:{command:string, processes:number}|null, fpm?:{processes:number}|null, h2?:boolean, deflate?:boolean,
 *   cgiEnd?:boolean}} Variant
 * h2: HTTP/2 on the TLS port (lisod `http2 = true`, nginx `listen … ssl http2`, lighttpd h2proto);
 * cgiEnd: lisod ends each script once its response is out (`[cgi] end_after_response`), as
 *   lighttpd's mod_cgi always does (SIGTERM), so both spend the same on a script's end.
 * deflate: lighttpd loads mod_deflate (gzip rows; lisod and nginx compress with their defaults).
 * fcgi: /cgi/ goes to `processes` copies of a FastCGI responder instead of the CGI script.
 * fpm: /php/*.php goes to php-fpm (pm static, `processes` children) on a socket of its own,
 *   started before the server and as its child, so the server's tree holds it (measured apart).
 * workers: nginx worker_processes in the scaling rows (lisod-w2 always runs 2 loops, lisod 1);
 * pinned: false starts the server without taskset.
 * clientCa: ask for client certificates (optional) against this CA and CRL (bench/client_cert.mjs).
 * Shared facts of the run.
 * @typedef {{dir:string, docroot:string, certs:{ca:string, rsa:{key:string,cert:string}, ecdsa:{key:string,cert:string}},
 *   repo:string, lisodMain:string, lisodMainB?:string, lighttpdModDir:string|null, serverCpu:string|null, lisodResumptionKey:string|null}} Context
 * A server's launch plan.
 * @typedef {{cmd:string, args:string[], cwd?:string, config?:{file:string, text:string}, notes:string[]}} Plan
 */

/** Config keys a lisod build may accept to turn TLS session resumption off (first found wins). */
const LISOD_RESUMPTION_KEYS = ['tls_session_resumption', 'tls_resumption', 'tls_session_tickets'];

/**
 * Looks in the built lisod (dist/) for a config key that turns resumption off.
 * @param {string} lisodMain path of dist/main.js @returns {string|null}
 */
export function findLisodResumptionKey(lisodMain) {
  const dist = path.dirname(lisodMain);
  let text = '';
  try {
    for (const f of fs.readdirSync(dist)) if (f.endsWith('.js')) text += fs.readFileSync(path.join(dist, f), 'utf8');
  } catch {
    return null;
  }
  return LISOD_RESUMPTION_KEYS.find((k) => text.includes(`'${k}'`) || text.includes(`"${k}"`)) ?? null;
}

const q = (s) => JSON.stringify(s); // TOML / lighttpd / nginx-safe double-quoted string

/** @type {Record<string, (ctx:Context, v:Variant, http:number, https:number, dir:string) => Plan>} */
const PLANS = {
  lisod: (ctx, v, http, https, dir) => withFpm(v, dir, lisodPlan(ctx, v, http, https, dir, true, v.workers != null ? 1 : null)),
  'lisod-nolog': (ctx, v, http, https, dir) => withFpm(v, dir, lisodPlan(ctx, v, http, https, dir, false, null)),
  'lisod-w2': (ctx, v, http, https, dir) => withFpm(v, dir, lisodPlan(ctx, v, http, https, dir, true, 2)),
  // --lisod-b: lisod's own config run from another build, beside `lisod` in every row (A/B).
  'lisod-b': (ctx, v, http, https, dir) => withFpm(v, dir, lisodPlan({ ...ctx, lisodMain: ctx.lisodMainB ?? ctx.lisodMain }, v, http, https, dir, true,
    v.workers != null ? 1 : null)),

  nginx(ctx, v, http, https, dir) {
    const c = ctx.certs[v.cert];
    for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(path.join(dir, t));
    const workers = v.workers ?? 1;
    const text = `# nginx for the lisod bench: ${workers} worker${workers > 1 ? 's' : ''}, sendfile, TLS 1.2+1.3, buffered access log
daemon off;
master_process on;
worker_processes ${workers};
worker_rlimit_nofile 20000;
pid ${q(path.join(dir, 'nginx.pid'))};
error_log ${q(path.join(dir, 'error.log'))} warn;
events { worker_connections 16000; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log ${q(path.join(dir, 'access.log'))} combined buffer=64k flush=1s;
  sendfile on;
  tcp_nopush on;
  gzip on;  # only requests with Accept-Encoding (the http-gzip-16k row); text/html by default
  gzip_comp_level 6;
  gzip_min_length 1024;
  gzip_vary on;
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  client_body_temp_path ${q(path.join(dir, 'client_body'))};
  proxy_temp_path ${q(path.join(dir, 'proxy'))};
  fastcgi_temp_path ${q(path.join(dir, 'fastcgi'))};
  uwsgi_temp_path ${q(path.join(dir, 'uwsgi'))};
  scgi_temp_path ${q(path.join(dir, 'scgi'))};
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_prefer_server_ciphers on;
  ssl_conf_command Ciphersuites ${kTls13Suites};
  ${v.resumption ? 'ssl_session_cache shared:SSL:10m;\n  ssl_session_tickets on;' : 'ssl_session_cache off;\n  ssl_session_tickets off;'}
  server {
    listen 127.0.0.1:${http};
    listen 127.0.0.1:${https} ssl${v.h2 ? ' http2' : ''};
    ssl_certificate ${q(c.cert)};
    ssl_certificate_key ${q(c.key)};${v.clientCa ? `
    ssl_client_certificate ${q(v.clientCa.ca)};
    ssl_verify_client optional;
    ssl_crl ${q(v.clientCa.crl)};` : ''}
    root ${q(ctx.docroot)};${v.fcgi ? `
    location /cgi {
      include /etc/nginx/fastcgi_params;
      fastcgi_split_path_info ^(/cgi)(.*)$;
      fastcgi_param SCRIPT_NAME $fastcgi_script_name;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_pass unix:${path.join(dir, 'fcgi.sock')};
    }` : ''}${v.fpm ? `
    location ~ ^/php/.+\\.php$ {
      include /etc/nginx/fastcgi.conf;
      fastcgi_pass unix:${fpmSocket(dir)};
    }` : ''}
  }
}
`;
    const file = path.join(dir, 'nginx.conf');
    const nginxArgs = ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', file];
    if (v.fcgi) {
      // The backend on a socket of its own (as spawn-fcgi would start it), then nginx in the
      // same process (exec), so the harness measures and stops both as one tree.
      const sock = path.join(dir, 'fcgi.sock');
      return backendFirst(fcgiLauncher(v, sock, dir), sock, { cmd: 'nginx', args: nginxArgs, config: { file, text }, notes: [] });
    }
    return withFpm(v, dir, { cmd: 'nginx', args: nginxArgs, config: { file, text }, notes: [] });
  },

  lighttpd(ctx, v, http, https, dir) {
    const c = ctx.certs[v.cert];
    const sslCmds = ['"MinProtocol" => "TLSv1.2"', `"Ciphersuites" => "${kTls13Suites}"`];
    if (!v.resumption) sslCmds.push('"Options" => "-SessionTicket"');
    const env = Object.entries(v.cgiEnv).map(([k, val]) => `${q(k)} => ${q(val)}`).join(', ');
    const text = `# lighttpd for the lisod bench: mod_openssl, mod_cgi, mod_accesslog (Combined Log Format)
server.document-root = ${q(ctx.docroot)}
server.bind = "127.0.0.1"
server.port = ${http}
server.errorlog = ${q(path.join(dir, 'error.log'))}
server.modules = ("mod_openssl", "mod_alias", "mod_setenv", "mod_cgi", "mod_accesslog")
accesslog.filename = ${q(path.join(dir, 'access.log'))}
server.network-backend = "sendfile"
server.max-fds = 20000
server.max-connections = 10000  # lighttpd allows at most max-fds / 2
server.max-keep-alive-idle = 120
server.max-keep-alive-requests = 100000000
mimetype.assign = (".html" => "text/html", ".css" => "text/css", ".png" => "image/png",
  ".jpg" => "image/jpeg", ".jpeg" => "image/jpeg", ".gif" => "image/gif", "" => "application/octet-stream")
$SERVER["socket"] == "127.0.0.1:${https}" {
  ssl.engine = "enable"
  ssl.pemfile = ${q(c.cert)}
  ssl.privkey = ${q(c.key)}
  ssl.openssl.ssl-conf-cmd = (${sslCmds.join(', ')})
}
${v.h2 ? 'server.feature-flags += ("server.h2proto" => "enable")\n' : ''}${v.deflate ? `# gzip once per file, cached in deflate.cache-dir (as lisod caches; nginx compresses per request)
server.modules += ("mod_deflate")
deflate.mimetypes = ("text/html")
deflate.allowed-encodings = ("gzip")
deflate.compression-level = 6
deflate.cache-dir = ${q(path.join(dir, 'deflate-cache'))}
` : ''}${v.fcgi ? `# /cgi and everything under it: ${v.fcgi.processes} copies of the FastCGI responder (bin-path).
server.modules += ("mod_fastcgi")
fastcgi.server = ("/cgi" => ((
  "socket" => ${q(path.join(dir, 'fcgi.sock'))},
  "bin-path" => ${q(v.fcgi.command)},
  "max-procs" => ${v.fcgi.processes},
  "check-local" => "disable",
  "bin-environment" => (${env})
)))` : `# /cgi and everything under it runs the one CGI script (as lisod's /cgi/ prefix does).
alias.url = ("/cgi" => ${q(v.cgiScript)})
$HTTP["url"] =~ "^/cgi(/|$)" { cgi.assign = ("" => "") }
${env ? `setenv.add-environment = (${env})` : ''}`}
${v.fpm ? `# *.php to php-fpm on its socket (SCRIPT_FILENAME = document root + path, checked to exist).
server.modules += ("mod_fastcgi")
fastcgi.server += (".php" => ((
  "socket" => ${q(fpmSocket(dir))},
  "check-local" => "enable"
)))` : ''}
`;
    const file = path.join(dir, 'lighttpd.conf');
    const args = ['-D', '-f', file];
    if (ctx.lighttpdModDir) args.push('-m', ctx.lighttpdModDir);
    return withFpm(v, dir, { cmd: 'lighttpd', args, config: { file, text }, notes: [] });
  },

  node(ctx, v, http, https) {
    const c = ctx.certs[v.cert];
    const args = [path.join(BENCH_DIR, 'node_static.mjs'), '--root', ctx.docroot, '--host', '127.0.0.1',
      '--http-port', String(http), '--https-port', String(https), '--key', c.key, '--cert', c.cert];
    if (!v.resumption) args.push('--no-resumption');
    return { cmd: process.execPath, args, notes: [] };
  },
};

/**
 * @param {Context} ctx @param {Variant} v
 * @param {boolean} accessLog @param {number|null} workers a `workers = N` line, or none (lisod's default, 1)
 */
function lisodPlan(ctx, v, http, https, dir, accessLog, workers) {
  const c = ctx.certs[v.cert];
  const notes = [];
  let resumptionLine = '';
  if (!v.resumption) {
    if (ctx.lisodResumptionKey) resumptionLine = `${ctx.lisodResumptionKey} = false\n`;
    else notes.push('lisod resumption not configurable yet');
  }
  const env = Object.entries(v.cgiEnv).map(([k, val]) => `${k} = ${q(val)}`).join('\n');
  const text = `# lisod for the lisod bench
http_port = ${http}
https_port = ${https}
bind = ["127.0.0.1"]
www = ${q(ctx.docroot)}
tls_key = ${q(c.key)}
tls_cert = ${q(c.cert)}
error_log = ${q(path.join(dir, 'error.log'))}
access_log = ${q(accessLog ? path.join(dir, 'access.log') : '')}
lock_file = ${q(path.join(dir, 'lisod.lock'))}
max_connections = 16000
keep_alive_timeout = 120
${v.h2 ? 'http2 = true\n' : ''}${workers != null ? `workers = ${workers}\n` : ''}${resumptionLine}${v.clientCa
    ? `tls_client_ca = ${q(v.clientCa.ca)}\ntls_client_auth = "optional"\ntls_crl = ${q(v.clientCa.crl)}\n` : ''}
${v.fcgi ? `[[fastcgi]]
path = "/cgi/"
command = [${q(v.fcgi.command)}]
processes = ${v.fcgi.processes}
timeout = 120
env = { ${Object.entries(v.cgiEnv).map(([k, val]) => `${k} = ${q(val)}`).join(', ')} }
` : `[cgi]
script = ${q(v.cgiScript)}
max_processes = 16
max_runnable = "auto"
timeout = 120
${v.cgiEnd ? 'end_after_response = true\n' : ''}${env ? `[cgi.env]\n${env}\n` : ''}`}`;
  // max_conns = php-fpm's children: each child serves one kept connection at a time.
  const php = v.fpm ? `\n[[fastcgi]]\npath = "/php/"\nsocket = ${q(`unix:${fpmSocket(dir)}`)}\nroot = ${q(ctx.docroot)}\nmax_conns = ${v.fpm.processes}\n` : '';
  const file = path.join(dir, 'lisod.conf');
  return { cmd: process.execPath, args: [ctx.lisodMain, '--config', file, '--foreground'], cwd: ctx.repo, config: { file, text: text + php }, notes };
}

export const FPM_BINARY = '/usr/sbin/php-fpm8.2';
const fpmSocket = (dir) => path.join(dir, 'fpm.sock');

/**
 * The plan with php-fpm started first (when the variant asks for it): one pool, pm static with
 * `processes` children, on a socket of its own that nginx's workers (nobody) may use; run as
 * the harness's user (-R allows root), in the foreground (-F), as the server's child.
 * @param {Variant} v @param {string} dir @param {Plan} plan @returns {Plan}
 */
function withFpm(v, dir, plan) {
  if (!v.fpm) return plan;
  const sock = fpmSocket(dir);
  const conf = path.join(dir, 'php-fpm.conf');
  fs.writeFileSync(conf, `[global]\ndaemonize = no\nerror_log = ${path.join(dir, 'fpm.log')}\npid = ${path.join(dir, 'fpm.pid')}\n` +
    `[bench]\nlisten = ${sock}\nlisten.mode = 0666\npm = static\npm.max_children = ${v.fpm.processes}\n`);
  const config = plan.config ? { ...plan.config, text: `${plan.config.text}\n# php-fpm (${conf}):\n# ${fs.readFileSync(conf, 'utf8').trim().replaceAll('\n', '\n# ')}\n` } : plan.config;
  return backendFirst(`${FPM_BINARY} -F -R -y ${q(conf)}`, sock, { ...plan, config });
}

/**
 * The plan run by /bin/sh after `launcher` (in the background) has made `sock`; the shell then
 * execs the server, so the backend is the server's child and the harness measures and stops
 * both as one tree.
 * @param {string} launcher @param {string} sock @param {Plan} plan @returns {Plan}
 */
function backendFirst(launcher, sock, plan) {
  return { ...plan, cmd: '/bin/sh', args: ['-c', `${launcher} & while [ ! -S ${q(sock)} ]; do sleep 0.05; done; exec "$0" "$@"`, plan.cmd, ...plan.args] };
}

/**
 * A shell command starting `v.fcgi.processes` copies of the responder on one listening socket
 * passed as fd 0 (what spawn-fcgi does); the launcher stays as their parent.
 * @param {Variant} v @param {string} socketPath @param {string} dir where the launcher script is written
 */
function fcgiLauncher(v, socketPath, dir) {
  const env = Object.entries(v.cgiEnv).map(([k, val]) => `${k}=${q(val)}`).join(' ');
  const script = path.join(dir, 'fcgi_launcher.py');
  fs.writeFileSync(script, 'import os,socket,sys\n' +
    's=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(128)\n' +
    'os.chmod(sys.argv[1], 0o777)  # nginx workers run as nobody\n' +
    'for _ in range(int(sys.argv[2])):\n' +
    '    if os.fork() == 0:\n' +
    '        os.dup2(s.fileno(), 0); os.execv(sys.argv[3], sys.argv[3:])\n' +
    'while True:\n' +
    '    try: os.wait()\n' +
    '    except ChildProcessError: break\n');
  return `env ${env} /usr/bin/python3 ${q(script)} ${q(socketPath)} ${v.fcgi.processes} ${q(v.fcgi.command)}`;
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function tail(file, bytes = 2000) {
  try {
    const t = fs.readFileSync(file, 'utf8');
    return t.slice(-bytes).trim();
  } catch {
    return '';
  }
}

/**
 * A running server.
 * @typedef {{name:string, pid:number, httpPort:number, httpsPort:number, command:string, config?:{file:string,text:string},
 *   notes:string[], dir:string, exited:Promise<void>}} Running
 */

/** Starts and stops processes; remembers every one so Ctrl-C or an error can stop them all. */
export class Supervisor {
  /** @param {string} dir where per-server dirs, configs and logs go */
  constructor(dir) {
    this.dir = dir;
    this.count = 0;
    /** @type {Map<number, {child: import('node:child_process').ChildProcess, exited: Promise<void>, tree: {pid:number,startTime:number}[]}>} */
    this.live = new Map();
  }

  /**
   * Spawns a process in its own process group (so a terminal Ctrl-C reaches only the
   * harness, which then stops it in order), optionally pinned to `cpu` with taskset.
   * @param {string} cmd @param {string[]} args
   * @param {{cpu?:string|null, cwd?:string, log:string, stdin?:'ignore'|'pipe', stdout?:'file'|'pipe'}} o
   */
  spawn(cmd, args, o) {
    const out = fs.openSync(o.log, 'a');
    const file = o.cpu != null ? 'taskset' : cmd;
    const argv = o.cpu != null ? ['-c', o.cpu, cmd, ...args] : args;
    const child = spawn(file, argv, {
      cwd: o.cwd,
      detached: true,
      stdio: [o.stdin ?? 'ignore', o.stdout === 'pipe' ? 'pipe' : out, out],
    });
    fs.closeSync(out);
    const exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', () => {}); // reported through 'exit' / readiness
    if (child.pid) this.live.set(child.pid, { child, exited, tree: [] });
    return { child, exited };
  }

  /**
   * Starts one server with a fresh config and waits until both ports accept connections.
   * @param {Context} ctx @param {string} name @param {Variant} variant
   * @returns {Promise<Running>}
   */
  async startServer(ctx, name, variant) {
    const dir = path.join(this.dir, `${String(++this.count).padStart(3, '0')}-${name}`);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    const http = await freePort();
    let https = await freePort();
    while (https === http) https = await freePort();
    const plan = PLANS[name](ctx, variant, http, https, dir);
    if (plan.config) fs.writeFileSync(plan.config.file, plan.config.text);
    const log = path.join(dir, 'output.log');
    const cpu = variant.pinned === false ? null : ctx.serverCpu;
    const { child, exited } = this.spawn(plan.cmd, plan.args, { cpu, cwd: plan.cwd, log });
    const command = `${cpu != null ? `taskset -c ${cpu} ` : ''}${plan.cmd === process.execPath ? 'node' : plan.cmd} ${plan.args.join(' ')}`;
    let gone = false;
    exited.then(() => { gone = true; });
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (gone) {
        throw new Error(`${name} exited during start (code ${child.exitCode}, signal ${child.signalCode}):\n` +
          `${tail(log)}\n${tail(path.join(dir, 'error.log'))}`.trim());
      }
      if ((await canConnect(http)) && (await canConnect(https))) break;
      if (Date.now() > deadline) {
        await this.stop(/** @type {number} */ (child.pid));
        throw new Error(`${name} did not accept connections within 15 s:\n${tail(log)}\n${tail(path.join(dir, 'error.log'))}`.trim());
      }
      await sleep(50);
    }
    const entry = this.live.get(/** @type {number} */ (child.pid));
    if (entry) entry.tree = treePids(/** @type {number} */ (child.pid));
    return { name, pid: /** @type {number} */ (child.pid), httpPort: http, httpsPort: https, command, config: plan.config, notes: plan.notes, dir, exited };
  }

  /**
   * Stops a process started here: SIGTERM, then SIGKILL after 5 s; then SIGKILL to any of its
   * descendants still alive (CGI scripts, nginx workers), each by pid and start time.
   * @param {number} pid
   */
  async stop(pid) {
    const entry = this.live.get(pid);
    if (!entry) return;
    const tree = [...entry.tree, ...treePids(pid)];
    try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
    const timedOut = await Promise.race([entry.exited.then(() => false), sleep(5000).then(() => true)]);
    if (timedOut) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      await entry.exited;
    }
    for (const p of tree) {
      if (p.pid !== pid && alive(p.pid, p.startTime)) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
    this.live.delete(pid);
  }

  /** Stops everything still running, newest first. */
  async stopAll() {
    for (const pid of [...this.live.keys()].reverse()) await this.stop(pid);
  }
}
