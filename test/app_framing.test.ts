// Where an application's response body ends: chunked end detection at any split, Content-Length
// counting, and the NPH keep-alive decision from the script's own head.
import test from 'ava';
import { BodyFraming, ChunkedEnd, nphFraming } from '../src/app_framing.js';

const chunked = Buffer.from('5\r\nhello\r\n6;ext="a b"\r\n world\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n');

test('ChunkedEnd finds the end of a chunked body at every split point, trailers included', (t) => {
  for (let split = 0; split <= chunked.length; split++) {
    const s = new ChunkedEnd();
    const a = s.push(chunked.subarray(0, split));
    if (a >= 0) {
      t.is(a, chunked.length, `split ${split}`);
      continue;
    }
    t.is(s.push(Buffer.concat([chunked.subarray(split), Buffer.from('NEXT')])), chunked.length - split, `split ${split}`);
  }
  const byByte = new ChunkedEnd();
  let end = -1;
  for (let i = 0; i < chunked.length && end < 0; i++) end = byByte.push(chunked.subarray(i, i + 1));
  t.is(end, 1);
});

test('ChunkedEnd: last chunk without trailers; malformed framing never ends', (t) => {
  t.is(new ChunkedEnd().push(Buffer.from('0\r\n\r\nrest')), 5);
  for (const bad of ['x\r\n', '5\r\nhelloXX', '5\nhello\r\n0\r\n\r\n', '\r\n0\r\n\r\n', '1234567890abc\r\n']) {
    t.is(new ChunkedEnd().push(Buffer.from(bad + '0\r\n\r\n')), -1, JSON.stringify(bad));
  }
});

test('BodyFraming: Content-Length counts and cuts the excess; no length means EOF', (t) => {
  const f = new BodyFraming(5);
  t.is(f.take(Buffer.from('hel')), 3);
  t.false(f.complete);
  t.is(f.take(Buffer.from('loEXTRA')), 2);
  t.true(f.complete);
  t.is(f.take(Buffer.from('more')), 0);
  t.true(new BodyFraming(0).complete);
  const eof = BodyFraming.untilEof();
  t.is(eof.take(Buffer.alloc(10)), 10);
  t.false(eof.complete);
  t.false(eof.delimited);
});

test('nphFraming: keep-alive only when the head frames the body, says no close, and both sides are 1.1', (t) => {
  const head = (s: string): Buffer => Buffer.from(s.replaceAll('\n', '\r\n') + '\r\n');
  const get11 = { method: 'GET', version: 'HTTP/1.1' };
  const cases: Array<[string, { method: string; version: string }, boolean, boolean]> = [
    ['HTTP/1.1 200 OK\nContent-Length: 5\n', get11, true, true],
    ['HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n', get11, true, true],
    ['HTTP/1.1 200 OK\nContent-Type: text/plain\n', get11, false, false],
    ['HTTP/1.1 200 OK\nContent-Length: 5\nConnection: keep-alive, close\n', get11, false, true],
    ['HTTP/1.0 200 OK\nContent-Length: 5\n', get11, false, true],
    ['HTTP/1.1 200 OK\nContent-Length: 5\n', { method: 'GET', version: 'HTTP/1.0' }, false, true],
    ['HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n', { method: 'GET', version: 'HTTP/1.0' }, false, false],
    ['HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 6\n', get11, false, false],
    ['HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n', get11, false, false],
    ['HTTP/1.1 204 No Content\n', get11, true, true],
    ['HTTP/1.1 200 OK\n', { method: 'HEAD', version: 'HTTP/1.1' }, true, true],
  ];
  for (const [text, req, keep, delimited] of cases) {
    const f = nphFraming(head(text), req);
    t.is(f.keepAlive, keep, text);
    t.is(f.body.delimited, delimited, text);
  }
});
