// Differential test: the CgiOutputParser backed by native/cgi_output.cc must give exactly
// what the former all-TypeScript parser (test/helpers/cgi_output_reference.ts) gave —
// heads, reasons, body bytes and error messages — on generated script output full of
// edge cases (JavaScript-trimmed whitespace in UTF-8, U+2028, bare CRs, invalid UTF-8,
// NPH lines, duplicate fields), fed whole and in random pieces.
import test from 'ava';
import { CgiOutputParser, interpretHeaders, type ParseStep } from '../src/cgi_output.js';
import * as reference from './helpers/cgi_output_reference.js';

// mulberry32: a small seeded generator, so a failure names a reproducible case.
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const b = (hex: string) => Buffer.from(hex, 'hex').toString('latin1');
const spaces = [' ', '\t', '\v', '\f', '\r', b('c2a0'), b('e280a8'), b('e280a9'), b('e38080'), b('efbbbf'),
  b('e19a80'), b('e2808a'), b('e280af'), b('e2819f'), b('c285'), b('e2808b')];
const junk = [b('e280'), b('ff'), b('c2'), b('f09f98'), b('f09f9880'), '\x00', '\x7f', '\x01', 'é', b('c3a9')];
const names = ['Status', 'status', 'Location', 'Content-Length', 'content-length', 'Content-Type', 'Server',
  'Connection', 'TE', 'Trailer', 'Proxy-Connection', 'X-A', 'Set-Cookie', 'A B', '', 'X' + b('e280a8'), 'X:Y'];
const values = ['200', '200 OK', '404 Not Here', '200\tX', '099', '600', '2000', '200 a' + b('e280a8') + 'b',
  '302', '204', '304', '199', '599 Z', '1', '0005', '12x', '-1', '0000000000000001', '1234567890123456',
  '/cgi/next?x=1', '//evil/', '/', 'http://a/', 'text/html', '', 'a\rb', 'a\x01b', 'caf' + b('c3a9')];
const nph = ['HTTP/1.1 200 OK', 'HTTP/1.0 200', 'HTTP/1.1 200 x\ry', 'HTTP/1.1 2000', 'HTTP/2 200',
  'HTTP/1.1 201 ' + b('e280a9'), 'HTTP/1.x 200', 'HTTP/1.1  200', 'HTTP/'];
const ends = ['\r\n', '\n', '\r\n', '\n', '\r\r\n'];

function generate(r: () => number): Buffer {
  const pick = <T>(a: readonly T[]) => a[Math.floor(r() * a.length)]!;
  const pad = () => (r() < 0.3 ? Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(spaces)).join('') : '');
  let out = '';
  if (r() < 0.15) out += pick(nph) + pick(ends);
  const lines = Math.floor(r() * 6);
  for (let i = 0; i < lines; i++) {
    if (r() < 0.08) out += pick(junk) + pick(ends);
    else out += pick(names) + (r() < 0.05 ? '' : ':') + pad() + (r() < 0.1 ? pick(junk) : '') + pick(values) + pad() + pick(ends);
  }
  if (r() < 0.9) out += pick(['\r\n', '\n']);
  if (r() < 0.5) out += 'body' + pick(ends) + 'Status: 500\r\n\r\n';
  return Buffer.from(out, 'latin1');
}

type Parser = { push(chunk: Buffer): ParseStep | reference.ParseStep; end(): unknown };

/** Feeds buf in pieces; returns the step that completed (or end()) and all bytes after. */
function run(p: Parser, buf: Buffer, sizes: () => number): unknown {
  for (let i = 0; i < buf.length; ) {
    const n = Math.max(1, sizes());
    const step = p.push(buf.subarray(i, i + n));
    i += n;
    if (step.done) return { head: step.head, body: Buffer.concat([step.rest, buf.subarray(i)]).toString('latin1') };
  }
  return { end: p.end() };
}

test('native-backed parser matches the former TypeScript parser on generated output', (t) => {
  const r = rng(Number(process.env.CGI_OUTPUT_SEED ?? 12)); // try others: CGI_OUTPUT_SEED=n
  let cases = 0;
  for (let i = 0; i < 6000; i++) {
    const buf = generate(r);
    const whole = buf.length || 1;
    const piece = Math.floor(r() * 8) + 1;
    for (const sizes of [() => whole, () => piece, () => Math.floor(r() * 9)]) {
      const seed = Math.floor(r() * 2 ** 31);
      const s1 = rng(seed);
      const s2 = rng(seed);
      const got = run(new CgiOutputParser(256), buf, () => Math.ceil(sizes() * (s1() + 0.5)));
      const want = run(new reference.CgiOutputParser(256), buf, () => Math.ceil(sizes() * (s2() + 0.5)));
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        t.deepEqual(got, want, `output ${JSON.stringify(buf.toString('latin1'))}`);
        return;
      }
      cases++;
    }
    // interpretHeaders on the same lines, decoded as the parser decodes them.
    const lines = buf.toString('utf8').split('\n').slice(0, 5).map((l) => l.replace(/\r$/, ''));
    t.deepEqual(interpretHeaders(lines), reference.interpretHeaders(lines), JSON.stringify(lines));
  }
  t.true(cases > 10000);
});

test('head sizes around the limit match too', (t) => {
  for (let n = 250; n < 262; n++) {
    for (const end of ['\n\n', '\r\n\r\n', '']) {
      const buf = Buffer.from('X: ' + 'a'.repeat(n - 3) + end + 'tail');
      const got = run(new CgiOutputParser(256), buf, () => 100);
      const want = run(new reference.CgiOutputParser(256), buf, () => 100);
      t.deepEqual(got, want, `n=${n} end=${JSON.stringify(end)}`);
    }
  }
});
