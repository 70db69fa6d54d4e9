// End to end through the real `node dist/main.js`: the Liso form with relative paths
// daemonizes, holds its lock, serves HTTP and verified HTTPS, reloads on SIGHUP (logs,
// certificates, config), stops gracefully, and `lisod stop|reload|status` and -t work.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { parseCli } from '../src/cli.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { controlSettings } from '../src/control.js';
import { restartOnlyChanges } from '../src/main.js';
import { withoutRootWarning } from './helpers/assert.js';
import { Conn, exchange1, get, sha256, type HttpResponse } from './helpers/client.js';
import {
  isLisod, lisoArgs, lockPid, makeSite, notifyListener, processesWithArg, portsFrom, readText, runLisod, sleep,
  startDaemon, stopDaemon, track, waitFor, waitGone, type LisoSite,
} from './helpers/daemon.js';
import { kNobody, runningAsRoot, startLisod } from './helpers/lisod.js';
import { getPki } from './helpers/pki.js';
import { testTempDir } from './helpers/tmp.js';

// Daemons, timing and ports: one test at a time keeps the 2 s launch bound meaningful.
const serial = test.serial;

const kErrorLine = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info) lisod\[(\d+)\]: (.*)$/;
const kQuoted = '"((?:[^"\\\\]|\\\\.)*)"';
// host ident authuser [dd/Mon/yyyy:hh:mm:ss ±zzzz] "request" status bytes "referer" "user-agent"
const kCombined = new RegExp(
  '^(\\S+) (\\S+) (\\S+) \\[(\\d{2})/(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/(\\d{4}):(\\d{2}):(\\d{2}):(\\d{2}) ([+-]\\d{4})\\] ' +
  `${kQuoted} (\\d{3}) (\\d+|-) ${kQuoted} ${kQuoted}$`,
);

async function fingerprint(file: string): Promise<string> {
  return new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;
}

/** GET over a fresh connection (HTTPS verified against the test CA). */
async function fetch(port: number, target: string, tls = false, extra = ''): Promise<HttpResponse> {
  return exchange1(get(target, `${extra}Connection: close\r\n`), { port, tls });
}

async function waitForLog(file: string, re: RegExp, timeoutMs = 5000): Promise<string> {
  return waitFor(() => re.exec(readText(file))?.[0], timeoutMs, `${re} in ${file}; it has:\n${readText(file)}`);
}

function connectRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
}

/** Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, tty_nr. */
function procStat(pid: number): { pgrp: number; session: number; tty: number } {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(f[2]), session: Number(f[3]), tty: Number(f[4]) };
}

async function launched(t: ExecutionContext, site: LisoSite, extra: string[] = []): Promise<Awaited<ReturnType<typeof startDaemon>>> {
  const d = await startDaemon(site, extra);
  t.teardown(() => stopDaemon(d.pid));
  return d;
}

// ---------------------------------------------------------------------------------------

serial('Liso form with relative paths: launcher exits 0 within 2 s; the detached daemon serves HTTP and HTTPS', async (t) => {
  const site = await makeSite();
  const d = await launched(t, site);
  t.true(d.launch.ms < 2000, `launcher took ${d.launch.ms} ms`);
  t.is(withoutRootWarning(d.launch.stderr), '');
  t.regex(d.launch.stdout, new RegExp(`^lisod: running in the background \\(pid ${d.pid}\\)$`, 'm'));

  // Lock file: 0640, the daemon's PID on the first line.
  t.is(readText(site.abs.lock), `${d.pid}\n`);
  t.is(fs.statSync(site.abs.lock).mode & 0o777, 0o640);
  t.true(isLisod(d.pid));

  // Detached: own session and process group, no terminal, stdio on /dev/null, cwd /, umask 027.
  const st = procStat(d.pid);
  t.is(st.session, d.pid);
  t.is(st.pgrp, d.pid);
  t.is(st.tty, 0);
  for (const fd of [0, 1, 2]) t.is(fs.readlinkSync(`/proc/${d.pid}/fd/${fd}`), '/dev/null', `fd ${fd}`);
  t.is(fs.readlinkSync(`/proc/${d.pid}/cwd`), '/');
  t.regex(fs.readFileSync(`/proc/${d.pid}/status`, 'utf8'), /^Umask:\s+0027$/m);

  // Serving: HTTP, HTTPS verified against the test CA, and the CGI script (relative path).
  const plain = await fetch(d.http, '/');
  t.is(plain.status, 200);
  t.is(sha256(plain.body), sha256(site.index));
  const c = await Conn.open({ port: d.https, tls: true });
  t.teardown(() => c.destroy());
  t.true(c.tls.authorized);
  t.is(c.tls.getPeerCertificate().fingerprint256, await fingerprint(site.abs.cert));
  await c.write(get('/'));
  const secure = await c.readResponse();
  t.is(secure.status, 200);
  t.is(sha256(secure.body), sha256(site.index));
  const cgi = await fetch(d.https, '/cgi/hello', true);
  t.is(cgi.status, 200);
  t.is(cgi.body.toString(), 'cgi ok\n');

  // The log (relative path) got the start line; created 0640.
  const log = await waitForLog(site.abs.log, new RegExp(`^.* info lisod\\[${d.pid}\\]: lisod \\S+ started \\(pid ${d.pid}, daemon\\).*$`, 'm'));
  t.regex(log, kErrorLine);
  t.regex(log, new RegExp(`listening on http://127\\.0\\.0\\.1:${d.http}, https://127\\.0\\.0\\.1:${d.https}`));
  t.is(fs.statSync(site.abs.log).mode & 0o777, 0o640);
});

serial('a second start with the same lock file is refused and the first keeps serving', async (t) => {
  const site = await makeSite();
  const d = await launched(t, site);
  const lockName = path.basename(site.rel.lock);
  // Same ports too: the lock is checked before binding, so the message is about the lock.
  const second = await runLisod(site.dir, [...lisoArgs(site, String(d.http), String(d.https)), '--bind', '127.0.0.1']);
  t.is(second.code, 1);
  t.is(second.stdout, '');
  t.regex(withoutRootWarning(second.stderr), new RegExp(`^lisod: lock file ${site.abs.lock.replace(/[.]/g, '\\.')} is held by another process \\(pid ${d.pid}\\): is lisod already running\\?\n$`));
  t.deepEqual(processesWithArg(lockName), [d.pid], 'no second daemon left behind');
  t.is(lockPid(site.abs.lock), d.pid);
  const res = await fetch(d.http, '/');
  t.is(res.status, 200);
  t.is((await fetch(d.https, '/', true)).status, 200);
});

serial('a start that cannot bind its port fails with one line naming the address, leaving nothing behind', async (t) => {
  const site = await makeSite();
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as net.AddressInfo).port;
  const r = await runLisod(site.dir, [...lisoArgs(site, String(port)), '--bind', '127.0.0.1']);
  t.is(r.code, 1);
  t.regex(withoutRootWarning(r.stderr), new RegExp(`^lisod: cannot listen on 127\\.0\\.0\\.1:${port}: Address already in use[^\n]*\n$`));
  t.deepEqual(processesWithArg(path.basename(site.rel.lock)), []);
  t.is(lockPid(site.abs.lock), null, 'the lock file holds no PID');
  const status = await runLisod(site.dir, [...lisoArgs(site), 'status']);
  t.is(status.code, 3);
  t.regex(readText(site.abs.log), /error lisod\[\d+\]: cannot start: cannot listen on 127\.0\.0\.1/);
});

serial('a bad certificate makes the launcher exit non-zero with a message; -t catches it too', async (t) => {
  const pki = await getPki();
  const cases: Array<[string, typeof pki.rsa, RegExp]> = [
    ['mismatched key', pki.bad.mismatchedKey, /^lisod: private key file '[^']*\/key\.pem' does not match certificate '[^']*\/cert\.pem'\n$/],
    ['garbage certificate', pki.bad.garbageCert, /^lisod: certificate file '[^']*\/cert\.pem' holds no usable PEM certificate[^\n]*\n$/],
  ];
  for (const [name, pair, re] of cases) {
    const site = await makeSite({ tls: pair });
    const r = await runLisod(site.dir, [...lisoArgs(site), '--bind', '127.0.0.1']);
    t.is(r.code, 1, name);
    t.regex(withoutRootWarning(r.stderr), re, name);
    t.true(r.ms < 5000, `${name}: failed within ${r.ms} ms`);
    t.deepEqual(processesWithArg(path.basename(site.rel.lock)), [], `${name}: no daemon left`);
    t.is(lockPid(site.abs.lock), null, `${name}: lock released`);

    const check = await runLisod(site.dir, ['-t', ...lisoArgs(site)]);
    t.is(check.code, 1, `${name}: -t`);
    t.regex(withoutRootWarning(check.stderr), re, `${name}: -t`);
  }
  const good = await makeSite();
  const check = await runLisod(good.dir, ['-t', ...lisoArgs(good)]);
  t.is(check.code, 0);
  t.is(check.stdout, 'lisod: configuration (command line) is valid\n');
  t.false(fs.existsSync(good.abs.lock), '-t takes no lock');
});

serial('SIGHUP after moving the log file writes to a new file', async (t) => {
  const site = await makeSite();
  const d = await launched(t, site);
  t.is((await fetch(d.http, '/before-rotate')).status, 404);
  await waitForLog(site.abs.log, /"GET \/before-rotate HTTP\/1\.1" 404/);

  const rotated = `${site.abs.log}.1`;
  fs.renameSync(site.abs.log, rotated);
  process.kill(d.pid, 'SIGHUP');
  await waitForLog(site.abs.log, /info lisod\[\d+\]: reloaded/);
  t.is((await fetch(d.http, '/after-rotate')).status, 404);
  await waitForLog(site.abs.log, /"GET \/after-rotate HTTP\/1\.1" 404/);

  const old = readText(rotated);
  t.regex(old, /before-rotate/);
  t.notRegex(old, /after-rotate/);
  t.regex(old, /info lisod\[\d+\]: received SIGHUP: reloading/, 'the signal is noted in the old file, before the reopen');
  t.notRegex(readText(site.abs.log), /before-rotate/);
  t.true(isLisod(d.pid));
});

serial('certificate swap on SIGHUP is seen by new connections; the old connection keeps working; a bad one is refused', async (t) => {
  const pki = await getPki();
  const site = await makeSite({ tls: 'rsa' });
  const d = await launched(t, site);
  const rsa = await fingerprint(pki.rsa.cert);
  const ecdsa = await fingerprint(pki.ecdsa.cert);

  const old = await Conn.open({ port: d.https, tls: true });
  t.teardown(() => old.destroy());
  t.is(old.tls.getPeerCertificate().fingerprint256, rsa);
  await old.write(get('/'));
  t.is((await old.readResponse()).status, 200);

  fs.copyFileSync(pki.ecdsa.key, site.abs.key);
  fs.copyFileSync(pki.ecdsa.cert, site.abs.cert);
  process.kill(d.pid, 'SIGHUP');
  await waitForLog(site.abs.log, /info lisod\[\d+\]: reloaded/);

  const fresh = await Conn.open({ port: d.https, tls: true });
  t.teardown(() => fresh.destroy());
  t.true(fresh.tls.authorized);
  t.is(fresh.tls.getPeerCertificate().fingerprint256, ecdsa);
  await fresh.write(get('/'));
  t.is((await fresh.readResponse()).status, 200);

  // The connection made before the reload is still up, on its old certificate.
  await old.write(get('/'));
  const again = await old.readResponse();
  t.is(again.status, 200);
  t.is(sha256(again.body), sha256(site.index));
  t.is(old.tls.getPeerCertificate().fingerprint256, rsa);

  // A broken certificate on the next reload: logged, the running one kept.
  fs.writeFileSync(site.abs.cert, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
  process.kill(d.pid, 'SIGHUP');
  await waitForLog(site.abs.log, /error lisod\[\d+\]: reload failed, keeping the running configuration: certificate file '[^']*cert\.pem'/);
  const third = await Conn.open({ port: d.https, tls: true });
  t.teardown(() => third.destroy());
  t.is(third.tls.getPeerCertificate().fingerprint256, ecdsa);
  await third.write(get('/'));
  t.is((await third.readResponse()).status, 200);
});

serial('SIGTERM with slow requests in flight: listeners and idle keep-alives close at once, the requests complete, then exit and the PID leaves the lock', async (t) => {
  const site = await makeSite({ bigBytes: 32 * 1024 * 1024 });
  const d = await launched(t, site);

  // A: a 32 MiB download its client does not read yet (blocked in the socket buffers).
  const a = await Conn.open({ port: d.http });
  t.teardown(() => a.destroy());
  a.socket.pause();
  await a.write(get(site.big.path));
  // B: a CGI response that is half sent; the script sleeps 2 s before its last line.
  const b = await Conn.open({ port: d.https, tls: true });
  t.teardown(() => b.destroy());
  await b.write(get('/cgi/slow'));
  await waitFor(() => b.peek().includes('begin'), 5000, 'the first half of /cgi/slow');
  // C: an idle keep-alive connection: closed at once, not counted as in flight.
  const c = await Conn.open({ port: d.http });
  t.teardown(() => c.destroy());
  await c.write(get('/'));
  t.is((await c.readResponse()).status, 200);

  process.kill(d.pid, 'SIGTERM');
  const diag = (): string => `error log:\n${readText(site.abs.log)}`;
  t.true(await waitFor(() => connectRefused(d.http), 2000, `the HTTP listener to close; ${diag()}`));
  t.true(await connectRefused(d.https), diag());
  t.true(await waitFor(() => c.eof, 2000, 'the idle keep-alive to close'));
  await sleep(300);
  t.true(isLisod(d.pid), `still alive while requests are in flight; ${diag()}`);

  const slow = await b.readResponse({ timeoutMs: 10_000 });
  t.is(slow.status, 200);
  t.is(slow.body.toString(), 'begin\nend\n');

  a.socket.resume();
  const big = await a.readResponse({ timeoutMs: 20_000 });
  t.is(big.status, 200);
  t.is(big.body.length, site.big.size);
  t.is(sha256(big.body), site.big.sha256);
  a.destroy();
  b.destroy();

  t.true(await waitGone(d.pid, 8000), `daemon exited after the requests completed; ${diag()}`);
  t.is(readText(site.abs.lock), '', 'PID removed from the lock file');
  const log = readText(site.abs.log);
  t.regex(log, /info lisod\[\d+\]: received SIGTERM: stopping \(grace period 10 s, 2 in flight\)/);
  t.regex(log, /info lisod\[\d+\]: stopped$/m);
  t.notRegex(log, /unfinished/);
  t.regex(log, new RegExp(`"GET /big\\.bin HTTP/1\\.1" 200 ${site.big.size} `));
  t.regex(log, /"GET \/cgi\/slow HTTP\/1\.1" 200 /);
});

serial('kill -9 leaves a stale PID that does not prevent the next start', async (t) => {
  const site = await makeSite();
  const first = await launched(t, site);
  process.kill(first.pid, 'SIGKILL');
  t.true(await waitGone(first.pid, 5000));
  t.is(lockPid(site.abs.lock), first.pid, 'the killed daemon could not clean up');

  const status = await runLisod(site.dir, [...lisoArgs(site), 'status']);
  t.is(status.code, 3);
  t.is(status.stdout, `lisod is not running (stale PID ${first.pid} in ${site.abs.lock})\n`);

  const second = await launched(t, site);
  t.not(second.pid, first.pid);
  t.is(readText(site.abs.lock), `${second.pid}\n`);
  t.is((await fetch(second.http, '/')).status, 200);
  t.is((await fetch(second.https, '/', true)).status, 200);
});

serial('the Liso log holds error lines and access lines in Combined Log Format', async (t) => {
  const site = await makeSite();
  const d = await launched(t, site);
  const ua = 'test-agent/1.0 (with "quotes" and \\)';
  t.is((await fetch(d.http, '/', false, `Referer: http://example.test/from\r\nUser-Agent: ${ua}\r\n`)).status, 200);
  t.is((await fetch(d.http, '/nope.html')).status, 404);
  t.is((await exchange1('HEAD / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n', { port: d.http, heads: [true] })).status, 200);
  t.is((await fetch(d.https, '/cgi/x?y=1', true)).status, 200);
  await waitForLog(site.abs.log, /"GET \/cgi\/x\?y=1 HTTP\/1\.1"/);

  const lines = readText(site.abs.log).split('\n').filter((l) => l !== '');
  const access: RegExpExecArray[] = [];
  for (const line of lines) {
    const m = kCombined.exec(line);
    if (m) access.push(m);
    else t.regex(line, kErrorLine, 'every other line is an error-log line');
  }
  t.is(access.length, 4, lines.join('\n'));
  const byRequest = new Map(access.map((m) => [m[11], m]));
  const root = byRequest.get('GET / HTTP/1.1');
  t.truthy(root);
  t.is(root![1], '127.0.0.1');
  t.is(root![2], '-');
  t.is(root![3], '-');
  t.is(root![12], '200');
  t.is(root![13], String(site.index.length));
  t.is(root![14], 'http://example.test/from');
  t.is(root![15], 'test-agent/1.0 (with \\"quotes\\" and \\\\)');
  const when = Date.UTC(Number(root![6]), ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(root![5]!),
    Number(root![4]), Number(root![7]), Number(root![8]), Number(root![9]));
  const offset = (root![10]!.startsWith('-') ? -1 : 1) * (Number(root![10]!.slice(1, 3)) * 60 + Number(root![10]!.slice(3)));
  t.true(Math.abs(when - offset * 60_000 - Date.now()) < 60_000, `timestamp ${root![0]}`);
  t.is(byRequest.get('GET /nope.html HTTP/1.1')?.[12], '404');
  t.is(byRequest.get('HEAD / HTTP/1.1')?.[12], '200');
  t.is(byRequest.get('GET /cgi/x?y=1 HTTP/1.1')?.[12], '200');
  t.is(byRequest.get('GET /nope.html HTTP/1.1')?.[15], '-');
});

serial('lisod <Liso args> status|reload|stop find the daemon through the lock file', async (t) => {
  const site = await makeSite();
  const d = await launched(t, site);
  const args = lisoArgs(site);

  const status = await runLisod(site.dir, [...args, 'status']);
  t.is(status.code, 0);
  t.is(status.stdout, `lisod is running (pid ${d.pid})\n`);

  const reload = await runLisod(site.dir, [...args, 'reload']);
  t.is(reload.code, 0);
  t.is(reload.stdout, `lisod (pid ${d.pid}) is reloading\n`);
  await waitForLog(site.abs.log, /info lisod\[\d+\]: reloaded/);
  t.true(isLisod(d.pid));

  const stop = await runLisod(site.dir, [...args, 'stop']);
  t.is(stop.code, 0);
  t.is(stop.stdout, `lisod (pid ${d.pid}) stopped\n`);
  t.true(await waitGone(d.pid, 2000));
  t.is(readText(site.abs.lock), '');
  t.true(await connectRefused(d.http));

  const after = await runLisod(site.dir, [...args, 'status']);
  t.is(after.code, 3);
  t.is(after.stdout, 'lisod is not running\n');
  t.is((await runLisod(site.dir, [...args, 'stop'])).code, 0, 'stopping a stopped lisod succeeds');
  const late = await runLisod(site.dir, [...args, 'reload']);
  t.is(late.code, 7);
  t.regex(late.stderr, /^lisod: cannot reload: lisod is not running/);
  t.regex(readText(site.abs.log), /info lisod\[\d+\]: received SIGTERM: stopping/);
});

serial('--config daemonizes unless --foreground; reload applies a good config and keeps the old one for a bad one', async (t) => {
  const site = await makeSite();
  fs.mkdirSync(path.join(site.dir, 'www2'));
  fs.writeFileSync(path.join(site.dir, 'www2', 'index.html'), 'other root\n');
  const conf = path.join(site.dir, 'lisod.conf');
  const text = [
    'http_port = 0', 'https_port = 0', 'bind = ["127.0.0.1"]', 'www = "www"',
    'tls_key = "key.pem"', 'tls_cert = "cert.pem"', 'error_log = "logs/error.log"',
    'access_log = "logs/access.log"', `lock_file = "${site.rel.lock}"`, 'shutdown_grace = 3',
    '[cgi]', `script = "${site.rel.cgi}"`, '',
  ].join('\n');
  fs.writeFileSync(conf, text);
  const errorLog = path.join(site.dir, 'logs', 'error.log');
  const accessLog = path.join(site.dir, 'logs', 'access.log');

  // From another directory: the config file's paths are relative to the file.
  const launch = await runLisod('/', ['--config', conf]);
  const pid = lockPid(site.abs.lock);
  if (pid !== null) track(pid);
  t.teardown(() => (pid !== null ? stopDaemon(pid) : undefined));
  t.is(launch.code, 0, launch.stderr);
  t.truthy(pid);
  t.true(isLisod(pid!));
  const ports = portsFrom(launch.stdout);
  t.is((await fetch(ports.https, '/', true)).status, 200);
  await waitForLog(accessLog, /"GET \/ HTTP\/1\.1" 200/);
  t.notRegex(readText(errorLog), /"GET/, 'access lines go to access_log only');

  t.is((await runLisod('/', ['--config', conf, '-t'])).code, 0);
  const status = await runLisod('/', ['--config', conf, 'status']);
  t.is(status.code, 0);
  t.is(status.stdout, `lisod is running (pid ${pid})\n`);

  // A bad config: `lisod reload` says why and exits 1; the daemon reopens its logs, logs
  // the problem and keeps the running configuration.
  fs.writeFileSync(conf, `htps_port = 1\n${text}`);
  const refused = await runLisod('/', ['--config', conf, 'reload']);
  t.is(refused.code, 1);
  t.is(refused.stdout, '');
  t.regex(refused.stderr, new RegExp(`^lisod: .*lisod\\.conf:1: unknown key 'htps_port' \\(hint: did you mean 'https_port'\\?\\); the running lisod only reopens its logs and keeps its configuration\n$`));
  await waitForLog(errorLog, /error lisod\[\d+\]: reload failed, keeping the running configuration: .*lisod\.conf:\d+: unknown key 'htps_port'/);
  t.is((await fetch(ports.http, '/')).status, 200);

  // A good one: shutdown_grace and a new access_log apply at once, www needs a restart
  // (said in the log).
  fs.writeFileSync(conf, text.replace('www = "www"', 'www = "www2"').replace('shutdown_grace = 3', 'shutdown_grace = 1')
    .replace('logs/access.log', 'logs/access2.log'));
  t.is((await runLisod('/', ['--config', conf, 'reload'])).code, 0);
  await waitForLog(errorLog, /warn lisod\[\d+\]: reload: www changed; restart lisod to apply/);
  await waitForLog(errorLog, /info lisod\[\d+\]: reloaded/);
  t.regex(readText(errorLog), /info lisod\[\d+\]: now logging to \S+error\.log and \S+access2\.log/);
  const still = await fetch(ports.http, '/still');
  t.is(still.status, 404, 'the old www is still served');
  t.is(sha256((await fetch(ports.http, '/')).body), sha256(site.index));
  await waitForLog(path.join(site.dir, 'logs', 'access2.log'), /"GET \/still HTTP\/1\.1" 404/);
  t.notRegex(readText(accessLog), /still/);

  const stop = await runLisod('/', ['--config', conf, 'stop']);
  t.is(stop.code, 0);
  t.regex(readText(errorLog), /received SIGTERM: stopping \(grace period 1 s/);
  t.true(await waitGone(pid!, 2000));
});

serial('foreground (--config -f) takes the lock too, reloads on SIGHUP and exits 0 on SIGTERM', async (t) => {
  const l = await startLisod();
  t.teardown(() => l.stop());
  const lock = path.join(l.dirs.logs, 'lisod.lock');
  t.is(readText(lock), `${l.pid}\n`);
  process.kill(l.pid, 'SIGHUP');
  await waitForLog(path.join(l.dirs.logs, 'error.log'), /info lisod\[\d+\]: reloaded/);
  t.is(l.proc.exitCode, null, 'SIGHUP does not end it');
  const res = await exchange1(get('/'), { port: l.httpsPort, tls: true });
  t.is(res.status, 200);
  const exit = await l.stop();
  t.deepEqual(exit, { code: 0, signal: null });
  t.is(readText(lock), '');
});

serial('past shutdown_grace, SIGTERM closes unfinished requests and still exits 0 with the lock emptied', async (t) => {
  const site = await makeSite();
  const conf = path.join(site.dir, 'lisod.conf');
  fs.writeFileSync(conf, [...lisoConfLines(site), 'shutdown_grace = 0.5', '[cgi]', `script = "${site.rel.cgi}"`, 'pass_env = ["SLOW_SECONDS"]', ''].join('\n'));
  const launch = await runLisod(site.dir, ['--config', conf], { env: { SLOW_SECONDS: '30' } });
  const pid = lockPid(site.abs.lock);
  if (pid !== null) track(pid);
  t.teardown(() => (pid !== null ? stopDaemon(pid) : undefined));
  t.is(launch.code, 0, launch.stderr);
  const ports = portsFrom(launch.stdout);
  const c = await Conn.open({ port: ports.http });
  t.teardown(() => c.destroy());
  await c.write(get('/cgi/slow'));
  await waitFor(() => c.peek().includes('begin'), 5000, 'the first half of /cgi/slow');
  const sent = Date.now();
  process.kill(pid!, 'SIGTERM');
  t.true(await waitGone(pid!, 5000));
  const took = Date.now() - sent;
  t.true(took >= 400, `waited the grace period (${took} ms)`);
  t.true(await c.closesWithin(2000), 'the unfinished response was cut');
  t.notRegex(c.peek().toString(), /end/);
  t.is(readText(site.abs.lock), '');
  const log = readText(site.abs.log);
  t.regex(log, /received SIGTERM: stopping \(grace period 0\.5 s, 1 in flight\)/);
  t.regex(log, /warn lisod\[\d+\]: closing 1 unfinished request\(s\)/);
  t.regex(log, /info lisod\[\d+\]: stopped$/m);
});

serial('under systemd (Type=notify): READY=1 once serving, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM', async (t) => {
  const notify = await notifyListener();
  t.teardown(() => notify.stop());
  const l = await startLisod({ env: { NOTIFY_SOCKET: notify.socket } });
  t.teardown(() => l.stop());
  const ready = await notify.next();
  t.regex(ready, new RegExp(`^READY=1\nSTATUS=serving on http://127\\.0\\.0\\.1:${l.httpPort}, https://127\\.0\\.0\\.1:${l.httpsPort}$`));
  process.kill(l.pid, 'SIGHUP');
  t.regex(await notify.next(), /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
  t.is(await notify.next(), 'READY=1');
  t.is(l.proc.exitCode, null);
  const stopped = l.stop();
  t.is(await notify.next(), 'STOPPING=1');
  t.deepEqual(await stopped, { code: 0, signal: null });
});

test('controlSettings reads only lock_file and shutdown_grace, so other mistakes do not block stop|reload', (t) => {
  const dir = testTempDir(t, 'lisod-control-');
  const conf = path.join(dir, 'a.conf');
  fs.writeFileSync(conf, 'htps_port = 1\nlock_file = "run/x.lock"\nshutdown_grace = 2.5\nwww = "missing"\n');
  t.deepEqual(controlSettings(conf, null, '/'), { lockFile: path.join(dir, 'run', 'x.lock'), graceMs: 2500 });
  t.deepEqual(controlSettings('a.conf', 'here.lock', dir), { lockFile: path.join(dir, 'here.lock'), graceMs: 2500 });
  t.deepEqual(controlSettings(null, 'l.lock', '/tmp'), { lockFile: '/tmp/l.lock', graceMs: 10_000 });
  fs.writeFileSync(conf, 'lock_file = \n');
  const e = t.throws(() => controlSettings(conf, null, '/'), { instanceOf: ConfigError });
  t.regex(e!.message, /a\.conf:1:\d+: TOML syntax error/);
  t.throws(() => controlSettings(path.join(dir, 'none.conf'), null, '/'), { instanceOf: ConfigError, message: /cannot read config file/ });
});

(runningAsRoot ? serial : serial.skip)('started as root with user = "nobody": binds and reads the key as root, then serves as nobody', async (t) => {
  const site = await makeSite();
  const conf = path.join(site.dir, 'lisod.conf');
  fs.writeFileSync(conf, [
    ...lisoConfLines(site), 'user = "nobody"', '[cgi]', `script = "${site.rel.cgi}"`, '',
  ].join('\n'));
  fs.chmodSync(site.abs.key, 0o600); // only root can read the key
  const launch = await runLisod(site.dir, ['--config', conf]);
  const pid = lockPid(site.abs.lock);
  if (pid !== null) track(pid);
  t.teardown(() => (pid !== null ? stopDaemon(pid) : undefined));
  t.is(launch.code, 0, launch.stderr);
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  t.regex(status, new RegExp(`^Uid:\\s+${kNobody.uid}\\s+${kNobody.uid}\\s+${kNobody.uid}\\s+${kNobody.uid}$`, 'm'));
  t.regex(status, new RegExp(`^Gid:\\s+${kNobody.gid}\\s+${kNobody.gid}\\s+${kNobody.gid}\\s+${kNobody.gid}$`, 'm'));
  const ports = portsFrom(launch.stdout);
  t.is((await fetch(ports.https, '/', true)).status, 200);
  t.is((await fetch(ports.http, '/cgi/who')).body.toString(), 'cgi ok\n');
  t.is(fs.statSync(site.abs.log).uid, kNobody.uid, 'the log was handed over for reopening');
  t.regex(readText(site.abs.log), /info lisod\[\d+\]: switched to user nobody \(uid 65534, gid 65534\)/);

  // Log rotation still works as nobody.
  fs.renameSync(site.abs.log, `${site.abs.log}.1`);
  process.kill(pid!, 'SIGHUP');
  await waitForLog(site.abs.log, /reload/);
  const stop = await runLisod(site.dir, ['--config', conf, 'stop']);
  t.is(stop.code, 0);
  t.is(readText(site.abs.lock), '');
});

function lisoConfLines(site: LisoSite): string[] {
  return [
    'http_port = 0', 'https_port = 0', 'bind = ["127.0.0.1"]', `www = "${site.rel.www}"`,
    `tls_key = "${site.rel.key}"`, `tls_cert = "${site.rel.cert}"`, `error_log = "${site.rel.log}"`,
    `access_log = "${site.rel.log}"`, `lock_file = "${site.rel.lock}"`,
  ];
}

// ---------------------------------------------------------------------------------------
// Pure parts.

test('parseCli: stop|reload|status after --config FILE or the 8 Liso arguments', (t) => {
  const liso = ['8080', '8443', 'l', 'k', 'w', 'c', 'key', 'cert'];
  const r = parseCli(['--config', 'x.conf', 'stop']);
  t.deepEqual(r, { action: 'control', verb: 'stop', options: { configFile: 'x.conf', liso: null, bind: null, foreground: false } });
  const s = parseCli([...liso, 'status']);
  t.is(s.action, 'control');
  if (s.action === 'control') {
    t.is(s.verb, 'status');
    t.is(s.options.liso?.lock, 'k');
  }
  t.is(parseCli(['reload', '-c', 'x.conf']).action, 'control');
  t.deepEqual(parseCli(['stop']), { action: 'usage-error', message: 'stop: name the lisod with --config FILE or the 8 Liso arguments (its lock file)' });
  t.deepEqual(parseCli(['-t', '--config', 'x', 'stop']), { action: 'usage-error', message: "-t cannot be combined with 'stop'" });
  t.is(parseCli(['--config', 'x', 'restart']).action, 'usage-error');
  // As the 8th Liso argument "stop" is just a file name.
  const named = parseCli([...liso.slice(0, 7), 'stop']);
  t.is(named.action, 'run');
});

test('restartOnlyChanges names the settings a reload cannot apply', async (t) => {
  const site = await makeSite();
  const base = { configFile: null, bind: ['127.0.0.1'], cwd: site.dir };
  const a = loadConfig({ ...base, liso: { httpPort: 0, httpsPort: 0, log: 'l.log', lock: 'x.lock', www: 'www', cgi: site.rel.cgi, key: 'key.pem', cert: 'cert.pem' } }).config;
  t.deepEqual(restartOnlyChanges(a, a), []);
  t.deepEqual(restartOnlyChanges(a, { ...a, tlsCert: '/elsewhere.pem', errorLog: '/x.log', shutdownGraceMs: 1 }), []);
  t.deepEqual(restartOnlyChanges(a, { ...a, httpPort: 81, www: '/srv', cgi: { ...a.cgi!, timeoutMs: 1 } }), ['http_port', 'www', '[cgi]']);
  t.deepEqual(restartOnlyChanges(a, { ...a, accessLog: null }), ['access_log on/off']);
});
