// FastCGI pipelining in the native client (FcgiDispatch::pipeline, [[fastcgi]] pipeline):
// when every connection is busy, a waiting GET/HEAD is sent behind the request running on
// one of them. Against a backend that serves one request at a time per connection and
// reads ahead (as php-fpm and cgi-bin/wsgi_fcgi.py do), with what such a backend can do
// wrong: refuse it (FCGI_CANT_MPX_CONN), close the connection with it unanswered, answer it
// out of turn; and a client that leaves while its request waits, a request behind one that
// times out or turns out slow, HTTP/2 streams. Every answer is checked against its own request.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { exchange1, get, sleep, slowGet, type HttpResponse } from './helpers/client.js';
import { waitFor } from './helpers/daemon.js';
import { FakeBackend, SocketBackend } from './helpers/fastcgi.js';
import { startLisod, type Lisod, type TomlTable } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';
import { h2Connect, h2Request } from './helpers/h2client.js';
import { getPki } from './helpers/pki.js';
import { RecordType, decodeNameValuePairs, type FcgiRecord } from '../src/fastcgi/record.js';

type Mode = 'serve' | 'refuse' | 'close-after-one' | 'out-of-turn';

interface Pending { id: number; env: Record<string, string> }

/** A backend that serves one request at a time per connection, in order, reading ahead. */
class SequentialBackend extends SocketBackend {
  behind = 0; // BEGIN_REQUESTs that arrived while the connection was serving another
  refused = 0;
  served: string[] = []; // PATH_INFO of each request answered, in order
  writing = 0; // answers not yet taken by lisod

  constructor(dir: string, public mode: Mode) {
    super(dir, 'seq');
  }

  protected onConnection(s: net.Socket): (records: FcgiRecord[]) => void {
    const queue: Pending[] = [];
    const partial = new Map<number, Buffer>();
    const refusedIds = new Set<number>();
    let busy = false;
    let answered = 0;
    const next = async (): Promise<void> => {
      if (busy || queue.length === 0 || s.destroyed) return;
      busy = true;
      const p = queue.shift()!;
      const info = p.env.PATH_INFO ?? '';
      const query = new URLSearchParams(p.env.QUERY_STRING ?? '');
      const ms = Number(query.get('ms') ?? '0');
      if (ms > 0) await sleep(ms);
      if (s.destroyed) return;
      const body = `${p.env.REQUEST_METHOD} ${info}`.padEnd(Number(query.get('size') ?? '0'), '.');
      this.served.push(info);
      // Busy until the answer has left: a sequential backend blocks while its output is full.
      this.writing++;
      await new Promise((resolve) => s.write(Buffer.concat([
        FakeBackend.stdout(p.id, `Content-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`),
        ...Array.from({ length: Math.ceil(body.length / 65_000) }, (_, i) => FakeBackend.stdout(p.id, body.slice(i * 65_000, (i + 1) * 65_000))),
        FakeBackend.stdout(p.id, ''), FakeBackend.end(p.id)]), resolve));
      this.writing--;
      answered++;
      if (this.mode === 'close-after-one' && answered === 1) {
        s.end();
        return;
      }
      busy = false;
      void next();
    };
    return (records) => {
      for (const r of records) {
        if (refusedIds.has(r.requestId) && r.type !== RecordType.BeginRequest) continue;
        if (r.type === RecordType.BeginRequest) {
          refusedIds.delete(r.requestId);
          if (busy || queue.length > 0 || partial.size > 0) {
            this.behind++;
            if (this.mode === 'refuse') {
              this.refused++;
              refusedIds.add(r.requestId);
              s.write(FakeBackend.end(r.requestId, 1)); // FCGI_CANT_MPX_CONN
              continue;
            }
            if (this.mode === 'out-of-turn') s.write(FakeBackend.stdout(r.requestId, 'Status: 200\r\n\r\ntoo early'));
          }
          partial.set(r.requestId, Buffer.alloc(0));
        } else if (r.type === RecordType.Params && r.content.length > 0) {
          partial.set(r.requestId, Buffer.concat([partial.get(r.requestId) ?? Buffer.alloc(0), r.content]));
        } else if (r.type === RecordType.Stdin && r.content.length === 0 && partial.has(r.requestId)) {
          queue.push({ id: r.requestId, env: Object.fromEntries(decodeNameValuePairs(partial.get(r.requestId)!)) });
          partial.delete(r.requestId);
          void next();
        }
      }
    };
  }
}

async function setup(t: import('ava').ExecutionContext, mode: Mode, mount: TomlTable = {}, top: TomlTable = {}): Promise<{ l: Lisod; b: SequentialBackend }> {
  const dir = tempDir('lisod-fcgi-pipeline-');
  const b = new SequentialBackend(dir, mode);
  await b.listening();
  const l = await startLisod({ config: { ...top, fastcgi: [{ path: '/p/', socket: `unix:${b.socketPath}`, max_conns: 2, ...mount }] } });
  t.teardown(async () => { await l.stop(); await b.close(); });
  return { l, b };
}

const fetch1 = (l: Lisod, target: string, method = 'GET', body = ''): Promise<HttpResponse> =>
  exchange1(body ? `${method} ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${body.length}\r\n\r\n${body}` : get(target, '', method),
    { port: l.httpPort, timeoutMs: 20_000 });

const errorLog = (l: Lisod): string => fs.readFileSync(path.join(l.dirs.logs, 'error.log'), 'utf8');

/** n GETs of /p/r<i>?ms=… at once; each answer must name its own request. */
async function burst(t: import('ava').ExecutionContext, l: Lisod, n: number, ms: number, tag = 'r'): Promise<HttpResponse[]> {
  const res = await Promise.all(Array.from({ length: n }, (_, i) => fetch1(l, `/p/${tag}${i}?ms=${ms}`)));
  res.forEach((r, i) => {
    t.is(r.status, 200, `request ${i}: ${r.body.toString()}`);
    t.is(r.body.toString(), `GET /${tag}${i}`);
  });
  return res;
}

test('waiting GETs go out behind busy requests, one per connection, and each gets its own answer', async (t) => {
  const { l, b } = await setup(t, 'serve');
  await burst(t, l, 12, 40);
  t.is(b.connections, 2, 'max_conns connections, no more');
  t.true(b.behind > 0, 'some requests were sent behind another');
  t.is(b.served.length, 12);
  // HEAD is safe too; its answer has no body.
  const heads = await Promise.all(Array.from({ length: 6 }, (_, i) =>
    exchange1(get(`/p/h${i}?ms=30`, '', 'HEAD'), { port: l.httpPort, heads: [true], timeoutMs: 20_000 })));
  for (const h of heads) t.is(h.status, 200);
});

test('POSTs are never sent behind another request; pipeline = false sends nothing behind either', async (t) => {
  const { l, b } = await setup(t, 'serve');
  const posts = await Promise.all(Array.from({ length: 8 }, (_, i) => fetch1(l, `/p/post${i}?ms=30`, 'POST', `body ${i}`)));
  posts.forEach((r, i) => t.is(r.body.toString(), `POST /post${i}`));
  t.is(b.behind, 0);
  const off = await setup(t, 'serve', { pipeline: false });
  await burst(t, off.l, 10, 30);
  t.is(off.b.behind, 0);
});

test('a backend that refuses a request sent behind another (CANT_MPX_CONN): it is queued instead, and pipelining stops', async (t) => {
  const { l, b } = await setup(t, 'refuse');
  await burst(t, l, 10, 40);
  t.true(b.refused >= 1 && b.refused <= 2, `${b.refused} refusals: at most one per connection before lisod stops`);
  await waitFor(() => /fastcgi \/p\/: the backend refuses a request sent behind another \(FCGI_CANT_MPX_CONN\)/.test(errorLog(l)), 5000, 'the log line');
  const before = b.refused;
  await burst(t, l, 10, 20, 'again');
  t.is(b.refused, before, 'nothing more is sent behind');
  t.is(errorLog(l).match(/refuses a request sent behind/g)?.length, 1, 'logged once');
});

test('a backend that closes the connection with a request waiting behind: that request is sent again', async (t) => {
  const { l, b } = await setup(t, 'close-after-one');
  await burst(t, l, 10, 30);
  t.true(b.behind > 0);
  t.true(b.connections > 2, 'new connections replaced the closed ones');
});

test('a backend that answers a request sent behind another before ending the first: 502 for the first, the second is sent again', async (t) => {
  const { l, b } = await setup(t, 'out-of-turn', { max_conns: 1 });
  const first = fetch1(l, '/p/first?ms=300');
  await waitFor(() => b.connections === 1, 5000, 'the first request at the backend');
  await sleep(50);
  const second = await fetch1(l, '/p/second?ms=10');
  t.is(second.status, 200);
  t.is(second.body.toString(), 'GET /second');
  t.is((await first).status, 502);
  t.regex(errorLog(l), /answered a request sent behind this one before ending it/);
  b.mode = 'serve';
  await burst(t, l, 4, 20, 'after');
  t.is(b.behind, 1, 'pipelining stays off for the mount');
});

test('a client that leaves while its request waits behind another: the connection closes when its turn comes', async (t) => {
  const { l, b } = await setup(t, 'serve', { max_conns: 1 });
  const first = fetch1(l, '/p/first?ms=400');
  await waitFor(() => b.connections === 1, 5000, 'the first request at the backend');
  const leaver = net.connect(l.httpPort, '127.0.0.1');
  leaver.on('error', () => {});
  leaver.write(get('/p/leaver?ms=2000'));
  await waitFor(() => b.behind === 1, 5000, 'the request sent behind');
  leaver.destroy();
  const r = await first;
  t.is(r.body.toString(), 'GET /first');
  // The backend connection closes after the first answer instead of running the leaver's
  // two seconds; the next request is served at once on a new connection.
  await waitFor(() => b.closed === 1, 1500, 'the backend connection closed');
  const started = Date.now();
  t.is((await fetch1(l, '/p/next')).body.toString(), 'GET /next');
  t.true(Date.now() - started < 1500);
});

test('a request behind one that times out is sent again on a new connection', async (t) => {
  const { l, b } = await setup(t, 'serve', { max_conns: 1, timeout: 1 });
  const slow = fetch1(l, '/p/slow?ms=5000');
  await waitFor(() => b.connections === 1, 5000, 'the slow request at the backend');
  const behind = fetch1(l, '/p/behind');
  await waitFor(() => b.behind === 1, 5000, 'the request sent behind');
  t.is((await slow).status, 504);
  const r = await behind;
  t.is(r.status, 200);
  t.is(r.body.toString(), 'GET /behind');
  t.is(b.connections, 2);
});

test('nothing is sent behind a request that has run for over a second', async (t) => {
  const { l, b } = await setup(t, 'serve', { max_conns: 1 });
  const slow = fetch1(l, '/p/slow?ms=1600');
  await sleep(1200);
  const later = fetch1(l, '/p/later');
  await sleep(200);
  t.is(b.behind, 0, 'queued in lisod, not behind the slow request');
  t.is((await slow).status, 200);
  t.is((await later).body.toString(), 'GET /later');
});

test('a request sent behind one that turns out slow is sent again elsewhere after about a second', async (t) => {
  const { l, b } = await setup(t, 'serve');
  const started = Date.now();
  const slow = fetch1(l, '/p/slow?ms=4000');
  await waitFor(() => b.connections === 1, 5000, 'the slow request at the backend');
  const medium = fetch1(l, '/p/medium?ms=1500');
  await waitFor(() => b.connections === 2, 5000, 'the second connection');
  const behind = fetch1(l, '/p/behind?ms=10'); // behind the slow one: it started first
  await waitFor(() => b.behind === 1, 5000, 'the request sent behind');
  const r = await behind;
  t.is(r.body.toString(), 'GET /behind');
  t.true(Date.now() - started < 3000, `answered after ${Date.now() - started} ms, not behind the 4 s request`);
  t.is((await medium).body.toString(), 'GET /medium');
  t.is((await slow).body.toString(), 'GET /slow');
  // The slow request's connection still held the abandoned copy: closed when its turn came.
  await waitFor(() => b.closed >= 1, 3000, 'that connection closed');
});

test('over HTTP/2: streams of one connection sent behind each other each get their own answer', async (t) => {
  const { l, b } = await setup(t, 'serve', { max_conns: 1 }, { http2: true });
  const pki = await getPki();
  const s = h2Connect(l.httpsPort, pki.ca);
  s.on('error', () => {});
  t.teardown(() => s.close());
  const replies = await Promise.all(Array.from({ length: 10 }, (_, i) =>
    h2Request(s, { ':method': i % 3 === 2 ? 'HEAD' : 'GET', ':path': `/p/s${i}?ms=30` })));
  replies.forEach((r, i) => {
    t.is(r.status, 200);
    t.is(r.body.toString(), i % 3 === 2 ? '' : `GET /s${i}`);
  });
  t.true(b.behind > 0);
  t.is(b.connections, 1);
});

test('nothing is sent behind a request whose client reads slowly', async (t) => {
  const { l, b } = await setup(t, 'serve', { max_conns: 1 });
  // 30 MB: more than the loopback socket buffers between the backend and the client hold.
  const slow = slowGet(l.httpPort, '/p/big?size=30000000', 1500, 2); // reads nothing for 1.5 s
  await waitFor(() => b.served.length === 1, 5000, 'the big answer being written');
  await sleep(300);
  t.is(b.writing, 1, 'the client holds the answer back: lisod has stopped reading the backend');
  const next = fetch1(l, '/p/next');
  await sleep(300);
  t.is(b.behind, 0, 'queued in lisod, not behind the held-back answer');
  const r = await slow;
  t.is(r.res?.status, 200);
  t.is(r.res?.body.length, 30_000_000);
  t.is((await next).body.toString(), 'GET /next');
});
