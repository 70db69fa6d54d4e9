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
#include "spawner.h"

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
                       {InstanceMethod("spawn", &ScriptRuns::spawn), InstanceMethod("spawnAsync", &ScriptRuns::spawnAsync),
                        InstanceMethod("pause", &ScriptRuns::pause),
                        InstanceMethod("resume", &ScriptRuns::resume)});
  }

  // new ScriptRuns(onEvent(token, stdout?: Buffer, stderr?: Buffer, flags, code, signal),
  //                onStart?(token, pid, stdinFd, error)).
  explicit ScriptRuns(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ScriptRuns>(info) {
    Napi::Env env = info.Env();
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (info[1].IsFunction()) on_start_ = Napi::Persistent(info[1].As<Napi::Function>());
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
    spawner_.reset();  // kills and reaps what it started and nobody took on
    for (auto& [token, fd] : starting_) {
      if (fd >= 0) ::close(fd);
    }
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
    std::unique_ptr<SpawnJob> job = readJob(info);
    Napi::Int32Array out = info[5].As<Napi::Int32Array>();
    spawnJob(*job);
    if (job->err != 0) throw spawnError(env, job->err, job->what + job->file);
    uint32_t token = ++next_token_;
    int err = adopt(token, job->child);
    if (err != 0) throw spawnError(env, err, "cannot watch " + job->file);
    out[0] = static_cast<int32_t>(token);
    out[1] = job->child.pid;
    out[2] = job->child.stdin_fd;
    return env.Undefined();
  }

  // spawnAsync(file, env, cwd, stdin, args) → token, at once: the start itself happens on a
  // Spawner thread (spawner.h), so a slow vfork never holds up the loop. Its outcome comes
  // through onStart(token, pid, stdinFd, error): the child then runs and is watched as one
  // from spawn(), or error is spawnError's Error. An fd given as stdin is the caller's to
  // close at once: the job keeps a copy of its own until the start.
  Napi::Value spawnAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (on_start_.IsEmpty()) throw Napi::Error::New(env, "ScriptRuns was made without onStart");
    std::unique_ptr<SpawnJob> job = readJob(info);
    if (job->stdin_mode >= 0 && (job->stdin_mode = fcntl(job->stdin_mode, F_DUPFD_CLOEXEC, 0)) < 0) {
      throw spawnError(env, errno, "cannot run " + job->file);
    }
    if (!spawner_ && !(spawner_ = Spawner::watchedBy(epoll_->epfd, &spawner_watch_))) {
      int e = errno;
      if (job->stdin_mode >= 0) ::close(job->stdin_mode);
      throw spawnError(env, e, "cannot run " + job->file);
    }
    uint32_t token = ++next_token_;
    job->tag = token;
    if (idle()) hold();
    starting_.emplace(token, job->stdin_mode);
    spawner_->start(std::move(job));
    return Napi::Number::New(env, token);
  }

  // file, env block, cwd, stdin mode, args: the arguments both spawns share.
  static std::unique_ptr<SpawnJob> readJob(const Napi::CallbackInfo& info) {
    auto job = std::make_unique<SpawnJob>();
    job->file = info[0].As<Napi::String>().Utf8Value();
    std::string block = info[1].As<Napi::String>().Utf8Value();
    job->cwd = info[2].As<Napi::String>().Utf8Value();
    job->stdin_mode = info[3].As<Napi::Number>().Int32Value();
    if (info[4].IsArray()) {
      Napi::Array a = info[4].As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) job->args.push_back(a.Get(i).ToString().Utf8Value());
    }
    for (size_t i = 0; i < block.size();) {
      size_t end = block.find('\0', i);
      if (end == std::string::npos) end = block.size();
      if (block.find('=', i) < end) job->env.emplace_back(block, i, end - i);
      i = end + 1;
    }
    return job;
  }

  // Watches a started child's pipes and pidfd as run `token`: 0, or an errno after the child
  // was killed and reaped and its fds closed (epoll out of memory: it must not outlive its run).
  int adopt(uint32_t token, const Spawned& child) {
    auto* run = new Run{this, token, {}, {}, {}};
    run->out = {run, child.stdout_fd};
    run->err = {run, child.stderr_fd};
    run->exit = {run, child.pidfd};
    // Pipes are read non-blocking (the child's ends stay blocking: O_NONBLOCK would be shared
    // through pipe2); the pidfd is only polled.
    bool watched = fcntl(child.stdout_fd, F_SETFL, O_NONBLOCK) == 0 && fcntl(child.stderr_fd, F_SETFL, O_NONBLOCK) == 0 &&
                   startWatch(&run->out) && startWatch(&run->err) && startWatch(&run->exit);
    if (!watched) {
      int e = errno;
      for (Watch* w : {&run->out, &run->err, &run->exit}) unwatch(w);
      for (int fd : {child.stdout_fd, child.stderr_fd, child.pidfd, child.stdin_fd}) {
        if (fd >= 0) ::close(fd);
      }
      kill(-child.pid, SIGKILL);
      waitpid(child.pid, nullptr, 0);
      delete run;
      return e;
    }
    if (idle()) hold();
    runs_.emplace(token, run);
    return 0;
  }

  // Alive while any child is starting or watched, whatever JS holds.
  bool idle() const { return runs_.empty() && starting_.empty(); }

  void hold() {
    Ref();
    uv_ref(reinterpret_cast<uv_handle_t*>(&epoll_->handle));
  }

  void letGo() {
    uv_unref(reinterpret_cast<uv_handle_t*>(&epoll_->handle));
    Unref();
  }

  // The Spawner's eventfd fired: each finished start becomes a run (or an error) and is told
  // to JavaScript, in the order the starts were asked for.
  void started() {
    Napi::Env env = Env();
    for (std::unique_ptr<SpawnJob>& job : spawner_->collect()) {
      Napi::HandleScope scope(env);
      auto token = static_cast<uint32_t>(job->tag);
      if (job->stdin_mode >= 0) ::close(job->stdin_mode);  // the child has its own copy
      int err = job->err;
      std::string what = job->what;
      if (err == 0 && (err = adopt(token, job->child)) != 0) what = "cannot watch ";
      starting_.erase(token);  // after adopt: the hold passes from the start to the run
      if (idle()) letGo();
      Napi::Value error = err != 0 ? spawnError(env, err, what + job->file).Value() : env.Null();
      try {
        on_start_.MakeCallback(env.Global(),
                               {Napi::Number::New(env, token), Napi::Number::New(env, err != 0 ? -1 : job->child.pid),
                                Napi::Number::New(env, err != 0 ? -1 : job->child.stdin_fd), error},
                               *context_);
      } catch (const Napi::Error& e) {
        napi_fatal_exception(env, e.Value());
      }
    }
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
      if (w == &spawner_watch_) {
        started();
        continue;
      }
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
      if (runs_.erase(run->token) > 0 && idle()) letGo();
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
  std::unique_ptr<Spawner> spawner_;  // made by the first spawnAsync
  Watch spawner_watch_{};  // marks the Spawner's eventfd in the epoll set
  std::unordered_map<uint32_t, int> starting_;  // spawnAsync tokens not yet started → stdin copy or -1
  Napi::FunctionReference on_start_;
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
