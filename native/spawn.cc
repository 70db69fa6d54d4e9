// CGI process start without fork(): posix_spawn (glibc uses clone(CLONE_VM|CLONE_VFORK))
// does not copy the page tables of a ~50 MB Node process, which child_process.spawn
// does on every request (≈2 ms of CPU each). Exit is watched through a pidfd on the
// libuv loop, so no SIGCHLD handler or polling is involved.
#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace lisod {
namespace {

#ifndef P_PIDFD
constexpr idtype_t P_PIDFD = static_cast<idtype_t>(3);
#endif

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

// spawnProcess(file, env: string[], cwd, stdin, args?: string[]) → { pid, stdin, stdout, stderr, pidfd }
// args: argv[1…] (argv[0] is file).
// stdin: an fd to give the child as its standard input, -1 for a new pipe (returned),
// -2 for /dev/null. The child leads its own process group (in lisod's session, as lighttpd's
// scripts stay in its) with default signal dispositions and an empty signal mask; a timeout
// kills the group. A session per script would also make each one a scheduling group under
// sched_autogroup; a direct A/B on the trivial CGI row (wrk -c10, 3 runs each) showed no
// difference in CPU per request (14.5 vs 14.4 ms), so this is for semantics, not speed. Throws with code ENOENT/EACCES/ENOEXEC…
Napi::Value spawnProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string file = info[0].As<Napi::String>().Utf8Value();
  Napi::Array env_arr = info[1].As<Napi::Array>();
  std::string cwd = info[2].As<Napi::String>().Utf8Value();
  int stdin_mode = info[3].As<Napi::Number>().Int32Value();

  std::vector<std::string> env_strings;
  for (uint32_t i = 0; i < env_arr.Length(); ++i) env_strings.push_back(env_arr.Get(i).ToString().Utf8Value());
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings{file};
  if (info.Length() > 4 && info[4].IsArray()) {
    Napi::Array a = info[4].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) arg_strings.push_back(a.Get(i).ToString().Utf8Value());
  }
  std::vector<char*> argv;
  for (auto& s : arg_strings) argv.push_back(s.data());
  argv.push_back(nullptr);

  Pipes p;
  if ((stdin_mode == -1 && pipe2(&p.fds[0], O_CLOEXEC) != 0) || pipe2(&p.fds[2], O_CLOEXEC) != 0 ||
      pipe2(&p.fds[4], O_CLOEXEC) != 0) {
    throw errnoError(env, errno, "cannot create pipes for " + file);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_mode == -1) posix_spawn_file_actions_adddup2(&actions, p.fds[0], 0);
  else if (stdin_mode >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_mode, 0);
  else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, p.fds[3], 1);
  posix_spawn_file_actions_adddup2(&actions, p.fds[5], 2);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

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
  int err = posix_spawn(&pid, file.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) throw errnoError(env, err, "cannot run " + file);

  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    int e = errno;
    kill(-pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    throw errnoError(env, e, "pidfd_open");
  }
  fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", pid);
  out.Set("pidfd", pidfd);
  out.Set("stdin", stdin_mode == -1 ? p.take(1) : -1);
  out.Set("stdout", p.take(2));
  out.Set("stderr", p.take(4));
  return out;
}

// One exit watch: a uv_poll on the pidfd, then waitid() reaps the child.
struct ExitWatch {
  uv_poll_t poll;
  int pidfd;
  Napi::Env env;
  Napi::FunctionReference callback;
  std::unique_ptr<Napi::AsyncContext> context;
};

void onExitReadable(uv_poll_t* handle, int status, int) {
  auto* w = static_cast<ExitWatch*>(handle->data);
  siginfo_t si{};
  int r = waitid(P_PIDFD, static_cast<id_t>(w->pidfd), &si, WEXITED | WNOHANG);
  if (status == 0 && r == 0 && si.si_pid == 0) return;  // spurious wake-up: still running
  uv_poll_stop(handle);
  {
    Napi::HandleScope scope(w->env);
    Napi::Value code = w->env.Null(), sig = w->env.Null();
    if (r == 0 && si.si_code == CLD_EXITED) code = Napi::Number::New(w->env, si.si_status);
    else if (r == 0) sig = Napi::Number::New(w->env, si.si_status);
    try {
      w->callback.MakeCallback(w->env.Global(), {code, sig}, *w->context);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(w->env, e.Value());
    }
  }
  uv_close(reinterpret_cast<uv_handle_t*>(handle), [](uv_handle_t* h) {
    auto* watch = static_cast<ExitWatch*>(h->data);
    ::close(watch->pidfd);  // only once libuv has let go of it
    delete watch;
  });
}

// watchExit(pidfd, callback(code | null, signal | null)): reaps the child when it exits.
Napi::Value watchExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* w = new ExitWatch{{}, info[0].As<Napi::Number>().Int32Value(), env,
                          Napi::Persistent(info[1].As<Napi::Function>()),
                          std::make_unique<Napi::AsyncContext>(env, "lisod:cgi-exit")};
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  w->poll.data = w;
  if (uv_poll_init(loop, &w->poll, w->pidfd) != 0) {
    delete w;
    throw Napi::Error::New(env, "cannot watch a child process exit");
  }
  uv_poll_start(&w->poll, UV_READABLE, onExitReadable);
  return env.Undefined();
}

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

void initSpawn(Napi::Env env, Napi::Object exports) {
  exports.Set("spawnProcess", Napi::Function::New(env, spawnProcess, "spawnProcess"));
  exports.Set("watchExit", Napi::Function::New(env, watchExit, "watchExit"));
  exports.Set("listenUnix", Napi::Function::New(env, listenUnix, "listenUnix"));
}

}  // namespace lisod
