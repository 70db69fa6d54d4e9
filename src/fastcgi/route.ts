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

const kRootTtlMs = 1000; // root's own real path, and each path's route, are looked up again after this
const kMaxCachedRoutes = 512; // the route cache is emptied when it grows past this

/**
 * The routes of one mount: routeUnderRoot with root's real path and each request path's
 * route (found or not) remembered for up to a second. The lookup is a stat and a realpath
 * (one syscall per path component) per candidate prefix, ~8% of lisod's own CPU per php-fpm
 * request; an operator's change under root (a new, removed or re-pointed script) shows within
 * a second, as a change of the root symlink always did. The backend opens SCRIPT_FILENAME
 * itself later anyway, so the check was never atomic with its use (nginx makes none).
 */
export class RootRouter {
  #realRoot: string | null = null;
  #at = -Infinity;
  readonly #routes = new Map<string, ScriptRoute | null>(); // by target.path, valid while #at is

  constructor(private readonly prefix: string, private readonly root: string, private readonly index: string | null) {}

  route(target: CgiTarget): ScriptRoute | null {
    const now = Date.now();
    if (now - this.#at > kRootTtlMs || this.#realRoot === null) {
      this.#at = now;
      this.#routes.clear();
      try {
        this.#realRoot = fs.realpathSync.native(this.root);
      } catch {
        this.#realRoot = null;
      }
    }
    if (this.#realRoot === null) return null;
    const cached = this.#routes.get(target.path);
    if (cached !== undefined) return cached;
    const found = routeUnder(target, this.prefix, this.root, this.#realRoot, this.index); // throws for a bad path: not cached
    if (this.#routes.size >= kMaxCachedRoutes) this.#routes.clear();
    this.#routes.set(target.path, found);
    return found;
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
