// The end of a large application response reaches a slow client whole: the last output
// and the end of the response arrive while the runner has paused the application (the
// client is slow), so they are delivered inside the 'drain' callback that resumes it. The
// connection must send them before finishing the response — a FastCGI fake backend whose
// last STDOUT and END_REQUEST come in one write, and a CGI script whose last write and
// exit come together. Each case runs over several body sizes at once: the defect showed
// only when the read holding the end was the one buffered while paused.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { sleep, slowGet } from './helpers/client.js';
import { startLisod, type Lisod } from './helpers/lisod.js';
import { tempDir } from './helpers/tmp.js';
import { RecordDecoder, RecordType, decodeNameValuePairs, encodeRecords } from '../src/fastcgi/record.js';

const kTail = 19_264; // PHP's last flush in the 5 MB case that lost it
// 250 KB … 1.3 MB in 12.5 KB steps: the defect needs the end within one read (64 KiB) of
// where the server's queue first passed its high-water mark, which the kernel's socket
// buffers move; a sweep this fine always has sizes there.
const kSizes = Array.from({ length: 84 }, (_, i) => 250_000 + i * 12_500);

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 255;
  return b;
}

/** Head + `size` bytes at once, then after `gapMs` the last kTail bytes and END_REQUEST in one write. */
class TailBackend {
  readonly server: net.Server;
  readonly socketPath: string;
  readonly #sockets = new Set<net.Socket>();

  constructor(dir: string) {
    this.socketPath = path.join(dir, 'tail.sock');
    this.server = net.createServer((s) => this.#serve(s)).listen(this.socketPath);
  }

  #serve(s: net.Socket): void {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => {});
    const d = new RecordDecoder();
    let params = Buffer.alloc(0);
    s.on('data', (chunk) => {
      for (const r of d.push(chunk)) {
        if (r.type === RecordType.Params) params = Buffer.concat([params, r.content]);
        if (r.type !== RecordType.Stdin || r.content.length > 0) continue;
        const env = Object.fromEntries(decodeNameValuePairs(params));
        params = Buffer.alloc(0);
        const [size, gap] = (env.PATH_INFO ?? '').slice(1).split('/').map(Number);
        const body = pattern(size! + kTail, size!);
        const out = (b: Buffer): Buffer[] => encodeRecords(RecordType.Stdout, r.requestId, b);
        const head = Buffer.concat([...out(Buffer.from('Content-Type: application/octet-stream\r\n\r\n')), ...out(body.subarray(0, size))]);
        const tail = Buffer.concat([...out(body.subarray(size)), ...out(Buffer.alloc(0)), ...encodeRecords(RecordType.EndRequest, r.requestId, Buffer.alloc(8))]);
        if (gap > 0) {
          s.write(head);
          setTimeout(() => s.write(tail), gap);
        } else {
          s.write(Buffer.concat([head, tail]));
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

async function expectWhole(t: import('ava').ExecutionContext, lisod: Lisod, target: string, want: Buffer): Promise<void> {
  const { res, raw } = await slowGet(lisod.httpPort, target, 300, 1);
  const log = (): string => fs.readFileSync(path.join(lisod.dirs.logs, 'error.log'), 'utf8').split('\n').slice(-5).join('\n');
  if (!res) {
    t.fail(`${target}: response cut short after ${raw.length} bytes (want a ${want.length}-byte body)\n${log()}`);
    return;
  }
  t.is(res.status, 200, target);
  t.is(res.framing, 'chunked', target);
  t.is(res.body.length, want.length, target);
  t.true(res.body.equals(want), `${target}: body bytes differ`);
}

let backend: TailBackend | undefined;
let lisod: Lisod | undefined;
test.after.always(async () => {
  await lisod?.stop();
  await backend?.close();
});

test.serial('FastCGI: the last STDOUT and END_REQUEST in one write reach a slow client (several sizes at once)', async (t) => {
  backend = new TailBackend(tempDir('lisod-tail-'));
  await new Promise((r) => backend!.server.once('listening', r));
  const dir = tempDir('lisod-tail-cgi-');
  const script = path.join(dir, 'tail.cgi');
  // The CGI twin: the bulk, then the last bytes and exit.
  fs.writeFileSync(script, '#!/usr/bin/python3\nimport os, sys\nsize = int(os.environ["QUERY_STRING"])\n' +
    'out = sys.stdout.buffer\nbody = bytes(((i * 31 + size) & 255) for i in range(size + ' + kTail + '))\n' +
    'out.write(b"Content-Type: application/octet-stream\\r\\n\\r\\n" + body[:size]); out.flush()\n' +
    'out.write(body[size:]); out.flush()\n', { mode: 0o755 });
  lisod = await startLisod({
    cgi: script,
    config: { fastcgi: [{ path: '/tail/', socket: `unix:${backend.socketPath}`, timeout: 30, max_conns: 48, max_queue: 100 }] },
  });
  for (const round of [0, 1]) {
    const sizes = kSizes.filter((_, i) => i % 2 === round);
    await Promise.all(sizes.map((n) => expectWhole(t, lisod!, `/tail/${n}/0`, pattern(n + kTail, n))));
  }
  // The same with the end alone, 200 ms after the bulk, as PHP's last flush comes.
  await Promise.all(kSizes.filter((_, i) => i % 8 === 0).map((n) => expectWhole(t, lisod!, `/tail/${n}/200`, pattern(n + kTail, n))));
});

test.serial('CGI: a script whose last write and exit race a slow client is delivered whole (several sizes at once)', async (t) => {
  if (!lisod) await sleep(0);
  t.truthy(lisod, 'the FastCGI case started lisod');
  const sizes = kSizes.filter((_, i) => i % 4 === 0);
  await Promise.all(sizes.map((n) => expectWhole(t, lisod!, `/cgi/?${n}`, pattern(n + kTail, n))));
});
