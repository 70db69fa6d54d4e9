// Unit tests for the CGI output parser: RFC 3875 §6 parsed headers (Status, Location,
// Content-Type), NPH detection, malformed output, and byte-at-a-time feeding.
import test from 'ava';
import { CgiOutputParser, interpretHeaders, type CgiHead, type ParseStep } from '../src/cgi_output.js';

/** Feeds `output` in pieces of `size` bytes; returns the head and all body bytes after it. */
function parse(output: string | Buffer, size = Infinity): { head: CgiHead; body: Buffer } {
  const buf = Buffer.isBuffer(output) ? output : Buffer.from(output, 'latin1');
  const p = new CgiOutputParser(1024);
  let step: ParseStep = { done: false };
  let i = 0;
  const step_ = Math.min(size, buf.length || 1);
  for (; i < buf.length && !step.done; i += step_) step = p.push(buf.subarray(i, i + step_));
  if (!step.done) return { head: p.end(), body: Buffer.alloc(0) };
  return { head: step.head, body: Buffer.concat([step.rest, buf.subarray(i)]) };
}

for (const size of [Infinity, 1, 3]) {
  test(`document response, CRLF, fed ${size} bytes at a time`, (t) => {
    const { head, body } = parse('Content-Type: text/html\r\nX-A: 1\r\n\r\n<p>hi</p>\r\n\r\n', size);
    t.deepEqual(head, { kind: 'response', status: 200, reason: 'OK', headers: ['Content-Type', 'text/html', 'X-A', '1'], noBody: false });
    t.is(body.toString(), '<p>hi</p>\r\n\r\n');
  });
}

test('LF-only and mixed line ends', (t) => {
  const { head, body } = parse('Content-Type: text/plain\nStatus: 404 Not Here\r\n\nbody');
  t.deepEqual(head, { kind: 'response', status: 404, reason: 'Not Here', headers: ['Content-Type', 'text/plain'], noBody: false });
  t.is(body.toString(), 'body');
});

test('Status without reason gets the standard phrase; whitespace trimmed', (t) => {
  const { head } = parse('Status:   503  \r\nContent-Type: text/plain\r\n\r\n');
  t.like(head, { kind: 'response', status: 503, reason: 'Service Unavailable' });
  const { head: h2 } = parse('status: 299\r\n\r\n');
  t.like(h2, { kind: 'response', status: 299, reason: 'Unknown' });
});

test('204 and 304 carry no body', (t) => {
  t.like(parse('Status: 204 No Content\r\n\r\n').head, { status: 204, noBody: true });
  t.like(parse('Status: 304 Not Modified\r\n\r\n').head, { status: 304, noBody: true });
});

test('local redirect: abs-path Location without Status', (t) => {
  t.deepEqual(parse('Location: /cgi/next?x=1\r\n\r\n').head, { kind: 'local-redirect', location: '/cgi/next?x=1' });
  t.deepEqual(parse('Location: /index.html\n\n').head, { kind: 'local-redirect', location: '/index.html' });
});

test('client redirect: absolute URI → 302 Found unless a Status is given', (t) => {
  t.deepEqual(parse('Location: https://example.org/x\r\n\r\n').head, {
    kind: 'response', status: 302, reason: 'Found', headers: ['Location', 'https://example.org/x'], noBody: false,
  });
  t.deepEqual(parse('Status: 301 Moved Permanently\r\nLocation: http://a/\r\nContent-Type: text/html\r\n\r\nmoved').head, {
    kind: 'response', status: 301, reason: 'Moved Permanently', headers: ['Content-Type', 'text/html', 'Location', 'http://a/'], noBody: false,
  });
  // Flask/Werkzeug style: a Status with a path-only Location is a client redirect.
  t.deepEqual(parse('Status: 302 FOUND\r\nContent-Type: text/html; charset=utf-8\r\nLocation: /cgi/\r\n\r\n').head, {
    kind: 'response', status: 302, reason: 'FOUND', headers: ['Content-Type', 'text/html; charset=utf-8', 'Location', '/cgi/'], noBody: false,
  });
  // Network-path reference is never a local redirect.
  t.like(parse('Location: //evil.example/\r\n\r\n').head, { kind: 'response', status: 302 });
});

test('server-owned and hop-by-hop fields are dropped; Content-Length kept normalised', (t) => {
  const { head } = parse(
    'Content-Type: text/plain\r\nServer: evil\r\nDate: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n' +
      'Keep-Alive: 5\r\nContent-Length: 0005\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\nhello',
  );
  t.deepEqual(head, {
    kind: 'response', status: 200, reason: 'OK',
    headers: ['Content-Type', 'text/plain', 'Content-Length', '5', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'], noBody: false,
  });
});

test('NPH output is recognised and its head kept byte for byte', (t) => {
  const raw = 'HTTP/1.1 201 Created\r\nServer: Liso/1.0\r\nContent-Length: 2\r\n\r\nok';
  for (const size of [Infinity, 1]) {
    const { head, body } = parse(raw, size);
    t.is(head.kind, 'nph');
    if (head.kind !== 'nph') return;
    t.is(head.status, 201);
    t.is(head.head.toString('latin1'), 'HTTP/1.1 201 Created\r\nServer: Liso/1.0\r\nContent-Length: 2\r\n\r\n');
    t.is(body.toString(), 'ok');
  }
  t.like(parse('HTTP/1.0 200\n\n').head, { kind: 'nph', status: 200 });
});

const invalid: Array<[string, string | Buffer, RegExp]> = [
  ['empty output', '', /no output/],
  ['no blank line before EOF', 'Content-Type: text/plain\r\n', /ended before/],
  ['garbage', 'this is not a header\n\nbody', /malformed header line/],
  ['binary junk', Buffer.from([0x00, 0xff, 0x10, 0x0a, 0x0a]), /malformed|bad header/],
  ['blank line first', '\r\nbody', /no header fields/],
  ['space in name', 'Content Type: x\r\n\r\n', /bad header name/],
  ['leading whitespace (obs-fold)', 'A: 1\r\n  folded\r\n\r\n', /malformed|bad header name/],
  ['bad status', 'Status: abc\r\n\r\n', /bad Status/],
  ['status out of range', 'Status: 600 Nope\r\n\r\n', /not a final/],
  ['interim status', 'Status: 100 Continue\r\n\r\n', /not a final/],
  ['two statuses', 'Status: 200 OK\r\nStatus: 404 No\r\n\r\n', /more than one Status/],
  ['two locations', 'Location: /a\r\nLocation: /b\r\n\r\n', /more than one Location/],
  ['empty location', 'Location:\r\n\r\n', /empty Location/],
  ['bad content-length', 'Content-Length: 12x\r\n\r\n', /bad Content-Length/],
  ['negative content-length', 'Content-Length: -1\r\n\r\n', /bad Content-Length/],
  ['conflicting content-length', 'Content-Length: 1\r\nContent-Length: 2\r\n\r\n', /conflicting/],
  ['control char in value', 'X-A: a\x01b\r\n\r\n', /control character/],
  ['bare CR in value', 'X-A: a\rb\r\n\r\n', /control character/],
  ['bad NPH line', 'HTTP/2 200 OK\r\n\r\n', /bad NPH status line/],
  ['NPH without status', 'HTTP/1.1\r\n\r\n', /bad NPH status line/],
  ['head too large', 'X: ' + 'a'.repeat(2000), /longer than 1024/],
  ['many lines too large', 'X: a\r\n'.repeat(300), /longer than 1024/],
];

for (const [name, output, reason] of invalid) {
  test(`invalid: ${name}`, (t) => {
    const { head } = parse(output);
    t.is(head.kind, 'invalid');
    if (head.kind === 'invalid') t.regex(head.reason, reason);
  });
}

test('push after completion throws; interpretHeaders directly', (t) => {
  const p = new CgiOutputParser();
  const step = p.push(Buffer.from('A: b\n\n'));
  t.true(step.done);
  t.throws(() => p.push(Buffer.from('x')));
  t.deepEqual(interpretHeaders(['Content-Type: a/b']), {
    kind: 'response', status: 200, reason: 'OK', headers: ['Content-Type', 'a/b'], noBody: false,
  });
});

test('UTF-8 header values round-trip; other high bytes become U+FFFD', (t) => {
  const raw = Buffer.concat([Buffer.from('X-Name: '), Buffer.from('café', 'utf8'), Buffer.from('\r\nX-L1: caf\xe9\r\n\r\n', 'latin1')]);
  const { head } = parse(raw);
  t.is(head.kind, 'response');
  if (head.kind === 'response') {
    t.is(head.headers[1], 'café');
    t.is(head.headers[3], 'caf\ufffd');
  }
});
