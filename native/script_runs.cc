// Running child processes (CGI scripts, FastCGI backends) on the libuv loop: one native
// object per loop (src/spawn.ts makes it) starts them and watches, per child, its stdout and
// stderr pipes and its pidfd. What one wake-up finds — output of either pipe, their ends, the exit — goes to
// JavaScript in one call, through one callback and one async context made once. This
// replaces a PipeReader object per pipe and an exit watch per child, each with its own
// AsyncContext and its own callback per event (perf of the trivial CGI row: ~30% of lisod's
// own CPU per request went to building and calling them).
//
// The fds are watched through an epoll set of our own, itself one uv_poll on the loop: a
// child's fd costs two epoll_ctl (add, delete), where a uv_poll per fd costs five
// (uv_poll_init's pollability probe adds and deletes, the start adds, the stop and the close
// delete) and an ioctl. strace -c of the trivial CGI row: 24 epoll_ctl per request before,
// of which 15 for the three uv_polls.
#include <fcntl.h>
#include <sys/epoll.h>
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

constexpr size_t kReadSize = 65536;  // per pipe per wake-up, as a libuv stream's read buffer

// Event flags (src/native.ts ScriptRuns). A pipe's End comes once, with Eof when it was end
// of file rather than a read error; Done comes last, after which the token is unknown.
constexpr int kOutEnd = 1, kOutEof = 2, kErrEnd = 4, kErrEof = 8, kExited = 16, kDone = 32;

struct Run;

// One watched fd of a run: a pipe read end or the pidfd, in the owner's epoll set while open
// (and, for stdout, not paused).
struct Watch {
  Run* run;
  int fd = -1;
  bool open = false;  // false once ended (the fd is closed then)
  bool polled = false;  // in the epoll set
};

class ScriptRuns;

struct Run {
  ScriptRuns* owner;
  uint32_t token;
  Watch out, err, exit;
  bool paused = false;  // stdout only: the runner's backpressure
};

// The epoll set's uv_poll; it outlives the ScriptRuns until libuv's close callback.
struct EpollWatch {
  uv_poll_t handle;
  int epfd;
  ScriptRuns* owner;  // null once the owner is gone
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
    Napi::Env env = info.Env();
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "lisod:script");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) throw spawnError(env, errno, "cannot watch child processes: epoll_create1");
    epoll_ = new EpollWatch{{}, epfd, this};
    epoll_->handle.data = epoll_;
    if (uv_poll_init(loop, &epoll_->handle, epfd) != 0) {
      ::close(epfd);
      delete epoll_;
      epoll_ = nullptr;
      throw Napi::Error::New(env, "cannot watch child processes: poll failed");
    }
    uv_poll_start(&epoll_->handle, UV_READABLE, onEpoll);
    uv_unref(reinterpret_cast<uv_handle_t*>(&epoll_->handle));  // only live children keep the loop alive
    out_buf_.resize(kReadSize);
    err_buf_.resize(kReadSize);
  }

  // Only at environment teardown (live runs hold a reference): close every fd.
  ~ScriptRuns() override {
    for (auto& [token, run] : runs_) {
      closeWatch(&run->out);
      closeWatch(&run->err);
      closeWatch(&run->exit);
      delete run;
    }
    for (Run* run : finished_) delete run;
    if (epoll_) {
      epoll_->owner = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&epoll_->handle), [](uv_handle_t* h) {
        auto* e = static_cast<EpollWatch*>(h->data);
        ::close(e->epfd);
        delete e;
      });
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
    run->out = {run, child.stdout_fd};
    run->err = {run, child.stderr_fd};
    run->exit = {run, child.pidfd};
    // Pipes are read non-blocking (the child's ends stay blocking: O_NONBLOCK would be shared
    // through pipe2); the pidfd is only polled.
    bool watched = fcntl(child.stdout_fd, F_SETFL, O_NONBLOCK) == 0 && fcntl(child.stderr_fd, F_SETFL, O_NONBLOCK) == 0 &&
                   startWatch(&run->out) && startWatch(&run->err) && startWatch(&run->exit);
    if (!watched) {  // out of memory for epoll: the child must not outlive its run
      int e = errno;
      for (int fd : {child.stdout_fd, child.stderr_fd, child.pidfd, child.stdin_fd}) {
        if (fd >= 0) ::close(fd);
      }
      kill(-child.pid, SIGKILL);
      waitpid(child.pid, nullptr, 0);
      delete run;
      throw spawnError(env, e, "cannot watch " + file);
    }
    if (runs_.empty()) {  // alive while any child is watched, whatever JS holds
      Ref();
      uv_ref(reinterpret_cast<uv_handle_t*>(&epoll_->handle));
    }
    runs_.emplace(run->token, run);
    out[0] = static_cast<int32_t>(run->token);
    out[1] = child.pid;
    out[2] = child.stdin_fd;
    return env.Undefined();
  }

  // pause(token) / resume(token): stop and restart reading the run's stdout. A paused pipe
  // leaves the epoll set: epoll reports a hang-up even for a watch that asks for nothing.
  Napi::Value pause(const Napi::CallbackInfo& info) {
    Run* run = find(info[0]);
    if (run && !run->paused) {
      run->paused = true;
      unwatch(&run->out);
    }
    return info.Env().Undefined();
  }

  Napi::Value resume(const Napi::CallbackInfo& info) {
    Run* run = find(info[0]);
    if (run && run->paused) {
      run->paused = false;
      if (run->out.open) startWatch(&run->out);
    }
    return info.Env().Undefined();
  }

  Run* find(const Napi::Value& token) {
    auto it = runs_.find(token.As<Napi::Number>().Uint32Value());
    return it == runs_.end() ? nullptr : it->second;
  }

  bool startWatch(Watch* w) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = w;
    if (epoll_ctl(epoll_->epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0) return false;
    w->open = w->polled = true;
    return true;
  }

  void unwatch(Watch* w) {
    if (!w->polled) return;
    w->polled = false;
    epoll_ctl(epoll_->epfd, EPOLL_CTL_DEL, w->fd, nullptr);
  }

  // The epoll set is readable: dispatch what it holds now (level-triggered: what one pump
  // leaves unread comes again on the next turn). Runs finished in this batch are freed after
  // it, so a later event of the batch for one of their fds finds a closed Watch, not freed
  // memory — nor a new run that got the same fd number meanwhile.
  static void onEpoll(uv_poll_t* handle, int, int) {
    auto* e = static_cast<EpollWatch*>(handle->data);
    if (e->owner) e->owner->dispatch();
  }

  void dispatch() {
    epoll_event events[32];
    int n;
    do n = epoll_wait(epoll_->epfd, events, 32, 0);
    while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<Watch*>(events[i].data.ptr);
      if (!w->polled) continue;  // closed or paused by an earlier call of this batch
      // EPOLLERR/EPOLLHUP without EPOLLIN: a read still tells EOF or the error.
      pump(w->run, w);
    }
    for (Run* run : finished_) delete run;
    finished_.clear();
  }

  // Reads what the fired watch has now — and once a pipe ended or the child exited, what
  // the rest of the run has — then makes one call. Per pipe at most kReadSize per wake-up: a
  // chatty script cannot starve the connections on the loop. A short read is followed by
  // one more, which usually says EAGAIN, or end of file when the script is done: the end
  // then comes with the last output instead of a wake-up and a call of its own.
  void pump(Run* run, Watch* fired) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    int flags = 0;
    size_t out_len = 0, err_len = 0;
    bool ended = false;
    if (fired == &run->out) ended = readPipe(&run->out, out_buf_.data(), &out_len, &flags, kOutEnd, kOutEof);
    if (fired == &run->err) ended = readPipe(&run->err, err_buf_.data(), &err_len, &flags, kErrEnd, kErrEof);
    // A pipe's end or the exit usually means the rest is there too (the kernel closes a dying
    // process's fds before it signals the exit): look at the other pipe and the pidfd now.
    bool exited = run->exit.open && (fired == &run->exit || ended) && reap(run, &flags);
    if (ended || exited) {
      if (!run->paused) readPipe(&run->out, out_buf_.data(), &out_len, &flags, kOutEnd, kOutEof);
      readPipe(&run->err, err_buf_.data(), &err_len, &flags, kErrEnd, kErrEof);
      if (!exited && run->exit.open && !run->out.open && !run->err.open) reap(run, &flags);
    }
    if (flags == 0 && out_len == 0 && err_len == 0) return;
    bool done = !run->out.open && !run->err.open && !run->exit.open;
    if (done) flags |= kDone;
    Napi::Value out = out_len > 0 ? Napi::Buffer<char>::Copy(env, out_buf_.data(), out_len) : env.Undefined();
    Napi::Value err = err_len > 0 ? Napi::Buffer<char>::Copy(env, err_buf_.data(), err_len) : env.Undefined();
    if (done) {  // before the call: the token is unknown from here on
      if (runs_.erase(run->token) > 0 && runs_.empty()) {
        uv_unref(reinterpret_cast<uv_handle_t*>(&epoll_->handle));
        Unref();
      }
      finished_.push_back(run);
    }
    try {
      callback_.MakeCallback(env.Global(),
                             {Napi::Number::New(env, run->token), out, err, Napi::Number::New(env, flags),
                              Napi::Number::New(env, exit_code_), Napi::Number::New(env, exit_signal_)},
                             *context_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  // Appends to buf[*len, kReadSize) what the pipe has; true when it ended (EOF or a read
  // error), which sets end_flag (and eof_flag at EOF) and closes it.
  bool readPipe(Watch* w, char* buf, size_t* len, int* flags, int end_flag, int eof_flag) {
    if (!w->open) return false;
    int err = 0;
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
    if (!reapChild(run->exit.fd, &exit_code_, &exit_signal_)) return false;
    *flags |= kExited;
    closeWatch(&run->exit);
    return true;
  }

  // Deleted from the set explicitly: closing the fd removes it only when no other copy of
  // it exists, and a forked child holds copies until its exec.
  void closeWatch(Watch* w) {
    if (!w->open) return;
    unwatch(w);
    w->open = false;
    ::close(w->fd);
  }

  EpollWatch* epoll_ = nullptr;
  std::unordered_map<uint32_t, Run*> runs_;
  std::vector<Run*> finished_;  // done in this dispatch, freed at its end
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
