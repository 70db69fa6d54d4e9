// [[fastcgi]] mounts in the config file: keys and defaults, path prefixes, socket xor command,
// file:line errors for each mount, /cgi/ served by a mount, the Liso cgi argument, paths on disk.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { ConfigError, appPrefixes, applyLiso, finishConfig, loadConfig, parseConfigText, toServerConfig } from '../src/config.js';
import { restartOnlyChanges } from '../src/main.js';
import { tempDir } from './helpers/tmp.js';

const kBase = 'http_port = 8080\nwww = "www"\n';

function finished(text: string, cpus = 4) {
  return finishConfig(parseConfigText(text, 'lisod.conf', '/srv/site/lisod.conf'), 'h', cpus);
}

function error(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const parseError = (text: string): string => error(() => parseConfigText(text, 'x.conf', '/etc/lisod/x.conf'));

test('a php-fpm socket mount and a command mount: keys, defaults, resolved paths', (t) => {
  const c = finished(`${kBase}cgi = "app.cgi"
[[fastcgi]]
path = "/php/"
socket = "unix:/run/php/php8.2-fpm.sock"
root = "htdocs"
index = "index.php"

[[fastcgi]]
path = "/app"
command = ["bin/app.fcgi", "--flag"]
processes = 3
timeout = 2.5
connect_timeout = 1
max_queue = 5
request_buffering = false
pipeline = false
pass_env = ["LANG"]
env = { MODE = "x" }
env_paths = { DB = "var/db.sqlite" }
`);
  t.is(c.fastcgi.length, 2);
  t.like(c.fastcgi[0], {
    prefix: '/php', socket: 'unix:/run/php/php8.2-fpm.sock', command: null, root: '/srv/site/htdocs', index: 'index.php',
    processes: 0, timeoutMs: 30_000, maxQueue: 64, connectTimeoutMs: 5000, maxConns: 16, requestBuffering: true, pipeline: true,
  });
  t.like(c.fastcgi[1], {
    prefix: '/app', socket: null, command: ['/srv/site/bin/app.fcgi', '--flag'], processes: 3, maxConns: 3,
    timeoutMs: 2500, connectTimeoutMs: 1000, maxQueue: 5, requestBuffering: false, pipeline: false, passEnv: ['LANG'],
    env: { MODE: 'x', DB: '/srv/site/var/db.sqlite' },
  });
  t.deepEqual(c.fastcgi[1]!.origin, { file: 'lisod.conf', line: 10 });
  t.deepEqual(appPrefixes(c), ['/cgi', '/php', '/app']);
  t.deepEqual(toServerConfig(c).appPrefixes, ['/cgi', '/php', '/app']);
});

test('processes defaults to the CPU count, max_conns to processes', (t) => {
  const c = finished(`${kBase}[[fastcgi]]\npath = "/cgi/"\ncommand = ["a.fcgi"]\n`, 6);
  t.like(c.fastcgi[0], { processes: 6, maxConns: 6 });
  t.is(c.cgi, null, '[cgi] is optional when a mount serves /cgi/');
  t.deepEqual(appPrefixes(c), ['/cgi']);
});

test('errors name the file, the line of the key or of the mount, and what to write', (t) => {
  t.is(parseError('[[fastcgi]]\npath = "/a/"\nsocket = "unix:/s"\n\n[[fastcgi]]\npath = "/b/"\nsoket = "x"\n'),
    "x.conf:7: unknown key 'soket' in [[fastcgi]] (hint: did you mean 'socket'?)");
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\n'), /^x\.conf:1: \[\[fastcgi\]\] \/a\/ needs exactly one of socket .* and command/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\nsocket = "unix:/s"\ncommand = ["x"]\n'), /^x\.conf:1: .*needs exactly one of/);
  t.regex(parseError('[[fastcgi]]\nsocket = "unix:/s"\n'), /^x\.conf:1: \[\[fastcgi\]\] mount without a path/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\nsocket = "localhost"\n'), /^x\.conf:3: fastcgi socket "localhost" is not "unix:/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\nsocket = "unix:rel.sock"\n'), /^x\.conf:3: .*must be absolute/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\nsocket = "unix:/s"\nprocesses = 2\n'), /^x\.conf:4: processes applies to command mounts/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\ncommand = []\n'), /^x\.conf:3: fastcgi command must name a program/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\ncommand = ["x"]\nindex = "index.php"\n'), /^x\.conf:4: index needs root/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\ncommand = ["x"]\nmax_conns = 0\n'), /^x\.conf:4: fastcgi\.0\.max_conns must be an integer ≥ 1/);
  t.regex(parseError('[[fastcgi]]\npath = "/a/"\ncommand = ["x"]\npipeline = "no"\n'), /^x\.conf:4: fastcgi\.0\.pipeline must be true or false, got "no"/);
  t.regex(parseError('fastcgi = "x"\n'), /^x\.conf:1: fastcgi must be an array of tables/);
  for (const bad of ['"/"', '"php"', '"/a/../b"', '"/a?x"', '"/a%20b"', '"/a//b"', '5']) {
    t.regex(parseError(`[[fastcgi]]\npath = ${bad}\ncommand = ["x"]\n`), /^x\.conf:2: fastcgi(\.0\.path must be a string|.*path must be an absolute URL path prefix)/, bad);
  }
});

test('two mounts for one prefix are an error at the second one', (t) => {
  t.is(parseError('[[fastcgi]]\npath = "/a/"\nsocket = "unix:/s"\n[[fastcgi]]\npath = "/a"\ncommand = ["x"]\n'),
    'x.conf:5: two [[fastcgi]] mounts for /a/ (hint: each prefix is served by one mount)');
  t.regex(error(() => finished(`${kBase}cgi = "x.cgi"\n[[fastcgi]]\npath = "/cgi/"\ncommand = ["a"]\n`)),
    /^lisod\.conf:4: two mounts for \/cgi\/: the cgi script and a \[\[fastcgi\]\] mount/);
  t.regex(error(() => finished(kBase)), /missing required setting cgi .*\[\[fastcgi\]\] mount with path = "\/cgi\/"/);
});

test('the Liso cgi argument replaces the mount that serves /cgi/, other mounts stay', (t) => {
  const draft = parseConfigText(`${kBase}[[fastcgi]]\npath = "/cgi/"\ncommand = ["a.fcgi"]\n[[fastcgi]]\npath = "/php/"\nsocket = "127.0.0.1:9000"\n`,
    'lisod.conf', '/srv/site/lisod.conf');
  const liso = { httpPort: 80, httpsPort: 443, log: 'l', lock: 'k', www: 'w', cgi: 'flaskr.cgi', key: 'k.pem', cert: 'c.pem' };
  const c = finishConfig(applyLiso(draft, liso, '/home/u'), 'h');
  t.is(c.cgi?.script, '/home/u/flaskr.cgi');
  t.deepEqual(c.fastcgi.map((m) => m.prefix), ['/php']);
  t.deepEqual(appPrefixes(c), ['/cgi', '/php']);
});

test('on disk: the command must be executable and root a directory (file:line of the mount)', (t) => {
  const dir = tempDir('lisod-fcgi-conf-');
  fs.mkdirSync(path.join(dir, 'www'));
  fs.writeFileSync(path.join(dir, 'app.fcgi'), '#!/bin/sh\n', { mode: 0o644 });
  const write = (text: string): string => {
    const f = path.join(dir, 'lisod.conf');
    fs.writeFileSync(f, text);
    return f;
  };
  const load = (text: string) => loadConfig({ configFile: write(text), liso: null, bind: null, cwd: dir });
  const mount = `${kBase}\n[[fastcgi]]\npath = "/cgi/"\ncommand = ["app.fcgi"]\n`;
  t.regex(error(() => load(mount)), /lisod\.conf:4: fastcgi command '.*app\.fcgi' of \/cgi\/: not executable \(hint: chmod \+x/);
  fs.chmodSync(path.join(dir, 'app.fcgi'), 0o755);
  t.is(load(mount).config.fastcgi[0]!.processes >= 1, true);
  t.regex(error(() => load(`${mount}root = "nowhere"\n`)), /lisod\.conf:4: fastcgi root '.*nowhere' of \/cgi\/ is not a directory/);
  t.regex(error(() => load(`${kBase}\n[[fastcgi]]\npath = "/cgi/"\ncommand = ["missing.fcgi"]\n`)), /: no such file/);
});

test('reload: a changed [[fastcgi]] mount needs a restart; a moved line does not', (t) => {
  const a = finished(`${kBase}[[fastcgi]]\npath = "/cgi/"\ncommand = ["a.fcgi"]\n`);
  const moved = finished(`${kBase}\n\n[[fastcgi]]\npath = "/cgi/"\ncommand = ["a.fcgi"]\n`);
  const changed = finished(`${kBase}[[fastcgi]]\npath = "/cgi/"\ncommand = ["a.fcgi"]\nprocesses = 1\n`);
  t.deepEqual(restartOnlyChanges(a, moved), []);
  t.deepEqual(restartOnlyChanges(a, changed), ['[[fastcgi]]']);
});
