// CGI process start without fork(): posix_spawn (glibc uses clone(CLONE_VM|CLONE_VFORK))
// does not copy the page tables of a ~50 MB Node process, which child_process.spawn
// does on every request (≈2 ms of CPU each). Exit is watched through a pidfd on the
// libuv loop (native/script_runs.cc), so no SIGCHLD handler or polling is involved.
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace lisod {
namespace {

// Spawn failures carry the errno name JS callers test for (the script is missing, not
// executable, not a valid executable, or we are out of fds).
Napi::Error errnoError(Napi::Env env, int err, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, -err));
  const char* code = err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : err == ENOEXEC ? "ENOEXEC"
                   : err == EMFILE ? "EMFILE" : "ESPAWN";
  e.Set("code", Napi::String::New(env, code));
  return e;
}

struct Pipes {
  int fds[6] = {-1, -1, -1, -1, -1, -1};  // stdin r/w, stdout r/w, stderr r/w
  ~Pipes() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int take(int i) {
    int fd = fds[i];
    fds[i] = -1;
    return fd;
  }
};

// listenUnix(path, backlog) → fd: a close-on-exec Unix stream socket bound to path and
// listening, for a FastCGI backend to inherit as its fd 0 (FCGI_LISTENSOCK_FILENO). The
// caller owns the fd (fs.closeSync) and the path. Throws with the errno and path.
Napi::Value listenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    throw errnoError(env, ENAMETOOLONG, "socket path " + path);
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw errnoError(env, errno, "socket for " + path);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, backlog) != 0) {
    int e = errno;
    ::close(fd);
    throw errnoError(env, e, "cannot listen on " + path);
  }
  return Napi::Number::New(env, fd);
}

}  // namespace

// The child leads its own process group (in lisod's session, as lighttpd's scripts stay in
// its); a timeout kills the group. A session per script would also make each one a scheduling
// group under sched_autogroup; a direct A/B on the trivial CGI row (wrk -c10, 3 runs each)
// showed no difference in CPU per request (14.5 vs 14.4 ms), so this is for semantics, not speed.
int spawnChild(const SpawnSpec& spec, Spawned* out, const char** what) {
  Pipes p;
  if ((spec.stdin_mode == -1 && pipe2(&p.fds[0], O_CLOEXEC) != 0) || pipe2(&p.fds[2], O_CLOEXEC) != 0 ||
      pipe2(&p.fds[4], O_CLOEXEC) != 0) {
    *what = "cannot create pipes for ";
    return errno;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (spec.stdin_mode == -1) posix_spawn_file_actions_adddup2(&actions, p.fds[0], 0);
  else if (spec.stdin_mode >= 0) posix_spawn_file_actions_adddup2(&actions, spec.stdin_mode, 0);
  else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, p.fds[3], 1);
  posix_spawn_file_actions_adddup2(&actions, p.fds[5], 2);
  posix_spawn_file_actions_addchdir_np(&actions, spec.cwd);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);  // Node ignores SIGPIPE; scripts must not
  posix_spawnattr_setpgroup(&attr, 0);  // pgid = the child's pid
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  int err = posix_spawn(&pid, spec.file, &actions, &attr, spec.argv, spec.envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    *what = "cannot run ";
    return err;
  }
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    *what = "pidfd_open for ";
    return e;
  }
  // pidfd_open(2) sets close-on-exec itself.
  out->pid = pid;
  out->pidfd = pidfd;
  out->stdin_fd = spec.stdin_mode == -1 ? p.take(1) : -1;
  out->stdout_fd = p.take(2);
  out->stderr_fd = p.take(4);
  return 0;
}

Napi::Error spawnError(Napi::Env env, int err, const std::string& what) { return errnoError(env, err, what); }

void initScriptRuns(Napi::Env env, Napi::Object exports);  // script_runs.cc

void initSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("listenUnix", Napi::Function::New(env, listenUnix, "listenUnix"));
  initScriptRuns(env, exports);
}

}  // namespace lisod
