// Incremental parser for a CGI script's output head (RFC 3875 §6): parsed headers with the
// Status/Location/Content-Type rules, or NPH output that starts with a status line (§6.2.2).
// The byte-level work is native/cgi_output.cc (pure, fuzzed); this decodes and words it.
import { STATUS_CODES } from 'node:http';

import { native } from './native.js';

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

const kEmpty = Buffer.alloc(0); // shared: a parser per request made its own (~3% of lisod's CPU per CGI request)
const kFixed = 13; // layout slots before the fields (native/cgi_output_addon.h)
const kKinds = ['response', 'local-redirect', 'nph', 'invalid'] as const; // CgiKind, in order

/** Builds the CgiHead from the native layout; text is decoded from buf as UTF-8. */
function fromLayout(buf: Buffer, r: Int32Array, maxHeadBytes: number): CgiHead {
  const at = (i: number) => r[i] ?? -1;
  const text = (slot: number) => buf.toString('utf8', Math.max(at(slot), 0), Math.max(at(slot + 1), 0));
  const quoted = (slot: number) => JSON.stringify(text(slot).slice(0, 80));
  const status = at(5);
  switch (kKinds[at(1)]) {
    case 'local-redirect':
      return { kind: 'local-redirect', location: text(10) };
    case 'nph':
      return { kind: 'nph', status, head: buf.subarray(0, at(0)) };
    case 'response': {
      const headers: string[] = [];
      for (let i = kFixed; i < kFixed + 4 * at(12); i += 4) headers.push(text(i), text(i + 2));
      const reason = at(6) ? text(7) || STATUS_CODES[status] || 'Unknown' : at(9) ? 'Found' : 'OK';
      // Absolute URIs, abs-paths with a Status, and relative references (RFC 9110 §10.2.2)
      // are all relayed as written.
      if (at(9)) headers.push('Location', text(10));
      return { kind: 'response', status, reason, headers, noBody: status === 204 || status === 304 };
    }
  }
  // CgiError in native/cgi_output.h, in declaration order; the text is slots 3–4.
  const reasons = [
    () => 'invalid output',
    () => `header section longer than ${maxHeadBytes} bytes`,
    () => 'no header fields before the blank line',
    () => `malformed header line ${quoted(3)}`,
    () => `bad header name ${quoted(3)}`,
    () => `control character in ${text(3)}`,
    () => 'more than one Status field',
    () => 'more than one Location field',
    () => `bad Content-Length ${JSON.stringify(text(3))}`,
    () => 'conflicting Content-Length fields',
    () => `bad Status ${quoted(3)}`,
    () => `Status ${status} is not a final status`,
    () => 'empty Location',
    () => `bad NPH status line ${quoted(3)}`,
    () => 'too many header fields',
  ];
  return { kind: 'invalid', reason: (reasons[at(2)] ?? reasons[0]!)() };
}

/** Interprets the header lines of a parsed-header response (RFC 3875 §6.2, §6.3). */
export function interpretHeaders(lines: string[]): CgiHead {
  const parts = lines.map((line) => Buffer.from(line, 'utf8'));
  const ends = new Uint32Array(parts.length);
  let end = 0;
  parts.forEach((part, i) => (ends[i] = end += part.length));
  const buf = Buffer.concat(parts);
  return fromLayout(buf, native.interpretCgiLines(buf, ends), kDefaultMaxHeadBytes);
}

/**
 * Feed stdout chunks with push() until it reports done; call end() at EOF if it never did.
 * Lines end in LF or CRLF (RFC 3875 §6.3 "NL"); the head ends at the first empty line.
 * Header text is decoded as UTF-8, the encoding the native side writes strings back in,
 * so UTF-8 field values round-trip (other non-ASCII bytes become U+FFFD).
 */
export class CgiOutputParser {
  readonly #maxHeadBytes: number;
  #buffer: Buffer = kEmpty;
  #scanned = 0; // bytes of #buffer already searched for the blank line
  #finished = false;

  constructor(maxHeadBytes = kDefaultMaxHeadBytes) {
    this.#maxHeadBytes = maxHeadBytes;
  }

  push(chunk: Buffer): ParseStep {
    if (this.#finished) throw new Error('CgiOutputParser: push after the head was complete');
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const r = native.parseCgiHead(this.#buffer, this.#maxHeadBytes, this.#scanned);
    if (r === null) {
      this.#scanned = this.#buffer.length;
      return { done: false };
    }
    this.#finished = true;
    const head = fromLayout(this.#buffer, r, this.#maxHeadBytes);
    return { done: true, head, rest: r[0]! < 0 ? kEmpty : this.#buffer.subarray(r[0]) };
  }

  /** EOF before a complete head: the output cannot be relayed. */
  end(): CgiInvalidOutput {
    this.#finished = true;
    if (this.#buffer.length === 0) return { kind: 'invalid', reason: 'no output' };
    return { kind: 'invalid', reason: 'output ended before the blank line that closes the header section' };
  }
}
