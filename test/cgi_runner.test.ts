// CgiRunner against a recording stand-in for the native server: queueing, 503/504,
// backpressure in both directions, local redirects, client close, spooling, stderr.
import test, { type ExecutionContext } from 'ava';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CgiRunner, type CgiOptions } from '../src/cgi.js';
import type { CgiRequest, NativeServer } from '../src/native.js';
import { testTempDir } from './helpers/tmp.js';

const scripts = path.join(path.dirname(fileURLToPath(import.meta.url)), 'cgi-scripts');

interface Recorded {
  status?: number;
  reason?: string;
  headers?: string[];
  raw: boolean;
  chunks: Buffer[];
  ended: boolean;
  aborted?: boolean;
}

/** Records what the runner asks of the native server; write() can simulate a full socket. */
class FakeServer {
  readonly responses = new Map<number, Recorded>();
  readonly paused = new Set<number>();
  pauses = 0;
  resumes = 0;
  writesRefused = false; // write() returns false (above high water)
  writesWhileRefused = 0;
  deniedTargets = new Set<string>(); // accessStatus() answers 403 for these
  private waiters: Array<() => void> = [];

  private rec(id: number): Recorded {
    let r = this.responses.get(id);
    if (!r) {
      r = { raw: false, chunks: [], ended: false };
      this.responses.set(id, r);
    }
    return r;
  }
  beginResponse(id: number, status: number, reason: string, headers: string[]): void {
    Object.assign(this.rec(id), { status, reason, headers });
    this.wake();
  }
  accessStatus(_id: number, target: string): number {
    return this.deniedTargets.has(target) ? 403 : 0;
  }
  beginRaw(id: number): void {
    this.rec(id).raw = true;
  }
  write(id: number, chunk: Buffer): boolean {
    this.rec(id).chunks.push(Buffer.from(chunk));
    if (this.writesRefused) this.writesWhileRefused++;
    this.wake();
    return !this.writesRefused;
  }
  end(id: number): void {
    this.rec(id).ended = true;
    this.wake();
  }
  abort(id: number): void {
    this.rec(id).ended = true;
    this.rec(id).aborted = true;
    this.wake();
  }
  pauseBody(id: number): void {
    this.paused.add(id);
    this.pauses++;
    this.wake();
  }
  resumeBody(id: number): void {
    this.paused.delete(id);
    this.resumes++;
    this.wake();
  }
  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
  /** Resolves once cond() holds (re-checked on every call from the runner). */
  until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timeout waiting for ${what}`)), timeoutMs);
      const check = (): void => {
        if (cond()) {
          clearTimeout(timer);
          resolve();
        } else {
          this.waiters.push(check);
        }
      };
      check();
    });
  }
  body(id: number): Buffer {
    return Buffer.concat(this.responses.get(id)?.chunks ?? []);
  }
}

function setup(script: string, over: Partial<CgiOptions> = {}) {
  const logs: string[] = [];
  const logger = {
    error: (m: string) => logs.push(`error ${m}`),
    warn: (m: string) => logs.push(`warn ${m}`),
    info: (m: string) => logs.push(`info ${m}`),
  };
  const runner = new CgiRunner({
    script: path.join(scripts, script), timeoutMs: 10_000, maxProcesses: 4, maxQueue: 4,
    passEnv: [], env: {}, serverName: 'test.example', ...over,
  }, logger);
  const server = new FakeServer();
  runner.attach(server as unknown as NativeServer);
  return { runner, server, logs, h: runner.handlers };
}

let nextId = 1;
function req(target: string, over: Partial<CgiRequest> = {}): CgiRequest {
  return {
    id: nextId++, method: 'GET', target, version: 'HTTP/1.1', headers: ['Host', 'localhost'],
    remoteAddress: '127.0.0.1', remotePort: 40000, localAddress: '127.0.0.1', localPort: 8080, tls: false,
    hasBody: false, contentLength: 0, ...over,
  };
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const pause = (ms: number): Promise<void> => new Promise((x) => setTimeout(x, ms));

/** One request to sleep.cgi; resolves once (or 5 s after) it wrote its background child's PID. */
async function sleeper(t: ExecutionContext) {
  const pidFile = path.join(testTempDir(t, 'cgi-runner-'), 'pid');
  const s = setup('sleep.cgi', { env: { SLEEP_PIDFILE: pidFile } });
  const r = req('/cgi/');
  s.h.request(r);
  const t0 = Date.now();
  while (!fs.existsSync(pidFile) && Date.now() - t0 < 5000) await pause(20);
  return { ...s, r, pid: Number(fs.readFileSync(pidFile, 'utf8')) };
}

/** Polls for up to 5 s until pid is gone. */
async function waitGone(pid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (alive(pid) && Date.now() < deadline) await pause(20);
}

test('parsed-header response: status, headers and body reach the server, then end', async (t) => {
  const { server, h } = setup('status.cgi');
  const r = req('/cgi/notfound');
  h.request(r);
  await server.until(() => server.responses.get(r.id)?.ended === true);
  const rec = server.responses.get(r.id)!;
  t.is(rec.status, 404);
  t.is(rec.reason, 'Not Found');
  t.deepEqual(rec.headers, ['Content-Type', 'text/plain', 'X-Script', 'status']);
  t.is(server.body(r.id).toString(), 'no such thing\n');
});

test('bad request-target → 400 without running the script', async (t) => {
  const { server, h, logs } = setup('crash.cgi');
  const r = req('/cgi/%zz');
  h.request(r);
  const rec = server.responses.get(r.id)!;
  t.is(rec.status, 400);
  t.true(rec.ended);
  t.false(logs.some((l) => l.includes('crash.cgi[')));
});

test('concurrency limit: queue then 503; 504 for silent scripts, one at a time', async (t) => {
  const { server, h } = setup('sleep.cgi', { maxProcesses: 1, maxQueue: 1, timeoutMs: 400 });
  const [a, b, c] = [req('/cgi/a'), req('/cgi/b'), req('/cgi/c')];
  const t0 = Date.now();
  h.request(a);
  h.request(b);
  h.request(c);
  t.is(server.responses.get(c.id)?.status, 503, 'third request is refused at once');
  await server.until(() => server.responses.get(a.id)?.ended === true);
  t.is(server.responses.get(a.id)!.status, 504);
  t.false(server.responses.has(b.id), 'the queued request waits for the slot');
  await server.until(() => server.responses.get(b.id)?.ended === true);
  t.is(server.responses.get(b.id)!.status, 504);
  t.true(Date.now() - t0 >= 800, 'the two scripts ran one after the other');
});

test('request_buffering = false: body paused while the script does not read, everything arrives in order', async (t) => {
  const { server, h } = setup('env.cgi', { requestBuffering: false });
  const body = crypto.randomBytes(8 << 20);
  const r = req('/cgi/upload?delay=0.5', { method: 'POST', hasBody: true, contentLength: body.length,
    headers: ['Host', 'localhost', 'Content-Length', String(body.length)] });
  h.request(r);
  let off = 0;
  let fedAtFirstPause = -1;
  while (off < body.length) {
    if (server.paused.has(r.id)) {
      if (fedAtFirstPause < 0) fedAtFirstPause = off;
      await server.until(() => !server.paused.has(r.id), 10_000, 'resumeBody');
      continue;
    }
    h.body(r.id, body.subarray(off, off + 65536));
    off += 65536;
    await new Promise((resolve) => setImmediate(resolve));
  }
  h.body(r.id, null);
  await server.until(() => server.responses.get(r.id)?.ended === true);
  const d = JSON.parse(server.body(r.id).toString()) as { body_sha256: string; body_length: number };
  t.is(d.body_length, body.length);
  t.is(d.body_sha256, crypto.createHash('sha256').update(body).digest('hex'));
  t.true(fedAtFirstPause >= 0 && fedAtFirstPause < 1 << 20,
    `the runner took ${fedAtFirstPause} bytes before pausing a script that was not reading`);
  t.is(server.pauses, server.resumes);
});

test('response body: stops reading the script while write() is refused, resumes on drain', async (t) => {
  const { server, h } = setup('status.cgi');
  const r = req('/cgi/big?mib=8');
  server.writesRefused = true;
  h.request(r);
  await server.until(() => server.writesWhileRefused > 0);
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(server.writesWhileRefused, 1, 'no further writes before drain');
  let drains = 0;
  while (!server.responses.get(r.id)?.ended) {
    server.writesRefused = server.body(r.id).length < (4 << 20);
    const before = server.responses.get(r.id)!.chunks.length;
    h.drain(r.id);
    drains++;
    await server.until(() => server.responses.get(r.id)!.chunks.length > before || server.responses.get(r.id)!.ended === true);
  }
  t.is(server.body(r.id).length, 8 << 20);
  t.true(drains > 1);
});

test('local redirect: the target runs as a GET; loops end in 500', async (t) => {
  const { server, h } = setup('status.cgi');
  const r = req('/cgi/local', { method: 'POST', hasBody: true, contentLength: 3, headers: ['Content-Length', '3'] });
  h.request(r);
  h.body(r.id, Buffer.from('a=b'));
  h.body(r.id, null);
  await server.until(() => server.responses.get(r.id)?.ended === true);
  t.is(server.responses.get(r.id)!.status, 200);
  t.is(server.body(r.id).toString(), 'target reached by GET with query from=local\n');
  const loop = req('/cgi/loop');
  h.request(loop);
  await server.until(() => server.responses.get(loop.id)?.ended === true, 20_000);
  t.is(server.responses.get(loop.id)!.status, 500);
});

test('local redirect to a target [[access]] refuses: 403, the target never runs', async (t) => {
  const { server, h } = setup('status.cgi');
  server.deniedTargets.add('/cgi/target?from=local');
  const r = req('/cgi/local');
  h.request(r);
  await server.until(() => server.responses.get(r.id)?.ended === true);
  t.is(server.responses.get(r.id)!.status, 403);
  t.notRegex(server.body(r.id).toString(), /target reached/);
});

test('client gone: the script and its process group are stopped', async (t) => {
  const { runner, server, h, r, pid } = await sleeper(t);
  t.teardown(() => runner.stop());
  t.true(alive(pid));
  h.close(r.id);
  await waitGone(pid);
  t.false(alive(pid));
  t.false(server.responses.has(r.id), 'nothing is sent to a closed connection');
});

test('chunked body: spooled (to a temp file above 1 MiB), CONTENT_LENGTH set, file removed', async (t) => {
  const { server, h } = setup('env.cgi');
  const spools = (): string[] => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`lisod-cgi-body-${process.pid}-`));
  for (const size of [1000, 3 << 20]) {
    const body = crypto.randomBytes(size);
    const r = req('/cgi/chunked', { method: 'POST', hasBody: true, contentLength: -1, headers: ['Transfer-Encoding', 'chunked'] });
    h.request(r);
    for (let off = 0; off < size; off += 100_000) {
      while (server.paused.has(r.id)) await server.until(() => !server.paused.has(r.id));
      h.body(r.id, body.subarray(off, off + 100_000));
      await new Promise((resolve) => setImmediate(resolve));
    }
    h.body(r.id, null);
    await server.until(() => server.responses.get(r.id)?.ended === true);
    const d = JSON.parse(server.body(r.id).toString()) as { env: Record<string, string>; body_sha256: string };
    t.is(d.env.CONTENT_LENGTH, String(size));
    t.is(d.body_sha256, crypto.createHash('sha256').update(body).digest('hex'));
  }
  t.deepEqual(spools(), []);
});

test('stderr lines go to the error log with the script name; crash before output → 500', async (t) => {
  const { server, h, logs } = setup('crash.cgi');
  const r = req('/cgi/');
  h.request(r);
  await server.until(() => server.responses.get(r.id)?.ended === true);
  t.is(server.responses.get(r.id)!.status, 500);
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(logs.some((l) => /^error cgi crash\.cgi\[\d+\]: crash\.cgi: about to fail on purpose$/.test(l)));
  t.true(logs.some((l) => /^error cgi crash\.cgi\[\d+\]: RuntimeError: deliberate crash for the test$/.test(l)));
  t.true(logs.some((l) => /500 crash\.cgi\[\d+\] exited with status 1 before sending a response/.test(l)));
});

test('NPH: raw mode, bytes as written; HEAD gets the head only', async (t) => {
  const { server, h } = setup('nph.cgi');
  const r = req('/cgi/p');
  h.request(r);
  await server.until(() => server.responses.get(r.id)?.ended === true);
  t.true(server.responses.get(r.id)!.raw);
  t.regex(server.body(r.id).toString(), /^HTTP\/1\.1 299 Custom NPH\r\n[\s\S]*\r\n\r\nnph says hello to GET \/p$/);
  const head = req('/cgi/p', { method: 'HEAD' });
  h.request(head);
  await server.until(() => server.responses.get(head.id)?.ended === true);
  t.true(server.body(head.id).toString().endsWith('\r\n\r\n'));
  t.false(server.body(head.id).toString().includes('nph says'));
});

test('stop(): every running script group is terminated', async (t) => {
  const { runner, pid } = await sleeper(t);
  t.true(alive(pid));
  runner.stop();
  await waitGone(pid);
  t.false(alive(pid));
});
