// The nested epoll set (native/inner_loop.h), on by default, against libuv's own polling
// (LISOD_INNER_LOOP=0): the same bytes for a static file, a FastCGI answer and a 4 MiB
// FastCGI body read by a client that stalls (backpressure both ways through the set); and
// the loop's timers still fire while the server waits in its own set (an idle keep-alive
// connection is closed after keep_alive_timeout), as does a SIGTERM with a request in flight;
// and unbuffered CGI uploads, whose stdin pipe JavaScript writes (libuv's watchers, started
// while the server waits in its own set) do not stall.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Conn, exchange1, get, sha256, slowGet } from './helpers/client.js';
import { startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';
import { FakeBackend } from './helpers/fastcgi.js';
import { waitFor } from './helpers/daemon.js';

const kBig = Buffer.alloc(4 << 20, 'b');

function answer(s: net.Socket, id: number, env: Record<string, string>): void {
  const out = (text: string | Buffer): Buffer => FakeBackend.stdout(id, text);
  const end = FakeBackend.end(id);
  switch (env.PATH_INFO ?? '') {
    case '/big': {
      const records = [];
      for (let at = 0; at < kBig.length; at += 65_535) records.push(out(kBig.subarray(at, at + 65_535)));
      s.write(Buffer.concat([out('Content-Type: application/octet-stream\r\n\r\n'), ...records, end]));
      return;
    }
    case '/slow': // the answer a second later: a SIGTERM arrives while it is in flight
      setTimeout(() => s.write(Buffer.concat([out('Content-Type: text/plain\r\n\r\nlate'), end])), 1000);
      return;
    default: s.write(Buffer.concat([out('Content-Type: text/plain\r\n\r\nrecorded'), end]));
  }
}

interface Setup { nested: Lisod; libuv: Lisod; rec: FakeBackend }
let setup: Promise<Setup> | undefined;
function servers(): Promise<Setup> {
  setup ??= (async () => {
    const rec = new FakeBackend(tempDir('lisod-inner-loop-'), answer);
    await rec.listening();
    const config = {
      keep_alive_timeout: 1,
      max_body_bytes: 64 << 20,
      cgi: { request_buffering: false },
      fastcgi: [{ path: '/rec/', socket: `unix:${rec.socketPath}` }],
    };
    const cgi = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cgi-scripts', 'stdin_sha.cgi');
    const [nested, libuv] = await Promise.all([
      startLisod({ config, cgi }),
      startLisod({ config, cgi, env: { ...process.env, LISOD_INNER_LOOP: '0' } }),
    ]);
    return { nested, libuv, rec };
  })();
  return setup;
}

test.after.always(async () => {
  const s = await setup?.catch(() => undefined);
  await Promise.all([s?.nested.stop(), s?.libuv.stop()]);
  await s?.rec.close();
});

for (const mode of ['nested', 'libuv'] as const) {
  test(`${mode}: a static file, a FastCGI answer and a stalled 4 MiB FastCGI body arrive whole`, async (t) => {
    const l = (await servers())[mode];
    const page = await exchange1(get('/'), { port: l.httpPort, timeoutMs: 10_000 });
    t.is(page.status, 200);
    t.is(sha256(page.body), sha256(fs.readFileSync(path.join(l.dirs.www, 'index.html'))));
    const app = await exchange1(get('/rec/x'), { port: l.httpPort, timeoutMs: 10_000 });
    t.is(app.status, 200);
    t.is(app.body.toString(), 'recorded');
    const { res } = await slowGet(l.httpPort, '/rec/big', 300, 2);
    t.is(res?.status, 200);
    t.is(res?.body.length, kBig.length);
    t.is(sha256(res!.body), sha256(kBig));
  });

  // Each upload fills the script's stdin pipe many times over; each time JavaScript's write
  // meets EAGAIN it asks libuv to watch the pipe. A wait that ignores that request stalls
  // until the next timer: with that bug the ten uploads took ~30 s here, without it ~4 s,
  // so the timeout (a hang detector, not a speed test) has a 5x margin either way.
  test(`${mode}: ten unbuffered 16 MiB uploads to a CGI script that reads all of stdin first`, async (t) => {
    t.timeout(20_000);
    const l = (await servers())[mode];
    const body = Buffer.alloc(16 << 20, 'u');
    for (let i = 0; i < 10; i += 1) {
      const head = `POST /cgi/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`;
      const r = await exchange1(Buffer.concat([Buffer.from(head), body]), { port: l.httpPort, timeoutMs: 30_000 });
      t.is(r.status, 200);
      t.is(r.body.toString(), `${body.length} ${sha256(body)}\n`);
    }
  });

  test(`${mode}: an idle keep-alive connection is closed after keep_alive_timeout (the loop's timers run)`, async (t) => {
    const l = (await servers())[mode];
    const c = await Conn.open({ port: l.httpPort });
    try {
      await c.write(get('/rec/k'));
      const [r] = await c.readResponses(1, { timeoutMs: 10_000 });
      t.is(r!.status, 200);
      const at = Date.now();
      await waitFor(() => c.eof || c.closed, 10_000, 'the idle connection closed by lisod');
      t.true(Date.now() - at < 8000);
    } finally {
      c.destroy();
    }
  });
}

test('nested: SIGTERM with a FastCGI request in flight — the answer still arrives, then lisod exits 0', async (t) => {
  const rec = (await servers()).rec;
  const l = await startLisod({ config: { fastcgi: [{ path: '/rec/', socket: `unix:${rec.socketPath}` }] } });
  const pending = exchange1(get('/rec/slow'), { port: l.httpPort, timeoutMs: 10_000 });
  await waitFor(() => rec.params.some((p) => p.PATH_INFO === '/slow' && p.SERVER_PORT === String(l.httpPort)), 10_000, 'the request at the backend');
  l.proc.kill('SIGTERM');
  const r = await pending;
  t.is(r.status, 200);
  t.is(r.body.toString(), 'late');
  t.is((await l.exited).code, 0);
});
