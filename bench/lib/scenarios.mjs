// The rows of the benchmark (issue 5): what each scenario requests, with which client settings,
// from which servers, and which server variant (certificate, resumption, CGI script) it needs.

// Every server logs each request (issue 13: what a deployment runs) except `lisod-nolog`, which
// shows what lisod's access log costs, and node (no access log of its own).
const STATIC = ['lisod', 'lisod-nolog', 'nginx', 'lighttpd', 'node'];
const CGI = ['lisod', 'lighttpd'];
// FastCGI (issue 10): the same two cgi-bin/flaskr.fcgi processes behind each server — lisod's
// [[fastcgi]] command, lighttpd's mod_fastcgi bin-path, nginx's fastcgi_pass to them started
// on a socket beside it.
const FCGI = ['lisod', 'lighttpd', 'nginx'];
const IDLE = ['lisod', 'nginx', 'lighttpd', 'node'];
// Scaling rows (-t2): lisod with one and with two event loops, nginx with 2 worker processes,
// lighttpd (always one process) as the single-core reference.
const SCALING = ['lisod', 'lisod-w2', 'nginx', 'lighttpd'];
// HTTP/2 rows (issue 14): h2load over TLS against lisod (`http2 = true`), nginx (`listen … ssl
// http2`) and lighttpd (`server.h2proto`), each logging every request.
const H2 = ['lisod', 'lisod-nolog', 'nginx', 'lighttpd'];

/**
 * @typedef {{id:string, title:string, kind:'wrk'|'idle'|'h2load', streams?:number, scheme:'http'|'https', path:string, conns:number,
 *   close:boolean, cert:'rsa'|'ecdsa', resumption:boolean, cgi:'trivial'|'trivial-exit'|'flaskr'|null, fcgi?:boolean, fpm?:boolean, servers:string[],
 *   expectResumed?:boolean, extra?:boolean, timeout:number, minSeconds?:number, minWarmup?:number, threads:number, pinned:boolean,
 *   workers:number|null, acceptEncoding?:string, cgiEnd?:boolean}} Scenario
 * timeout: wrk's --timeout in seconds (CGI rows allow slow Python start-up on one core);
 * minSeconds: a floor on the run length even with --quick. Flaskr: ten scripts share the server core and
 *   finish in waves about 1.9 s apart, so a 15 s run counted 80 or 90 requests (±6%) depending on where
 *   the run ended in a wave; 45 s makes that ±2%;
 * minWarmup: a floor on the warm-up seconds (not with --quick or --warmup 0);
 * cgiEnd: lisod ends each script once its response is out (`[cgi] end_after_response`), as lighttpd does;
 * fpm: the request goes to php-fpm (started with the server on a socket of its own, bench/lib/servers.mjs);
 * threads: wrk -t; pinned: false runs server and client unpinned (taskset off) so both may use every core;
 * acceptEncoding: sent by wrk (the gzip row: nginx `gzip` level 6, compressing per request; lisod [compress]
 *   defaults, compressing once and caching);
 * kind 'h2load': HTTP/2 over TLS with h2load (`-c conns -m streams`), the servers' h2 turned on;
 * workers: nginx worker_processes (and an explicit `workers = 1` for plain lisod) in the scaling rows,
 * null elsewhere (the configs of the default rows stay as they were).
 */

/** @param {Partial<Scenario> & {id:string, title:string}} s @returns {Scenario} */
function row(s) {
  return { kind: 'wrk', scheme: 'http', path: '/1k.html', conns: 50, close: false, cert: 'rsa', resumption: true, cgi: null, servers: STATIC, timeout: 5,
    threads: 1, pinned: true, workers: null, ...s };
}

/** @type {Scenario[]} */
export const SCENARIOS = [
  row({ id: 'http-keepalive-1k', title: 'HTTP keep-alive, 1 KiB html (wrk -t1 -c50)' }),
  row({ id: 'http-keepalive-1m', title: 'HTTP keep-alive, 1 MiB file (wrk -t1 -c50)', path: '/1m.bin' }),
  row({ id: 'http-gzip-16k', title: 'HTTP keep-alive, 16 KiB html, Accept-Encoding: gzip (wrk -t1 -c50)', path: '/page.html',
    acceptEncoding: 'gzip' }),  // lighttpd: mod_deflate with its cache dir (package lighttpd-mod-deflate)
  row({ id: 'https-keepalive-1k', title: 'HTTPS keep-alive, 1 KiB html, RSA-2048 (wrk -t1 -c50)', scheme: 'https' }),
  row({ id: 'h2-1k', title: 'HTTP/2 over TLS, 1 KiB html, RSA-2048 (h2load -t1 -c10 -m10)', kind: 'h2load', scheme: 'https',
    conns: 10, streams: 10, servers: H2 }),
  row({ id: 'h2-100k', title: 'HTTP/2 over TLS, 100 KiB file, RSA-2048 (h2load -t1 -c10 -m10)', kind: 'h2load', scheme: 'https',
    path: '/100k.bin', conns: 10, streams: 10, servers: H2 }),
  row({ id: 'h2-gzip-16k', title: 'HTTP/2 over TLS, 16 KiB html, accept-encoding: gzip (h2load -t1 -c10 -m10)', kind: 'h2load',
    scheme: 'https', path: '/page.html', conns: 10, streams: 10, acceptEncoding: 'gzip', servers: H2 }),
  row({ id: 'https-keepalive-1m', title: 'HTTPS keep-alive, 1 MiB file, RSA-2048 (wrk -t1 -c50)', scheme: 'https', path: '/1m.bin' }),
  row({ id: 'tls-new-rsa-noresume', title: 'New TLS connection per request, RSA-2048, resumption disabled (wrk -t1 -c50, Connection: close)',
    scheme: 'https', close: true, resumption: false, expectResumed: false }),
  row({ id: 'tls-new-ecdsa-noresume', title: 'New TLS connection per request, ECDSA P-256, resumption disabled (wrk -t1 -c50, Connection: close)',
    scheme: 'https', close: true, cert: 'ecdsa', resumption: false, expectResumed: false }),
  row({ id: 'tls-new-rsa-resume', title: 'New TLS connection per request, RSA-2048, resumption enabled (wrk -t1 -c50, Connection: close)',
    scheme: 'https', close: true, resumption: true, expectResumed: true }),
  row({ id: 'tls-new-ecdsa-resume', title: 'New TLS connection per request, ECDSA P-256, resumption enabled (wrk -t1 -c50, Connection: close)',
    scheme: 'https', close: true, cert: 'ecdsa', resumption: true, expectResumed: true }),
  // CGI rows warm up for 20 s (~2,500 requests at ~120/s), not 2 s (~250): lisod's JavaScript
  // per request is optimised (TurboFan) only after ~2,000 requests, and until then costs ~100 µs
  // more per request — a server that has run for a while does not pay that. lighttpd's figures
  // do not change with the warm-up.
  // lighttpd's mod_cgi SIGTERMs a script once its response is complete; lisod does the same here
  // (`end_after_response = true`, off by default), so both rows compare the same script's life.
  row({ id: 'cgi-trivial', title: 'CGI: trivial Python script, ended once its response is out (wrk -t1 -c10)', path: '/cgi/', conns: 10,
    cgi: 'trivial', cgiEnd: true, servers: CGI, timeout: 60, minWarmup: 20 }),
  // The same script ending in os._exit(0), lisod with its default config: lighttpd's SIGTERM after
  // the response then cuts nothing short.
  row({ id: 'cgi-trivial-exit', title: 'CGI: trivial Python script ending in os._exit (wrk -t1 -c10)', path: '/cgi/', conns: 10,
    cgi: 'trivial-exit', servers: CGI, timeout: 60, minWarmup: 20 }),
  row({ id: 'cgi-flaskr', title: 'CGI: Flaskr index page (wrk -t1 -c10)', path: '/cgi/', conns: 10, cgi: 'flaskr', servers: CGI, timeout: 60, minSeconds: 45 }),
  // FastCGI rows: "server CPU" is the server's own, without the backend's processes (given
  // apart in the notes): the backend sets the pace and costs the same behind every server.
  row({ id: 'fcgi-flaskr', title: 'FastCGI: Flaskr index page, 2 flaskr.fcgi processes, server CPU without the backend\'s (wrk -t1 -c8)', path: '/cgi/',
    conns: 8, cgi: 'flaskr', fcgi: true, servers: FCGI, timeout: 60 }),
  row({ id: 'fcgi-php-hello', title: 'FastCGI: php-fpm "hello", pm static 2 children, server CPU without php-fpm\'s (wrk -t1 -c8)',
    path: '/php/hello.php', conns: 8, fpm: true, servers: FCGI, timeout: 10 }),
  // Scaling (issue 5, "All cores"): wrk -t2 -c100, nothing pinned, servers with 1 or 2 workers.
  // Server and wrk share the machine's cores: on a 2-core machine wrk's two threads take about
  // one of them, so these rows show multi-core scaling only where there are more cores.
  row({ id: 'http-keepalive-1k-t2', title: 'HTTP keep-alive, 1 KiB html, scaling: 1 vs 2 workers (wrk -t2 -c100, unpinned)',
    conns: 100, threads: 2, pinned: false, workers: 2, servers: SCALING }),
  row({ id: 'https-keepalive-1k-t2', title: 'HTTPS keep-alive, 1 KiB html, RSA-2048, scaling: 1 vs 2 workers (wrk -t2 -c100, unpinned)',
    scheme: 'https', conns: 100, threads: 2, pinned: false, workers: 2, servers: SCALING }),
  row({ id: 'idle-http', title: 'Idle keep-alive connections, HTTP (RSS)', kind: 'idle', servers: IDLE }),
  row({ id: 'idle-https', title: 'Idle keep-alive connections, HTTPS ECDSA P-256 (RSS)', kind: 'idle', scheme: 'https', cert: 'ecdsa', servers: IDLE }),
  // Not in the default set (--extra or a matching --only): the other docroot sizes.
  row({ id: 'http-keepalive-100k', title: 'HTTP keep-alive, 100 KiB file (wrk -t1 -c50)', path: '/100k.bin', extra: true }),
  row({ id: 'http-keepalive-10m', title: 'HTTP keep-alive, 10 MiB file (wrk -t1 -c10)', path: '/10m.bin', conns: 10, extra: true }),
  row({ id: 'https-keepalive-10m', title: 'HTTPS keep-alive, 10 MiB file (wrk -t1 -c10)', scheme: 'https', path: '/10m.bin', conns: 10, extra: true }),
];

/**
 * Scenarios selected by --only (a regex on the id) and --extra.
 * @param {string|undefined} only @param {boolean} extra
 */
export function selectScenarios(only, extra) {
  const re = only ? new RegExp(only) : null;
  return SCENARIOS.filter((s) => (re ? re.test(s.id) : extra || !s.extra));
}
