// The shared runner behind a transport that is not CGI (an in-memory stand-in, as a FastCGI
// backend would be): body hand-over, 'fail' ends mapped to their status, route() → 404.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { AppRunner, type AppMountOptions } from '../src/app_runner.js';
import { SpoolBudget } from '../src/app_spool.js';
import type { AppBody, AppEnd, AppOutput, AppProcess, AppTransport } from '../src/app_transport.js';
import type { CgiRequest, NativeServer } from '../src/native.js';

class Output extends EventEmitter implements AppOutput {
  paused = false;
  pause(): void { this.paused = true; }
  resume(): void { this.paused = false; }
}

class FakeProcess extends EventEmitter implements AppProcess {
  readonly label = 'fake#1';
  readonly stdin = null;
  readonly stdout = new Output();
  readonly stderr = new Output();
  calls: string[] = [];
  constructor(readonly env: Record<string, string>, readonly body: AppBody) { super(); }
  complete(): void { this.calls.push('complete'); }
  terminate(): void { this.calls.push('terminate'); }
  kill(): void { this.calls.push('kill'); }
  close(end: AppEnd): void { this.emit('close', end); }
}

class FakeTransport implements AppTransport {
  readonly name = 'fake';
  opened: FakeProcess[] = [];
  open(env: Record<string, string>, body: AppBody): AppProcess {
    const p = new FakeProcess(env, body);
    this.opened.push(p);
    return p;
  }
}

interface Rec { status?: number; headers?: string[]; body: Buffer[]; ended: boolean; aborted: boolean }

function fakeServer() {
  const responses = new Map<number, Rec>();
  const rec = (id: number): Rec => {
    if (!responses.has(id)) responses.set(id, { body: [], ended: false, aborted: false });
    return responses.get(id)!;
  };
  const server = {
    beginResponse: (id: number, status: number, _reason: string, headers: string[]) => Object.assign(rec(id), { status, headers }),
    beginRaw: () => {},
    write: (id: number, b: Buffer) => { rec(id).body.push(Buffer.from(b)); return true; },
    end: (id: number) => { rec(id).ended = true; },
    abort: (id: number) => { rec(id).ended = rec(id).aborted = true; },
    pauseBody: () => {},
    resumeBody: () => {},
  };
  return { responses, server: server as unknown as NativeServer };
}

let nextId = 1;
function req(target: string, over: Partial<CgiRequest> = {}): CgiRequest {
  return {
    id: nextId++, method: 'GET', target, version: 'HTTP/1.1', headers: ['Host', 'localhost'], remoteAddress: '127.0.0.1',
    remotePort: 1, localAddress: '127.0.0.1', localPort: 2, tls: false, hasBody: false, contentLength: 0, ...over,
  };
}

function runner(prefix: string, over: Partial<AppMountOptions> = {}) {
  const transport = new FakeTransport();
  const logs: string[] = [];
  const log = (m: string): void => { logs.push(m); };
  const r = new AppRunner({
    prefix, transport, scriptFilename: '/srv/app', timeoutMs: 5000, maxProcesses: 2, maxQueue: 2, requestBuffering: true,
    inherited: { PATH: '/bin' }, serverName: 'x', spoolDir: '/tmp', spoolBudget: new SpoolBudget(1 << 20), ...over,
  }, { error: log, warn: log, info: log });
  return { r, transport, logs };
}

test('buffered body reaches the transport whole, with CONTENT_LENGTH; a framed response ends at its length', (t) => {
  const { r, transport } = runner('/app');
  const { responses, server } = fakeServer();
  r.attach(server);
  const q = req('/app/x?y=1', { method: 'POST', hasBody: true, contentLength: -1, headers: ['Transfer-Encoding', 'chunked'] });
  r.handlers.request(q);
  t.is(transport.opened.length, 0, 'not started before the body is complete');
  r.handlers.body(q.id, Buffer.from('ab'));
  r.handlers.body(q.id, Buffer.from('c'));
  r.handlers.body(q.id, null);
  const p = transport.opened[0]!;
  t.deepEqual(p.body, Buffer.from('abc'));
  t.is(p.env.CONTENT_LENGTH, '3');
  t.is(p.env.SCRIPT_NAME, '/app');
  t.is(p.env.PATH_INFO, '/x');
  p.stdout.emit('data', Buffer.from('Status: 201 Created\r\nContent-Length: 4\r\n\r\nbo'));
  t.false(responses.get(q.id)!.ended);
  p.stdout.emit('data', Buffer.from('dyEXTRA'));
  t.is(responses.get(q.id)!.status, 201);
  t.is(Buffer.concat(responses.get(q.id)!.body).toString(), 'body');
  t.true(responses.get(q.id)!.ended);
  t.deepEqual(p.calls, ['complete']);
  p.close({ kind: 'exit', code: 0, signal: null });
});

test("transport 'fail' ends become their status before a head, a cut connection after one", (t) => {
  const { r, transport, logs } = runner('/app');
  const { responses, server } = fakeServer();
  r.attach(server);
  for (const status of [502, 503, 504] as const) {
    const q = req('/app/');
    r.handlers.request(q);
    transport.opened.at(-1)!.close({ kind: 'fail', status, reason: 'backend said no' });
    t.is(responses.get(q.id)!.status, status);
    t.true(responses.get(q.id)!.ended);
  }
  t.true(logs.some((l) => /fake GET \/app\/: 503 fake#1: backend said no/.test(l)));
  const q = req('/app/');
  r.handlers.request(q);
  const p = transport.opened.at(-1)!;
  p.stdout.emit('data', Buffer.from('Content-Type: text/plain\r\n\r\npart'));
  p.close({ kind: 'fail', status: 502, reason: 'reset' });
  t.is(responses.get(q.id)!.status, 200);
  t.true(responses.get(q.id)!.aborted, 'a body cut short must not look complete');
});

test('route(): per-request SCRIPT_NAME/SCRIPT_FILENAME, null → 404 without opening', (t) => {
  const { r, transport } = runner('/php', {
    route: (target) => (target.pathInfo.startsWith('/index.php')
      ? { scriptName: '/php/index.php', scriptFilename: '/srv/www/index.php' } : null),
  });
  const { responses, server } = fakeServer();
  r.attach(server);
  const ok = req('/php/index.php/extra');
  r.handlers.request(ok);
  t.is(transport.opened[0]!.env.SCRIPT_FILENAME, '/srv/www/index.php');
  t.is(transport.opened[0]!.env.SCRIPT_NAME, '/php/index.php');
  const missing = req('/php/nothing.php');
  r.handlers.request(missing);
  t.is(responses.get(missing.id)!.status, 404);
  t.is(transport.opened.length, 1);
});

test('with a native pool the runner takes its slots from appSlot and gives every one back', (t) => {
  const { r, transport, logs } = runner('/app');
  const { responses, server } = fakeServer();
  // The native client's pool of mount 4, one slot and one queue place (fastcgi_slots.cc's rules).
  const pool = { running: 0, waiting: [] as number[], next: 0, calls: [] as string[] };
  Object.assign(server, {
    appSlot: (mount: number) => {
      pool.calls.push(`slot ${mount}`);
      const ticket = ++pool.next;
      if (pool.running === 0 && pool.waiting.length === 0) return (pool.running++, ticket);
      if (pool.waiting.length >= 1) return 0;
      pool.waiting.push(ticket);
      return -ticket;
    },
    appSlotRelease: (ticket: number) => {
      pool.calls.push(`release ${ticket}`);
      if (pool.waiting.includes(ticket)) pool.waiting = pool.waiting.filter((w) => w !== ticket);
      else pool.running--;
    },
  });
  r.attach(server, 4);
  const grantNext = (): void => {
    const ticket = pool.waiting.shift()!;
    pool.running++;
    t.true(r.handlers.slot(ticket));
  };

  const first = req('/app/');
  r.handlers.request(first);
  t.is(transport.opened.length, 1);
  const leaves = req('/app/');
  r.handlers.request(leaves); // waits
  const refused = req('/app/');
  r.handlers.request(refused);
  t.is(responses.get(refused.id)!.status, 503);
  t.true(logs.some((l) => /503 2 running and 2 queued/.test(l)), 'the words are the runner\'s own');
  r.handlers.close(leaves.id); // withdrawn
  t.deepEqual(pool.waiting, []);
  t.false(r.handlers.slot(2), 'a withdrawn ticket is not started');

  const next = req('/app/');
  r.handlers.request(next);
  transport.opened[0]!.close({ kind: 'exit', code: 0, signal: null });
  t.is(pool.running, 0, 'the first run\'s slot came back when it closed');
  grantNext();
  t.is(transport.opened.length, 2, 'the granted request started');

  // A start that fails gives its slot back at once.
  transport.open = () => { throw new Error('cannot start'); };
  const failing = req('/app/');
  r.handlers.request(failing); // waits behind next
  transport.opened[1]!.close({ kind: 'exit', code: 0, signal: null });
  grantNext();
  t.is(responses.get(failing.id)!.status, 500);
  t.is(pool.running, 0);
  t.deepEqual(pool.calls, ['slot 4', 'slot 4', 'slot 4', 'release 2', 'slot 4', 'release 1', 'slot 4', 'release 4', 'release 5']);
});
