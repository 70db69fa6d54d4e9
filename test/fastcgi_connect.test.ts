// Connecting to a FastCGI backend through a real lisod: a TCP backend whose accept queue is
// full (connect() hangs: Linux drops the SYN) → 504 after connect_timeout, while other
// requests are served meanwhile; a port nobody listens on → 502 at once.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exchange1, get } from './helpers/client.js';
import { startNeverAccepting } from './helpers/fastcgi.js';
import { startLisod } from './helpers/lisod.js';

/** A port that was free a moment ago (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

test('connect_timeout → 504 within a bounded time; static and other mounts are served meanwhile; refused → 502 at once', async (t) => {
  const hung = await startNeverAccepting();
  t.teardown(hung.stop);
  const refused = await closedPort();
  const lisod = await startLisod({
    config: {
      fastcgi: [
        { path: '/hang/', socket: `127.0.0.1:${hung.port}`, connect_timeout: 1 },
        { path: '/refused/', socket: `127.0.0.1:${refused}`, connect_timeout: 30 },
      ],
    },
  });
  t.teardown(() => lisod.stop());
  const opts = { port: lisod.httpPort, timeoutMs: 20_000 };

  const started = Date.now();
  const hang = Promise.all([exchange1(get('/hang/a'), opts), exchange1(get('/hang/b', 'Content-Length: 3\r\n', 'POST') + 'abc', opts)]);
  // While both wait for their connection: a static file and the other mount answer.
  const page = await exchange1(get('/'), opts);
  t.is(page.status, 200);
  t.true(Date.now() - started < 900, `static answer took ${Date.now() - started} ms`);
  const t0 = Date.now();
  const down = await exchange1(get('/refused/x'), opts);
  t.is(down.status, 502);
  t.regex(down.headers['content-type'] ?? '', /^text\/html/);
  t.true(Date.now() - t0 < 900, `refused took ${Date.now() - t0} ms, not at once`);

  for (const r of await hang) {
    t.is(r.status, 504);
    t.regex(r.body.toString(), /did not answer in time/);
  }
  const elapsed = Date.now() - started;
  t.true(elapsed >= 900 && elapsed < 8000, `504 after ${elapsed} ms (connect_timeout = 1 s)`);
  // Still serving: the timed-out attempts left no stuck slot.
  t.is((await exchange1(get('/'), opts)).status, 200);
  const again = await exchange1(get('/hang/c'), opts);
  t.is(again.status, 504);

  const log = fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8');
  t.regex(log, /fastcgi GET \/hang\/a: 504 \/hang\/#\d+: connecting to the backend took over 1000 ms/);
  t.regex(log, /fastcgi GET \/refused\/x: 502 \/refused\/#\d+: cannot connect to the backend: ECONNREFUSED/);
});
