// Unit tests for the FastCGI record codec: byte-exact encodings from a table, PARAMS and
// STDIN split at 65,535 bytes, padding, fragmented decoding at every split, malformed input.
import test from 'ava';
import {
  RecordDecoder, RecordType, FastCgiProtocolError, decodeEndRequest, decodeNameValuePairs,
  encodeAbortRequest, encodeBeginRequest, encodeNameValuePairs, encodeParams, encodeRecords, encodeRequest, encodeRequestLatin1, encodeStdin,
  type FcgiRecord,
} from '../src/fastcgi/record.js';

const hex = (b: Buffer | Buffer[]): string => (Array.isArray(b) ? Buffer.concat(b) : b).toString('hex');

const table: [string, () => Buffer | Buffer[], string][] = [
  ['BEGIN_REQUEST responder keep-conn', () => encodeBeginRequest(1, true), '0101000100080000' + '0001010000000000'],
  ['BEGIN_REQUEST responder, no keep-conn, id 258', () => encodeBeginRequest(258, false), '0101010200080000' + '0001000000000000'],
  ['ABORT_REQUEST', () => encodeAbortRequest(7), '0102000700000000'],
  ['empty STDIN terminator', () => encodeStdin(3, Buffer.alloc(0)), '0105000300000000'],
  ['STDIN of 3 bytes padded to 8', () => encodeStdin(1, Buffer.from('abc')), '0105000100030500' + '616263' + '0000000000'],
  ['STDIN of 8 bytes needs no padding', () => encodeStdin(1, Buffer.from('abcdefgh')), '0105000100080000' + '6162636465666768'],
  ['PARAMS: one short pair then the terminator', () => encodeParams(1, { A: 'bc' }),
    '0104000100050300' + '0102416263' + '000000' + '0104000100000000'],
  ['PARAMS: no pairs is just the terminator', () => encodeParams(1, {}), '0104000100000000'],
];

for (const [name, make, expected] of table) {
  test(`encode: ${name}`, (t) => {
    t.is(hex(make()), expected);
  });
}

test('name-value lengths: 127 takes one byte, 128 takes four with the high bit', (t) => {
  const short = encodeNameValuePairs([['n', 'x'.repeat(127)]]);
  t.is(short.subarray(0, 2).toString('hex'), '017f');
  const long = encodeNameValuePairs([['x'.repeat(128), 'v']]);
  t.is(long.subarray(0, 5).toString('hex'), '8000008001');
  t.deepEqual(decodeNameValuePairs(long), [['x'.repeat(128), 'v']]);
  const utf8 = encodeNameValuePairs([['PATH_INFO', '/é']]);
  t.deepEqual(decodeNameValuePairs(utf8), [['PATH_INFO', '/é']]);
});

test('name-value decoding rejects truncated lengths and pairs running past the end', (t) => {
  t.throws(() => decodeNameValuePairs(Buffer.from('80', 'hex')), { instanceOf: FastCgiProtocolError });
  t.throws(() => decodeNameValuePairs(Buffer.from('05', 'hex')), { instanceOf: FastCgiProtocolError });
  t.throws(() => decodeNameValuePairs(Buffer.from('0203616263', 'hex')), { instanceOf: FastCgiProtocolError });
  t.throws(() => decodeNameValuePairs(Buffer.from('ffffffff01', 'hex')), { instanceOf: FastCgiProtocolError });
});

/** Decodes a whole byte stream fed in pieces of `size`. */
function decodeAll(bytes: Buffer, size: number): FcgiRecord[] {
  const d = new RecordDecoder();
  const out: FcgiRecord[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(...d.push(bytes.subarray(i, i + size)));
  ensure(d.pendingBytes === 0, 'stream ended mid-record');
  return out;
}
function ensure(ok: boolean, message: string): void {
  if (!ok) throw new Error(message);
}

test('PARAMS longer than 65,535 bytes are split across records and decode back', (t) => {
  const env = { BIG: 'v'.repeat(100_000), SMALL: 'x', HTTP_COOKIE: 'c'.repeat(70_000) };
  const bytes = encodeParams(9, env);
  const records = decodeAll(bytes, bytes.length);
  t.true(records.length >= 4);
  t.true(records.every((r) => r.type === RecordType.Params && r.requestId === 9 && r.content.length <= 0xffff));
  t.is(records.at(-1)!.content.length, 0);
  t.deepEqual(Object.fromEntries(decodeNameValuePairs(Buffer.concat(records.map((r) => r.content)))), env);
  // Every record starts 8-aligned: the padding made each one a multiple of 8.
  t.is(bytes.length % 8, 0);
});

test('STDIN of 200,000 bytes: four records of at most 65,535, content intact', (t) => {
  const data = Buffer.alloc(200_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const pieces = encodeRecords(RecordType.Stdin, 2, data);
  const records = decodeAll(Buffer.concat(pieces), 4096);
  t.deepEqual(records.map((r) => r.content.length), [65535, 65535, 65535, 3395]);
  t.true(Buffer.concat(records.map((r) => r.content)).equals(data));
});

/** A backend's answer: stdout, stderr, padding and END_REQUEST. */
function backendStream(): Buffer {
  const end = Buffer.from('0000000502000000', 'hex'); // appStatus 5, OVERLOADED
  return Buffer.concat([
    ...encodeRecords(RecordType.Stdout, 1, Buffer.from('Status: 200 OK\r\n\r\nhello')),
    ...encodeRecords(RecordType.Stderr, 1, Buffer.from('warn\n')),
    ...encodeRecords(RecordType.Stdout, 1, Buffer.alloc(0)),
    Buffer.from('0103000100080300', 'hex'), end, Buffer.alloc(3), // explicit padding of 3
  ]);
}

test('decoder: the same records whatever the split (every size 1..64)', (t) => {
  const bytes = backendStream();
  const whole = decodeAll(bytes, bytes.length);
  t.deepEqual(whole.map((r) => r.type), [RecordType.Stdout, RecordType.Stderr, RecordType.Stdout, RecordType.EndRequest]);
  t.is(whole[0].content.toString(), 'Status: 200 OK\r\n\r\nhello');
  t.is(whole[1].content.toString(), 'warn\n');
  t.deepEqual(decodeEndRequest(whole[3].content), { appStatus: 5, protocolStatus: 2 });
  for (let size = 1; size <= 64; size++) t.deepEqual(decodeAll(bytes, size), whole, `split ${size}`);
});

test('decoder: every two-piece split of the stream', (t) => {
  const bytes = backendStream();
  const whole = decodeAll(bytes, bytes.length);
  for (let cut = 0; cut <= bytes.length; cut++) {
    const d = new RecordDecoder();
    const got = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
    t.deepEqual(got, whole, `cut at ${cut}`);
  }
});

test('decoder: unknown record types are delivered for the caller to judge', (t) => {
  const d = new RecordDecoder();
  const recs = d.push(Buffer.concat(encodeRecords(42, 1, Buffer.from('xy'))));
  t.deepEqual(recs.map((r) => [r.type, r.content.toString()]), [[42, 'xy']]);
});

test('decoder: a wrong version is an error, and the decoder stays failed', (t) => {
  const d = new RecordDecoder();
  t.deepEqual(d.push(Buffer.from('02', 'hex')), []); // not a whole header yet
  t.throws(() => d.push(Buffer.from('06000100000000', 'hex')), { instanceOf: FastCgiProtocolError, message: /version 2/ });
  t.throws(() => d.push(Buffer.concat(encodeStdin(1, Buffer.alloc(0)))), { instanceOf: FastCgiProtocolError });
  t.throws(() => new RecordDecoder().push(Buffer.from('HTTP/1.1 200 OK\r\n')), { instanceOf: FastCgiProtocolError });
});

test('decoder: holds an incomplete record (max-size content + max padding) without output', (t) => {
  const d = new RecordDecoder();
  const h = Buffer.from('01060001ffffff00', 'hex');
  t.deepEqual(d.push(h), []);
  t.deepEqual(d.push(Buffer.alloc(0xffff)), []);
  t.is(d.pendingBytes, 8 + 0xffff);
  const recs = d.push(Buffer.alloc(255));
  t.is(recs.length, 1);
  t.is(recs[0].content.length, 0xffff);
  t.is(d.pendingBytes, 0);
});

test('END_REQUEST body must be 8 bytes', (t) => {
  t.throws(() => decodeEndRequest(Buffer.alloc(7)), { instanceOf: FastCgiProtocolError });
  t.deepEqual(decodeEndRequest(Buffer.from('ffffffff00000000', 'hex')), { appStatus: 0xffffffff, protocolStatus: 0 });
});

test('request ids outside 16 bits are refused', (t) => {
  t.throws(() => encodeRecords(RecordType.Stdin, 0x10000, Buffer.alloc(0)), { instanceOf: RangeError });
});

test('encodeRequestLatin1 gives encodeRequest\'s bytes for ASCII environments, null otherwise', (t) => {
  const envs: Record<string, string>[] = [
    {},
    { REQUEST_METHOD: 'GET', SCRIPT_NAME: '/php/x.php', QUERY_STRING: '', EMPTY: '' },
    { LONG: 'v'.repeat(200), ['N'.repeat(130)]: 'short', EXACT: 'x'.repeat(127), FOUR: 'y'.repeat(128) },
    { HUGE: 'z'.repeat(70_000), B: 'b'.repeat(65_535 - 5) }, // PARAMS split over records
    { '1': 'integer-like key', A: 'a' },
  ];
  for (const env of envs) {
    for (const [id, keep, end] of [[1, true, true], [65_535, false, false], [256, true, false]] as const) {
      const s = encodeRequestLatin1(id, keep, env, end);
      t.not(s, null);
      t.is(Buffer.from(s!, 'latin1').toString('hex'), encodeRequest(id, keep, env, null, end).toString('hex'));
    }
  }
  t.is(encodeRequestLatin1(1, true, { HTTP_X: 'caf\u00e9' }, true), null);
  t.is(encodeRequestLatin1(1, true, { ['\u00e9']: 'v' }, true), null);
  t.throws(() => encodeRequestLatin1(65_536, true, {}, true), { instanceOf: RangeError });
});
