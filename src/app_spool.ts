// Request bodies buffered before an application sees them: in memory up to a small threshold,
// then in an anonymous temp file (O_TMPFILE, or a name unlinked at once) in spool_dir; all
// bodies of one event loop together stay under a byte budget (spool_max_bytes).
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { AppBodyFile } from './app_transport.js';

/** Bodies up to this size stay in memory (and fit a pipe buffer for the CGI transport). */
export const kMemoryBodyBytes = 64 * 1024;
/** Bytes waiting for the disk above which the body is paused. */
const kWriteHighWater = 256 * 1024;
/**
 * File-bound bytes are copied into slabs of this size, reused once written: the chunks the
 * addon hands over are borrowed views, and a fresh Buffer per chunk left a large upload's worth
 * of garbage for V8 to collect late (a 64 MiB upload raised RSS by ~35 MiB).
 */
const kSlabBytes = 64 * 1024;
// O_TMPFILE (Linux ≥ 3.11: open(2)) = __O_TMPFILE | O_DIRECTORY; __O_TMPFILE is 020000000 on
// every architecture Node runs on except alpha/sparc/parisc. Node passes numeric flags through.
const kOTmpFile = 0o20000000 | fs.constants.O_DIRECTORY;

/** Bytes all spooled bodies of one event loop may hold at once. */
export class SpoolBudget {
  used = 0;
  constructor(readonly max: number) {}

  /** Takes n bytes of the budget; false (nothing taken) when that would exceed max. */
  take(n: number): boolean {
    if (this.used + n > this.max) return false;
    this.used += n;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

export class SpoolFullError extends Error {}

/**
 * Opens a file in `dir` that has no name: O_TMPFILE where the file system supports it,
 * otherwise a random 0600 name unlinked right after the open. The caller owns the fd.
 */
export function openAnonymous(dir: string): number {
  try {
    return fs.openSync(dir, kOTmpFile | fs.constants.O_RDWR, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EOPNOTSUPP' && code !== 'EISDIR' && code !== 'EINVAL' && code !== 'ENOTSUP') throw e;
  }
  const file = path.join(dir, `lisod-body-${process.pid}-${crypto.randomBytes(8).toString('hex')}`);
  const fd = fs.openSync(file, 'wx+', 0o600);
  fs.unlinkSync(file);
  return fd;
}

/**
 * One request body being collected. write() until the end, then finish(); discard() at any
 * time gives everything back (budget, memory, fd). Writes go to the file with pwrite, so the
 * fd's offset stays 0 and the application reads the body from the start.
 */
export class BodySpool {
  length = 0;
  #released = false; // budget given back
  #chunks: Buffer[] = [];
  #fd: number | undefined;
  #writing = false;
  #queued: Buffer[] = []; // full slabs (or the last, partial one at finish) waiting for the disk
  #queuedBytes = 0; // bytes staged for the disk: #queued and #slab
  #slab: Buffer | undefined; // being filled
  #slabUsed = 0;
  #free: Buffer[] = []; // written slabs, for reuse
  #fileOffset = 0; // where the next writev goes
  #onDrain: (() => void) | undefined;
  #onFlushed: (() => void) | undefined;
  #error: Error | undefined;
  #done = false;

  constructor(private readonly dir: string, private readonly budget: SpoolBudget, private readonly onError: (e: Error) => void) {}

  /**
   * Whether a body of n bytes fits what the budget has left now. Nothing is reserved: a
   * declared Content-Length costs a client nothing, so only bytes that arrive take budget.
   */
  fits(n: number): boolean {
    return this.budget.used + n <= this.budget.max;
  }

  /**
   * Adds a copy of chunk (which the caller may reuse on return). Returns false when the caller
   * should pause the body until `onDrain`. Throws SpoolFullError when the budget is exhausted,
   * or the file error that stopped it.
   */
  write(chunk: Uint8Array, onDrain: () => void): boolean {
    if (this.#error) throw this.#error;
    if (this.#released) return true; // discarded: nothing more is kept
    if (!this.budget.take(chunk.length)) throw new SpoolFullError(`spool_max_bytes (${this.budget.max}) reached`);
    this.length += chunk.length;
    if (this.#fd === undefined && this.length <= kMemoryBodyBytes) {
      this.#chunks.push(Buffer.from(chunk));
      return true;
    }
    if (this.#fd === undefined) {
      this.#fd = openAnonymous(this.dir); // throws: the caller answers 500
      for (const c of this.#chunks) this.#stage(c);
      this.#chunks = [];
    }
    this.#stage(chunk);
    this.#pump();
    if (this.#queuedBytes <= kWriteHighWater) return true;
    this.#onDrain = onDrain;
    return false;
  }

  /** Calls back with the whole body: a Buffer, or the spool file (then owned by the callee). */
  finish(done: (body: Buffer | AppBodyFile) => void): void {
    this.#done = true;
    if (this.#fd === undefined) {
      done(Buffer.concat(this.#chunks, this.length));
      this.#chunks = [];
      return;
    }
    this.#seal(); // the last, partial slab
    this.#onFlushed = () => {
      const fd = this.#fd!;
      this.#fd = undefined; // handed over
      done({ fd, length: this.length });
    };
    this.#pump();
    if (!this.#writing) this.#flushed();
  }

  /**
   * Gives back the budget, memory and the file (unless finish() handed it over). The runner
   * calls it when the exchange ends: until then a handed-over file still fills the disk.
   */
  discard(): void {
    if (!this.#released) this.budget.give(this.length);
    this.#released = true;
    this.#chunks = [];
    this.#queued = [];
    this.#free = [];
    this.#slab = undefined;
    this.#onDrain = this.#onFlushed = undefined;
    this.#done = true;
    if (this.#fd !== undefined && !this.#writing) this.#close();
  }

  #close(): void {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) fs.close(fd, () => {});
  }

  /** Copies chunk into slabs; each full slab joins the queue for the disk. */
  #stage(chunk: Uint8Array): void {
    this.#queuedBytes += chunk.length;
    for (let off = 0; off < chunk.length;) {
      if (this.#slab === undefined) {
        this.#slab = this.#free.pop() ?? Buffer.allocUnsafeSlow(kSlabBytes);
        this.#slabUsed = 0;
      }
      const n = Math.min(kSlabBytes - this.#slabUsed, chunk.length - off);
      this.#slab.set(chunk.subarray(off, off + n), this.#slabUsed);
      this.#slabUsed += n;
      off += n;
      if (this.#slabUsed === kSlabBytes) this.#seal();
    }
  }

  #seal(): void {
    if (this.#slab !== undefined && this.#slabUsed > 0) this.#queued.push(this.#slab.subarray(0, this.#slabUsed));
    this.#slab = undefined;
  }

  #pump(): void {
    if (this.#writing || this.#queued.length === 0 || this.#fd === undefined) return;
    const bufs = this.#queued;
    let bytes = 0;
    for (const b of bufs) bytes += b.length;
    this.#queued = [];
    const position = this.#fileOffset;
    this.#fileOffset += bytes;
    this.#writing = true;
    fs.writev(this.#fd, bufs, position, (err, written) => {
      this.#writing = false;
      this.#queuedBytes -= bytes;
      if (!this.#released) {
        for (const b of bufs) if (b.length === kSlabBytes) this.#free.push(b); // whole slabs
      }
      if (!err && written !== bytes) err = Object.assign(new Error(`short write (${written} of ${bytes} bytes)`), { code: 'EIO' });
      if (err) {
        this.#error = new Error(`writing the request body to spool_dir ${this.dir}: ${err.message}`);
        this.onError(this.#error);
        if (this.#done) this.#close();
        return;
      }
      if (this.#onFlushed === undefined && this.#done) {
        this.#close(); // discarded while writing
        return;
      }
      this.#pump();
      if (!this.#writing) this.#flushed();
    });
  }

  #flushed(): void {
    if (this.#queuedBytes <= kWriteHighWater && this.#onDrain) {
      const d = this.#onDrain;
      this.#onDrain = undefined;
      d();
    }
    if (this.#queued.length === 0 && this.#onFlushed) {
      const f = this.#onFlushed;
      this.#onFlushed = undefined;
      f();
    }
  }
}
