// Flaskr and the WSGI→CGI bridge: the bridge and the app run directly as CGI scripts
// (environment in, parsed headers out), then Flaskr end to end through lisod (HTTP/HTTPS).
import test from 'ava';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { exchange1, get, sha256, type HttpResponse } from './helpers/client.js';
import { repoRoot, startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir, testTempDir } from './helpers/tmp.js';

const flaskrCgi = path.join(repoRoot, 'cgi-bin', 'flaskr.cgi');
const flaskrFcgi = path.join(repoRoot, 'cgi-bin', 'flaskr.fcgi');
const probeCgi = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.cgi');
const styleCss = path.join(repoRoot, 'cgi-bin', 'flaskr', 'static', 'style.css');

interface CgiResult {
  code: number | null;
  status: number;
  headers: Record<string, string>; // lower-cased; repeats joined with "\n"
  body: Buffer;
  raw: Buffer;
  stderr: string;
}

/** Runs a CGI script the way lisod does: environment in, stdin body, parsed headers out. */
function runCgi(script: string, env: Record<string, string>, input: Buffer = Buffer.alloc(0)): Promise<CgiResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, [], { env: { PATH: '/usr/bin:/bin', ...env }, cwd: path.dirname(script) });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    child.on('error', reject);
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    child.on('close', (code) => {
      const raw = Buffer.concat(out);
      const m = /\r?\n\r?\n/.exec(raw.toString('latin1'));
      const headText = m ? raw.subarray(0, m.index).toString('latin1') : raw.toString('latin1');
      const body = m ? raw.subarray(m.index + m[0].length) : Buffer.alloc(0);
      const headers: Record<string, string> = {};
      for (const line of headText.split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        headers[k] = k in headers ? `${headers[k]}\n${v}` : v;
      }
      const status = Number(/^(\d{3})/.exec(headers.status ?? '200')?.[1] ?? 0);
      resolve({ code, status, headers, body, raw, stderr });
    });
  });
}

function cgiEnv(method: string, pathInfo: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    GATEWAY_INTERFACE: 'CGI/1.1', SERVER_SOFTWARE: 'Liso/1.0', SERVER_PROTOCOL: 'HTTP/1.1',
    SERVER_NAME: 'localhost', SERVER_PORT: '8080', REMOTE_ADDR: '127.0.0.1', HTTP_HOST: 'localhost:8080',
    SCRIPT_NAME: '/cgi', REQUEST_METHOD: method, PATH_INFO: pathInfo, QUERY_STRING: '',
    REQUEST_URI: `/cgi${pathInfo}`, ...extra,
  };
}

// ---- The bridge (cgi-bin/wsgi_cgi.py) through a probe application ----

test('bridge: environ per PEP 3333, wsgi.input stops at CONTENT_LENGTH, url_scheme from HTTPS', async (t) => {
  const body = Buffer.from('0123456789abcdefghij-trailing-bytes-beyond-the-length');
  for (const https of [false, true]) {
    const r = await runCgi(probeCgi, cgiEnv('POST', '/environ', { CONTENT_LENGTH: '20', QUERY_STRING: 'q=1', ...(https ? { HTTPS: 'on' } : {}) }), body);
    t.is(r.status, 200);
    t.is(r.code, 0);
    const info = JSON.parse(r.body.toString()) as Record<string, unknown>;
    t.deepEqual(info, {
      url_scheme: https ? 'https' : 'http', version: [1, 0], multithread: false, multiprocess: true, run_once: true,
      script_name: '/cgi', path_info: '/environ', query: 'q=1', length: 20,
      sha256: sha256(body.subarray(0, 20)), after_end: '', native_strings: true,
    });
  }
});

test('bridge: binary body byte for byte; Status first; CRLF head', async (t) => {
  const r = await runCgi(probeCgi, cgiEnv('GET', '/binary'));
  const expected = Buffer.concat([Buffer.from(Array.from({ length: 1024 }, (_, i) => i & 0xff)), Buffer.from('\r\n\r\n\x00end', 'latin1')]);
  t.true(r.raw.toString('latin1').startsWith('Status: 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n'));
  t.is(sha256(r.body), sha256(expected));
});

test('bridge: exception before output → 500 page, traceback only on stderr', async (t) => {
  const r = await runCgi(probeCgi, cgiEnv('GET', '/raise'));
  t.is(r.status, 500);
  t.is(r.code, 0);
  t.regex(r.headers['content-type'] ?? '', /^text\/html/);
  t.is(Number(r.headers['content-length']), r.body.length);
  t.false(r.body.toString().includes('probe failure'));
  t.regex(r.stderr, /RuntimeError: probe failure before start_response/);
});

test('bridge: exception after the headers → partial output, non-zero exit', async (t) => {
  const r = await runCgi(probeCgi, cgiEnv('GET', '/raise-after'));
  t.is(r.status, 200);
  t.is(r.body.toString(), 'partial ');
  t.is(r.code, 1);
  t.regex(r.stderr, /probe failure after the headers/);
});

test('bridge: start_response with exc_info replaces unsent headers; write() callable; close()', async (t) => {
  const exc = await runCgi(probeCgi, cgiEnv('GET', '/exc-info'));
  t.is(exc.headers.status, '503 Service Unavailable');
  t.is(exc.body.toString(), 'recovered\n');
  const w = await runCgi(probeCgi, cgiEnv('GET', '/write'));
  t.is(w.headers.status, '201 Created');
  t.is(w.body.toString(), 'via write(); then iterable\n');
  const empty = await runCgi(probeCgi, cgiEnv('GET', '/empty'));
  t.is(empty.raw.toString(), 'Status: 404 Not Found\r\nX-Probe: empty\r\n\r\n');
  t.regex(empty.stderr, /close\(\) called/);
});

test('bridge: end_process closes the response pipe, then runs atexit handlers, keeps the exit status', async (t) => {
  const r = await runCgi(probeCgi, cgiEnv('GET', '/atexit'));
  t.is(r.status, 200);
  t.is(r.body.toString(), 'registered\n');
  t.is(r.code, 0);
  t.regex(r.stderr, /wsgi_probe: atexit ran, fd 1 -> \/dev\/null/);
  const failed = await runCgi(probeCgi, cgiEnv('GET', '/raise-after'));
  t.is(failed.code, 1); // the status of run_with_cgi survives the fast exit
});

test('bridge: header injection is refused with a 500', async (t) => {
  const r = await runCgi(probeCgi, cgiEnv('GET', '/bad-header'));
  t.is(r.status, 500);
  t.false('injected' in r.headers);
  t.regex(r.stderr, /control character in header 'X-Bad'/);
});

// ---- Flaskr run directly ----

function flaskrEnv(dir: string, method: string, pathInfo: string, extra: Record<string, string> = {}): Record<string, string> {
  return cgiEnv(method, pathInfo, {
    FLASKR_DATABASE: path.join(dir, 'flaskr.sqlite'),
    FLASKR_SECRET_FILE: path.join(dir, 'secret'),
    ...extra,
  });
}

function form(fields: Record<string, string>): { body: Buffer; env: Record<string, string> } {
  const body = Buffer.from(new URLSearchParams(fields).toString());
  return { body, env: { CONTENT_LENGTH: String(body.length), CONTENT_TYPE: 'application/x-www-form-urlencoded' } };
}

/** The `name=value` part of a Set-Cookie header (or several). */
function cookieOf(setCookie: string | undefined): string {
  if (!setCookie) throw new Error('no Set-Cookie');
  return setCookie.split(/\n|, (?=[^ ;]+=)/).map((c) => c.split(';')[0]!.trim()).join('; ');
}

async function directLogin(dir: string, extra: Record<string, string> = {}): Promise<string> {
  const f = form({ username: 'admin', password: 'default' });
  const r = await runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/login', { ...f.env, ...extra }), f.body);
  if (r.status !== 302) throw new Error(`login: ${r.status} ${r.body.toString()}`);
  return cookieOf(r.headers['set-cookie']);
}

test('flaskr: first request creates the database and a private secret key file', async (t) => {
  const dir = testTempDir(t, 'flaskr-direct-');
  const r = await runCgi(flaskrCgi, flaskrEnv(dir, 'GET', '/'));
  t.is(r.status, 200, r.stderr);
  t.regex(r.headers['content-type'] ?? '', /^text\/html; charset=utf-8/);
  const html = r.body.toString();
  t.regex(html, /No entries here so far/);
  t.regex(html, /<link rel="stylesheet" href="\/cgi\/static\/style.css">/);
  t.regex(html, /href="\/cgi\/login"/);
  t.true(fs.existsSync(path.join(dir, 'flaskr.sqlite')));
  const secret = fs.readFileSync(path.join(dir, 'secret'), 'utf8').trim();
  t.regex(secret, /^[0-9a-f]{64}$/);
  t.is(fs.statSync(path.join(dir, 'secret')).mode & 0o777, 0o600);
  // A second directory gets a different key: nothing constant in the repository.
  const other = testTempDir(t, 'flaskr-direct-');
  await runCgi(flaskrCgi, flaskrEnv(other, 'GET', '/'));
  t.not(fs.readFileSync(path.join(other, 'secret'), 'utf8').trim(), secret);
});

test('flaskr: add entry needs a login (401); wrong credentials are refused', async (t) => {
  const dir = testTempDir(t, 'flaskr-direct-');
  const f = form({ title: 'sneaky', text: 'x' });
  const r = await runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/add', f.env), f.body);
  t.is(r.status, 401);
  for (const [fields, message] of [
    [{ username: 'root', password: 'default' }, 'Invalid username'],
    [{ username: 'admin', password: 'wrong' }, 'Invalid password'],
  ] as const) {
    const l = form(fields);
    const res = await runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/login', l.env), l.body);
    t.is(res.status, 200);
    t.true(res.body.toString().includes(message));
    t.false(/session=/.test(res.headers['set-cookie'] ?? ''), 'no session for a failed login');
  }
  const page = await runCgi(flaskrCgi, flaskrEnv(dir, 'GET', '/'));
  t.false(page.body.toString().includes('sneaky'));
});

test('flaskr: credentials come from the environment when set', async (t) => {
  const dir = testTempDir(t, 'flaskr-direct-');
  const extra = { FLASKR_USERNAME: 'editor', FLASKR_PASSWORD: 's3cret pass' };
  const old = form({ username: 'admin', password: 'default' });
  const refused = await runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/login', { ...old.env, ...extra }), old.body);
  t.true(refused.body.toString().includes('Invalid username'));
  const good = form({ username: 'editor', password: 's3cret pass' });
  const ok = await runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/login', { ...good.env, ...extra }), good.body);
  t.is(ok.status, 302);
  t.is(ok.headers.location, '/cgi/');
});

test('flaskr: first requests arriving together in several processes all find the schema (WAL switch retried)', async (t) => {
  // Resident FastCGI processes meet a fresh database at the same moment; the WAL switch takes
  // an exclusive lock without a busy wait and failed ~5% of such meetings with "database is locked".
  const dir = testTempDir(t, 'flaskr-race-');
  const script = [
    'import multiprocessing, os, sys',
    `sys.path.insert(0, ${JSON.stringify(path.join(repoRoot, 'cgi-bin'))})`,
    'from flaskr import create_app',
    'from flaskr import db as database',
    'def first(path, barrier, q):',
    '    os.environ["FLASKR_DATABASE"] = path',
    '    os.environ["FLASKR_SECRET_KEY"] = "k"',
    '    app = create_app()',
    '    with app.app_context():',
    '        barrier.wait()',
    '        try:',
    '            database.get_db().execute("SELECT count(*) FROM entries").fetchone()',
    '            q.put("ok")',
    '        except Exception as e:',
    '            q.put(repr(e))',
    'if __name__ == "__main__":',
    '    bad = []',
    '    for i in range(20):',
    '        b, q = multiprocessing.Barrier(4), multiprocessing.Queue()',
    '        ps = [multiprocessing.Process(target=first, args=(sys.argv[1] + "/db%d.sqlite" % i, b, q)) for _ in range(4)]',
    '        [p.start() for p in ps]; [p.join() for p in ps]',
    '        bad += [r for r in (q.get() for _ in ps) if r != "ok"]',
    '    print(bad)',
  ].join('\n');
  const out = await new Promise<string>((resolve, reject) => {
    const p = spawn('/usr/bin/python3', ['-c', script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d: Buffer) => { text += d.toString(); });
    p.on('error', reject);
    p.on('close', () => resolve(text.trim()));
  });
  t.is(out, '[]');
});

test('flaskr: user HTML is escaped', async (t) => {
  const dir = testTempDir(t, 'flaskr-direct-');
  const cookie = await directLogin(dir);
  const f = form({ title: '<script>alert("t")</script>', text: '<img src=x onerror=alert(1)>\n& more' });
  const add = await runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/add', { ...f.env, HTTP_COOKIE: cookie }), f.body);
  t.is(add.status, 302, add.stderr);
  const html = (await runCgi(flaskrCgi, flaskrEnv(dir, 'GET', '/'))).body.toString();
  t.false(html.includes('<script>alert'));
  t.false(html.includes('<img src=x'));
  t.true(html.includes('&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;'));
  t.true(html.includes('&lt;img src=x onerror=alert(1)&gt;\n&amp; more'));
});

test('flaskr: concurrent writers all land (SQLite locking)', async (t) => {
  const dir = testTempDir(t, 'flaskr-direct-');
  const cookie = await directLogin(dir);
  const n = 8;
  const results = await Promise.all(Array.from({ length: n }, (_, i) => {
    const f = form({ title: `parallel entry ${i}`, text: `body ${i}` });
    return runCgi(flaskrCgi, flaskrEnv(dir, 'POST', '/add', { ...f.env, HTTP_COOKIE: cookie }), f.body);
  }));
  for (const r of results) t.is(r.status, 302, r.stderr);
  const html = (await runCgi(flaskrCgi, flaskrEnv(dir, 'GET', '/'))).body.toString();
  for (let i = 0; i < n; i++) t.true(html.includes(`parallel entry ${i}</h2>`), `entry ${i}`);
});

test('flaskr: missing Flask gives a clear page and log line, not a stack trace', async (t) => {
  const dir = testTempDir(t, 'flaskr-noflask-');
  // A `flask` package that fails like an absent one shadows Debian's for this run.
  fs.mkdirSync(path.join(dir, 'flask'));
  fs.writeFileSync(path.join(dir, 'flask', '__init__.py'),
    'raise ModuleNotFoundError("No module named \'flask\'", name="flask")\n');
  const r = await runCgi(flaskrCgi, flaskrEnv(dir, 'GET', '/', { PYTHONPATH: dir }));
  t.is(r.status, 500);
  t.is(r.code, 0);
  const html = r.body.toString();
  t.true(html.includes('python3-flask'));
  t.false(html.includes('Traceback'));
  t.regex(r.stderr, /flaskr: cannot import flask: install Flask .*python3-flask/);
});

// ---- Flaskr through lisod: as a CGI script, and as a FastCGI command (flaskr.fcgi) ----

type Via = 'cgi' | 'fastcgi';
const servers = new Map<Via, Promise<Lisod>>();
function flaskrServer(via: Via): Promise<Lisod> {
  let lisod = servers.get(via);
  if (!lisod) {
    const dir = tempDir('flaskr-e2e-');
    const env = { FLASKR_DATABASE: path.join(dir, 'flaskr.sqlite'), FLASKR_SECRET_FILE: path.join(dir, 'secret') };
    lisod = via === 'cgi'
      ? startLisod({ config: { cgi: { script: flaskrCgi, env } } })
      : startLisod({ omit: ['cgi'], config: { fastcgi: [{ path: '/cgi/', command: [flaskrFcgi], processes: 2, env }] } });
    servers.set(via, lisod);
  }
  return lisod;
}

test.after.always(async () => {
  for (const lisod of servers.values()) await (await lisod.catch(() => undefined))?.stop();
});

function request(method: string, target: string, opts: { cookie?: string; form?: Record<string, string> } = {}): Buffer {
  const body = opts.form ? Buffer.from(new URLSearchParams(opts.form).toString()) : undefined;
  let head = `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: flaskr-test\r\n`;
  if (opts.cookie) head += `Cookie: ${opts.cookie}\r\n`;
  if (body) head += `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\n`;
  return Buffer.concat([Buffer.from(head + '\r\n'), body ?? Buffer.alloc(0)]);
}

function setCookie(res: HttpResponse): string {
  return cookieOf(res.rawHeaders.filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => v).join('\n'));
}

for (const [via, tls] of [['cgi', false], ['cgi', true], ['fastcgi', false], ['fastcgi', true]] as const) {
  const scheme = tls ? 'https' : 'http';
  test(`${via} ${scheme}: Flaskr end to end — show, log in, add, see it again, log out`, async (t) => {
    const l = await flaskrServer(via);
    const opts = { port: tls ? l.httpsPort : l.httpPort, tls, timeoutMs: 20_000 };
    const send = (raw: Buffer | string): Promise<HttpResponse> => exchange1(raw, opts);

    const index = await send(get('/cgi/'));
    t.is(index.status, 200);
    t.regex(index.headers['content-type'] ?? '', /^text\/html/);
    t.regex(index.body.toString(), /<h1><a href="\/cgi\/">Flaskr<\/a><\/h1>/);
    t.false(index.body.toString().includes('<form action="/cgi/add"'));

    const css = await send(get('/cgi/static/style.css'));
    t.is(css.status, 200);
    t.regex(css.headers['content-type'] ?? '', /^text\/css/);
    t.is(sha256(css.body), sha256(fs.readFileSync(styleCss)));

    const loginPage = await send(get('/cgi/login'));
    t.is(loginPage.status, 200);
    t.regex(loginPage.body.toString(), /<form action="\/cgi\/login" method="post">/);

    const login = await send(request('POST', '/cgi/login', { form: { username: 'admin', password: 'default' } }));
    t.is(login.status, 302);
    t.is(login.headers.location, '/cgi/');
    const rawCookie = login.rawHeaders.find(([k]) => k.toLowerCase() === 'set-cookie')?.[1] ?? '';
    t.regex(rawCookie, /^session=[^;]+; .*HttpOnly/);
    t.is(/; Secure/.test(rawCookie), tls, 'Secure cookie exactly when the request came over TLS');
    let cookie = setCookie(login);

    const welcome = await send(get('/cgi/', `Cookie: ${cookie}\r\n`));
    t.regex(welcome.body.toString(), /You were logged in/);
    t.regex(welcome.body.toString(), /<form action="\/cgi\/add" method="post"/);
    if (welcome.rawHeaders.some(([k]) => k.toLowerCase() === 'set-cookie')) cookie = setCookie(welcome);

    const title = `entry over ${scheme} ${crypto.randomBytes(4).toString('hex')}`;
    const add = await send(request('POST', '/cgi/add', { cookie, form: { title, text: 'Hello from the test.\nSecond line.' } }));
    t.is(add.status, 302);
    t.is(add.headers.location, '/cgi/');
    cookie = setCookie(add);

    // A fresh request (new connection, new process) still shows it.
    const again = await send(get('/cgi/', `Cookie: ${cookie}\r\n`));
    const html = again.body.toString();
    t.true(html.includes(`<h2>${title}</h2>`));
    t.true(html.includes('Hello from the test.\nSecond line.'));
    t.regex(html, /New entry was successfully posted/);
    const anonymous = await send(get('/cgi/'));
    t.true(anonymous.body.toString().includes(`<h2>${title}</h2>`));

    const logout = await send(get('/cgi/logout', `Cookie: ${cookie}\r\n`));
    t.is(logout.status, 302);
    cookie = setCookie(logout);
    const after = await send(get('/cgi/', `Cookie: ${cookie}\r\n`));
    t.regex(after.body.toString(), /You were logged out/);
    t.regex(after.body.toString(), /href="\/cgi\/login"/);
    const refused = await send(request('POST', '/cgi/add', { cookie, form: { title: 'after logout', text: '' } }));
    t.is(refused.status, 401);
  });
}

for (const via of ['cgi', 'fastcgi'] as const) {
  test(`${via}: Flaskr HEAD and unknown path through lisod`, async (t) => {
    const l = await flaskrServer(via);
    const head = await exchange1(get('/cgi/', '', 'HEAD'), { port: l.httpPort, heads: [true], timeoutMs: 20_000 });
    t.is(head.status, 200);
    t.is(head.body.length, 0);
    const missing = await exchange1(get('/cgi/no/such/page'), { port: l.httpPort, timeoutMs: 20_000 });
    t.is(missing.status, 404);
  });
}
