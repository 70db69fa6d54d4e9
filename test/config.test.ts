// Unit tests for src/config.ts: TOML schema, file:line errors, path resolution, Liso
// positional overrides, file-system checks and the native ServerConfig it produces.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LisoArgs } from '../src/cli.js';
import {
  ConfigError, findKeyLine, finishConfig, kEmptyDraft, loadConfig, parseConfigText, toServerConfig, applyLiso,
} from '../src/config.js';
import { tempDir } from './helpers/tmp.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** A temp directory with www/, a CGI script, key/cert files and logs/. */
function fixture(): string {
  const dir = tempDir('lisod-config-');
  fs.mkdirSync(path.join(dir, 'www'));
  fs.mkdirSync(path.join(dir, 'logs'));
  fs.writeFileSync(path.join(dir, 'app.cgi'), '#!/bin/sh\necho\n', { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'key.pem'), 'key');
  fs.writeFileSync(path.join(dir, 'cert.pem'), 'cert');
  return dir;
}

const kBase = `http_port = 8080
https_port = 8443
www = "www"
cgi = "app.cgi"
tls_key = "key.pem"
tls_cert = "cert.pem"
`;

function writeConf(dir: string, text: string, name = 'lisod.conf'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

/** Parses text as if it were /etc/lisod/x.conf and returns the error it raises. */
function parseError(text: string): ConfigError {
  const e = (() => {
    try {
      parseConfigText(text, 'x.conf', '/etc/lisod/x.conf');
    } catch (err) {
      return err;
    }
    throw new Error('expected a ConfigError');
  })();
  if (!(e instanceof ConfigError)) throw e;
  return e;
}

/** Parse + defaults (no file system) of text as /srv/site/lisod.conf. */
function finished(text: string) {
  return finishConfig(parseConfigText(text, 'lisod.conf', '/srv/site/lisod.conf'), 'host.example');
}

function finishError(text: string): ConfigError {
  try {
    finished(text);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

test('the shipped lisod.conf parses and resolves against the repository', (t) => {
  const file = path.join(repo, 'lisod.conf');
  const c = finishConfig(parseConfigText(fs.readFileSync(file, 'utf8'), 'lisod.conf', file), 'h');
  t.is(c.httpPort, 8080);
  t.is(c.httpsPort, 8443);
  t.deepEqual(c.bind, ['127.0.0.1', '::1']); // loopback: a quick start is not reachable from other hosts
  t.is(c.www, path.join(repo, 'www'));
  t.is(c.cgi, null); // Flaskr runs through FastCGI by default
  t.like(c.fastcgi[0], { prefix: '/cgi', command: [path.join(repo, 'cgi-bin', 'flaskr.fcgi')], processes: 2, timeoutMs: 30_000, passEnv: ['LANG'] });
  t.is(c.tlsKey, path.join(repo, 'certs', 'dev-key.pem'));
  t.is(c.tlsCert, path.join(repo, 'certs', 'dev-cert.pem'));
  t.is(c.errorLog, path.join(repo, 'var', 'error.log'));
  t.is(c.accessLog, path.join(repo, 'var', 'access.log'));
  t.is(c.lockFile, path.join(repo, 'var', 'lisod.lock'));
  t.is(c.maxBodyBytes, 104857600);
  t.is(c.headerTimeoutMs, 10_000);
  t.is(c.shutdownGraceMs, 10_000);
  t.is(c.user, null);
  t.is(c.fastcgi[0]!.env.FLASKR_DATABASE, path.join(repo, 'var', 'flaskr.sqlite'));
  t.is(c.fastcgi[0]!.env.FLASKR_SECRET_FILE, path.join(repo, 'var', 'flaskr-secret'));
});

test('defaults fill everything not set', (t) => {
  const c = finished(kBase);
  t.deepEqual(c.bind, ['::']);
  t.is(c.errorLog, '-');
  t.is(c.accessLog, null);
  t.is(c.lockFile, null);
  t.is(c.serverName, 'host.example');
  t.is(c.maxConnections, 10000);
  t.is(c.maxHeaderBytes, 65536);
  t.is(c.maxLineBytes, 8192);
  t.is(c.maxTargetBytes, 8000);
  t.is(c.keepAliveTimeoutMs, 15_000);
  t.is(c.bodyTimeoutMs, 30_000);
  t.is(c.bodyTotalTimeoutMs, 60_000);
  t.is(c.sendTimeoutMs, 60_000);
  t.deepEqual(c.cgi, { script: '/srv/site/app.cgi', timeoutMs: 30_000, maxProcesses: 16, maxQueue: 64, passEnv: [], env: {}, requestBuffering: true,
    endAfterResponse: false, maxRunnable: os.availableParallelism() + 1 });
});

test('relative paths resolve against the config file directory; absolute ones stay', (t) => {
  const c = finished(`${kBase}error_log = "../log/e.log"\naccess_log = "/var/log/a.log"\nlock_file = "run/x.lock"\n`);
  t.is(c.www, '/srv/site/www');
  t.is(c.tlsKey, '/srv/site/key.pem');
  t.is(c.errorLog, '/srv/log/e.log');
  t.is(c.accessLog, '/var/log/a.log');
  t.is(c.lockFile, '/srv/site/run/x.lock');
});

test('"-" means a standard stream, "" turns the access log and lock file off', (t) => {
  const c = finished(`${kBase}error_log = "-"\naccess_log = "-"\n`);
  t.is(c.errorLog, '-');
  t.is(c.accessLog, '-');
  const off = finished(`${kBase}access_log = ""\nlock_file = ""\nuser = ""\n`);
  t.is(off.accessLog, null);
  t.is(off.lockFile, null);
  t.is(off.user, null);
  t.regex(finishError(`${kBase}error_log = ""\n`).message, /^lisod\.conf:7: error_log must not be empty \(hint: use "-" for stderr\)$/);
});

test('timeouts are seconds (decimals allowed) and become milliseconds; sizes accept underscores', (t) => {
  const text = kBase.replace('cgi = "app.cgi"\n', '');
  const c = finished(`${text}header_timeout = 0.25\nsend_timeout = 2\nbody_total_timeout = 7.5\nshutdown_grace = 0\nmax_body_bytes = 1_048_576\n[cgi]\nscript = "app.cgi"\ntimeout = 1.5\nmax_queue = 0\n`);
  t.is(c.headerTimeoutMs, 250);
  t.is(c.sendTimeoutMs, 2000);
  t.is(c.bodyTotalTimeoutMs, 7500);
  t.is(toServerConfig(c).bodyTotalTimeoutMs, 7500);
  t.is(c.shutdownGraceMs, 0);
  t.is(c.maxBodyBytes, 1048576);
  t.is(c.cgi!.timeoutMs, 1500);
  t.is(c.cgi!.maxQueue, 0);
});

test('[cgi] table: script, limits, pass_env, env verbatim and env_paths resolved', (t) => {
  const text = `http_port = 80\nwww = "w"\n[cgi]\nscript = "bin/x.cgi"\nmax_processes = 2\npass_env = ["LANG", "TZ"]\n` +
    `[cgi.env]\nMODE = "var/not-a-path"\n[cgi.env_paths]\nDB = "var/db.sqlite"\n`;
  const c = finished(text);
  t.is(c.cgi!.script, '/srv/site/bin/x.cgi');
  t.is(c.cgi!.maxProcesses, 2);
  t.deepEqual(c.cgi!.passEnv, ['LANG', 'TZ']);
  t.deepEqual(c.cgi!.env, { MODE: 'var/not-a-path', DB: '/srv/site/var/db.sqlite' });
});

test('[cgi] max_runnable: "auto" (the default) is the CPUs lisod may use + 1; an integer ≥ 0; 0 is no limit', (t) => {
  const cgi = (extra: string, cpus: number) =>
    finishConfig(parseConfigText(`http_port = 80\nwww = "w"\n[cgi]\nscript = "x"\n${extra}`, 'x.conf', '/srv/x.conf'), 'h', cpus).cgi!;
  t.is(cgi('', 1).maxRunnable, 2);
  t.is(cgi('', 8).maxRunnable, 9);
  t.is(cgi('max_runnable = "auto"\n', 4).maxRunnable, 5);
  t.is(cgi('max_runnable = 3\n', 4).maxRunnable, 3);
  t.is(cgi('max_runnable = 0\n', 4).maxRunnable, 0);
  for (const bad of ['-1', '1.5', '"two"', 'true']) {
    t.is(parseError(`[cgi]\nmax_runnable = ${bad}\n`).message,
      `x.conf:2: cgi.max_runnable must be an integer ≥ 0 or "auto", got ${bad} (hint: e.g. max_runnable = "auto" (CPUs + 1), 4, or 0 for no limit)`);
  }
});

test('unknown key: file:line and a did-you-mean hint', (t) => {
  const e = parseError('http_port = 8080\n\n# comment\nhtps_port = 8443\n');
  t.is(e.message, "x.conf:4: unknown key 'htps_port' (hint: did you mean 'https_port'?)");
  const far = parseError('zzzzzzzzzzzz = 1\n');
  t.regex(far.message, /^x\.conf:1: unknown key 'zzzzzzzzzzzz' \(hint: valid keys here: http_port, https_port, /);
});

test('unknown key inside [cgi] points at its line', (t) => {
  const e = parseError('www = "w"\n\n[cgi]\nscript = "a"\ntimeot = 3\n');
  t.is(e.message, "x.conf:5: unknown key 'timeot' in [cgi] (hint: did you mean 'timeout'?)");
});

test('bad values: file:line, what was expected, what was given', (t) => {
  t.is(parseError('www = "w"\nhttp_port = 70000\n').message,
    'x.conf:2: http_port must be a port number (0–65535), got 70000 (hint: use 0 to let the system pick a free port)');
  t.regex(parseError('https_port = "8443"\n').message, /^x\.conf:1: https_port must be a port number \(0–65535\), got "8443"/);
  t.regex(parseError('max_connections = 0\n').message, /^x\.conf:1: max_connections must be an integer ≥ 1 \(connections\), got 0/);
  t.regex(parseError('\n\nheader_timeout = "10s"\n').message, /^x\.conf:3: header_timeout must be a number of seconds > 0, got "10s"/);
  t.regex(parseError('\nbody_total_timeout = 0\n').message, /^x\.conf:2: body_total_timeout must be a number of seconds > 0, got 0/);
  t.regex(parseError('body_total_timout = 5\n').message, /did you mean 'body_total_timeout'/);
  t.regex(parseError('keep_alive_timeout = -1\n').message, /^x\.conf:1: keep_alive_timeout must be a number of seconds > 0, got -1/);
  t.regex(parseError('max_body_bytes = 1.5\n').message, /^x\.conf:1: max_body_bytes must be an integer/);
  t.regex(parseError('www = 3\n').message, /^x\.conf:1: www must be a string, got 3/);
  t.regex(parseError('[cgi]\nmax_processes = 0\n').message, /^x\.conf:2: cgi\.max_processes must be an integer ≥ 1/);
  t.regex(parseError('[cgi]\npass_env = ["OK", "NOT-OK"]\n').message, /^x\.conf:2: cgi\.pass_env: 'NOT-OK' is not an environment variable name/);
  t.regex(parseError('[cgi.env]\nX = 1\n').message, /^x\.conf:2: cgi\.env\.X must be a string, got 1/);
  t.regex(parseError('[cgi.env]\nA = "1"\n[cgi.env_paths]\nA = "p"\n').message, /^x\.conf:4: A is set in both \[cgi\.env\] and \[cgi\.env_paths\]/);
  t.regex(parseError('when = 1979-05-27\n').message, /unknown key 'when'/);
  t.regex(parseError('server_name = "bad name"\n').message, /^x\.conf:1: server_name must be a host name/);
});

test('workers: an integer 1–256 or "auto" (one per CPU); default 1; more than one sets reusePort', (t) => {
  t.is(finished(kBase).workers, 1);
  t.is(finished(`${kBase}workers = 4\n`).workers, 4);
  const auto = parseConfigText(`${kBase}workers = "auto"\n`, 'lisod.conf', '/srv/site/lisod.conf');
  t.is(finishConfig(auto, 'h', 6).workers, 6);
  t.is(finishConfig(auto, 'h', 1000).workers, 256);
  t.is(finishConfig(auto, 'h').workers, os.availableParallelism());
  t.is(toServerConfig(finished(kBase)).reusePort, undefined);
  t.true(toServerConfig(finished(`${kBase}workers = 2\n`)).reusePort);
  const hint = '(hint: e.g. workers = 2, or workers = "auto" for one event loop per CPU)';
  t.is(parseError('www = "w"\n\nworkers = 0\n').message, `x.conf:3: workers must be an integer 1–256 or "auto", got 0 ${hint}`);
  t.is(parseError('workers = "x"\n').message, `x.conf:1: workers must be an integer 1–256 or "auto", got "x" ${hint}`);
  t.regex(parseError('workers = 2.5\n').message, /^x\.conf:1: workers must be an integer 1–256 or "auto", got 2\.5 /);
  t.regex(parseError('workers = 257\n').message, /^x\.conf:1: workers must be an integer 1–256 or "auto", got 257 /);
  t.regex(parseError('workers = "Auto"\n').message, /got "Auto"/);
  t.regex(parseError('worker = 2\n').message, /unknown key 'worker' \(hint: did you mean 'workers'\?\)/);
});

test('dotted and quoted keys are located too', (t) => {
  t.regex(parseError('www = "w"\ncgi.timeout = "x"\n').message, /^x\.conf:2: cgi\.timeout must be a number of seconds/);
  t.regex(parseError('"http_port" = -5\n').message, /^x\.conf:1: http_port must be a port number/);
  t.is(findKeyLine('a = 1\n[cgi . env]\nX = 1\n', ['cgi', 'env', 'X']), 3);
  t.is(findKeyLine('[cgi]\n"script" = 1\n', ['cgi', 'script']), 2);
  t.is(findKeyLine('[other]\nscript = 1\n[cgi]\n', ['cgi', 'script']), 3); // falls back to the table
  t.is(findKeyLine('a = 1\n', ['b']), undefined);
});

test('TOML syntax errors carry file:line:col', (t) => {
  const e = parseError('http_port = 8080\nwww = www\n');
  t.regex(e.message, /^x\.conf:2:\d+: TOML syntax error: /);
  t.is(e.message.split('\n').length, 1);
  t.regex(parseError('http_port = 8080\nhttp_port = 8081\n').message, /^x\.conf:2:\d+: TOML syntax error/);
  // A string cgi and a [cgi] table cannot coexist in TOML: the string form is a shorthand.
  t.regex(parseError('cgi = "a.cgi"\n[cgi]\ntimeout = 3\n').message, /^x\.conf:2:\d+: TOML syntax error/);
});

test('semantic checks after parsing: required keys, bind addresses, limits', (t) => {
  t.is(finishError('http_port = 80\ncgi = "x"\n').message, 'lisod.conf: missing required setting www (hint: e.g. www = "www")');
  t.regex(finishError('www = "w"\ncgi = "x"\n').message, /missing required setting http_port or https_port/);
  t.regex(finishError('http_port = 80\nwww = "w"\n').message, /missing required setting cgi/);
  t.regex(finishError('https_port = 443\nwww = "w"\ncgi = "x"\ntls_cert = "c"\n').message, /missing required setting tls_key \(https_port is set\)/);
  t.regex(finishError(`${kBase}\nbind = ["localhost"]\n`).message, /^lisod\.conf:8: bind address 'localhost' is not an IP address \(hint: "::" = every/);
  t.regex(finishError(`${kBase}bind = []\n`).message, /^lisod\.conf:7: bind must list at least one address/);
  t.regex(finishError(`${kBase}bind = ["::1", "::1"]\n`).message, /listed twice/);
  t.regex(finishError(kBase.replace('8443', '8080')).message, /^lisod\.conf:2: http_port and https_port are both 8080/);
  t.regex(finishError(`${kBase}max_line_bytes = 100000\n`).message, /^lisod\.conf:7: max_line_bytes \(100000\) exceeds max_header_bytes \(65536\)/);
});

test('bind accepts a single string; https is optional and then needs no key', (t) => {
  const c = finished('http_port = 80\nbind = "127.0.0.1"\nwww = "w"\ncgi = "x"\n');
  t.deepEqual(c.bind, ['127.0.0.1']);
  t.is(c.httpsPort, null);
  t.is(c.tlsKey, null);
  t.is(c.tlsCert, null);
});

const lisoArgs: LisoArgs = {
  httpPort: 9090, httpsPort: 9443, log: 'logs/lisod.log', lock: 'logs/lisod.lock',
  www: 'www', cgi: 'app.cgi', key: 'key.pem', cert: 'cert.pem',
};

test('Liso positional form alone: paths against cwd, one log for errors and access', (t) => {
  const dir = fixture();
  const { config, warnings } = loadConfig({ configFile: null, liso: lisoArgs, bind: null, cwd: dir, hostname: 'h' });
  t.deepEqual(warnings, []);
  t.is(config.configFile, null);
  t.is(config.httpPort, 9090);
  t.is(config.httpsPort, 9443);
  t.is(config.www, path.join(dir, 'www'));
  t.is(config.errorLog, path.join(dir, 'logs', 'lisod.log'));
  t.is(config.accessLog, path.join(dir, 'logs', 'lisod.log'));
  t.is(config.lockFile, path.join(dir, 'logs', 'lisod.lock'));
  t.is(config.tlsKey, path.join(dir, 'key.pem'));
  t.deepEqual(config.bind, ['::']);
  t.false(config.http2.enabled, 'the Liso form is the HTTP/1.1 drop-in: no ALPN h2 without a config file');
});

test('positional arguments override the config file; its other settings stay', (t) => {
  const dir = fixture();
  const confDir = path.join(dir, 'etc');
  fs.mkdirSync(confDir);
  fs.mkdirSync(path.join(confDir, 'www'));
  writeConf(confDir, `http_port = 1\nhttps_port = 2\nwww = "www"\ncgi = "none.cgi"\ntls_key = "nokey"\ntls_cert = "nocert"\n` +
    'bind = ["127.0.0.1"]\nmax_connections = 7\naccess_log = "-"\n');
  const cwd = dir; // positional paths resolve here, not in etc/
  const { config } = loadConfig({ configFile: 'etc/lisod.conf', liso: lisoArgs, bind: null, cwd, hostname: 'h' });
  t.is(config.configFile, path.join(confDir, 'lisod.conf'));
  t.is(config.httpPort, 9090);
  t.is(config.httpsPort, 9443);
  t.is(config.www, path.join(dir, 'www'));
  t.is(config.cgi!.script, path.join(dir, 'app.cgi'));
  t.is(config.tlsCert, path.join(dir, 'cert.pem'));
  t.is(config.accessLog, path.join(dir, 'logs', 'lisod.log'));
  t.deepEqual(config.bind, ['127.0.0.1']);
  t.is(config.maxConnections, 7);
  t.true(config.http2.enabled, 'with a config file the http2 default (on) holds');
  writeConf(confDir, 'http2 = false\n', 'off.conf');
  t.false(loadConfig({ configFile: 'etc/off.conf', liso: lisoArgs, bind: null, cwd, hostname: 'h' }).config.http2.enabled);
});

test('--bind overrides the file; a bad --bind names the option', (t) => {
  const dir = fixture();
  writeConf(dir, `${kBase}bind = ["::"]\n`);
  const { config } = loadConfig({ configFile: 'lisod.conf', liso: null, bind: ['127.0.0.1', '::1'], cwd: dir });
  t.deepEqual(config.bind, ['127.0.0.1', '::1']);
  const e = t.throws(() => loadConfig({ configFile: 'lisod.conf', liso: null, bind: ['nope'], cwd: dir }), { instanceOf: ConfigError });
  t.regex(e!.message, /^--bind: bind address 'nope' is not an IP address/);
});

test('file system checks: www, key and certificate, log directories', (t) => {
  const dir = fixture();
  const load = () => loadConfig({ configFile: 'lisod.conf', liso: null, bind: null, cwd: dir });

  writeConf(dir, kBase.replace('"www"', '"missing"'));
  t.is(t.throws(load)!.message,
    `lisod.conf:3: www '${path.join(dir, 'missing')}': no such file or directory (hint: the document root must be an existing, readable directory)`);

  writeConf(dir, kBase.replace('"www"', '"key.pem"'));
  t.is(t.throws(load)!.message, `lisod.conf:3: www '${path.join(dir, 'key.pem')}' is not a directory`);

  writeConf(dir, kBase.replace('"cert.pem"', '"nocert.pem"'));
  t.regex(t.throws(load)!.message, /^lisod\.conf:6: tls_cert '.*nocert\.pem': no such file or directory \(hint: npm start generates/);

  writeConf(dir, kBase.replace('"key.pem"', '"www"'));
  t.regex(t.throws(load)!.message, /^lisod\.conf:5: tls_key '.*www': not a regular file/);

  writeConf(dir, `${kBase}error_log = "nodir/error.log"\n`);
  t.regex(t.throws(load)!.message, /^lisod\.conf:7: error_log '.*nodir\/error\.log': directory '.*nodir': no such file or directory \(hint: create it first: mkdir -p /);

  writeConf(dir, `${kBase}error_log = "logs/e.log"\naccess_log = "logs/a.log"\nlock_file = "logs/l.lock"\n`);
  t.deepEqual(load().warnings, []);
});

test('a CGI script that is missing, not executable or not a file stops the start: one line naming it', (t) => {
  const dir = fixture();
  fs.writeFileSync(path.join(dir, 'plain.cgi'), 'x', { mode: 0o644 });
  fs.mkdirSync(path.join(dir, 'adir.cgi'));
  const load = (): ConfigError => t.throws(() => loadConfig({ configFile: 'lisod.conf', liso: null, bind: null, cwd: dir }), { instanceOf: ConfigError })!;
  const line = kBase.split('\n').findIndex((l) => l.includes('app.cgi')) + 1;

  writeConf(dir, kBase.replace('app.cgi', 'gone.cgi'));
  t.is(load().message, `lisod.conf:${line}: cgi script '${path.join(dir, 'gone.cgi')}': no such file or directory`);
  // Root may execute only what has an x bit, so this holds for root too.
  writeConf(dir, kBase.replace('app.cgi', 'plain.cgi'));
  t.is(load().message, `lisod.conf:${line}: cgi script '${path.join(dir, 'plain.cgi')}': not executable (hint: chmod +x ${path.join(dir, 'plain.cgi')})`);
  writeConf(dir, kBase.replace('app.cgi', 'adir.cgi'));
  t.is(load().message, `lisod.conf:${line}: cgi script '${path.join(dir, 'adir.cgi')}': not a regular file`);
});

test('an unreadable config file is one clear line', (t) => {
  const e = t.throws(() => loadConfig({ configFile: 'nope.conf', liso: null, bind: null, cwd: os.tmpdir() }), { instanceOf: ConfigError });
  t.is(e!.message, "cannot read config file 'nope.conf': no such file or directory");
});

test('tls_session_resumption: a boolean, default true, passed to the native TLS listener', (t) => {
  t.true(toServerConfig(finished(kBase)).tlsResumption);
  t.false(toServerConfig(finished(`${kBase}tls_session_resumption = false\n`)).tlsResumption);
  t.is(parseError('tls_session_resumption = "no"\n').message, 'x.conf:1: tls_session_resumption must be true or false, got "no"');
});

test('toServerConfig: one HTTP and one HTTPS listener per bind address', (t) => {
  const c = finished(`${kBase}bind = ["127.0.0.1", "::1"]\naccess_log = "a.log"\nmax_target_bytes = 4096\n`);
  const s = toServerConfig(c);
  t.deepEqual(s.listeners, [
    { host: '127.0.0.1', port: 8080, tls: false },
    { host: '127.0.0.1', port: 8443, tls: true },
    { host: '::1', port: 8080, tls: false },
    { host: '::1', port: 8443, tls: true },
  ]);
  t.is(s.root, '/srv/site/www');
  t.is(s.tlsKey, '/srv/site/key.pem');
  t.is(s.tlsCert, '/srv/site/cert.pem');
  t.is(s.cgiPrefix, '/cgi');
  t.is(s.maxTargetBytes, 4096);
  t.is(s.headerTimeoutMs, 10_000);
  t.true(s.accessLog);
});

test('toServerConfig: no HTTPS port, no TLS listener or key; access log off', (t) => {
  const c = finished('http_port = 0\nwww = "w"\ncgi = "x"\ntls_key = "ignored"\n');
  const s = toServerConfig(c);
  t.deepEqual(s.listeners, [{ host: '::', port: 0, tls: false }]);
  t.false('tlsKey' in s);
  t.false('tlsCert' in s);
  t.false(s.accessLog);
});

test('applyLiso on an empty draft marks argument origins for messages', (t) => {
  const d = applyLiso(kEmptyDraft, { ...lisoArgs, www: 'x' }, '/cwd');
  t.deepEqual(d.origins.www, { arg: '<www>' });
  t.is(d.values.www, '/cwd/x');
});

test('request buffering: [cgi] request_buffering, spool_dir and spool_max_bytes with defaults and file:line errors', (t) => {
  const d = finished(kBase);
  t.true(d.cgi!.requestBuffering);
  t.deepEqual(d.spool, { dir: os.tmpdir(), maxBytes: 1024 ** 3 });
  const text = `${kBase.replace('cgi = "app.cgi"\n', '')}spool_dir = "spool"\nspool_max_bytes = 5_000_000\n[cgi]\nscript = "app.cgi"\nrequest_buffering = false\n`;
  const c = finished(text);
  t.false(c.cgi!.requestBuffering);
  t.deepEqual(c.spool, { dir: '/srv/site/spool', maxBytes: 5_000_000 });
  t.regex(parseError('www = "w"\nspool_max_bytes = -1\n').message, /^x\.conf:2: spool_max_bytes must be an integer ≥ 0 \(bytes\), got -1/);
  t.regex(parseError('spool_dir = ""\n').message, /^x\.conf:1: spool_dir must not be empty/);
  t.regex(parseError('[cgi]\nrequest_buffering = "no"\n').message, /^x\.conf:2: cgi\.request_buffering must be true or false, got "no"/);
  t.true(finished(`${kBase.replace('cgi = "app.cgi"\n', '')}[cgi]\nscript = "app.cgi"\nend_after_response = true\n`).cgi!.endAfterResponse);
  t.regex(parseError('[cgi]\nend_after_response = 1\n').message, /^x\.conf:2: cgi\.end_after_response must be true or false, got 1/);
  t.regex(parseError('spool_max = 1\n').message, /^x\.conf:1: unknown key 'spool_max' \(hint: did you mean 'spool_(dir|max_bytes)'\?\)$/);
});

test('spool_dir must be a writable directory at start-up', (t) => {
  const dir = fixture();
  const file = writeConf(dir, `${kBase}error_log = "logs/e.log"\nspool_dir = "missing"\n`);
  const e = t.throws(() => loadConfig({ configFile: file, liso: null, bind: null, cwd: dir }), { instanceOf: ConfigError });
  t.regex(e!.message, /lisod\.conf:8: spool_dir '.*missing': no such directory \(hint: /);
});

test('--http-port / --https-port replace the file\'s ports; the Liso positional ports replace both', (t) => {
  const dir = fixture();
  writeConf(dir, kBase);
  const load = (extra: object) => loadConfig({ configFile: 'lisod.conf', liso: null, bind: null, cwd: dir, ...extra }).config;
  const c = load({ ports: { http: 9080, https: 9443 } });
  t.deepEqual([c.httpPort, c.httpsPort], [9080, 9443]);
  t.deepEqual([load({ ports: { http: 0 } }).httpPort, load({ ports: { http: 0 } }).httpsPort], [0, 8443]);
  const both = load({ ports: { http: 1, https: 2 }, liso: lisoArgs });
  t.deepEqual([both.httpPort, both.httpsPort], [9090, 9443]);
  // A clash the flags made is named after the flag, not the file.
  const e = t.throws(() => load({ ports: { https: 8080 } }), { instanceOf: ConfigError });
  t.is(e!.message, '--https-port: http_port and https_port are both 8080 (hint: give HTTPS its own port, e.g. 8443)');
  // --https-port without TLS material in the file says what is missing.
  writeConf(dir, 'http_port = 8080\nwww = "www"\ncgi = "app.cgi"\n');
  t.regex(t.throws(() => load({ ports: { https: 8443 } }))!.message, /missing required setting tls_key \(https_port is set\)/);
});
