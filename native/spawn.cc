// CGI process start without fork(): vfork (clone(CLONE_VM|CLONE_VFORK), as glibc's
// posix_spawn) does not copy the page tables of a ~50 MB Node process, which child_process.spawn
// does on every request (≈2 ms of CPU each). Exit is watched through a pidfd on the
// libuv loop (native/script_runs.cc), so no SIGCHLD handler or polling is involved.
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
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

constexpr int kPidfd = 3;  // P_PIDFD (Linux 5.4), which older headers lack

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

// Runs in the vfork child, on the parent's memory and stack: only async-signal-safe calls,
// no allocation, no return (execve, or _exit after writing errno to *err, which the parent
// reads once vfork returns). Every signal the caller may block is blocked on entry. Handlers
// go back to the default first (a parent handler must never run in this shared memory),
// then the mask is emptied just before execve. An fd dup2'd onto itself keeps O_CLOEXEC,
// so that case clears the flag (posix_spawn's adddup2 does the same).
[[noreturn]] void childMain(const SpawnSpec& spec, int in_fd, int out_fd, int err_fd, volatile int* err) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    // glibc's own two (SIGCANCEL, SIGSETXID) refuse with EINVAL: they target this process's
    // threads only, never the child, and execve resets their handlers.
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);
  }
  auto onto = [](int from, int to) { return from == to ? fcntl(to, F_SETFD, 0) : dup2(from, to); };
  if (setpgid(0, 0) != 0) goto fail;  // pgid = the child's pid
  if (in_fd >= 0 ? onto(in_fd, 0) < 0 : (close(0), open("/dev/null", O_RDONLY) != 0)) goto fail;
  if (onto(out_fd, 1) < 0 || onto(err_fd, 2) < 0) goto fail;
  if (chdir(spec.cwd) != 0) goto fail;
  {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
  }
  execve(spec.file, spec.argv, spec.envp);
fail:
  *err = errno;
  _exit(127);
}

}  // namespace

// The child leads its own process group (in lisod's session, as lighttpd's scripts stay in
// its); a timeout kills the group. A session per script would also make each one a scheduling
// group under sched_autogroup; a direct A/B on the trivial CGI row (wrk -c10, 3 runs each)
// showed no difference in CPU per request (14.5 vs 14.4 ms), so this is for semantics, not speed.
// vfork rather than posix_spawn: glibc's posix_spawn maps and unmaps a fresh child stack and
// calls getrlimit five times (file-action fd checks) on every start — ~3% of lisod's own CPU
// per trivial CGI request; vfork runs the child on this thread's stack, the parent suspended
// until execve or _exit, exactly as posix_spawn's CLONE_VFORK clone does.
int spawnChild(const SpawnSpec& spec, Spawned* out, const char** what) {
  Pipes p;
  if ((spec.stdin_mode == -1 && pipe2(&p.fds[0], O_CLOEXEC) != 0) || pipe2(&p.fds[2], O_CLOEXEC) != 0 ||
      pipe2(&p.fds[4], O_CLOEXEC) != 0) {
    *what = "cannot create pipes for ";
    return errno;
  }
  int in_fd = spec.stdin_mode == -1 ? p.fds[0] : spec.stdin_mode;  // < 0: /dev/null
  // SIGCHLD stays deliverable: the child cannot get one (it has no children yet), and with
  // SIGCHLD blocked on this thread while it waits for an execve, every script that exits
  // meanwhile queued a SIGCHLD that the kernel would otherwise drop (default action), waking
  // another of Node's threads to discard it: ~0.7 wake-ups per trivial CGI request.
  sigset_t all, saved;
  sigfillset(&all);
  sigdelset(&all, SIGCHLD);
  pthread_sigmask(SIG_BLOCK, &all, &saved);
  volatile int child_err = 0;
  pid_t pid = vfork();
  if (pid == 0) childMain(spec, in_fd, p.fds[3], p.fds[5], &child_err);
  int fork_err = errno;
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (pid < 0) {
    *what = "cannot run ";
    return fork_err;
  }
  if (child_err != 0) {  // the child has exited (vfork returns after its _exit)
    waitpid(pid, nullptr, 0);
    *what = "cannot run ";
    return child_err;
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

bool reapChild(int pidfd, int* code, int* signal) {
  siginfo_t si{};
  const int r = waitid(static_cast<idtype_t>(kPidfd), static_cast<id_t>(pidfd), &si, WEXITED | WNOHANG);
  if (r == 0 && si.si_pid == 0) return false;  // still running
  *code = r == 0 && si.si_code == CLD_EXITED ? si.si_status : -1;
  *signal = r == 0 && si.si_code != CLD_EXITED ? si.si_status : 0;
  return true;
}

Napi::Error spawnError(Napi::Env env, int err, const std::string& what) { return errnoError(env, err, what); }

void initScriptRuns(Napi::Env env, Napi::Object exports);  // script_runs.cc

void initSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("listenUnix", Napi::Function::New(env, listenUnix, "listenUnix"));
  initScriptRuns(env, exports);
}

}  // namespace lisod
