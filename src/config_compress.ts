// The [compress] table (or `compress = false`): content codings for static files —
// precompressed file.br/file.gz siblings and on-the-fly gzip/Brotli with a bounded cache.
import { suggest, type FileReader } from './config_reader.js';
import type { CompressSpec } from './native.js';

export const kCompressKeys = [
  'on_the_fly', 'precompressed', 'min_bytes', 'max_bytes', 'cache_bytes', 'gzip_level', 'brotli_quality', 'types',
] as const;

export const kDefaultCompress: Required<CompressSpec> = {
  onTheFly: true,
  precompressed: true,
  minBytes: 1024,
  maxBytes: 8 * 1024 ** 2,
  cacheBytes: 64 * 1024 ** 2,
  gzipLevel: 6,
  brotliQuality: 5,
  types: ['text/*', 'application/javascript', 'application/json', 'application/xml', 'application/wasm',
    'image/svg+xml', 'application/manifest+json', 'image/x-icon'],
};

const kMediaRange = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/;

/** Reads `compress = true|false` or the [compress] table into the draft. */
export function readCompress(r: FileReader, v: unknown): void {
  if (typeof v === 'boolean') {
    r.set('compress', ['compress'], { ...kDefaultCompress, onTheFly: v, precompressed: v });
    return;
  }
  const t = r.table(v, ['compress']);
  const c: Required<CompressSpec> = { ...kDefaultCompress };
  for (const [key, value] of Object.entries(t)) {
    const kp = ['compress', key];
    switch (key as (typeof kCompressKeys)[number]) {
      case 'on_the_fly': c.onTheFly = r.boolean(value, kp); break;
      case 'precompressed': c.precompressed = r.boolean(value, kp); break;
      case 'min_bytes': c.minBytes = r.integer(value, kp, 0, 'bytes'); break;
      case 'max_bytes': c.maxBytes = r.integer(value, kp, 1, 'bytes'); break;
      case 'cache_bytes': c.cacheBytes = r.integer(value, kp, 0, 'bytes'); break;
      case 'gzip_level': c.gzipLevel = level(r, value, kp, 1, 9, 'zlib levels; 6 is gzip\'s default'); break;
      case 'brotli_quality': c.brotliQuality = level(r, value, kp, 0, 11, '11 is smallest and slowest; results are cached'); break;
      case 'types': {
        const types = r.stringList(value, kp).map((s) => s.toLowerCase());
        for (const s of types) {
          if (!kMediaRange.test(s)) r.fail(kp, `compress.types: '${s}' is not a media type`, 'e.g. "text/*" or "application/json"');
        }
        c.types = types;
        break;
      }
      default:
        r.fail(kp, `unknown key '${key}' in [compress]`, suggest(key, kCompressKeys));
    }
  }
  if (c.onTheFly && c.maxBytes > c.cacheBytes) {
    r.fail(['compress', 'max_bytes' in t ? 'max_bytes' : 'cache_bytes'],
      `compress.max_bytes (${c.maxBytes}) exceeds compress.cache_bytes (${c.cacheBytes})`,
      'a compressed file must fit the cache, or it would be compressed again for every request');
  }
  r.set('compress', ['compress'], c);
}

function level(r: FileReader, v: unknown, kp: string[], min: number, max: number, hint: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    r.fail(kp, `${kp.join('.')} must be an integer ${min}–${max}, got ${JSON.stringify(v)}`, hint);
  }
  return v as number;
}
