// Where an application's response body ends: from Content-Length, from the chunked framing
// of a relayed NPH response, or only at EOF. Lets the runner end a response (and free its slot)
// as soon as its framing is complete, and keep an NPH connection alive when the script's own
// head frames the body (RFC 9112 §6.3, §9.3).

/** Counts a body against its framing; `null` length and no chunking means "until EOF". */
export class BodyFraming {
  #remaining: number | null;
  readonly #chunked: ChunkedEnd | null;
  #complete: boolean;

  constructor(length: number | null, chunked = false) {
    this.#remaining = chunked ? null : length;
    this.#chunked = chunked ? new ChunkedEnd() : null;
    this.#complete = this.#remaining === 0;
  }

  static untilEof(): BodyFraming {
    return new BodyFraming(null);
  }

  /** True once every byte of the body went through take(). */
  get complete(): boolean {
    return this.#complete;
  }

  /** False when the body ends only at EOF. */
  get delimited(): boolean {
    return this.#remaining !== null || this.#chunked !== null;
  }

  /** How many leading bytes of `chunk` still belong to the body (the rest is excess). */
  take(chunk: Buffer): number {
    if (this.#complete) return 0;
    if (this.#chunked) {
      const end = this.#chunked.push(chunk);
      if (end < 0) return chunk.length;
      this.#complete = true;
      return end;
    }
    if (this.#remaining === null) return chunk.length;
    const n = Math.min(chunk.length, this.#remaining);
    this.#remaining -= n;
    if (this.#remaining === 0) this.#complete = true;
    return n;
  }
}

/**
 * Finds the end of a chunked body (RFC 9112 §7.1): last-chunk and the trailer section.
 * Malformed framing is not an error here: the scanner then never reports an end, and the
 * response is delimited by EOF (the connection closes).
 */
export class ChunkedEnd {
  #state: 'size' | 'ext' | 'sizeLf' | 'data' | 'dataCr' | 'dataLf' | 'trailer' | 'trailerLine' | 'trailerLf' | 'endLf' | 'bad' = 'size';
  #size = 0;
  #digits = 0;
  #left = 0;

  /** Feeds bytes; returns the offset just past the end of the body, or -1. */
  push(b: Buffer): number {
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      switch (this.#state) {
        case 'size': {
          const v = hexValue(c);
          if (v >= 0 && this.#digits < 12) {
            this.#size = this.#size * 16 + v;
            this.#digits++;
          } else if (this.#digits > 0 && (c === 0x3b || c === 0x20 || c === 0x09)) {
            this.#state = 'ext';
          } else if (this.#digits > 0 && c === 0x0d) {
            this.#state = 'sizeLf';
          } else {
            this.#state = 'bad';
          }
          break;
        }
        case 'ext':
          if (c === 0x0d) this.#state = 'sizeLf';
          break;
        case 'sizeLf':
          if (c !== 0x0a) {
            this.#state = 'bad';
          } else if (this.#size === 0) {
            this.#state = 'trailer';
          } else {
            this.#left = this.#size;
            this.#state = 'data';
          }
          break;
        case 'data': {
          const n = Math.min(this.#left, b.length - i);
          this.#left -= n;
          i += n - 1;
          if (this.#left === 0) this.#state = 'dataCr';
          break;
        }
        case 'dataCr':
          this.#state = c === 0x0d ? 'dataLf' : 'bad';
          break;
        case 'dataLf':
          if (c !== 0x0a) {
            this.#state = 'bad';
          } else {
            this.#state = 'size';
            this.#size = this.#digits = 0;
          }
          break;
        case 'trailer': // start of a trailer line, or the final CRLF
          this.#state = c === 0x0d ? 'endLf' : 'trailerLine';
          break;
        case 'trailerLine':
          if (c === 0x0d) this.#state = 'trailerLf';
          break;
        case 'trailerLf':
          this.#state = c === 0x0a ? 'trailer' : 'bad';
          break;
        case 'endLf':
          if (c === 0x0a) return i + 1;
          this.#state = 'bad';
          break;
        case 'bad':
          return -1;
      }
    }
    return -1;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

export interface NphFraming {
  body: BodyFraming;
  keepAlive: boolean; // the connection may serve another request after this response
}

/**
 * Framing of an NPH response from its own head (status line + fields, as relayed). The
 * connection is kept only when the head frames the body, does not say `Connection: close`,
 * and both the request and the response are HTTP/1.1; anything else ends at EOF and closes.
 */
export function nphFraming(head: Buffer, request: { method: string; version: string }): NphFraming {
  const lines = head.toString('latin1').split(/\r?\n/);
  const status = Number(/^HTTP\/1\.[0-9] ([0-9]{3})/.exec(lines[0] ?? '')?.[1] ?? 0);
  let length: number | null = null;
  let lengthBad = false;
  let transferEncoding: string | null = null;
  let close = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') {
      const n = /^[0-9]{1,15}$/.test(value) ? Number(value) : NaN;
      if (Number.isNaN(n) || (length !== null && length !== n)) lengthBad = true;
      else length = n;
    } else if (name === 'transfer-encoding') {
      transferEncoding = transferEncoding === null ? value : `${transferEncoding}, ${value}`;
    } else if (name === 'connection') {
      if (value.split(',').some((t) => t.trim().toLowerCase() === 'close')) close = true;
    }
  }
  const http11 = request.version === 'HTTP/1.1' && /^HTTP\/1\.1 /.test(lines[0] ?? '');
  let body: BodyFraming;
  if (request.method === 'HEAD' || (status >= 100 && status < 200) || status === 204 || status === 304) {
    body = new BodyFraming(0);
  } else if (transferEncoding !== null) {
    const codings = transferEncoding.split(',').map((t) => t.trim().toLowerCase());
    body = codings[codings.length - 1] === 'chunked' && http11 ? new BodyFraming(null, true) : BodyFraming.untilEof();
  } else if (length !== null && !lengthBad) {
    body = new BodyFraming(length);
  } else {
    body = BodyFraming.untilEof();
  }
  return { body, keepAlive: body.delimited && !close && http11 };
}
