// Protocol edges of issues 9 and 12 over real sockets: every method token reaches the
// application with its body, an absolute-form target's authority is the Host the
// application sees (RFC 9112 §3.2.2), the native side refuses response heads that would
// split the response, and plain HTTP on the HTTPS port gets a 400, not a reset.
import test from 'ava';
import crypto from 'node:crypto';
import path from 'node:path';
import { Conn, exchange1, get, sha256, type HttpResponse } from './helpers/client.js';
import { assertError, describe } from './helpers/assert.js';
import { repoRoot } from './helpers/lisod.js';
import { useLisod } from './helpers/use_lisod.js';
import { loadNative, type CgiRequest, type NativeServer } from '../src/native.js';

const site = useLisod(test, {
  servers: { srv: { cgi: path.join(repoRoot, 'test', 'cgi-scripts', 'env.cgi') } },
});

interface EnvDump { env: Record<string, string>; body_sha256: string; body_length: number }

function dump(res: HttpResponse): EnvDump {
  if (res.status !== 200) throw new Error(`expected 200 from env.cgi: ${describe(res)}`);
  return JSON.parse(res.body.toString('utf8')) as EnvDump;
}

// ---- methods behind /cgi/ (issue 9 item 7) ----------------------------------------------

for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'BREW']) {
  test(`/cgi/ receives ${method} with its body`, async (t) => {
    const body = crypto.randomBytes(3000);
    const head = `${method} /cgi/item/7?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`;
    const d = dump(await exchange1(Buffer.concat([Buffer.from(head), body]), { port: site.srv.httpPort }));
    t.is(d.env.REQUEST_METHOD, method);
    t.is(d.env.PATH_INFO, '/item/7');
    t.is(d.env.CONTENT_LENGTH, String(body.length));
    t.is(d.body_length, body.length);
    t.is(d.body_sha256, sha256(body));
  });
}

test('/cgi/ receives a chunked PATCH over TLS, decoded', async (t) => {
  const body = Buffer.from('first part|second part');
  const raw = 'PATCH /cgi/doc HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n' +
    `b\r\n${body.subarray(0, 11).toString()}\r\n${(body.length - 11).toString(16)}\r\n${body.subarray(11).toString()}\r\n0\r\n\r\n`;
  const d = dump(await exchange1(raw, { port: site.srv.httpsPort, tls: true }));
  t.is(d.env.REQUEST_METHOD, 'PATCH');
  t.is(d.body_sha256, sha256(body));
  t.is(d.env.HTTPS, 'on');
});

test('/cgi/ DELETE without a body: no 411, no CONTENT_LENGTH', async (t) => {
  const d = dump(await exchange1(get('/cgi/item/7', '', 'DELETE'), { port: site.srv.httpPort }));
  t.is(d.env.REQUEST_METHOD, 'DELETE');
  t.false('CONTENT_LENGTH' in d.env);
  t.is(d.body_length, 0);
});

test('the same methods on a static path: 405 with Allow, keep-alive when no body was sent', async (t) => {
  const c = await Conn.open({ port: site.srv.httpPort });
  await c.write(get('/index.html', '', 'DELETE') + get('/index.html'));
  const [r405, ok] = await c.readResponses(2);
  assertError(t, r405!, 405);
  t.is(r405!.headers['allow'], 'GET, HEAD, POST');
  t.is(ok!.status, 200, describe(ok!));
  c.destroy();
});

// ---- absolute-form target (RFC 9112 §3.2.2) ---------------------------------------------

test('absolute-form target: HTTP_HOST and SERVER_NAME come from its authority, not the Host field', async (t) => {
  const d = dump(await exchange1('GET http://target.example:8081/cgi/a?q=1 HTTP/1.1\r\nHost: header.example\r\n\r\n',
    { port: site.srv.httpPort }));
  t.is(d.env.HTTP_HOST, 'target.example:8081');
  t.is(d.env.SERVER_NAME, 'target.example');
  t.is(d.env.QUERY_STRING, 'q=1');
  t.is(d.env.PATH_INFO, '/a');
});

test('absolute-form target on HTTP/1.0 without Host: the authority becomes the Host', async (t) => {
  const d = dump(await exchange1('GET HTTP://Target.example/cgi/b HTTP/1.0\r\n\r\n', { port: site.srv.httpPort }));
  t.is(d.env.HTTP_HOST, 'Target.example');
  t.is(d.env.SERVER_NAME, 'Target.example');
});

test('absolute-form target on a static path is served from the docroot whatever the Host', async (t) => {
  const res = await exchange1('GET http://elsewhere.example/index.html HTTP/1.1\r\nHost: localhost\r\n\r\n',
    { port: site.srv.httpPort });
  t.is(res.status, 200, describe(res));
  t.is(sha256(res.body), site.www.files.get('/index.html')!.sha256);
});

test('absolute-form target with userinfo or an empty authority → 400', async (t) => {
  for (const target of ['http://user@localhost/index.html', 'http:///index.html', 'http://bad host/']) {
    const res = await exchange1(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`, { port: site.srv.httpPort });
    assertError(t, res, 400);
  }
});

// ---- plain HTTP on the HTTPS port -------------------------------------------------------

test('plain HTTP sent to the HTTPS port → 400 in plain text, then close (as nginx)', async (t) => {
  const c = await Conn.open({ port: site.srv.httpsPort });
  await c.write(get('/index.html'));
  const res = await c.readResponse({ timeoutMs: 5000 });
  assertError(t, res, 400);
  t.regex(res.body.toString(), /plain HTTP request was sent to HTTPS port/);
  t.regex(res.headers['connection'] ?? '', /^close$/i);
  t.is((await c.readToEnd(5000)).length, 0);
  c.destroy();
});

test('TLS still works on that port after a plain-HTTP client (control)', async (t) => {
  const res = await exchange1(get('/index.html'), { port: site.srv.httpsPort, tls: true });
  t.is(res.status, 200, describe(res));
});

test('binary garbage on the HTTPS port is a handshake failure, not a 400', async (t) => {
  const c = await Conn.open({ port: site.srv.httpsPort });
  await c.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])).catch(() => undefined);
  const rest = await c.readToEnd(5000).catch(() => Buffer.alloc(0));
  t.false(rest.toString('latin1').startsWith('HTTP/'), 'no HTTP answer to a TLS record');
  c.destroy();
});

// ---- the native side validates response heads itself -----------------------------------

test('beginResponse throws on CR/LF/NUL in a header or reason, and sends nothing of it', async (t) => {
  const native = loadNative();
  const errors: string[] = [];
  let server: NativeServer | undefined;
  const attempts: Array<[number, string, string[]]> = [
    [200, 'OK', ['X-Split', 'a\r\nSet-Cookie: evil=1']],
    [200, 'OK', ['X-Lf', 'a\nb']],
    [200, 'OK', ['X-Nul', 'a\0b']],
    [200, 'OK', ['Bad Name', 'v']],
    [200, 'OK', ['Set-Cookie: evil=1\r\nX', 'v']],
    [200, 'OK\r\nSet-Cookie: evil=1', []],
    [20, 'OK', []],
  ];
  server = new native.Server({
    listeners: [{ host: '127.0.0.1', port: 0, tls: false }], root: site.www.root, cgiPrefix: '/cgi',
    maxConnections: 100, maxLineBytes: 8192, maxHeaderBytes: 65536, maxTargetBytes: 8000, maxBodyBytes: 1 << 20,
    headerTimeoutMs: 5000, bodyTimeoutMs: 5000, keepAliveTimeoutMs: 5000, sendTimeoutMs: 5000, accessLog: false,
  }, {
    request(req: CgiRequest) {
      for (const [status, reason, headers] of attempts) {
        try {
          server!.beginResponse(req.id, status, reason, headers);
          errors.push('no error');
        } catch (e) {
          errors.push((e as Error).message);
        }
      }
      server!.beginResponse(req.id, 200, 'OK', ['Content-Type', 'text/plain', 'Content-Length', '2']);
      server!.write(req.id, Buffer.from('ok'));
      server!.end(req.id);
    },
    body() {}, close() {}, drain() {}, error() {},
  });
  try {
    const port = server.addresses()[0]!.port;
    const res = await exchange1(get('/cgi/x'), { port });
    t.is(res.status, 200, describe(res));
    t.is(res.body.toString(), 'ok');
    t.false('set-cookie' in res.headers, 'nothing injected');
    t.false(res.raw.includes('evil'), 'no byte of a refused field was sent');
    t.is(errors.length, attempts.length);
    t.regex(errors[0]!, /header 'X-Split': header value contains CR, LF or NUL/);
    t.regex(errors[1]!, /CR, LF or NUL/);
    t.regex(errors[2]!, /CR, LF or NUL/);
    t.regex(errors[3]!, /header 'Bad Name': header name is not a token/);
    t.regex(errors[4]!, /header name is not a token/);
    t.regex(errors[5]!, /reason phrase contains CR, LF or NUL/);
    t.regex(errors[6]!, /status must be a 3-digit number/);
  } finally {
    server.close();
  }
});
