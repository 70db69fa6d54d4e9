// Reading the config file's values: typed readers that fail with file:line, locating keys in
// the TOML source, and the draft of settings gathered before defaults are filled in.
import path from 'node:path';
import type { FastCgiMountDraft } from './config_fastcgi.js';

/** Where a setting came from: a line of the config file or a command-line argument. */
export type Origin = { file: string; line?: number; column?: number } | { arg: string };

/** A configuration problem; `toString()` gives "file:line: message (hint: …)". */
export class ConfigError extends Error {
  constructor(
    readonly detail: string,
    readonly origin: Origin | null,
    readonly hint?: string,
  ) {
    super(formatProblem(detail, origin, hint));
    this.name = 'ConfigError';
  }
}

function formatProblem(message: string, origin: Origin | null, hint?: string): string {
  let where = '';
  if (origin && 'file' in origin) {
    where = origin.file;
    if (origin.line !== undefined) where += `:${origin.line}`;
    if (origin.line !== undefined && origin.column !== undefined) where += `:${origin.column}`;
    where += ': ';
  } else if (origin) {
    where = `${origin.arg}: `;
  }
  return `${where}${message}${hint ? ` (hint: ${hint})` : ''}`;
}

// ---------------------------------------------------------------------------------------
// Locating keys in the source text (smol-toml reports positions only for syntax errors).

/** Splits a TOML key ("a.\"b.c\". d") into its parts, unquoting them. */
function splitKey(text: string): string[] {
  const parts: string[] = [];
  let cur = '';
  let quote = '';
  for (const ch of text) {
    if (quote) {
      if (ch === quote) quote = '';
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '.') {
      parts.push(cur.trim());
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur.trim());
  return parts;
}

/**
 * 1-based line where `keyPath` (e.g. ['cgi', 'timeout']) is assigned or its table opens;
 * falls back to the nearest enclosing key or table. Undefined when nothing matches. The
 * n-th (0-based) table of an array `[[name]]` is the path [name, "n"].
 */
export function findKeyLine(source: string, keyPath: readonly string[]): number | undefined {
  const lines = source.split(/\r?\n/);
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  for (let len = keyPath.length; len > 0; len--) {
    const want = keyPath.slice(0, len);
    let table: string[] = [];
    const arrays = new Map<string, number>(); // [[name]] headers seen so far
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const header = /^\s*\[\s*([^[\]]+?)\s*\]\s*(#.*)?$/.exec(line);
      if (header) {
        table = splitKey(header[1]!);
        if (same(table, want)) return i + 1;
        continue;
      }
      const array = /^\s*\[\[\s*([^[\]]+?)\s*\]\]\s*(#.*)?$/.exec(line);
      if (array || /^\s*\[\[/.test(line)) {
        const name = array ? splitKey(array[1]!) : ['[['];
        const n = arrays.get(name.join('.')) ?? 0;
        arrays.set(name.join('.'), n + 1);
        table = [...name, String(n)];
        if (same(table, want)) return i + 1;
        continue;
      }
      const assign = /^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=/.exec(line);
      if (assign && same([...table, ...splitKey(assign[1]!)], want)) return i + 1;
    }
  }
  return undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

/** "did you mean 'x'?" for a near miss among `known`, else a list of the valid keys. */
export function suggest(key: string, known: readonly string[]): string {
  let best = '';
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (bestD <= Math.max(2, Math.floor(key.length / 3))) return `did you mean '${best}'?`;
  return `valid keys here: ${known.join(', ')}`;
}

// ---------------------------------------------------------------------------------------
// Reading the file: types and ranges only; the file system is checked in checkPaths().

/** Settings gathered from the file and/or arguments before defaults and checks. */
export interface Draft {
  httpPort?: number;
  httpsPort?: number;
  bind?: string[];
  www?: string;
  cgiScript?: string;
  tlsKey?: string;
  tlsCert?: string;
  tlsResumption?: boolean;
  http2?: boolean;
  http2MaxStreams?: number;
  errorLog?: string;
  accessLog?: string | null;
  lockFile?: string | null;
  user?: string | null;
  serverName?: string;
  maxConnections?: number;
  maxBodyBytes?: number;
  maxHeaderBytes?: number;
  maxLineBytes?: number;
  maxTargetBytes?: number;
  headerTimeoutMs?: number;
  bodyTimeoutMs?: number;
  bodyTotalTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  sendTimeoutMs?: number;
  shutdownGraceMs?: number;
  workers?: number | 'auto';
  cgiTimeoutMs?: number;
  cgiMaxProcesses?: number;
  cgiMaxRunnable?: number | 'auto';
  cgiMaxQueue?: number;
  cgiPassEnv?: string[];
  cgiEnv?: Record<string, string>;
  tlsClientCa?: string;
  tlsClientAuth?: 'off' | 'optional' | 'require';
  tlsCrl?: string;
  tlsVerifyDepth?: number;
  access?: import('./native.js').AccessRuleSpec[];
  cgiRequestBuffering?: boolean;
  cgiEndAfterResponse?: boolean;
  spoolDir?: string;
  spoolMaxBytes?: number;
  fastcgi?: FastCgiMountDraft[];
  compress?: Required<import('./native.js').CompressSpec>;
}
export type DraftKey = keyof Draft;

/** Settings plus where each came from (for messages), and the config file, if any. */
export interface ConfigDraft {
  values: Draft;
  origins: Partial<Record<DraftKey, Origin>>;
  configFile: string | null; // absolute
  display: string | null; // the config file as the user named it, for messages
}

export function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Date || (v && typeof v === 'object' && 'toISOString' in v)) return 'a date';
  return 'a table';
}

export const kEnvName = /^[A-Za-z_][A-Za-z0-9_]*$/;
const kMaxMs = 2 ** 31 - 1;

export class FileReader {
  readonly draft: ConfigDraft;
  private readonly dir: string;

  constructor(
    private readonly source: string,
    private readonly display: string, // file name as the user typed it, for messages
    absPath: string,
  ) {
    this.dir = path.dirname(absPath);
    this.draft = { values: {}, origins: {}, configFile: absPath, display };
  }

  origin(keyPath: readonly string[]): Origin {
    return { file: this.display, line: findKeyLine(this.source, keyPath) };
  }

  fail(keyPath: readonly string[], message: string, hint?: string): never {
    throw new ConfigError(message, this.origin(keyPath), hint);
  }

  set<K extends DraftKey>(key: K, keyPath: readonly string[], value: Draft[K]): void {
    this.draft.values[key] = value;
    this.draft.origins[key] = this.origin(keyPath);
  }

  table(v: unknown, keyPath: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date || 'toISOString' in v) {
      this.fail(keyPath, `${keyPath.join('.')} must be a table, got ${describe(v)}`);
    }
    return v as Record<string, unknown>;
  }

  port(v: unknown, keyPath: readonly string[]): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) {
      this.fail(keyPath, `${keyPath.join('.')} must be a port number (0–65535), got ${describe(v)}`,
        'use 0 to let the system pick a free port');
    }
    return v;
  }

  integer(v: unknown, keyPath: readonly string[], min: number, unit: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      this.fail(keyPath, `${keyPath.join('.')} must be an integer ≥ ${min} (${unit}), got ${describe(v)}`,
        'write plain digits; underscores are allowed, e.g. 104_857_600');
    }
    return v;
  }

  /** An integer from min to max (max: Infinity for no bound), or "auto" for the caller to resolve. */
  integerOrAuto(v: unknown, keyPath: readonly string[], min: number, max: number, hint: string): number | 'auto' {
    if (v !== 'auto' && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max)) {
      const range = max === Infinity ? `≥ ${min}` : `${min}–${max}`;
      this.fail(keyPath, `${keyPath.join('.')} must be an integer ${range} or "auto", got ${describe(v)}`, hint);
    }
    return v as number | 'auto';
  }

  /** Seconds (integer or decimal) → milliseconds. */
  seconds(v: unknown, keyPath: readonly string[], allowZero: boolean): number {
    const ms = typeof v === 'number' && Number.isFinite(v) ? Math.round(v * 1000) : NaN;
    if (!(ms >= (allowZero ? 0 : 1) && ms <= kMaxMs)) {
      this.fail(keyPath, `${keyPath.join('.')} must be a number of seconds ${allowZero ? '≥ 0' : '> 0'}, got ${describe(v)}`,
        'e.g. 30 or 0.5; at most 2147483');
    }
    return ms;
  }

  boolean(v: unknown, keyPath: readonly string[]): boolean {
    if (typeof v !== 'boolean') this.fail(keyPath, `${keyPath.join('.')} must be true or false, got ${describe(v)}`);
    return v as boolean;
  }

  string(v: unknown, keyPath: readonly string[], hint?: string): string {
    if (typeof v !== 'string') this.fail(keyPath, `${keyPath.join('.')} must be a string, got ${describe(v)}`, hint);
    return v;
  }

  /** A non-empty path, resolved against the config file's directory. */
  path(v: unknown, keyPath: readonly string[]): string {
    const s = this.string(v, keyPath, 'quote paths: "www"');
    if (s === '') this.fail(keyPath, `${keyPath.join('.')} must not be empty`);
    return path.resolve(this.dir, s);
  }

  /** A log destination: "-" (standard stream), "" (off, when allowed) or a path. */
  logTarget(v: unknown, keyPath: readonly string[], allowOff: boolean): string | null {
    const s = this.string(v, keyPath, 'a path, or "-" for the standard stream');
    if (s === '-') return '-';
    if (s === '') {
      if (!allowOff) this.fail(keyPath, `${keyPath.join('.')} must not be empty`, 'use "-" for stderr');
      return null;
    }
    return path.resolve(this.dir, s);
  }

  stringList(v: unknown, keyPath: readonly string[]): string[] {
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
      this.fail(keyPath, `${keyPath.join('.')} must be an array of strings, got ${describe(v)}`, 'e.g. ["LANG", "TZ"]');
    }
    return list as string[];
  }

  envNames(v: unknown, keyPath: readonly string[]): string[] {
    const names = this.stringList(v, keyPath);
    for (const n of names) {
      if (!kEnvName.test(n)) this.fail(keyPath, `${keyPath.join('.')}: '${n}' is not an environment variable name`, 'letters, digits and _, not starting with a digit');
    }
    return names;
  }

  envTable(v: unknown, keyPath: readonly string[], paths: boolean): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.table(v, keyPath))) {
      const kp = [...keyPath, name];
      if (!kEnvName.test(name)) this.fail(kp, `'${name}' is not an environment variable name`, 'letters, digits and _, not starting with a digit');
      out[name] = paths ? this.path(value, kp) : this.string(value, kp, 'environment values are strings; quote numbers');
    }
    return out;
  }
}
