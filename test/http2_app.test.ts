// Applications over HTTP/2 (CGI and FastCGI through the same runner as HTTP/1.1): the
// environment (SERVER_PROTOCOL, :authority, cookie crumbs, HTTPS), bodies of several MiB
// both ways under flow control, uploads with and without content-length, NPH heads turned
// into :status, local redirects, a client that never opens its window (the script is held
// back, other streams go on), resets mid-upload and mid-download (the script is killed, fds
// back), a body cut short (RST_STREAM), 413 and 408 per stream, more streams than max_processes (queue, then 503 per stream), Flaskr over
// flaskr.fcgi, and the access log. Real lisod, real TLS (test CA), curl, Node and python3-h2.
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';
import readline from 'node:readline';
import { promisify } from 'node:util';
import { repoRoot, type Lisod } from './helpers/lisod.js';
import { h2Connect, h2Request, type H2Reply } from './helpers/h2client.js';
import { getPki, type Pki } from './helpers/pki.js';
import { tempDir } from './helpers/tmp.js';
import { useLisod } from './helpers/use_lisod.js';
import { waitFor } from './helpers/daemon.js';

const run = promisify(execFile);
const script = path.join(repoRoot, 'test', 'cgi-scripts', 'h2_app.cgi');
const probeFcgi = path.join(repoRoot, 'test', 'cgi-scripts', 'wsgi_probe.fcgi');
const flaskrFcgi = path.join(repoRoot, 'cgi-bin', 'flaskr.fcgi');
let pki: Pki;
test.before(async () => {
  pki = await getPki();
});

const flaskrDir = tempDir('h2-flaskr-');
const site = useLisod(test, {
  servers: {
    cgi: { config: { http2: true, cgi: { script } } },
    queue: { config: { http2: true, cgi: { script, max_processes: 2, max_queue: 3 } } },
    small: { config: { http2: true, max_body_bytes: 1 << 20, cgi: { script } } },
    impatient: { config: { http2: true, body_timeout: 1, cgi: { script } } },
    stream: { config: { http2: true, cgi: { script, request_buffering: false } } },
    fcgi: {
      omit: ['cgi'],
      config: {
        http2: true,
        fastcgi: [
          { path: '/cgi/', command: [flaskrFcgi], processes: 1, env: { FLASKR_DATABASE: path.join(flaskrDir, 'f.sqlite'), FLASKR_SECRET_FILE: path.join(flaskrDir, 'secret') } },
          { path: '/app/', command: [probeFcgi], processes: 2 },
        ],
      },
    },
  },
});

const sha = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');

type Reply = H2Reply;

function connect(port: number): http2.ClientHttp2Session {
  const s = h2Connect(port, pki.ca);
  s.on('error', () => {});
  return s;
}

const request = h2Request;

const envOf = (r: Reply): { env: Record<string, string>; body_sha256: string; body_length: number } => JSON.parse(r.body.toString());
const pattern = (mib: number): Buffer => Buffer.concat(Array.from({ length: mib }, () => Buffer.from(Array.from({ length: 256 * 4096 }, (_, i) => i & 0xff))));
// Pipes, sockets and pidfds: what a request can leave open. (One /dev/null fd appears in
// lisod once after the first reset upload; cause not traced, it never became two.)
const fdCount = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).filter((fd) => {
  try { return /^(pipe|socket|anon_inode:\[pidfd\])/.test(fs.readlinkSync(`/proc/${pid}/fd/${fd}`)); } catch { return false; }
}).length;
const fdList = (pid: number): string => fs.readdirSync(`/proc/${pid}/fd`).map((fd) => {
  try { return `${fd}→${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`; } catch { return fd; }
}).join(' ');
function children(pid: number): number[] {
  const ids: number[] = [];
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) ids.push(...text.split(/\s+/).map(Number));
  }
  return ids;
}
const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
  await waitFor(ok, ms, what); // test/helpers/daemon.ts
};

test('curl --http2: the CGI environment says HTTP/2.0, Host from :authority, HTTPS=on; the access log says HTTP/2.0', async (t) => {
  const l = site.cgi;
  const { stdout } = await run('curl', ['-sS', '--http2', '--cacert', pki.caCert, '-H', 'Cookie: a=1', '-H', 'Cookie: b=2',
    '-w', '\n%{http_version} %{http_code}', '--resolve', `localhost:${l.httpsPort}:127.0.0.1`,
    `https://localhost:${l.httpsPort}/cgi/env/x?q=1`]);
  const [json, tail] = [stdout.slice(0, stdout.lastIndexOf('\n')), stdout.slice(stdout.lastIndexOf('\n') + 1)];
  t.is(tail, '2 200');
  const { env } = JSON.parse(json) as { env: Record<string, string> };
  t.is(env.SERVER_PROTOCOL, 'HTTP/2.0');
  t.is(env.HTTP_HOST, `localhost:${l.httpsPort}`);
  t.is(env.SERVER_NAME, 'localhost');
  t.is(env.HTTPS, 'on');
  t.is(env.HTTP_COOKIE, 'a=1; b=2');
  t.is(env.PATH_INFO, '/env/x');
  t.is(env.QUERY_STRING, 'q=1');
  t.is(env.REQUEST_METHOD, 'GET');
  t.is(env.SSL_PROTOCOL, 'TLSv1.3');
  await until('the access line', () => /"GET \/cgi\/env\/x\?q=1 HTTP\/2\.0" 200 \d+/.test(
    fs.readFileSync(path.join(l.dirs.logs, 'access.log'), 'utf8')));
  t.pass();
});

test('Node h2 client: cookie crumbs joined with "; ", :authority → HTTP_HOST and SERVER_NAME', async (t) => {
  const s = connect(site.cgi.httpsPort);
  try {
    const r = await request(s, { ':path': '/cgi/env', ':authority': 'h2.example:8443', cookie: ['x=1', 'y=2', 'z=3'] });
    t.is(r.status, 200);
    const { env } = envOf(r);
    t.is(env.HTTP_COOKIE, 'x=1; y=2; z=3');
    t.is(env.HTTP_HOST, 'h2.example:8443');
    t.is(env.SERVER_NAME, 'h2.example');
  } finally {
    s.close();
  }
});

for (const server of ['cgi', 'stream'] as const) {
  test(`${server}: POST 3 MiB echoed back (3 MiB down), with content-length and without`, async (t) => {
    const body = crypto.randomBytes(3 << 20);
    const s = connect(site[server].httpsPort);
    try {
      const withLength = await request(s, { ':method': 'POST', ':path': '/cgi/echo', 'content-length': String(body.length) }, body);
      t.is(withLength.status, 200);
      t.is(withLength.headers['content-length'], String(body.length));
      t.is(sha(withLength.body), sha(body));
      // No content-length: the runner buffers the body, then CONTENT_LENGTH is its size.
      const parts = Array.from({ length: 48 }, (_, i) => body.subarray(i << 16, (i + 1) << 16));
      const without = await request(s, { ':method': 'POST', ':path': '/cgi/env' }, parts);
      t.is(without.status, 200);
      const info = envOf(without);
      t.is(info.body_length, body.length);
      t.is(info.body_sha256, sha(body));
      t.is(info.env.CONTENT_LENGTH, String(body.length));
    } finally {
      s.close();
    }
  });
}

test('response heads: names lower-cased, connection-specific fields dropped, HEAD has no body', async (t) => {
  const s = connect(site.cgi.httpsPort);
  try {
    const big = await request(s, { ':path': '/cgi/big?mib=2' });
    t.is(big.status, 200);
    t.is(big.headers['x-upper'], 'Yes');
    t.is(big.headers.connection, undefined);
    t.is(big.headers['transfer-encoding'], undefined);
    t.is(sha(big.body), sha(pattern(2)));
    const head = await request(s, { ':method': 'HEAD', ':path': '/cgi/env' });
    t.is(head.status, 200);
    t.is(head.body.length, 0);
    t.regex(String(head.headers['content-length']), /^\d+$/);
  } finally {
    s.close();
  }
});

test('NPH over h2: the status line becomes :status, Connection and Server dropped, chunked undone', async (t) => {
  const s = connect(site.cgi.httpsPort);
  try {
    const nph = await request(s, { ':path': '/cgi/nph' });
    t.is(nph.status, 299);
    t.is(nph.headers['x-nph'], 'yes');
    t.is(nph.headers.connection, undefined);
    t.is(nph.headers.server, 'Liso/1.0');
    t.is(nph.body.toString(), 'nph over h2');
    const chunked = await request(s, { ':path': '/cgi/nph-chunked' });
    t.is(chunked.status, 200);
    t.is(chunked.headers['transfer-encoding'], undefined);
    t.is(chunked.body.toString(), 'hello world');
  } finally {
    s.close();
  }
});

test('local redirect over h2 is followed inside the server; PUT reaches the script', async (t) => {
  const s = connect(site.cgi.httpsPort);
  try {
    const local = await request(s, { ':method': 'POST', ':path': '/cgi/local' }, Buffer.from('ignored'));
    t.is(local.status, 200);
    const { env } = envOf(local);
    t.is(env.REQUEST_METHOD, 'GET');
    t.is(env.QUERY_STRING, 'from=local');
    t.is(env.SERVER_PROTOCOL, 'HTTP/2.0');
    const put = await request(s, { ':method': 'PUT', ':path': '/cgi/env' }, Buffer.from('x'));
    t.is(put.status, 200, 'an application takes any method, as over HTTP/1.1');
    t.is(envOf(put).env.REQUEST_METHOD, 'PUT');
    const after = await request(s, { ':path': '/cgi/env' });
    t.is(after.status, 200, 'the connection serves on');
  } finally {
    s.close();
  }
});

test('more streams than max_processes + max_queue on one connection: 2 run, 3 wait, the rest get 503', async (t) => {
  const s = connect(site.queue.httpsPort);
  try {
    const replies = await Promise.all(Array.from({ length: 10 }, () => request(s, { ':path': '/cgi/sleep?s=1' })));
    const ok = replies.filter((r) => r.status === 200);
    const busy = replies.filter((r) => r.status === 503);
    t.is(ok.length, 5);
    t.is(busy.length, 5);
    for (const r of ok) t.is(r.body.toString(), 'slept\n');
    for (const r of busy) t.is(r.headers['retry-after'], '1');
    t.is((await request(s, { ':path': '/cgi/env' })).status, 200, 'the connection serves on');
  } finally {
    s.close();
  }
});

test('a body cut short resets that stream only; bodies over max_body_bytes get 413 per stream', async (t) => {
  const s = connect(site.small.httpsPort);
  try {
    const short = await request(s, { ':path': '/cgi/short' }).then(() => null, (e: Error & { code?: string }) => e);
    t.truthy(short, 'the stream must not end as if complete');
    t.regex(String(short?.message), /INTERNAL_ERROR|code 2/);
    const big = crypto.randomBytes((1 << 20) + 1);
    const declared = await request(s, { ':method': 'POST', ':path': '/cgi/env', 'content-length': String(big.length) }, big);
    t.is(declared.status, 413);
    const parts = Array.from({ length: 17 }, (_, i) => big.subarray(i << 16, (i + 1) << 16));
    const streamed = await request(s, { ':method': 'POST', ':path': '/cgi/env' }, parts).catch((e: Error) => e);
    t.true(streamed instanceof Error || streamed.status === 413, String(streamed instanceof Error ? streamed.message : streamed.status));
    t.is((await request(s, { ':path': '/cgi/env' })).status, 200, 'the connection serves on');
  } finally {
    s.close();
  }
});

test('an upload that stops mid-body gets 408 on its stream after body_timeout; other streams go on', async (t) => {
  const s = connect(site.impatient.httpsPort);
  try {
    const reply = new Promise<Reply>((resolve, reject) => {
      const req = s.request({ ':method': 'POST', ':path': '/cgi/env', 'content-length': '1000' });
      const chunks: Buffer[] = [];
      let got: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => { got = h; });
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status: Number(got[':status']), headers: got, body: Buffer.concat(chunks) }));
      req.on('error', (e) => (got[':status'] ? resolve({ status: Number(got[':status']), headers: got, body: Buffer.concat(chunks) }) : reject(e)));
      req.write(Buffer.alloc(100, 1)); // and never the rest
    });
    t.is((await request(s, { ':path': '/cgi/env' })).status, 200, 'another stream is served meanwhile');
    const r = await reply;
    t.is(r.status, 408);
  } finally {
    s.close();
  }
});

/** Runs test/h2/app_frames.py; at its checkpoint calls `check`, then lets it finish. */
async function frames(l: Lisod, scenario: string, args: string[], check: (at: FrameResult) => Promise<void>): Promise<FrameResult> {
  const py = spawn('/usr/bin/python3', [path.join(repoRoot, 'test', 'h2', 'app_frames.py'), String(l.httpsPort), pki.caCert, scenario, ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] });
  const timer = setTimeout(() => py.kill('SIGKILL'), 60_000);
  try {
    const lines = readline.createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error('app_frames.py ended before its checkpoint');
    await check(JSON.parse(first.value) as FrameResult);
    py.stdin!.write('go\n');
    const last = await lines.next();
    if (last.done) throw new Error('app_frames.py ended without its result');
    return JSON.parse(last.value) as FrameResult;
  } finally {
    clearTimeout(timer);
    py.kill();
  }
}

interface FrameResult {
  status: Record<string, number>;
  data: Record<string, number>;
  rst: Record<string, number>;
  goaway: number | null;
  closed: boolean;
  ended: number[];
}

test.serial('a client that never opens a stream window: the script is held back, other streams go on; its reset kills the script', async (t) => {
  const l = site.stream;
  const marker = path.join(l.dirs.base, 'stalled.done');
  const fdsBefore = fdCount(l.pid);
  const end = await frames(l, 'stall_reset', [marker], async (at) => {
    t.is(at.status['1'], 200, 'the stalled stream has its head');
    t.is(at.data['1'] ?? 0, 0, 'and no byte of its body');
    t.is(at.status['3'], 200, 'the other stream was answered meanwhile');
    t.true(at.ended.includes(3));
    t.false(fs.existsSync(marker), 'the script is backpressured: it has not written 16 MiB');
    t.is(children(l.pid).length, 1, 'the stalled script still runs');
  });
  t.is(end.status['5'], 200, 'a new stream after the reset is answered');
  t.true(end.ended.includes(5));
  t.is(end.goaway, null);
  await until('the script to be killed', () => children(l.pid).length === 0);
  t.false(fs.existsSync(marker));
  await until('fds back to the baseline', () => fdCount(l.pid) <= fdsBefore);
});

test.serial('a client that resets a stream mid-upload: the script is killed, the connection serves on, fds back', async (t) => {
  const l = site.stream; // request_buffering = false: the script runs while the body comes
  const fdsBefore = fdCount(l.pid);
  const listBefore = fdList(l.pid);
  const end = await frames(l, 'upload_reset', [], async (at) => {
    t.deepEqual(at.rst, {});
    await until('the script to start', () => children(l.pid).length === 1);
  });
  t.is(end.status['3'], 200);
  t.true(end.ended.includes(3));
  t.is(end.goaway, null);
  await until('the script to be killed', () => children(l.pid).length === 0);
  await until('fds back to the baseline', () => fdCount(l.pid) <= fdsBefore).catch((e: Error) => {
    throw new Error(`${e.message}: before ${listBefore}; now ${fdList(l.pid)}`);
  });
  t.pass();
});

test('a client that resets mid-download over FastCGI: the backend connection is closed, others go on', async (t) => {
  const l = site.fcgi;
  const s = connect(l.httpsPort);
  try {
    const req = s.request({ ':path': '/app/big?50000000' });
    let got = 0;
    await new Promise<void>((resolve) => {
      req.on('data', (c: Buffer) => {
        got += c.length;
        if (got > 1 << 20) {
          req.close(http2.constants.NGHTTP2_CANCEL);
          resolve();
        }
      });
    });
    const r = await request(s, { ':path': '/app/env' });
    t.is(r.status, 200);
    t.regex(r.body.toString(), /^SERVER_PROTOCOL=HTTP\/2\.0$/m);
    t.regex(r.body.toString(), /^HTTPS=on$/m);
    // The proof that lisod closed that backend connection: the probe process writing the
    // 50 MB would otherwise stay blocked in its send forever (its reader is gone). Linux
    // shows a blocked process's system call in /proc/PID/syscall; both processes must come
    // to wait for input (x86-64: 0 read, 7 poll, 43 accept, 45 recvfrom, 47 recvmsg,
    // 288 accept4) and stay there for three looks in a row.
    const probes = children(l.pid).filter((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('wsgi_probe.fcgi'));
    t.is(probes.length, 2);
    const syscalls = (): string[] => probes.map((pid) => {
      try { return fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').split(' ')[0]; } catch { return 'gone'; }
    });
    let calm = 0;
    await until('both backend processes waiting for input', () => {
      calm = syscalls().every((n) => ['0', '7', '43', '45', '47', '288'].includes(n)) ? calm + 1 : 0;
      return calm >= 3;
    }).catch((e: Error) => {
      throw new Error(`${e.message}: system calls now ${syscalls().join(', ')}`);
    });
  } finally {
    s.close();
  }
});

test('FastCGI: Flaskr over h2 — a page, a login POST, then the logged-in page with its cookie', async (t) => {
  const s = connect(site.fcgi.httpsPort);
  try {
    const index = await request(s, { ':path': '/cgi/' });
    t.is(index.status, 200);
    t.regex(index.body.toString(), /<h1><a href="\/cgi\/">Flaskr<\/a><\/h1>/);
    const form = Buffer.from(new URLSearchParams({ username: 'admin', password: 'default' }).toString());
    const login = await request(s, { ':method': 'POST', ':path': '/cgi/login', 'content-type': 'application/x-www-form-urlencoded' }, form);
    t.is(login.status, 302);
    t.is(login.headers.location, '/cgi/');
    const setCookie = ([] as string[]).concat(login.headers['set-cookie'] ?? []);
    t.regex(setCookie[0] ?? '', /^session=[^;]+;.*Secure/);
    const cookie = setCookie.map((c) => c.split(';')[0]!);
    const welcome = await request(s, { ':path': '/cgi/', cookie });
    t.is(welcome.status, 200);
    t.regex(welcome.body.toString(), /You were logged in/);
  } finally {
    s.close();
  }
});

test('FastCGI over h2: 2 MiB uploaded without content-length reaches the probe intact', async (t) => {
  const body = crypto.randomBytes(2 << 20);
  const s = connect(site.fcgi.httpsPort);
  try {
    const parts = Array.from({ length: 32 }, (_, i) => body.subarray(i << 16, (i + 1) << 16));
    const r = await request(s, { ':method': 'POST', ':path': '/app/environ' }, parts);
    t.is(r.status, 200);
    const info = JSON.parse(r.body.toString()) as { length: number; sha256: string };
    t.is(info.length, body.length);
    t.is(info.sha256, sha(body));
  } finally {
    s.close();
  }
});
