// PHP through lisod's FastCGI client: Debian's php-fpm (started by the test on a temp socket,
// not the system service) and php-cgi as a supervised `command` (fd 0 socket, restarted after
// PHP_FCGI_MAX_REQUESTS). GET/POST (length and chunked), large output, redirects, status,
// HEAD, keep-alive, HTTPS=on, root/index/PATH_INFO rules, backend down → 502.
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { exchange, exchange1, get, sha256, slowGet } from './helpers/client.js';
import { startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';

const fpmBinary = '/usr/sbin/php-fpm8.2';
const phpCgi = '/usr/bin/php-cgi';
const havePhp = fs.existsSync(fpmBinary) && fs.existsSync(phpCgi);

const scripts: Record<string, string> = {
  'index.php': '<?php echo "index of ", $_SERVER["SCRIPT_NAME"], "\\n";',
  'env.php': '<?php header("Content-Type: application/json"); echo json_encode(["SCRIPT_NAME" => $_SERVER["SCRIPT_NAME"], ' +
    '"SCRIPT_FILENAME" => $_SERVER["SCRIPT_FILENAME"], "PATH_INFO" => $_SERVER["PATH_INFO"] ?? null, ' +
    '"QUERY_STRING" => $_SERVER["QUERY_STRING"], "HTTPS" => $_SERVER["HTTPS"] ?? null, "REQUEST_METHOD" => $_SERVER["REQUEST_METHOD"], ' +
    '"pid" => getmypid()]);',
  'post.php': '<?php $b = file_get_contents("php://input"); echo strlen($b), " ", hash("sha256", $b), " ", $_SERVER["CONTENT_LENGTH"] ?? "-";',
  'big.php': '<?php $n = (int)$_GET["n"]; header("Content-Type: application/octet-stream"); ' +
    'for ($i = 0; $i < $n; $i += 65536) { echo str_repeat(chr(($i >> 16) & 255), min(65536, $n - $i)); flush(); }',
  'redirect.php': '<?php header("Location: http://example.com/elsewhere", true, 302);',
  'teapot.php': '<?php http_response_code(418); echo "short and stout";',
  'echo.php': '<?php usleep(20000); echo $_SERVER["REQUEST_METHOD"], " ", $_SERVER["QUERY_STRING"];',
};

function bigBody(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 65536) b.fill((i >> 16) & 255, i, Math.min(n, i + 65536));
  return b;
}

interface Setup { lisod: Lisod; fpm: ChildProcess; root: string }
let setup: Promise<Setup> | undefined;

/** php-fpm on a temp socket, docroot with php/ and pcgi/, lisod with both mounts and a dead one. */
function phpServers(): Promise<Setup> {
  setup ??= (async () => {
    const base = tempDir('lisod-php-');
    const root = path.join(base, 'htdocs');
    for (const dir of ['php', 'pcgi', 'pipe']) {
      fs.mkdirSync(path.join(root, dir, 'sub'), { recursive: true });
      for (const [name, text] of Object.entries(scripts)) fs.writeFileSync(path.join(root, dir, name), text);
    }
    fs.writeFileSync(path.join(base, 'secret.php'), '<?php echo "outside root";');
    fs.symlinkSync(path.join(base, 'secret.php'), path.join(root, 'php', 'link.php'));
    const sock = path.join(base, 'fpm.sock');
    const conf = path.join(base, 'fpm.conf');
    fs.writeFileSync(conf, `[global]\ndaemonize = no\nerror_log = ${base}/fpm.log\npid = ${base}/fpm.pid\n` +
      `[www]\nlisten = ${sock}\npm = static\npm.max_children = 4\n`);
    const fpm = spawn(fpmBinary, ['-F', '-R', '-y', conf], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!fs.existsSync(sock)) {
      if (fpm.exitCode !== null || Date.now() > deadline) throw new Error(`php-fpm did not start: ${fs.readFileSync(`${base}/fpm.log`, 'utf8')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const lisod = await startLisod({
      config: {
        fastcgi: [
          { path: '/php/', socket: `unix:${sock}`, root, index: 'index.php' },
          { path: '/pipe/', socket: `unix:${sock}`, root, max_conns: 2 },
          { path: '/pcgi/', command: [phpCgi], root, index: 'index.php', processes: 2, env: { PHP_FCGI_MAX_REQUESTS: '3', PHP_FCGI_CHILDREN: '0' } },
          { path: '/down/', socket: `unix:${base}/nobody-listens.sock`, connect_timeout: 30 },
        ],
      },
    });
    return { lisod, fpm, root };
  })();
  return setup;
}

test.after.always(async () => {
  const s = await setup?.catch(() => undefined);
  if (!s) return;
  await s.lisod.stop();
  s.fpm.kill('SIGTERM');
});

const php = havePhp ? test : test.skip;

for (const mount of ['php', 'pcgi'] as const) {
  php(`${mount}: GET, index for "/", PATH_INFO and QUERY_STRING, keep-alive`, async (t) => {
    const { lisod, root } = await phpServers();
    const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
    const [index, env, again] = await exchange(get(`/${mount}/`) + get(`/${mount}/env.php/extra/path?x=1&y=%20`) + get(`/${mount}/`), { ...opts, count: 3 });
    t.is(index!.status, 200, index!.body.toString());
    t.is(index!.body.toString(), `index of /${mount}/index.php\n`);
    t.is(env!.status, 200);
    t.like(JSON.parse(env!.body.toString()), {
      SCRIPT_NAME: `/${mount}/env.php`, SCRIPT_FILENAME: path.join(root, mount, 'env.php'), PATH_INFO: '/extra/path',
      QUERY_STRING: 'x=1&y=%20', HTTPS: null, REQUEST_METHOD: 'GET',
    });
    t.is(again!.status, 200, 'the connection was kept');
  });

  php(`${mount}: POST with Content-Length and chunked; bodies arrive intact`, async (t) => {
    const { lisod } = await phpServers();
    const body = crypto.randomBytes(300_000);
    const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
    const length = await exchange1(Buffer.concat([Buffer.from(`POST /${mount}/post.php HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body]), opts);
    const log = (): string => fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8').split('\n').filter((l) => l.includes(`/${mount}/`)).join('\n');
    t.is(length.body.toString(), `${body.length} ${sha256(body)} ${body.length}`, log());
    const chunks = [body.subarray(0, 1000), body.subarray(1000, 200_000), body.subarray(200_000)];
    const chunked = Buffer.concat([Buffer.from(`POST /${mount}/post.php HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`),
      ...chunks.flatMap((c) => [Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
    const r = await exchange1(chunked, opts);
    t.is(r.body.toString(), `${body.length} ${sha256(body)} ${body.length}`, `chunked bodies get a CONTENT_LENGTH\n${log()}`);    // These bodies (over 64 KiB) went to the TypeScript runner; a plain GET to the native client.
    t.is((await exchange1(get(`/${mount}/env.php`), opts)).status, 200);
    t.regex(fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8'), new RegExp(`fastcgi /${mount}/: served by the native FastCGI client`));
  });

  // The end of it once arrived with END_REQUEST while the client read slowly and was lost
  // (fixed in Connection::flushOutput; test/app_tail.test.ts reproduces it deterministically).
  php(`${mount}: large output streamed`, async (t) => {
    const { lisod } = await phpServers();
    const opts = { port: lisod.httpPort, timeoutMs: 30_000 };
    const n = 5_000_000;
    const errors = (): string => fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8').split('\n').filter((l) => l.includes('big.php') || l.includes(`/${mount}/`)).join('\n');
    const big = await exchange1(get(`/${mount}/big.php?n=${n}`), opts).catch((e: Error) => {
      const fpmLog = fs.readdirSync('/tmp').filter((d) => d.startsWith('lisod-php-')).map((d) => {
        try { return fs.readFileSync(path.join('/tmp', d, 'fpm.log'), 'utf8'); } catch { return ''; }
      }).join('\n');
      throw new Error(`${e.message.slice(0, 200)}\nlisod error log:\n${errors()}\nphp-fpm log:\n${fpmLog}`);
    });
    t.is(big.status, 200);
    t.is(big.body.length, n);
    t.is(sha256(big.body), sha256(bigBody(n)));
    // A client that reads nothing for a while, then slowly: PHP is paused and resumed to the end.
    const slow = await slowGet(lisod.httpPort, `/${mount}/big.php?n=${n}`, 300, 1);
    t.is(slow.res?.body.length, n, `cut short after ${slow.raw.length} bytes\n${errors()}`);
    t.is(sha256(slow.res?.body ?? ''), sha256(bigBody(n)));
  });

  php(`${mount}: redirects, status codes, HEAD, HTTPS=on`, async (t) => {
    const { lisod } = await phpServers();
    const opts = { port: lisod.httpPort, timeoutMs: 30_000 };
    const redirect = await exchange1(get(`/${mount}/redirect.php`), opts);
    t.is(redirect.status, 302);
    t.is(redirect.headers.location, 'http://example.com/elsewhere');
    const teapot = await exchange1(get(`/${mount}/teapot.php`), opts);
    t.is(teapot.status, 418);
    t.is(teapot.body.toString(), 'short and stout');
    const head = await exchange1(get(`/${mount}/teapot.php`, '', 'HEAD'), { ...opts, heads: [true] });
    t.is(head.status, 418);
    t.is(head.body.length, 0);
    const tls = await exchange1(get(`/${mount}/env.php`), { port: lisod.httpsPort, tls: true, timeoutMs: 20_000 });
    t.is(JSON.parse(tls.body.toString()).HTTPS, 'on');
  });
}

php('root: never a directory, never outside root, no such script → 404; ".." is refused', async (t) => {
  const { lisod } = await phpServers();
  const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
  for (const target of ['/php/nope.php', '/php/sub/', '/php/sub', '/php/link.php', '/php/sub/x.php', '/php/../secret.php', '/php/%2e%2e/secret.php']) {
    const r = await exchange1(get(target), opts);
    t.is(r.status, 404, target);
    t.false(r.body.toString().includes('outside root'), target);
  }
  // The cgi.fix_pathinfo hole: an uploaded "image" is not run as the script of a longer path.
  const r = await exchange1(get('/php/sub/photo.jpg/evil.php'), opts);
  t.is(r.status, 404);
});

php('php-cgi as a command keeps serving across PHP_FCGI_MAX_REQUESTS exits (a normal end, not a crash)', async (t) => {
  const { lisod } = await phpServers();
  const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
  const pids = new Set<number>();
  for (let i = 0; i < 12; i++) {
    const r = await exchange1(get('/pcgi/env.php'), opts);
    t.is(r.status, 200, `request ${i}: ${r.body.toString()}`);
    pids.add(JSON.parse(r.body.toString()).pid);
  }
  t.true(pids.size >= 3, `served by ${pids.size} processes`);
  const log = fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8');
  t.regex(log, /fastcgi \/pcgi\/\[\d+\]: exited after \d+ ms; starting a new one/);
  t.notRegex(log, /pcgi.*(restarting in|crash loop)/);
});

php('more requests than connections: GETs sent behind busy ones (pipeline) each get their own answer, php-fpm and php-cgi', async (t) => {
  const { lisod } = await phpServers();
  const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
  // /pipe/ has 2 connections to php-fpm; /pcgi/ 2 php-cgi processes that exit after every
  // third request, often with one sent behind still unread (sent again on a new connection).
  for (const mount of ['pipe', 'pcgi']) {
    const res = await Promise.all(Array.from({ length: 16 }, (_, i) =>
      exchange1(get(`/${mount}/echo.php?n=${i}`, '', i % 4 === 3 ? 'HEAD' : 'GET'), { ...opts, heads: [i % 4 === 3] })));
    res.forEach((r, i) => {
      t.is(r.status, 200, `${mount} ${i}: ${r.body.toString()}`);
      if (i % 4 !== 3) t.is(r.body.toString(), `GET n=${i}`);
    });
  }
  const log = fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8');
  t.notRegex(log, /CANT_MPX_CONN|sent behind this one/);
});

php('backend not listening → 502 at once (not after connect_timeout); lisod keeps serving', async (t) => {
  const { lisod } = await phpServers();
  const opts = { port: lisod.httpPort, timeoutMs: 20_000 };
  const [down, ok] = await exchange(get('/down/x') + get('/php/'), { ...opts, count: 2 });
  t.is(down!.status, 502);
  t.regex(down!.headers['content-type'] ?? '', /^text\/html/);
  t.is(ok!.status, 200);
  const log = fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8');
  t.regex(log, /fastcgi GET \/down\/x: 502 \/down\/#\d+: cannot connect to the backend: ENOENT/);
});
