// Pure construction of a CGI/1.1 script environment (RFC 3875 §4.1) from a request handed
// over by the native server. No process state is read here; the runner supplies it.
import type { CgiRequest, TlsIdentity } from './native.js';

export interface CgiEnvOptions {
  scriptFilename: string; // absolute path of the script (SCRIPT_FILENAME)
  scriptName: string; // URI prefix that selects the script ('/cgi'); SCRIPT_NAME
  serverName: string; // SERVER_NAME when the request carries no usable Host
  inherited: Readonly<Record<string, string>>; // PATH, pass_env values, [cgi.env]; never changed after its first use (filtered once)
  pathInfo?: string; // when scriptName is not a prefix of the path (FastCGI root/index); default: the path after scriptName
}

export interface CgiTarget {
  path: string; // raw (still percent-encoded) path of the target
  query: string; // everything after the first '?', raw
  pathInfo: string; // path after scriptName, percent-decoded
}

/** Thrown for a request-target that cannot become a CGI environment (caller answers 400). */
export class CgiTargetError extends Error {}

const kSoftware = 'Liso/1.0';
// Request headers that never become HTTP_* variables: Content-Type/-Length have their own
// variables; Proxy would become HTTP_PROXY (httpoxy, CVE-2016-5385); the rest are
// hop-by-hop or describe a framing the script never sees (the body arrives decoded).
const kSkippedHeaders = new Set([
  'content-type',
  'content-length',
  'proxy',
  'proxy-authorization',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'keep-alive',
]);
// A field name becomes a variable only if the mapping is unambiguous: '_' is refused so that
// `X_Forwarded_For` cannot pose as `X-Forwarded-For` (RFC 3875 §4.1.18 maps '-' to '_').
const kHeaderName = /^[A-Za-z0-9-]+$/;
const kAbsoluteForm = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?]*/;
const kHostName = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]*)?$/;
// Variables that only the request (or its connection's TLS identity) may define; an
// inherited value ([cgi.env], env_paths, pass_env) would lie to the script.
const kRequestOwned = /^(HTTP_.*|HTTPS|CONTENT_LENGTH|CONTENT_TYPE|SSL_.*|REMOTE_USER|AUTH_TYPE)$/;
const kIdentityOwned = /^(SSL_.*|REMOTE_USER|AUTH_TYPE)$/;

/** True for the variables only a connection's TLS identity sets (config warns about them). */
export function isIdentityVariable(name: string): boolean {
  return kIdentityOwned.test(name);
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Percent-decodes a URI path (RFC 3986 §2.1) into UTF-8 text; throws on bad escapes. */
export function percentDecode(raw: string): string {
  if (!raw.includes('%')) {
    if (raw.includes('\0')) throw new CgiTargetError('NUL in path');
    return raw;
  }
  const bytes: number[] = [];
  const src = Buffer.from(raw, 'utf8');
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const hex = src.subarray(i + 1, i + 3).toString('latin1');
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new CgiTargetError(`bad percent-escape in ${raw}`);
    bytes.push(parseInt(hex, 16));
    i += 2;
  }
  let text: string;
  try {
    text = utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw new CgiTargetError('path is not UTF-8 after percent-decoding');
  }
  if (text.includes('\0')) throw new CgiTargetError('NUL in path');
  return text;
}

/** Splits a request-target (origin- or absolute-form) into path, query and PATH_INFO. */
export function parseCgiTarget(target: string, scriptName: string): CgiTarget {
  const origin = target.replace(kAbsoluteForm, '');
  const q = origin.indexOf('?');
  const path = q < 0 ? origin : origin.slice(0, q);
  const query = q < 0 ? '' : origin.slice(q + 1);
  if (path !== scriptName && !path.startsWith(scriptName + '/')) {
    throw new CgiTargetError(`${path} is not under ${scriptName}`);
  }
  return { path, query, pathInfo: percentDecode(path.slice(scriptName.length)) };
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; other addresses unchanged. */
function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Host name part of a Host header value (RFC 9110 §7.2), or '' when unusable. */
function hostName(host: string): string {
  const m = kHostName.exec(host.trim());
  return m ? m[1] : '';
}

// The inherited table is fixed per runner: filter it once, not per request.
const kInheritedCache = new WeakMap<Readonly<Record<string, string>>, Array<[string, string]>>();

function inheritedEntries(inherited: Readonly<Record<string, string>>): Array<[string, string]> {
  let entries = kInheritedCache.get(inherited);
  if (!entries) {
    entries = Object.entries(inherited).filter(([key]) => !kRequestOwned.test(key));
    kInheritedCache.set(inherited, entries);
  }
  return entries;
}

/**
 * The complete environment for one script run. `request.contentLength` must be the decoded
 * body length (the runner spools chunked bodies first); -1 or no body leaves CONTENT_LENGTH
 * unset. Throws CgiTargetError when the target cannot be mapped.
 */
export function buildCgiEnv(request: CgiRequest, options: CgiEnvOptions): Record<string, string> {
  const target = parseCgiTarget(request.target, options.pathInfo === undefined ? options.scriptName : '');
  const env: Record<string, string> = {};
  for (const [key, value] of inheritedEntries(options.inherited)) env[key] = value;
  const joined = new Map<string, string>();
  let contentType: string | undefined;
  let host: string | undefined;
  let sawContentLength = false;
  for (let i = 0; i + 1 < request.headers.length; i += 2) {
    const name = request.headers[i];
    const value = request.headers[i + 1];
    const lower = name.toLowerCase();
    if (value.includes('\0')) continue;
    if (lower === 'content-type') contentType ??= value;
    if (lower === 'host') host ??= value;
    if (lower === 'content-length') sawContentLength = true;
    if (kSkippedHeaders.has(lower) || !kHeaderName.test(name)) continue;
    const key = 'HTTP_' + name.toUpperCase().replaceAll('-', '_');
    const prior = joined.get(key);
    // RFC 9110 §5.3 combines repeated fields with ", "; Cookie uses "; " (RFC 6265 §5.4).
    joined.set(key, prior === undefined ? value : prior + (lower === 'cookie' ? '; ' : ', ') + value);
  }
  for (const [key, value] of joined) env[key] = value;

  env.GATEWAY_INTERFACE = 'CGI/1.1';
  env.SERVER_SOFTWARE = kSoftware;
  env.SERVER_PROTOCOL = request.version;
  env.SERVER_NAME = (host !== undefined && hostName(host)) || options.serverName;
  env.SERVER_ADDR = plainAddress(request.localAddress);
  env.SERVER_PORT = String(request.localPort);
  env.REMOTE_ADDR = plainAddress(request.remoteAddress);
  env.REMOTE_PORT = String(request.remotePort);
  env.REQUEST_METHOD = request.method;
  env.REQUEST_URI = request.target;
  env.SCRIPT_NAME = options.scriptName;
  env.SCRIPT_FILENAME = options.scriptFilename;
  env.PATH_INFO = options.pathInfo ?? target.pathInfo;
  env.QUERY_STRING = target.query;
  // RFC 3875 §4.1.2: set when a body is attached; `Content-Length: 0` is reported as 0.
  if (request.hasBody && request.contentLength >= 0) {
    env.CONTENT_LENGTH = String(request.contentLength);
  } else if (!request.hasBody && sawContentLength) {
    env.CONTENT_LENGTH = '0';
  }
  if (contentType !== undefined) env.CONTENT_TYPE = contentType;
  if (request.tls) env.HTTPS = 'on';
  if (request.tlsIdentity) Object.assign(env, identityEnv(request.tlsIdentity));
  return env;
}

/**
 * mod_ssl's variables for the connection's TLS identity (Apache StdEnvVars names). The
 * user (REMOTE_USER, AUTH_TYPE=Cert) only when the certificate was verified.
 */
export function identityEnv(id: TlsIdentity): Record<string, string> {
  const env: Record<string, string> = { SSL_PROTOCOL: id.protocol, SSL_CIPHER: id.cipher, SSL_CLIENT_VERIFY: id.verify };
  const optional: Array<[string, string | undefined]> = [
    ['SSL_CLIENT_S_DN', id.subjectDn], ['SSL_CLIENT_S_DN_CN', id.subjectCn], ['SSL_CLIENT_I_DN', id.issuerDn],
    ['SSL_CLIENT_M_SERIAL', id.serial], ['SSL_CLIENT_V_START', id.notBefore], ['SSL_CLIENT_V_END', id.notAfter],
    ['SSL_CLIENT_CERT', id.certPem],
  ];
  for (const [name, value] of optional) if (value !== undefined && value !== '') env[name] = value;
  if (id.verify === 'SUCCESS' && id.subjectCn) {
    env.REMOTE_USER = id.subjectCn;
    env.AUTH_TYPE = 'Cert';
  }
  return env;
}
