// Writes the seed inputs of the connection and tls fuzzers (binary scripts, see the op
// tables at the top of test/native/fuzz_connection.cc and fuzz_tls.cc) into
// fuzz_seeds/connection and fuzz_seeds/tls. Run after changing either op table:
//   node test/native/fuzz_seeds/make_seeds.mjs
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// ---- connection: byte 0 flags, then op = kind | param << 3 ----
const F = { small: 1, reject: 2, sendfile: 4, tls: 8, handshake: 16, answerAtEnd: 32, answerAtRequest: 64, log: 128 };
const op = (kind, param) => kind | (param << 3);

class Conn {
  constructor(flags) { this.bytes = [flags]; }
  send(text, piece = 32) {
    const b = Buffer.from(text, 'latin1');
    for (let i = 0; i < b.length; i += piece) {
      const part = b.subarray(i, i + piece);
      this.bytes.push(op(0, part.length - 1), ...part);
    }
    return this;
  }
  tick(n = 1) { this.bytes.push(op(2, n - 1)); return this; }
  window(p) { this.bytes.push(op(3, p)); return this; }
  app(action, ...payload) { this.bytes.push(op(4, action), ...payload); return this; }
  time(j) { this.bytes.push(op(5, j)); return this; }
  end(k) { this.bytes.push(op(6, k)); return this; }
  wantRead() { this.bytes.push(op(7, 1)); return this; }
  buffer() { return Buffer.from(this.bytes); }
}

const get = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;
const connection = {
  pipelined: new Conn(F.sendfile | F.log)
    .send(get('/') + get('/index.html', 'If-Modified-Since: Sun, 06 Nov 2094 08:49:37 GMT\r\n') +
      'HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n' + get('/d') + get('/nope') + get('/s') + get('/fifo'))
    .tick(4).end(0),
  byte_at_a_time: new Conn(0).send(get('/empty.txt', 'Range: bytes=0-5\r\n') + get('/big.bin', 'Range: bytes=-10\r\n'), 1).tick(2).end(0),
  slow_reader_tls: new Conn(F.tls | F.handshake)
    .window(0).send(get('/big.bin')).tick(3).window(9).tick(3).wantRead().window(20).tick(2).window(31).tick(2),
  slow_reader_sendfile: new Conn(F.sendfile).window(5).send(get('/big.bin') + get('/index.html', 'Connection: close\r\n')).tick(8),
  cgi_length: new Conn(F.log)
    .send('POST /cgi/x?a=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nUser-Agent: fuzz\r\nReferer: r\r\n\r\nhello')
    .tick().app(9).send(' world').app(10).tick().app(0, 5).app(5, 5, ...Buffer.from('abcde')).app(7).tick(2)
    .send(get('/cgi/next')).tick().app(1).app(5, 3, ...Buffer.from('xyz')).app(7).tick(),
  cgi_chunked_expect: new Conn(F.answerAtEnd)
    .send('POST /cgi HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n')
    .tick().send('5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nT: x\r\n\r\n').tick(2).end(0),
  cgi_answer_early: new Conn(F.answerAtRequest)
    .send('POST /cgi/u HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n0123456789').tick(2).send('0123456789').tick(),
  cgi_http10_raw: new Conn(0)
    .send('GET /cgi/a HTTP/1.0\r\n\r\n').tick().app(4).app(5, 20, ...Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))
    .app(6, 255).tick(2).app(7).tick(2),
  cgi_http10_until_close: new Conn(0).send('GET /cgi/b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').tick().app(1).app(5, 2, 104, 105).app(7).tick(),
  cgi_backpressure: new Conn(0).window(0)
    .send(get('/cgi/c')).tick().app(1).app(6, 255).app(6, 255).tick(2).window(31).tick(4).app(8).tick(),
  cgi_status_variants: new Conn(0)
    .send(get('/cgi/d')).tick().app(3, 1).app(7).tick()
    .send('HEAD /cgi/e HTTP/1.1\r\nHost: a\r\n\r\n').tick().app(2).app(7).tick()
    .send(get('/cgi/f')).tick().app(18).app(24, 0).app(7).tick(),
  cgi_client_hangs_up: new Conn(F.log).send(get('/cgi/k')).tick().end(2).tick(2),
  cgi_client_leaves: new Conn(0).send('POST /cgi/g HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab').tick().end(2).tick(),
  head_too_large: new Conn(F.small | F.log)
    .send(get('/', 'X-Long: ' + 'a'.repeat(150) + '\r\n') + get('/index.html')).tick(3).end(0),
  bad_requests: new Conn(0)
    .send('GET / HTTP/2.0\r\n\r\n').tick().end(0),
  bad_requests_2: new Conn(F.small).send(`GET /${'x'.repeat(60)} HTTP/1.1\r\nHost: a\r\n\r\n`).tick(),
  bad_requests_3: new Conn(0).send('G@T / HTTP/1.1\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: x\r\n\r\n').tick(2),
  body_too_large: new Conn(F.small).send('POST /cgi/h HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n200\r\n').tick(2),
  static_post: new Conn(0).send('POST /index.html HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc' + get('/')).tick(2),
  timeouts: new Conn(0).send('GET / HT').tick().time(3).tick(2),
  timeouts_body: new Conn(0).send('POST /cgi/i HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nab').tick().time(5).tick(2),
  idle_keepalive: new Conn(0).send(get('/')).tick().time(4).tick(),
  plain_http_on_tls: new Conn(F.tls).send(get('/')).tick(2),
  reject: new Conn(F.reject).send(get('/')).tick(2),
  graceful_stop: new Conn(0).send(get('/cgi/j')).tick().end(3).app(0, 0).app(7).tick(2),
  reset: new Conn(F.sendfile).window(3).send(get('/big.bin')).tick().end(1).tick(),
};

// ---- tls: byte 0 flags, then op = kind | param << 3 ----
const T = { tls12: 1, alpnH2: 2, noSni: 4, resume: 8, smallBuffers: 16, small: 32 };
class Tls {
  constructor(flags) { this.bytes = [flags]; }
  raw(b) {
    for (let i = 0; i < b.length; i += 32) {
      const part = b.subarray(i, i + 32);
      this.bytes.push(op(0, part.length - 1), ...part);
    }
    return this;
  }
  handshake(n = 4) { this.bytes.push(op(1, n - 1)); return this; }
  write(text) {
    const b = Buffer.from(text, 'latin1');
    for (let i = 0; i < b.length; i += 32) {
      const part = b.subarray(i, i + 32);
      this.bytes.push(op(2, part.length - 1), ...part);
    }
    return this;
  }
  tick(n = 1) { this.bytes.push(op(3, n - 1)); return this; }
  read(stop = false) { this.bytes.push(op(4, stop ? 0 : 1)); return this; }
  split(param) { this.bytes.push(op(4, param)); return this; } // 2..31: kSplit[param] bytes a turn
  client(action) { this.bytes.push(op(5, action)); return this; }
  time(j) { this.bytes.push(op(6, j)); return this; }
  buffer() { return Buffer.from(this.bytes); }
}
// A TLS 1.2 record header with a ClientHello-ish start, and plain HTTP to the TLS port.
const helloStart = Buffer.from('16030100a5010000a10303', 'hex');
const tls = {
  get_keepalive: new Tls(0).handshake(6).write(get('/') + get('/big.bin')).tick(4).read().write(get('/cgi/x')).tick(2).read(),
  tls12_pipelined: new Tls(T.tls12).handshake(6).write(get('/index.html') + get('/d')).tick(3).read(),
  alpn_h2_resume: new Tls(T.alpnH2 | T.resume).handshake(6).write(get('/')).tick(2).read().client(0).tick(2),
  slow_reader: new Tls(T.smallBuffers).handshake(6).write(get('/big.bin')).tick(6).read().tick(6).read(),
  key_update: new Tls(0).handshake(6).client(1).write(get('/')).tick(3).read(),
  renegotiate: new Tls(T.tls12).handshake(6).client(2).tick(2).write(get('/')).tick(2).read(),
  garbage_after_handshake: new Tls(0).handshake(6).raw(Buffer.from('1703030010' + '00'.repeat(16), 'hex')).tick(2),
  half_close: new Tls(0).handshake(6).write('GET / HTTP/1.1\r\n').client(3).tick(3),
  plain_http: new Tls(T.noSni).raw(Buffer.from(get('/'))).tick(2),
  hello_fragment: new Tls(0).raw(helloStart).tick(1).time(1).tick(1),
  split_29: new Tls(0).split(13).handshake(32).tick(16).write(get('/') + get('/index.html')).tick(16).read(),
  split_1000_tls12: new Tls(T.tls12).split(25).handshake(16).write(get('/big.bin')).tick(8).split(2).tick(16).read(),
  cgi_body: new Tls(T.small).handshake(6).write('POST /cgi/p HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody').tick(2).read(),
};

for (const [dir, seeds] of [['connection', connection], ['tls', tls]]) {
  const out = join(here, dir);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(out)) rmSync(join(out, f));
  for (const [name, script] of Object.entries(seeds)) writeFileSync(join(out, name), script.buffer());
}
console.log('seeds written');
