// FastCGI 1.0 record codec (https://fastcgi-archives.github.io/FastCGI_Specification.html):
// pure encoders for what a web server sends and an incremental decoder for what comes back.
// No sockets here; src/fastcgi/backend.ts drives a connection with these.

export const kVersion = 1;
export const kHeaderBytes = 8;
export const kMaxContent = 0xffff; // contentLength is 16 bits (spec §3.3)

/** Record types (spec §8). */
export const RecordType = {
  BeginRequest: 1,
  AbortRequest: 2,
  EndRequest: 3,
  Params: 4,
  Stdin: 5,
  Stdout: 6,
  Stderr: 7,
  Data: 8,
  GetValues: 9,
  GetValuesResult: 10,
  UnknownType: 11,
} as const;

export const kRoleResponder = 1;
export const kFlagKeepConn = 1;

/** END_REQUEST protocolStatus values (spec §5.5). */
export const ProtocolStatus = {
  RequestComplete: 0,
  CantMpxConn: 1,
  Overloaded: 2,
  UnknownRole: 3,
} as const;

/** One decoded record; `content` excludes padding. */
export interface FcgiRecord {
  type: number;
  requestId: number;
  content: Buffer;
}

export interface EndRequest {
  appStatus: number; // the application's exit status, unsigned 32 bits
  protocolStatus: number;
}

/** The peer broke the protocol; the connection cannot be used any more. */
export class FastCgiProtocolError extends Error {}

function header(type: number, requestId: number, contentLength: number, paddingLength: number): Buffer {
  const h = Buffer.allocUnsafe(kHeaderBytes);
  h[0] = kVersion;
  h[1] = type;
  h.writeUInt16BE(requestId, 2);
  h.writeUInt16BE(contentLength, 4);
  h[6] = paddingLength;
  h[7] = 0;
  return h;
}

const kPadding = Buffer.alloc(8);

/**
 * Frames `content` as records of `type`: pieces of at most 65,535 bytes, each padded to a
 * multiple of 8 (spec §3.3 recommends aligned records). Empty content gives one empty record,
 * which for the stream types PARAMS/STDIN is the end-of-stream marker. Returns the pieces to
 * write in order (content slices are not copied).
 */
export function encodeRecords(type: number, requestId: number, content: Buffer): Buffer[] {
  if (requestId < 0 || requestId > 0xffff) throw new RangeError(`FastCGI request id ${requestId} out of range`);
  const out: Buffer[] = [];
  let offset = 0;
  do {
    const piece = content.subarray(offset, offset + kMaxContent);
    const padding = (8 - (piece.length % 8)) % 8;
    out.push(header(type, requestId, piece.length, padding));
    if (piece.length > 0) out.push(piece);
    if (padding > 0) out.push(kPadding.subarray(0, padding));
    offset += piece.length;
  } while (offset < content.length);
  return out;
}

/** BEGIN_REQUEST for the responder role; keepConn asks the application not to close after it. */
export function encodeBeginRequest(requestId: number, keepConn: boolean, role = kRoleResponder): Buffer {
  const b = header(RecordType.BeginRequest, requestId, 8, 0);
  const record = Buffer.alloc(16);
  b.copy(record, 0);
  record.writeUInt16BE(role, 8);
  record[10] = keepConn ? kFlagKeepConn : 0;
  return record;
}

export function encodeAbortRequest(requestId: number): Buffer {
  return Buffer.concat(encodeRecords(RecordType.AbortRequest, requestId, Buffer.alloc(0)));
}

function nvLength(n: number): Buffer {
  if (n < 0x80) return Buffer.of(n);
  if (n > 0x7fffffff) throw new RangeError(`FastCGI name or value of ${n} bytes is too long`);
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0, 0);
  return b;
}

/** Name-value pairs (spec §3.4): lengths below 128 in one byte, others in four (high bit set). */
export function encodeNameValuePairs(pairs: Iterable<[string, string]>): Buffer {
  // Two passes over the strings (byte lengths, then writes) into one buffer: no per-pair Buffers.
  const list = Array.isArray(pairs) ? (pairs as [string, string][]) : [...pairs];
  let total = 0;
  for (const [name, value] of list) {
    const n = Buffer.byteLength(name, 'utf8');
    const v = Buffer.byteLength(value, 'utf8');
    if (n > 0x7fffffff || v > 0x7fffffff) nvLength(Math.max(n, v)); // throws
    total += (n < 0x80 ? 1 : 4) + (v < 0x80 ? 1 : 4) + n + v;
  }
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  const putLength = (len: number): void => {
    if (len < 0x80) out[at++] = len;
    else at = out.writeUInt32BE((len | 0x80000000) >>> 0, at);
  };
  for (const [name, value] of list) {
    putLength(Buffer.byteLength(name, 'utf8'));
    putLength(Buffer.byteLength(value, 'utf8'));
    at += out.write(name, at, 'utf8');
    at += out.write(value, at, 'utf8');
  }
  return out;
}

/** The whole PARAMS stream: the pairs split over as many records as needed, then the empty one. */
export function encodeParams(requestId: number, env: Record<string, string>): Buffer {
  return Buffer.concat(paramsRecords(requestId, env));
}

function paramsRecords(requestId: number, env: Record<string, string>): Buffer[] {
  const pairs = encodeNameValuePairs(Object.entries(env));
  const records = encodeRecords(RecordType.Params, requestId, pairs);
  if (pairs.length > 0) records.push(...encodeRecords(RecordType.Params, requestId, Buffer.alloc(0)));
  return records;
}

/**
 * A request's opening in one buffer (one write): BEGIN_REQUEST, the PARAMS stream, then
 * `stdin` as STDIN records when given, and the empty STDIN record when `endStdin`.
 */
export function encodeRequest(requestId: number, keepConn: boolean, env: Record<string, string>, stdin: Buffer | null, endStdin: boolean): Buffer {
  const pieces = [encodeBeginRequest(requestId, keepConn), ...paramsRecords(requestId, env)];
  if (stdin !== null && stdin.length > 0) pieces.push(...encodeRecords(RecordType.Stdin, requestId, stdin));
  if (endStdin) pieces.push(header(RecordType.Stdin, requestId, 0, 0));
  return Buffer.concat(pieces);
}

const kNotAscii = /[^\x00-\x7f]/;

/** A record header as 8 latin1 characters (one per byte). */
function headerChars(type: number, requestId: number, contentLength: number, paddingLength: number): string {
  return String.fromCharCode(kVersion, type, requestId >> 8, requestId & 0xff, contentLength >> 8, contentLength & 0xff, paddingLength, 0);
}

/** A name-value length (spec §3.4) as latin1 characters: one below 128, else four with the high bit. */
function lengthChars(n: number): string {
  return n < 0x80 ? String.fromCharCode(n) : String.fromCharCode(((n >>> 24) & 0x7f) | 0x80, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * encodeRequest(requestId, keepConn, env, null, endStdin) as a latin1 string (one character
 * per byte, for `socket.write(s, 'latin1')`), or null when a name or value is not ASCII (the
 * caller then uses encodeRequest). The same bytes, built as one string and converted in one
 * call instead of a byteLength and a write per name and value (perf: encodeRequest was ~7% of
 * lisod's own CPU per php-fpm request).
 */
export function encodeRequestLatin1(requestId: number, keepConn: boolean, env: Record<string, string>, endStdin: boolean): string | null {
  if (requestId < 0 || requestId > 0xffff) throw new RangeError(`FastCGI request id ${requestId} out of range`);
  let pairs = '';
  for (const name in env) {
    const value = env[name]!;
    if (kNotAscii.test(name) || kNotAscii.test(value)) return null;
    pairs += lengthChars(name.length) + lengthChars(value.length) + name + value;
  }
  let out = headerChars(RecordType.BeginRequest, requestId, 8, 0) +
    String.fromCharCode(0, kRoleResponder, keepConn ? kFlagKeepConn : 0, 0, 0, 0, 0, 0);
  for (let offset = 0; offset < pairs.length; offset += kMaxContent) {
    const piece = pairs.slice(offset, offset + kMaxContent);
    const padding = (8 - (piece.length % 8)) % 8;
    out += headerChars(RecordType.Params, requestId, piece.length, padding) + piece + '\0'.repeat(padding);
  }
  out += headerChars(RecordType.Params, requestId, 0, 0);
  if (endStdin) out += headerChars(RecordType.Stdin, requestId, 0, 0);
  return out;
}

/** STDIN records for `data`; an empty buffer gives the end-of-stream record. */
export function encodeStdin(requestId: number, data: Buffer): Buffer[] {
  return encodeRecords(RecordType.Stdin, requestId, data);
}

/** Decodes name-value pairs; throws FastCgiProtocolError when a length runs past the end. */
export function decodeNameValuePairs(content: Buffer): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  const length = (): number => {
    if (i >= content.length) throw new FastCgiProtocolError('truncated name-value length');
    if (content[i] < 0x80) return content[i++];
    if (i + 4 > content.length) throw new FastCgiProtocolError('truncated 4-byte name-value length');
    const n = content.readUInt32BE(i) & 0x7fffffff;
    i += 4;
    return n;
  };
  while (i < content.length) {
    const nl = length();
    const vl = length();
    if (i + nl + vl > content.length) throw new FastCgiProtocolError('name-value pair runs past the record');
    const name = content.toString('utf8', i, i + nl);
    const value = content.toString('utf8', i + nl, i + nl + vl);
    i += nl + vl;
    out.push([name, value]);
  }
  return out;
}

/** FCGI_END_REQUEST_BODY (spec §5.5); throws unless it is exactly 8 bytes. */
export function decodeEndRequest(content: Buffer): EndRequest {
  if (content.length !== 8) throw new FastCgiProtocolError(`END_REQUEST body of ${content.length} bytes, not 8`);
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4] };
}

/**
 * Incremental record decoder: push() whatever the socket read, at any split, and get the
 * complete records it finished. At most one record (≤ 65,535 + 255 + 8 bytes) is held.
 * Throws FastCgiProtocolError for a version other than 1; after that the decoder is unusable.
 */
export class RecordDecoder {
  #pending: Buffer = Buffer.alloc(0);
  #failed = false;

  push(chunk: Buffer): FcgiRecord[] {
    if (this.#failed) throw new FastCgiProtocolError('decoder already failed');
    let buf = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const out: FcgiRecord[] = [];
    while (buf.length >= kHeaderBytes) {
      if (buf[0] !== kVersion) {
        this.#failed = true;
        throw new FastCgiProtocolError(`record version ${buf[0]}, not 1`);
      }
      const contentLength = buf.readUInt16BE(4);
      const total = kHeaderBytes + contentLength + buf[6];
      if (buf.length < total) break;
      // Copy the content out so a record does not pin a large read buffer.
      out.push({
        type: buf[1],
        requestId: buf.readUInt16BE(2),
        content: Buffer.from(buf.subarray(kHeaderBytes, kHeaderBytes + contentLength)),
      });
      buf = buf.subarray(total);
    }
    this.#pending = buf.length > 0 ? Buffer.from(buf) : Buffer.alloc(0);
    return out;
  }

  /** Bytes of an incomplete record still held (0 at a record boundary). */
  get pendingBytes(): number {
    return this.#pending.length;
  }
}
