// The [[access]] tables of the config file: which verified client certificates may see a
// path prefix. Only parsed and checked here; the native server does the matching.
import { ConfigError, suggest, type FileReader, type Origin } from './config_reader.js';
import type { AccessRuleSpec } from './native.js';

export const kAccessKeys = ['path', 'allow'] as const;

/** Subject attribute short names (OpenSSL's) an allow entry may use. */
export const kSubjectAttributes = [
  'CN', 'O', 'OU', 'C', 'L', 'ST', 'street', 'emailAddress', 'DC', 'UID', 'serialNumber',
  'SN', 'GN', 'title', 'initials', 'pseudonym', 'generationQualifier', 'dnQualifier', 'name', 'description',
] as const;

/** Line of the n-th (0-based) `[[access]]` header in the source, for messages. */
function accessLine(source: string, n: number): number | undefined {
  let seen = -1;
  const lines = source.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    if (/^\s*\[\[\s*access\s*\]\]/.test(lines[i]!) && ++seen === n) return i + 1;
  }
  return undefined;
}

/**
 * Parses one allow entry: "*" (any verified certificate) or "ATTR=value,ATTR=value" where
 * "\," and "\\" escape inside values. Returns null for "*". Throws Error with a message.
 */
export function parseAllowEntry(entry: string): Array<[string, string]> | null {
  if (entry === '*') return null;
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < entry.length; i++) {
    const c = entry[i]!;
    if (c === '\\' && i + 1 < entry.length) cur += entry[++i];
    else if (c === ',') parts.push(cur), (cur = '');
    else cur += c;
  }
  parts.push(cur);
  return parts.map((part) => {
    const eq = part.indexOf('=');
    const attr = eq < 0 ? '' : part.slice(0, eq).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (eq < 0 || attr === '' || value === '') {
      throw new Error(`'${entry}' is not "*" or ATTR=value pairs (e.g. "O=Ops" or "CN=bob,O=Dev")`);
    }
    if (!(kSubjectAttributes as readonly string[]).includes(attr)) {
      throw new Error(`'${attr}' in '${entry}' is not a subject attribute (${suggest(attr, kSubjectAttributes)})`);
    }
    return [attr, value];
  });
}

/** Reads `access = [[…]]` (array of tables) into the draft. */
export function readAccessTables(r: FileReader, v: unknown, source: string): void {
  if (!Array.isArray(v)) r.fail(['access'], 'access must be written as [[access]] tables', '[[access]]\npath = "/private/"\nallow = ["O=Ops"]');
  const rules: AccessRuleSpec[] = [];
  const seen = new Map<string, number>();
  (v as unknown[]).forEach((item, n) => {
    const line = accessLine(source, n);
    const origin: Origin = { ...r.origin(['access']), line };
    const fail = (message: string, hint?: string): never => {
      throw new ConfigError(message, origin, hint);
    };
    if (item === null || typeof item !== 'object' || Array.isArray(item)) fail('each [[access]] entry must be a table');
    const t = item as Record<string, unknown>;
    for (const key of Object.keys(t)) {
      if (!(kAccessKeys as readonly string[]).includes(key)) fail(`unknown key '${key}' in [[access]]`, suggest(key, kAccessKeys));
    }
    const path = t.path;
    if (typeof path !== 'string' || !path.startsWith('/')) fail('[[access]] path must be a string starting with "/"', 'e.g. path = "/private/"');
    if (/[?#%\\\0]/.test(path as string) || /(^|\/)\.\.?(\/|$)/.test(path as string)) {
      fail(`[[access]] path '${path}' must be a plain decoded path: no ?, #, %, \\, . or .. segments`);
    }
    const key = (path as string).replace(/\/+$/, '') || '/';
    if (seen.has(key)) fail(`[[access]] path '${path}' is already covered by the rule at line ${seen.get(key) ?? '?'}`, 'merge their allow lists');
    seen.set(key, line ?? 0);
    const allow = t.allow;
    if (!Array.isArray(allow) || allow.length === 0 || !allow.every((x) => typeof x === 'string')) {
      fail('[[access]] allow must be a non-empty array of strings', 'e.g. allow = ["O=Ops", "CN=bob,O=Dev"], or ["*"] for any verified certificate');
    }
    const rule: AccessRuleSpec = { path: path as string, any: false, allow: [] };
    for (const entry of allow as string[]) {
      let pairs: Array<[string, string]> | null;
      try {
        pairs = parseAllowEntry(entry);
      } catch (e) {
        return fail(`[[access]] allow: ${(e as Error).message}`);
      }
      if (pairs === null) rule.any = true;
      else rule.allow.push(pairs);
    }
    rules.push(rule);
  });
  r.set('access', ['access'], rules);
}
