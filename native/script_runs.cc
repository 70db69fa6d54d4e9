// Running child processes (CGI scripts, FastCGI backends) on the libuv loop: one native
// object per transport starts them and watches, per child, its stdout and stderr pipes and
// its pidfd. What one wake-up finds — output of either pipe, their ends, the exit — goes to
// JavaScript in one call, through one callback and one async context made once. This
// replaces a PipeReader object per pipe and an exit watch per child, each with its own
// AsyncContext and its own callback per event (perf of the trivial CGI row: ~30% of lisod's
// own CPU per request went to building and calling them).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "spawn.h"

namespace lisod {
namespace {

#ifndef P_PIDFD
constexpr idtype_t P_PIDFD = static_cast<idtype_t>(3);
#endif

constexpr size_t kReadSize = 65536;  // per pipe per wake-up, as a libuv stream's read buffer

// Event flags (src/native.ts ScriptRuns). A pipe's End comes once, with Eof when it was end
// of file rather than a read error; Done comes last, after which the token is unknown.
constexpr int kOutEnd = 1, kOutEof = 2, kErrEnd = 4, kErrEof = 8, kExited = 16, kDone = 32;

class ScriptRuns;

struct Run;

// One watched fd of a run: a pipe read end or the pidfd. The fd is closed in libuv's close
// callback, once libuv has let go of it.
struct Watch {
  uv_poll_t handle;
  Run* run;
  int fd = -1;
  bool open = false;  // polled (or paused); false once ended and closing
};

struct Run {
  ScriptRuns* owner;
  uint32_t token;
  Watch out, err, exit;
  bool paused = false;  // stdout only: the runner's backpressure
  int closing = 0;  // Watches whose close callback has not run; the Run is freed at 0 once detached
  bool detached = false;  // removed from the owner's table
};

class ScriptRuns : public Napi::ObjectWrap<ScriptRuns> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "ScriptRuns",
                       {InstanceMethod("spawn", &ScriptRuns::spawn), InstanceMethod("pause", &ScriptRuns::pause),
                        InstanceMethod("resume", &ScriptRuns::resume)});
  }

  // new ScriptRuns(onEvent(token, stdout?: Buffer, stderr?: Buffer, flags, code, signal)).
  explicit ScriptRuns(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScriptRuns>(info) {
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(info.Env(), "lisod:script");
    napi_get_uv_event_loop(info.Env(), &loop_);
    out_buf_.resize(kReadSize);
    err_buf_.resize(kReadSize);
  }

  // Only at environment teardown (live runs hold a reference): stop watching, close fds.
  ~ScriptRuns() override {
    for (auto& [token, run] : runs_) {
      run->detached = true;
      closeWatch(&run->out);
      closeWatch(&run->err);
      closeWatch(&run->exit);
      if (run->closing == 0) delete run;
    }
  }

 private:
  // spawn(file, env, cwd, stdin, args, out: Int32Array(3)) fills out with [token, pid,
  // stdinFd]. env: "NAME=value\0…" (entries without '=' are dropped); args: argv[1…] or
  // null. stdin as SpawnSpec::stdin_mode. Throws spawnError's Error.
  Napi::Value spawn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string file = info[0].As<Napi::String>().Utf8Value();
    std::string block = info[1].As<Napi::String>().Utf8Value();
    std::string cwd = info[2].As<Napi::String>().Utf8Value();
    int stdin_mode = info[3].As<Napi::Number>().Int32Value();
    std::vector<std::string> args{file};
    if (info[4].IsArray()) {
      Napi::Array a = info[4].As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) args.push_back(a.Get(i).ToString().Utf8Value());
    }
    Napi::Int32Array out = info[5].As<Napi::Int32Array>();
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (size_t i = 0; i < block.size();) {
      size_t end = block.find('\0', i);
      if (end == std::string::npos) end = block.size();
      else block[end] = '\0';
      if (block.find('=', i) < end) envp.push_back(&block[i]);
      i = end + 1;
    }
    envp.push_back(nullptr);

    Spawned child;
    const char* what = "";
    int err = spawnChild({file.c_str(), argv.data(), envp.data(), cwd.c_str(), stdin_mode}, &child, &what);
    if (err != 0) throw spawnError(env, err, what + file);
    auto* run = new Run{this, ++next_token_, {}, {}, {}};
    bool watched = startWatch(run, &run->out, child.stdout_fd) && startWatch(run, &run->err, child.stderr_fd) &&
                   startWatch(run, &run->exit, child.pidfd);
    if (!watched) {  // uv_poll_init failed (out of memory): the child must not outlive its run
      for (int fd : {child.stdout_fd, child.stderr_fd, child.pidfd, child.stdin_fd}) {
        if (fd >= 0 && fd != run->out.fd && fd != run->err.fd && fd != run->exit.fd) ::close(fd);
      }
      kill(-child.pid, SIGKILL);
      waitpid(child.pid, nullptr, 0);
      detach(run);
      if (run->closing == 0) delete run;
      throw Napi::Error::New(env, "cannot watch " + file + ": poll failed");
    }
    if (runs_.empty()) Ref();  // alive while any child is watched, whatever JS holds
    runs_.emplace(run->token, run);
    out[0] = static_cast<int32_t>(run->token);
    out[1] = child.pid;
    out[2] = child.stdin_fd;
    return env.Undefined();
  }

  // pause(token) / resume(token): stop and restart reading the run's stdout.
  Napi::Value pause(const Napi::CallbackInfo& info) {
    if (Run* run = find(info[0])) {
      run->paused = true;
      if (run->out.open) uv_poll_stop(&run->out.handle);
    }
    return info.Env().Undefined();
  }

  Napi::Value resume(const Napi::CallbackInfo& info) {
    if (Run* run = find(info[0])) {
      run->paused = false;
      if (run->out.open) uv_poll_start(&run->out.handle, UV_READABLE, onReadable);
    }
    return info.Env().Undefined();
  }

  Run* find(const Napi::Value& token) {
    auto it = runs_.find(token.As<Napi::Number>().Uint32Value());
    return it == runs_.end() ? nullptr : it->second;
  }

  // Takes fd over when it succeeds. Pipes are read non-blocking; the pidfd is only polled.
  bool startWatch(Run* run, Watch* w, int fd) {
    w->run = run;
    if (w != &run->exit) {
      int flags = fcntl(fd, F_GETFL);
      if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
    w->handle.data = w;
    if (uv_poll_init(loop_, &w->handle, fd) != 0) return false;
    w->fd = fd;
    w->open = true;
    uv_poll_start(&w->handle, UV_READABLE, onReadable);
    return true;
  }

  static void onReadable(uv_poll_t* handle, int status, int) {
    auto* w = static_cast<Watch*>(handle->data);
    Run* run = w->run;
    run->owner->pump(run, w, status);
  }

  // Reads what the fired watch has now — and once a pipe ended or the child exited, what
  // the rest of the run has — then makes one call. Per pipe at most kReadSize per wake-up: a
  // chatty script cannot starve the connections on the loop. A short read is followed by
  // one more, which usually says EAGAIN, or end of file when the script is done: the end
  // then comes with the last output instead of a wake-up and a call of its own.
  void pump(Run* run, Watch* fired, int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    int flags = 0;
    size_t out_len = 0, err_len = 0;
    bool ended = false;
    if (fired == &run->out) ended = readPipe(&run->out, out_buf_.data(), &out_len, &flags, kOutEnd, kOutEof, status);
    if (fired == &run->err) ended = readPipe(&run->err, err_buf_.data(), &err_len, &flags, kErrEnd, kErrEof, status);
    // A pipe's end or the exit usually means the rest is there too (the kernel closes a dying
    // process's fds before it signals the exit): look at the other pipe and the pidfd now.
    bool exited = run->exit.open && (fired == &run->exit || ended) && reap(run, &flags);
    if (ended || exited) {
      if (!run->paused) readPipe(&run->out, out_buf_.data(), &out_len, &flags, kOutEnd, kOutEof, 0);
      readPipe(&run->err, err_buf_.data(), &err_len, &flags, kErrEnd, kErrEof, 0);
      if (!exited && run->exit.open && !run->out.open && !run->err.open) reap(run, &flags);
    }
    if (flags == 0 && out_len == 0 && err_len == 0) return;
    bool done = !run->out.open && !run->err.open && !run->exit.open;
    if (done) flags |= kDone;
    Napi::Value out = out_len > 0 ? Napi::Buffer<char>::Copy(env, out_buf_.data(), out_len) : env.Undefined();
    Napi::Value err = err_len > 0 ? Napi::Buffer<char>::Copy(env, err_buf_.data(), err_len) : env.Undefined();
    if (done) detach(run);  // before the call: the token is unknown from here on
    try {
      callback_.MakeCallback(env.Global(),
                             {Napi::Number::New(env, run->token), out, err, Napi::Number::New(env, flags),
                              Napi::Number::New(env, exit_code_), Napi::Number::New(env, exit_signal_)},
                             *context_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
    if (done && run->closing == 0) delete run;
  }

  // Appends to buf[*len, kReadSize) what the pipe has; true when it ended (EOF, a read error
  // or a poll error in status), which sets end_flag (and eof_flag at EOF) and closes it.
  bool readPipe(Watch* w, char* buf, size_t* len, int* flags, int end_flag, int eof_flag, int status) {
    if (!w->open) return false;
    int err = status < 0 ? -status : 0;
    bool eof = false;
    while (err == 0 && *len < kReadSize) {
      ssize_t n = ::read(w->fd, buf + *len, kReadSize - *len);
      if (n > 0) {
        *len += static_cast<size_t>(n);
      } else if (n == 0) {
        eof = true;
      } else if (errno == EINTR) {
        continue;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
        err = errno;
      }
      if (n <= 0) break;
    }
    if (!eof && err == 0) return false;
    *flags |= end_flag | (eof ? eof_flag : 0);
    closeWatch(w);
    return true;
  }

  // waitid on the pidfd: true (and kExited, code/signal set) once the child has been reaped.
  bool reap(Run* run, int* flags) {
    siginfo_t si{};
    int r = waitid(P_PIDFD, static_cast<id_t>(run->exit.fd), &si, WEXITED | WNOHANG);
    if (r == 0 && si.si_pid == 0) return false;  // still running
    exit_code_ = r == 0 && si.si_code == CLD_EXITED ? si.si_status : -1;
    exit_signal_ = r == 0 && si.si_code != CLD_EXITED ? si.si_status : 0;
    *flags |= kExited;
    closeWatch(&run->exit);
    return true;
  }

  void closeWatch(Watch* w) {
    if (!w->open) return;
    w->open = false;
    w->run->closing++;
    uv_poll_stop(&w->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&w->handle), [](uv_handle_t* h) {
      auto* watch = static_cast<Watch*>(h->data);
      ::close(watch->fd);
      Run* run = watch->run;
      if (--run->closing == 0 && run->detached) delete run;
    });
  }

  void detach(Run* run) {
    closeWatch(&run->out);
    closeWatch(&run->err);
    closeWatch(&run->exit);
    run->detached = true;
    if (runs_.erase(run->token) > 0 && runs_.empty()) Unref();
  }

  uv_loop_t* loop_ = nullptr;
  std::unordered_map<uint32_t, Run*> runs_;
  uint32_t next_token_ = 0;
  int exit_code_ = -1, exit_signal_ = 0;  // of the last reaped child, passed with kExited
  std::vector<char> out_buf_, err_buf_;  // read buffers, copied into Buffers before each call
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void initScriptRuns(Napi::Env env, Napi::Object exports) {
  exports.Set("ScriptRuns", ScriptRuns::define(env));
}

}  // namespace lisod
