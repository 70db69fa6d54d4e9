// Connection handling end to end: pipelining (plain and TLS), keep-alive vs close vs
// HTTP/1.0, requests arriving byte by byte, and clients that vanish at any point.
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { Conn, exchange1, get, sha256, sleep } from './helpers/client.js';
import { assertCommonHeaders, assertFile, describe } from './helpers/assert.js';
import type { DocFile } from './helpers/docroot.js';
import { useLisod } from './helpers/use_lisod.js';

const site = useLisod(test);

const file = (p: string): DocFile => site.www.files.get(p)!;
const port = (tls: boolean): number => (tls ? site.srv.httpsPort : site.srv.httpPort);

async function stillServes(t: ExecutionContext): Promise<void> {
  t.is(site.srv.proc.exitCode, null, `lisod exited: ${site.srv.stderr()}`);
  for (const tls of [false, true]) {
    assertFile(t, await exchange1(get('/hello.txt'), { port: port(tls), tls }), file('/hello.txt'));
  }
}

// ---- pipelining ------------------------------------------------------------------------

for (const tls of [false, true]) {
  const proto = tls ? 'HTTPS' : 'HTTP';

  test(`${proto}: 7 pipelined requests in one write are answered in order`, async (t) => {
    const postBody = 'k=v';
    const reqs = [
      get('/hello.txt'),
      get('/range.txt', '', 'HEAD'),
      get('/m/style.css'),
      `POST /sub/page.html HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${postBody.length}\r\n\r\n${postBody}`,
      get('/range.txt', 'Range: bytes=2-4\r\n'),
      get('/no-such-thing'),
      get('/sub/'),
    ];
    const c = await Conn.open({ port: port(tls), tls });
    await c.write(reqs.join(''));
    const rs = await c.readResponses(reqs.length, { heads: [false, true] });
    c.destroy();
    assertFile(t, rs[0]!, file('/hello.txt'));
    assertFile(t, rs[1]!, file('/range.txt'), { head: true });
    assertFile(t, rs[2]!, file('/m/style.css'), { type: 'text/css' });
    assertFile(t, rs[3]!, file('/sub/page.html'));
    t.is(rs[4]!.status, 206);
    t.is(rs[4]!.body.toString(), '234');
    t.is(rs[5]!.status, 404);
    assertCommonHeaders(t, rs[5]!);
    assertFile(t, rs[6]!, file('/sub/index.html'));
  });

  test(`${proto}: 25 pipelined GETs, the last with Connection: close`, async (t) => {
    const paths = [...site.www.files.keys()].filter((p) => p !== '/big.bin').slice(0, 24);
    const raw = paths.map((p) => get(encodeURI(p))).join('') + get('/hello.txt', 'Connection: close\r\n');
    const c = await Conn.open({ port: port(tls), tls });
    await c.write(raw);
    const rs = await c.readResponses(paths.length + 1);
    paths.forEach((p, i) => {
      t.is(rs[i]!.status, 200, `${p}: ${describe(rs[i]!)}`);
      t.is(sha256(rs[i]!.body), file(p).sha256, `body of ${p}`);
    });
    t.regex(rs.at(-1)!.headers['connection'] ?? '', /^close$/i);
    t.is((await c.readToEnd(5000)).length, 0, 'closed with nothing after the last response');
    c.destroy();
  });

  test(`${proto}: pipelined 10 MiB responses interleaved with small ones`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    await c.write(get('/big.bin') + get('/hello.txt') + get('/big.bin') + get('/range.txt'));
    const rs = await c.readResponses(4, { timeoutMs: 30_000 });
    c.destroy();
    assertFile(t, rs[0]!, file('/big.bin'));
    assertFile(t, rs[1]!, file('/hello.txt'));
    assertFile(t, rs[2]!, file('/big.bin'));
    assertFile(t, rs[3]!, file('/range.txt'));
  });

  test(`${proto}: 200 pipelined requests in one write`, async (t) => {
    const names = ['/hello.txt', '/range.txt', '/m/notes.txt', '/sub/page.html'];
    const c = await Conn.open({ port: port(tls), tls });
    await c.write(Array.from({ length: 200 }, (_, i) => get(`${names[i % 4]}?n=${i}`)).join(''));
    const rs = await c.readResponses(200, { timeoutMs: 20_000 });
    c.destroy();
    const wrong = rs.map((r, i) => (r.status === 200 && sha256(r.body) === file(names[i % 4]!).sha256 ? -1 : i))
      .filter((i) => i >= 0);
    t.deepEqual(wrong, [], 'responses out of order or wrong');
  });

  // ---- keep-alive / close ----------------------------------------------------------------

  test(`${proto}: Connection tokens are case-insensitive ("Close", "Keep-Alive")`, async (t) => {
    const c1 = await Conn.open({ port: port(tls), tls });
    await c1.write(get('/hello.txt', 'Connection: Close\r\n'));
    const r1 = await c1.readResponse();
    assertFile(t, r1, file('/hello.txt'));
    t.regex(r1.headers['connection'] ?? '', /^close$/i);
    t.true(await c1.closesWithin(5000));
    c1.destroy();
    const c2 = await Conn.open({ port: port(tls), tls });
    await c2.write('GET /hello.txt HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\nGET /range.txt HTTP/1.0\r\n\r\n');
    const [a, b] = await c2.readResponses(2);
    assertFile(t, a!, file('/hello.txt'));
    t.regex(a!.headers['connection'] ?? '', /^keep-alive$/i);
    assertFile(t, b!, file('/range.txt'));
    t.regex(b!.headers['connection'] ?? '', /^close$/i);
    t.true(await c2.closesWithin(5000));
    c2.destroy();
  });

  test(`${proto}: HTTP/1.1 keeps the connection alive across sequential requests`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    for (const p of ['/hello.txt', '/index.html', '/m/pic.png']) {
      await c.write(get(p));
      const res = await c.readResponse();
      assertFile(t, res, file(p));
      t.regex(res.headers['connection'] ?? '', /^keep-alive$/i);
    }
    t.true(await c.quietFor(300), 'server keeps the idle connection open');
    c.destroy();
  });

  test(`${proto}: Connection: close → "Connection: close" and the server closes; later requests ignored`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    await c.write(get('/hello.txt', 'Connection: close\r\n') + get('/range.txt'));
    const res = await c.readResponse();
    assertFile(t, res, file('/hello.txt'));
    t.regex(res.headers['connection'] ?? '', /^close$/i);
    const rest = await c.readToEnd(5000);
    t.is(rest.length, 0, `nothing after the close response: ${JSON.stringify(rest.toString('latin1').slice(0, 100))}`);
    c.destroy();
  });

  test(`${proto}: HTTP/1.0 closes by default`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    await c.write('GET /hello.txt HTTP/1.0\r\nHost: localhost\r\n\r\n');
    const res = await c.readResponse();
    assertFile(t, res, file('/hello.txt'));
    t.regex(res.headers['connection'] ?? '', /^close$/i);
    t.is((await c.readToEnd(5000)).length, 0);
    c.destroy();
  });

  test(`${proto}: HTTP/1.0 with Connection: keep-alive stays open`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    for (const p of ['/hello.txt', '/range.txt']) {
      await c.write(`GET ${p} HTTP/1.0\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n`);
      const res = await c.readResponse();
      assertFile(t, res, file(p));
      t.regex(res.headers['connection'] ?? '', /^keep-alive$/i);
    }
    c.destroy();
  });

  // ---- byte by byte ----------------------------------------------------------------------

  test(`${proto}: a request sent one byte at a time`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    await c.writeSlowly('GET /m/data.json HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow-test/1.0\r\nAccept: */*\r\n\r\n', 1);
    assertFile(t, await c.readResponse(), file('/m/data.json'), { type: 'application/json' });
    c.destroy();
  });

  test(`${proto}: a POST with body, then a pipelined GET, one byte at a time`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    await c.writeSlowly(`POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 11\r\n\r\nhello=world${get('/range.txt')}`, 1);
    const [r1, r2] = await c.readResponses(2);
    assertFile(t, r1!, file('/hello.txt'));
    assertFile(t, r2!, file('/range.txt'));
    c.destroy();
  });

  test(`${proto}: CRLF split across writes ("\\r" then "\\n")`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    for (const piece of ['GET /hello.txt HTTP/1.1\r', '\nHost: localhost\r', '\n\r', '\n']) {
      await c.write(piece);
      await sleep(20);
    }
    assertFile(t, await c.readResponse(), file('/hello.txt'));
    c.destroy();
  });

  // ---- clients that vanish -----------------------------------------------------------------

  test(`${proto}: clients vanishing mid-request (head and body) do not disturb the server`, async (t) => {
    const partials = [
      'GET /hello.txt HTTP/1.1\r\nHo',
      'GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n',
      'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\npartial body',
      'POST /hello.txt HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc',
      'G',
    ];
    for (const p of partials) {
      const c = await Conn.open({ port: port(tls), tls });
      await c.write(p);
      await sleep(20);
      c.destroy();
    }
    // One that connects and leaves without a byte.
    (await Conn.open({ port: port(tls), tls })).destroy();
    await sleep(100);
    await stillServes(t);
  });

  test(`${proto}: clients vanishing mid-response of a 10 MiB file`, async (t) => {
    const victims = await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const c = await Conn.open({ port: port(tls), tls });
      await c.write(get('/big.bin'));
      // Wait for the first bytes of the response, then disappear.
      while (c.peek().length < 1000 * (i + 1) && !c.eof) await sleep(5);
      if (!tls && i % 2 === 0) c.socket.resetAndDestroy();
      else c.destroy();
    }));
    t.is(victims.length, 8);
    await sleep(200);
    await stillServes(t);
    const res = await exchange1(get('/big.bin'), { port: port(tls), tls, timeoutMs: 30_000 });
    assertFile(t, res, file('/big.bin'));
  });

  test(`${proto}: a client that stops reading mid-response then vanishes`, async (t) => {
    const c = await Conn.open({ port: port(tls), tls });
    c.socket.pause();
    await c.write(get('/big.bin') + get('/big.bin'));
    await sleep(300); // the server's writes now block on a full socket buffer
    c.destroy();
    await sleep(100);
    await stillServes(t);
  });
}

test('TLS: a client vanishing mid-handshake does not disturb the server', async (t) => {
  for (let i = 0; i < 5; i++) {
    const s = net.connect({ host: '127.0.0.1', port: site.srv.httpsPort });
    await new Promise((r) => s.once('connect', r));
    // The first bytes of a TLS 1.2 ClientHello record, then nothing.
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
    await sleep(20);
    s.destroy();
  }
  await stillServes(t);
});
