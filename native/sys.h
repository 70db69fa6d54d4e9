// Daemon system calls the Node runtime lacks: flock lock file, sd_notify, fd limit,
// privilege drop. Exported to JS by initSys; the TypeScript types live in src/native.ts.
#pragma once
#include <napi.h>

namespace lisod {

// Sets these functions on exports (called from the addon's module init):
//   lockFile(path, content) -> fd
//       open(path, O_RDWR|O_CLOEXEC), creating it with mode 0640 (umask ignored) when
//       missing; flock(LOCK_EX|LOCK_NB); ftruncate; write content. The lock lives as long
//       as the fd (O_CLOEXEC: CGI children never inherit it, so it dies with lisod, kill -9
//       included). Throws Error{code:'ELOCKED', pid} when another open file holds it, or
//       Error{code:'E…', syscall, path} naming the path. Blocks at most ~4 ms (two short
//       retries that ride out a concurrent isLocked probe).
//   unlockFile(fd)          flock(LOCK_UN) + close. Throws on a bad fd.
//   isLocked(path) -> bool  whether some process holds a flock on path (false when the
//       file does not exist). Probes with LOCK_SH|LOCK_NB, which it holds for one syscall.
//   sdNotify(message) -> bool
//       one datagram to $NOTIFY_SOCKET (absolute path or '@abstract'; sd_notify(3));
//       false when the variable is unset or empty. Never blocks (MSG_DONTWAIT).
//   raiseFdLimit() -> number  RLIMIT_NOFILE soft limit raised to the hard limit
//       (to fs.nr_open when the hard limit is infinite); returns the new soft limit.
//   dropPrivileges(user, paths?) -> {uid, gid}
//       getpwnam_r(user); chown each existing path in `paths` to the user and its group
//       (files reopened after the switch, e.g. logs); initgroups, setgid, setuid; then
//       checks that root cannot be regained. A no-op when already running as that user
//       (paths untouched); throws (code EPERM) when not root, or naming the failing step.
void initSys(Napi::Env env, Napi::Object exports);

}  // namespace lisod
