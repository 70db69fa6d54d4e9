// A minimal HTTP/2 client for tests (node:http2): connect to lisod's TLS port trusting the
// test CA, send one request, collect status, headers and body.
import http2 from 'node:http2';

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
}

/** Connects to https://localhost:PORT on 127.0.0.1, trusting `ca`; `extra` e.g. a client key and certificate. */
export function h2Connect(port: number, ca: string | Buffer, extra: http2.SecureClientSessionOptions = {}): http2.ClientHttp2Session {
  return http2.connect(`https://localhost:${port}`, { ca, host: '127.0.0.1', ...extra } as http2.SecureClientSessionOptions);
}

/**
 * One request on `s`. `body`: one Buffer (sent with END_STREAM), or several written one after
 * another with backpressure and no content-length (DATA frames until END_STREAM).
 */
export function h2Request(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | Buffer[]): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = s.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let got: http2.IncomingHttpHeaders = {};
    req.on('response', (h) => { got = h; });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(got[':status']), headers: got, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    if (Array.isArray(body)) {
      (async () => {
        for (const part of body) if (!req.write(part)) await new Promise((r) => req.once('drain', r));
        req.end();
      })().catch(reject);
    } else if (body !== undefined) {
      req.end(body);
    }
  });
}
