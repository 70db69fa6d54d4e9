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

/**
 * Returns the route for `target` under mount `prefix`, or null (→ 404) when no prefix of the
 * path (from the whole path down to the mount prefix) is a regular file inside `root`. A path
 * ending in '/' tries `index` there first. Paths with "." or ".." segments never match.
 * Throws CgiTargetError for a path that does not decode (→ 400).
 */
export function routeUnderRoot(target: CgiTarget, prefix: string, root: string, index: string | null): ScriptRoute | null {
  const decoded = percentDecode(target.path);
  const segments = decoded.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return null;
  let realRoot: string;
  try {
    realRoot = fs.realpathSync(root);
  } catch {
    return null;
  }
  const isScript = (scriptName: string): boolean => {
    try {
      const real = fs.realpathSync(path.join(root, scriptName));
      return (real === realRoot || real.startsWith(realRoot + path.sep)) && fs.statSync(real).isFile();
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
