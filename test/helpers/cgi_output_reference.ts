// The TypeScript CGI head parser as it was before the byte-level parsing moved into
// native/cgi_output.cc: kept only as the oracle for test/cgi_output_native.test.ts, which checks
// the native-backed CgiOutputParser gives the same results on generated output.
import { STATUS_CODES } from 'node:http';

export type CgiHead =
  // NPH: `head` is the status line and header section up to and including the blank line,
  // relayed byte for byte; the body follows in `rest` and later chunks.
  | { kind: 'nph'; status: number; head: Buffer }
  // Document or client-redirect response (§6.2.1, §6.2.3, §6.2.4): headers are flat
  // [name, value, …] without the CGI fields and the fields the server owns.
  | { kind: 'response'; status: number; reason: string; headers: string[]; noBody: boolean }
  // Local redirect (§6.2.2): the server reprocesses a GET for this abs-path [?query].
  | { kind: 'local-redirect'; location: string }
  | CgiInvalidOutput;

// Anything the server must not relay: answered with 502.
export interface CgiInvalidOutput {
  kind: 'invalid';
  reason: string;
}

export type ParseStep = { done: false } | { done: true; head: CgiHead; rest: Buffer };

export const kDefaultMaxHeadBytes = 64 * 1024;

const kToken = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values may hold HTAB and visible/obs-text octets only (RFC 9110 §5.5).
const kBadValueChar = /[\x00-\x08\x0a-\x1f\x7f]/;
const kStatus = /^([1-9][0-9]{2})(?:[ \t]+(.*))?$/;
const kNphStatusLine = /^HTTP\/1\.[0-9] ([1-9][0-9]{2})(?: .*)?$/;
// Owned by the server: it writes Server, Date, Connection and the framing itself.
const kServerOwned = new Set([
  'server',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-connection',
]);

/** Interprets the header lines of a parsed-header response (RFC 3875 §6.2, §6.3). */
export function interpretHeaders(lines: string[]): CgiHead {
  if (lines.length === 0) return { kind: 'invalid', reason: 'no header fields before the blank line' };
  let status: string | undefined;
  let location: string | undefined;
  let contentLength: string | undefined;
  const headers: string[] = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'invalid', reason: `malformed header line ${JSON.stringify(line.slice(0, 80))}` };
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!kToken.test(name)) return { kind: 'invalid', reason: `bad header name ${JSON.stringify(name.slice(0, 80))}` };
    if (kBadValueChar.test(value)) return { kind: 'invalid', reason: `control character in ${name}` };
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (status !== undefined) return { kind: 'invalid', reason: 'more than one Status field' };
      status = value;
    } else if (lower === 'location') {
      if (location !== undefined) return { kind: 'invalid', reason: 'more than one Location field' };
      location = value;
    } else if (lower === 'content-length') {
      if (!/^[0-9]{1,15}$/.test(value)) return { kind: 'invalid', reason: `bad Content-Length ${JSON.stringify(value)}` };
      if (contentLength !== undefined && Number(contentLength) !== Number(value)) {
        return { kind: 'invalid', reason: 'conflicting Content-Length fields' };
      }
      if (contentLength === undefined) headers.push(name, String(Number(value)));
      contentLength = value;
    } else if (!kServerOwned.has(lower)) {
      headers.push(name, value);
    }
  }

  let code = 200;
  let reason = 'OK';
  if (status !== undefined) {
    const m = kStatus.exec(status);
    if (!m) return { kind: 'invalid', reason: `bad Status ${JSON.stringify(status.slice(0, 80))}` };
    code = Number(m[1]);
    // A script answers with a final response; interim 1xx responses are not CGI output.
    if (code < 200 || code > 599) return { kind: 'invalid', reason: `Status ${code} is not a final status` };
    reason = m[2]?.trim() || STATUS_CODES[code] || 'Unknown';
  }
  if (location !== undefined) {
    if (location === '') return { kind: 'invalid', reason: 'empty Location' };
    // §6.2.2: a local path with no Status is a local redirect, served by the server itself.
    if (status === undefined && location.startsWith('/') && !location.startsWith('//')) {
      return { kind: 'local-redirect', location };
    }
    // §6.2.3 client redirect: 302 unless the script chose a status.
    if (status === undefined) {
      code = 302;
      reason = 'Found';
    }
    // Absolute URIs, abs-paths with a Status, and relative references (RFC 9110 §10.2.2)
    // are all relayed as written.
    headers.push('Location', location);
  }
  return { kind: 'response', status: code, reason, headers, noBody: code === 204 || code === 304 };
}

/**
 * Feed stdout chunks with push() until it reports done; call end() at EOF if it never did.
 * Lines end in LF or CRLF (RFC 3875 §6.3 "NL"); the head ends at the first empty line.
 * Header text is decoded as UTF-8, the encoding the native side writes strings back in,
 * so UTF-8 field values round-trip (other non-ASCII bytes become U+FFFD).
 */
export class CgiOutputParser {
  readonly #maxHeadBytes: number;
  #buffer: Buffer = Buffer.alloc(0);
  #scanned = 0; // bytes of #buffer already split into complete lines
  #lines: string[] = [];
  #finished = false;

  constructor(maxHeadBytes = kDefaultMaxHeadBytes) {
    this.#maxHeadBytes = maxHeadBytes;
  }

  push(chunk: Buffer): ParseStep {
    if (this.#finished) throw new Error('CgiOutputParser: push after the head was complete');
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#scanned < this.#buffer.length) {
      const nl = this.#buffer.indexOf(0x0a, this.#scanned);
      if (nl < 0) break;
      let end = nl;
      if (end > this.#scanned && this.#buffer[end - 1] === 0x0d) end--;
      const line = this.#buffer.toString('utf8', this.#scanned, end);
      this.#scanned = nl + 1;
      if (line === '') return this.#complete(this.#scanned);
      this.#lines.push(line);
    }
    if (this.#buffer.length > this.#maxHeadBytes) {
      return this.#fail(`header section longer than ${this.#maxHeadBytes} bytes`);
    }
    return { done: false };
  }

  /** EOF before a complete head: the output cannot be relayed. */
  end(): CgiInvalidOutput {
    this.#finished = true;
    if (this.#buffer.length === 0) return { kind: 'invalid', reason: 'no output' };
    return { kind: 'invalid', reason: 'output ended before the blank line that closes the header section' };
  }

  #complete(headEnd: number): ParseStep {
    this.#finished = true;
    const rest = this.#buffer.subarray(headEnd);
    const first = this.#lines[0] ?? '';
    if (first.startsWith('HTTP/')) {
      const m = kNphStatusLine.exec(first);
      if (!m) return { done: true, head: { kind: 'invalid', reason: `bad NPH status line ${JSON.stringify(first.slice(0, 80))}` }, rest };
      return { done: true, head: { kind: 'nph', status: Number(m[1]), head: this.#buffer.subarray(0, headEnd) }, rest };
    }
    return { done: true, head: interpretHeaders(this.#lines), rest };
  }

  #fail(reason: string): ParseStep {
    this.#finished = true;
    return { done: true, head: { kind: 'invalid', reason }, rest: Buffer.alloc(0) };
  }
}
