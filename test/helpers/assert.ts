// Shared assertions for lisod responses: the headers every response must carry,
// file responses (status, type, length, Last-Modified, sha256) and error responses.
import type { ExecutionContext } from 'ava';
import fs from 'node:fs';
import type { DocFile } from './docroot.js';
import { type Conn, type HttpResponse, get, headerCount, httpDate, kImfFixdate, sha256 } from './client.js';

/** Short description of a response for assertion messages. */
export function describe(res: HttpResponse): string {
  const head = res.raw.subarray(0, Math.min(res.raw.length, 600)).toString('latin1');
  return JSON.stringify(head);
}

/**
 * Server: Liso/1.0, one Date in IMF-fixdate within a minute of now, one Connection, and a
 * Content-Length that matches the body (unless interim/304, or `head` where it describes
 * the would-be body).
 */
export function assertCommonHeaders(t: ExecutionContext, res: HttpResponse, opts: { head?: boolean } = {}): void {
  const ctx = describe(res);
  t.is(res.headers['server'], 'Liso/1.0', `Server header: ${ctx}`);
  t.is(headerCount(res, 'date'), 1, `exactly one Date: ${ctx}`);
  const date = res.headers['date'] ?? '';
  t.regex(date, kImfFixdate, `Date is IMF-fixdate: ${ctx}`);
  t.true(Math.abs(Date.parse(date) - Date.now()) < 60_000, `Date is now-ish: ${date}`);
  t.is(headerCount(res, 'connection'), 1, `exactly one Connection header: ${ctx}`);
  t.regex(res.headers['connection'] ?? '', /^(keep-alive|close)$/i, `Connection value: ${ctx}`);
  if (res.status >= 200 && res.status !== 304 && res.status !== 204) {
    t.false('transfer-encoding' in res.headers, `no chunked framing where the length is known: ${ctx}`);
    t.is(headerCount(res, 'content-length'), 1, `exactly one Content-Length: ${ctx}`);
    if (!opts.head) t.is(Number(res.headers['content-length']), res.body.length, `Content-Length = body: ${ctx}`);
  }
}

/** A 200 (or given status) carrying exactly this file, with type and Last-Modified. */
export function assertFile(
  t: ExecutionContext, res: HttpResponse, file: DocFile,
  opts: { head?: boolean; type?: string | RegExp; status?: number } = {},
): void {
  const ctx = describe(res);
  t.is(res.status, opts.status ?? 200, `status: ${ctx}`);
  assertCommonHeaders(t, res, { head: opts.head });
  t.is(Number(res.headers['content-length']), file.body.length, `Content-Length = file size: ${ctx}`);
  if (opts.head) {
    t.is(res.body.length, 0, 'HEAD has no body');
  } else {
    t.is(sha256(res.body), file.sha256, `body sha256 of ${file.path}`);
  }
  t.truthy(res.headers['content-type'], `Content-Type present: ${ctx}`);
  if (opts.type !== undefined) {
    const base = (res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (typeof opts.type === 'string') t.is(base, opts.type, `Content-Type of ${file.path}`);
    else t.regex(base, opts.type, `Content-Type of ${file.path}`);
  }
  t.is(res.headers['last-modified'], httpDate(fs.statSync(file.path).mtimeMs), `Last-Modified = mtime: ${ctx}`);
}

/** An error response: status, common headers, a small HTML body. */
export function assertError(t: ExecutionContext, res: HttpResponse, status: number, opts: { head?: boolean } = {}): void {
  const ctx = describe(res);
  t.is(res.status, status, `status: ${ctx}`);
  assertCommonHeaders(t, res, opts);
  t.regex(res.headers['content-type'] ?? '', /^text\/html\b/i, `error Content-Type is HTML: ${ctx}`);
  if (!opts.head) {
    t.true(res.body.length > 0, `error has a body: ${ctx}`);
    t.true(res.body.length < 4096, `error body is small: ${ctx}`);
  }
}

/**
 * The Connection header tells the truth: "close" → the server closes; otherwise the
 * connection still answers a GET for `probe` (a known file).
 */
export async function assertConnectionHonest(
  t: ExecutionContext, conn: Conn, res: HttpResponse, probe: DocFile, probePath: string,
): Promise<void> {
  if (/close/i.test(res.headers['connection'] ?? '')) {
    const rest = await conn.readToEnd(5000).catch((e: Error) => e);
    t.true(Buffer.isBuffer(rest), `server closes after "Connection: close" (${describe(res)})`);
    if (Buffer.isBuffer(rest)) t.is(rest.length, 0, `no bytes after a close response: ${JSON.stringify(rest.toString('latin1').slice(0, 200))}`);
  } else {
    await conn.write(get(probePath));
    const next = await conn.readResponse();
    t.is(next.status, 200, `connection kept alive after ${res.status} answers the next request`);
    t.is(sha256(next.body), probe.sha256);
  }
}

/** stderr without the warning lisod prints on the terminal when it runs as root without
 *  `user` (the tests run as root on CI): what remains is what a test asserts about. */
export function withoutRootWarning(stderr: string): string {
  return stderr.replace(/^lisod: warning: running as root: .*\n/gm, '');
}
