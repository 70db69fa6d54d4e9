// Privilege drop after start-up: once ports are bound and the key is read, a daemon started
// as root switches to the configured user (groups, gid, uid) through the addon.
import { native } from './native.js';

export type DropResult = { dropped: true; uid: number; gid: number } | { dropped: false; reason: string };

/**
 * Switches to `user` when running as root, first handing `ownedPaths` (existing log files,
 * reopened on SIGHUP) to that user. Not root: nothing changes and `reason` says why (as
 * nginx's `user` directive, the setting only matters to a root-started server). Throws,
 * naming the step, when the switch itself fails: the daemon must then not serve as root.
 */
export function dropPrivileges(user: string, ownedPaths: string[] = []): DropResult {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) {
    return { dropped: false, reason: `user = "${user}" ignored: lisod is not running as root` };
  }
  const { uid, gid } = native.dropPrivileges(user, ownedPaths);
  return { dropped: true, uid, gid };
}
