// SCRIPT_NAME / PATH_INFO / SCRIPT_FILENAME for a [[fastcgi]] mount with `root` (nginx's
// `root` semantics, without the cgi.fix_pathinfo hole): the longest prefix of the decoded
// path that names a regular file under root — realpath inside root, never a directory.
import fs from 'node:fs';
import path from 'node:path';
import { percentDecode, type CgiTarget } from '../cgi_env.js';

export interface ScriptRoute {
  scriptName: string;
  scriptFilename: string;
  pathInfo: string;
}

const kRootTtlMs = 1000; // root's own real path is looked up again after this

/**
 * The routes of one mount: routeUnderRoot with root's real path looked up at most once a
 * second (an operator's change of the root symlink shows within a second; each script is
 * still resolved on every request).
 */
export class RootRouter {
  #realRoot: string | null = null;
  #at = -Infinity;

  constructor(private readonly prefix: string, private readonly root: string, private readonly index: string | null) {}

  route(target: CgiTarget): ScriptRoute | null {
    const now = Date.now();
    if (now - this.#at > kRootTtlMs || this.#realRoot === null) {
      this.#at = now;
      try {
        this.#realRoot = fs.realpathSync.native(this.root);
      } catch {
        this.#realRoot = null;
      }
    }
    return this.#realRoot === null ? null : routeUnder(target, this.prefix, this.root, this.#realRoot, this.index);
  }
}

/**
 * Returns the route for `target` under mount `prefix`, or null (→ 404) when no prefix of the
 * path (from the whole path down to the mount prefix) is a regular file inside `root`. A path
 * ending in '/' tries `index` there first. Paths with "." or ".." segments never match.
 * Throws CgiTargetError for a path that does not decode (→ 400).
 */
export function routeUnderRoot(target: CgiTarget, prefix: string, root: string, index: string | null): ScriptRoute | null {
  let realRoot: string;
  try {
    realRoot = fs.realpathSync.native(root);
  } catch {
    return null;
  }
  return routeUnder(target, prefix, root, realRoot, index);
}

function routeUnder(target: CgiTarget, prefix: string, root: string, realRoot: string, index: string | null): ScriptRoute | null {
  const decoded = percentDecode(target.path);
  const segments = decoded.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return null;
  const inside = realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep;
  const isScript = (scriptName: string): boolean => {
    try {
      // A missing path is the common miss (no exception for it); ENOTDIR and others throw.
      const st = fs.statSync(root + scriptName, { throwIfNoEntry: false });
      return st !== undefined && st.isFile() && fs.realpathSync.native(root + scriptName).startsWith(inside);
    } catch {
      return false;
    }
  };
  const found = (scriptName: string, pathInfo: string): ScriptRoute =>
    ({ scriptName, scriptFilename: path.join(root, scriptName), pathInfo });

  if (decoded.endsWith('/') && index !== null && isScript(decoded + index)) return found(decoded + index, '');
  const minSegments = prefix.split('/').length;
  for (let n = segments.length; n >= minSegments; n--) {
    const scriptName = segments.slice(0, n).join('/');
    if (scriptName === '' || scriptName.endsWith('/')) continue;
    if (isScript(scriptName)) return found(scriptName, decoded.slice(scriptName.length));
  }
  return null;
}
