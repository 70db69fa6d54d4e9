// HTTP/2 keys: http2 (offer ALPN "h2" on the TLS port; on by default where it can be) and
// http2_max_concurrent_streams (SETTINGS_MAX_CONCURRENT_STREAMS), with their checks.
import { ConfigError, type ConfigDraft, type DraftKey, type FileReader, type Origin } from './config_reader.js';

export const kHttp2Keys = ['http2', 'http2_max_concurrent_streams'] as const;
export const kHttp2DefaultMaxStreams = 128;
// nghttp2 1.61 (CVE-2024-28182, CONTINUATION flood) is bundled from Node 20.12.1 on.
const kMinNode: readonly [number, number, number] = [20, 12, 1];

export interface Http2Config {
  enabled: boolean;
  maxStreams: number;
}

/** Reads one top-level key if it is an HTTP/2 key; false when it is not one. */
export function readHttp2Key(r: FileReader, key: string, v: unknown): boolean {
  const kp = [key];
  switch (key as (typeof kHttp2Keys)[number]) {
    case 'http2': r.set('http2', kp, r.boolean(v, kp)); return true;
    case 'http2_max_concurrent_streams': {
      const n = r.integer(v, kp, 1, 'streams per connection');
      if (n > 2 ** 31 - 1) r.fail(kp, `http2_max_concurrent_streams must be at most ${2 ** 31 - 1}, got ${n}`);
      r.set('http2MaxStreams', kp, n);
      return true;
    }
    default: return false;
  }
}

/** True when this Node's bundled nghttp2 has the CONTINUATION flood fix. */
export function nodeHasSafeNghttp2(version: string = process.versions.node): boolean {
  const v = version.split('.').map(Number);
  for (let i = 0; i < 3; ++i) if ((v[i] ?? 0) !== kMinNode[i]) return (v[i] ?? 0) > kMinNode[i]!;
  return true;
}

export function finishHttp2(draft: ConfigDraft, at: (key: DraftKey) => Origin | null): Http2Config {
  const v = draft.values;
  // Unset: on whenever there is a TLS port and this Node's nghttp2 is safe; only an explicit
  // `http2 = true` that cannot be honoured is an error.
  const enabled = v.http2 ?? (v.httpsPort !== undefined && nodeHasSafeNghttp2());
  if (enabled && v.httpsPort === undefined) {
    throw new ConfigError('http2 = true needs https_port: HTTP/2 is offered over TLS only (no h2c)', at('http2'));
  }
  if (enabled && !nodeHasSafeNghttp2()) {
    throw new ConfigError(`http2 = true needs Node ≥ ${kMinNode.join('.')} (its nghttp2 has the CONTINUATION flood fix); this is Node ${process.versions.node}`,
      at('http2'), 'upgrade Node, or set http2 = false');
  }
  return { enabled, maxStreams: v.http2MaxStreams ?? kHttp2DefaultMaxStreams };
}

/**
 * The pure Liso form (the eight positional arguments, no config file) is the drop-in for the
 * course's HTTP/1.1 server, whose contract names `Connection` on every response and
 * `SERVER_PROTOCOL=HTTP/1.1`: it keeps HTTP/1.1 only unless a config file says `http2 = true`.
 */
export function lisoFormHttp1Only(draft: ConfigDraft): ConfigDraft {
  if (draft.values.http2 !== undefined) return draft;
  return { ...draft, values: { ...draft.values, http2: false } };
}
