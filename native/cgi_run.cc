// The native CGI client: the Liso [cgi] mount served in the addon's poll loop, a script
// process per request, with the rules of src/app_runner.ts and src/cgi_transport.ts (which
// stay the complete implementation for what FcgiDispatch::takes leaves to JavaScript). The
// request side (queue, slots, environment as PARAMS) and the response side (CGI head,
// framing, local redirects, error pages) are FcgiDispatch's; this file is the process:
// vfork/execve (spawn.h) on the Spawner's thread (spawner.h: the loop never waits for an
// exec) with the environment decoded from PARAMS, the buffered body into
// stdin, stdout into the exchange, stderr lines to the error log, the pidfd for the exit.
//
// A process holds its mount's slot from its start until its leader exits, whether or not
// its exchange is still there: a script that goes on after its response (still writing to
// a database) keeps its slot until it exits or its silence timeout kills it, unless
// end_after_response sends its group SIGTERM once the response is complete. A client that
// leaves gets the group SIGTERM (SIGKILL 2 s later); a leader that exits while something it
// started still holds a pipe gets its group SIGTERM 100 ms later.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fastcgi_client.h"
#include "fastcgi_internal.h"
#include "spawner.h"
#include "spawn.h"

namespace lisod {
namespace {

constexpr uint64_t kKillGraceMs = 2000;  // SIGTERM → SIGKILL (cgi_transport.ts kKillGraceMs)
constexpr uint64_t kStragglerMs = 100;   // leader gone, a pipe still open → SIGTERM the group
constexpr uint64_t kEofWaitMs = 100;     // stdout ended, the leader not yet: wait this long for its status
constexpr size_t kReadChunk = 64 * 1024;  // per pipe per wake-up
constexpr int kMaxEvents = 64;

// PARAMS name-value pairs (FastCGI §3.4) → "NAME=VALUE" strings.
bool paramsToEnv(const std::string& params, std::vector<std::string>* out) {
  size_t i = 0;
  auto length = [&](size_t* n) {
    if (i >= params.size()) return false;
    const auto b0 = static_cast<unsigned char>(params[i]);
    if (b0 < 0x80) {
      *n = b0;
      i += 1;
      return true;
    }
    if (i + 4 > params.size()) return false;
    *n = (static_cast<size_t>(b0 & 0x7f) << 24) | (static_cast<size_t>(static_cast<unsigned char>(params[i + 1])) << 16) |
         (static_cast<size_t>(static_cast<unsigned char>(params[i + 2])) << 8) | static_cast<unsigned char>(params[i + 3]);
    i += 4;
    return true;
  };
  while (i < params.size()) {
    size_t name_len = 0, value_len = 0;
    if (!length(&name_len) || !length(&value_len) || params.size() - i < name_len + value_len) return false;
    std::string entry;
    entry.reserve(name_len + 1 + value_len);
    entry.append(params, i, name_len).push_back('=');
    entry.append(params, i + name_len, value_len);
    i += name_len + value_len;
    out->push_back(std::move(entry));
  }
  return true;
}

// The silence timeout runs until the leader's exit settles the exchange, but not while the
// client (not the script) is slow, nor once the client left (SIGTERM and SIGKILL then).
bool timedProc(const FcgiDispatch::Proc& p) {
  const bool paused = p.paused || (p.user != nullptr && p.user->paused);
  return !p.settled && !p.gone && !paused && !p.timed_out;
}

std::string signalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

void FcgiDispatch::startCgi(Exchange* ex) {
  Mount* m = ex->mount.get();
  const std::string& script = m->cfg.script_filename;
  auto job = std::make_unique<SpawnJob>();
  if (!paramsToEnv(ex->params, &job->env)) {
    fail(ex, 500, "cannot run " + script + ": bad environment");
    return;
  }
  if (!cgiEpoll()) {
    fail(ex, 500, "cannot watch " + script + ": " + strerror(errno));
    return;
  }
  job->file = script;
  job->cwd = m->cwd;
  job->stdin_mode = ex->req.has_body ? -1 : -2;  // a body (even an empty one) gets a pipe
  job->tag = ++spawn_seq_;
  spawning_[job->tag] = {ex->mount, ex, false};
  ex->spawn_id = job->tag;
  spawner_->start(std::move(job));
}

bool FcgiDispatch::cgiEpoll() {
  if (cgi_ep_ >= 0) return true;
  cgi_ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (cgi_ep_ < 0) return false;
  spawner_ = Spawner::watchedBy(cgi_ep_, nullptr);  // tag null: every other entry is a ProcFd
  if (!spawner_) {
    const int e = errno;
    ::close(cgi_ep_);
    cgi_ep_ = -1;
    errno = e;
    return false;
  }
  cgi_poll_ = new uv_poll_t;
  uv_poll_init(loop_, cgi_poll_, cgi_ep_);
  cgi_poll_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(cgi_poll_));
  cgi_watch_.holds_loop = false;
  InnerLoop::setEvents(inner_.get(), &cgi_watch_, cgi_poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
    static_cast<FcgiDispatch*>(h->data)->onCgiEvents();
  });
  return true;
}

void FcgiDispatch::onSpawned() {
  if (!spawner_) return;  // closed earlier in this batch of events
  for (std::unique_ptr<SpawnJob>& job : spawner_->collect()) {
    auto it = spawning_.find(job->tag);
    if (it == spawning_.end()) {  // closeAll ran meanwhile (from a callback of an earlier job)
      Spawner::discard(*job);
      continue;
    }
    SpawnWait w = std::move(it->second);
    spawning_.erase(it);
    Exchange* ex = w.ex;
    if (ex != nullptr) ex->spawn_id = 0;
    if (job->err == 0) {
      adoptChild(ex, w.mount, w.holds_slot, *job);
    } else if (ex != nullptr) {
      fail(ex, 500, job->what + job->file + ": " + strerror(job->err));
    } else if (w.holds_slot) {
      --w.mount->running;
      pump(w.mount.get());
    }
  }
}

// ex: the exchange the process is for, or null when it ended meanwhile (the process is
// then ended too, and frees the slot the exchange left it, holds_slot, when it exits).
void FcgiDispatch::adoptChild(Exchange* ex, const std::shared_ptr<Mount>& mount, bool holds_slot, SpawnJob& job) {
  const Spawned& child = job.child;
  auto owned = std::make_unique<Proc>();
  Proc* p = owned.get();
  p->mount = mount;
  p->pid = child.pid;
  p->looked_ns = uv_hrtime();
  p->label = mount->name + "[" + std::to_string(child.pid) + "]";
  p->in = {p, child.stdin_fd, 0};
  p->out = {p, child.stdout_fd, 0};
  p->err = {p, child.stderr_fd, 0};
  p->exit = {p, child.pidfd, 0};
  // The child's ends stay blocking: O_NONBLOCK on a pipe is shared through the description.
  for (ProcFd* f : {&p->in, &p->out, &p->err}) {
    if (f->fd >= 0) fcntl(f->fd, F_SETFL, O_NONBLOCK);
  }
  watchProcFd(&p->out, EPOLLIN);
  watchProcFd(&p->err, EPOLLIN);
  watchProcFd(&p->exit, EPOLLIN);
  if (p->out.events == 0 || p->err.events == 0 || p->exit.events == 0) {
    // No memory for one more watch: the child must not run unwatched.
    const int e = errno;
    kill(-child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
    for (ProcFd* f : {&p->in, &p->out, &p->err, &p->exit}) closeProcFd(f);
    if (ex != nullptr) {
      fail(ex, 500, "cannot watch " + job.file + ": " + strerror(e));
    } else if (holds_slot) {
      --mount->running;
      pump(mount.get());
    }
    return;
  }
  procs_.emplace(p, std::move(owned));
  ++stats_.spawned;
  p->holds_slot = true;
  if (ex == nullptr) {  // its client left while it was starting: as onAppClose would have done
    p->holds_slot = holds_slot;
    p->gone = true;
    signalProc(p, SIGTERM);
    touchProc(p);
    return;
  }
  p->user = ex;
  ex->proc = p;
  ex->proc_label = p->label;
  ex->has_slot = false;  // the process holds it from here on
  if (p->in.fd >= 0) {
    p->body = std::move(ex->body);
    ex->body.clear();
    writeProcStdin(p);
  }
  touchProc(p);
}

void FcgiDispatch::watchProcFd(ProcFd* f, uint32_t events) {
  if (f->fd < 0 || f->events == events || cgi_ep_ < 0) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = f;
  const int op = f->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
  if (epoll_ctl(cgi_ep_, op, f->fd, &ev) == 0 || op == EPOLL_CTL_DEL) f->events = events;
}

// Removed from the set explicitly before the close: the child's copy of a pipe end is the
// same open file, and an fd closed while that lives would stay registered.
void FcgiDispatch::closeProcFd(ProcFd* f) {
  if (f->fd < 0) return;
  watchProcFd(f, 0);
  ::close(f->fd);
  f->fd = -1;
}

void FcgiDispatch::onCgiEvents() {
  graveyard_.clear();
  proc_graveyard_.clear();
  epoll_event evs[kMaxEvents];
  int n;
  do {
    n = epoll_wait(cgi_ep_, evs, kMaxEvents, 0);
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        onSpawned();
      } else {
        onProcFd(static_cast<ProcFd*>(evs[i].data.ptr), evs[i].events);
      }
    }
  } while (n == kMaxEvents);
}

void FcgiDispatch::onProcFd(ProcFd* f, uint32_t events) {
  Proc* p = f->proc;
  if (f->fd < 0 || procs_.find(p) == procs_.end()) return;  // closed earlier in this batch
  if (f == &p->in) {
    writeProcStdin(p);
  } else if (f == &p->out) {
    readProcStdout(p);
  } else if (f == &p->err) {
    readProcStderr(p);
  } else {
    reapProc(p);
  }
  (void)events;
  settleProc(p);
}

void FcgiDispatch::writeProcStdin(Proc* p) {
  while (p->body_off < p->body.size()) {
    const ssize_t n = ::write(p->in.fd, p->body.data() + p->body_off, p->body.size() - p->body_off);
    if (n > 0) {
      p->body_off += static_cast<size_t>(n);
      touchProc(p);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      watchProcFd(&p->in, EPOLLOUT);
      return;
    }
    break;  // EPIPE: the script stopped reading; its exit decides
  }
  closeProcFd(&p->in);  // EOF for the script
  p->body.clear();
  p->body.shrink_to_fit();
}

void FcgiDispatch::readProcStdout(Proc* p) {
  for (size_t total = 0; p->out.fd >= 0 && total < kReadChunk;) {
    Exchange* ex = p->user;
    if (ex != nullptr && ex->paused) {  // the client is slow: the script blocks on a full pipe
      p->paused = true;
      watchProcFd(&p->out, 0);
      return;
    }
    const ssize_t n = ::read(p->out.fd, scratch_, kReadChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF (or a read error, the same to the exchange)
      closeProcFd(&p->out);
      // A body that only EOF ends: whether it is whole is the exit status's to say (a script
      // killed or failing mid-body must not look complete), so settleProc ends it once the
      // leader has exited — or, if the leader goes on without its stdout, kEofWaitMs from now.
      if (ex != nullptr && ex->head_done && !ex->ended && !p->exited) {
        p->eof_wait_at_ms = uv_now(loop_) + kEofWaitMs;
        armProcTimer();
      }
      return;
    }
    total += static_cast<size_t>(n);
    if (ex == nullptr || ex->ended) continue;  // drained and dropped: a blocked writer would never exit
    touchProc(p);
    ex->emitted = true;
    onStdout(ex, std::string_view(scratch_, static_cast<size_t>(n)));
    // Content-Length reached, a bad head, a local redirect: the exchange is done with it.
    if (p->user == ex && (ex->ended || ex->done)) endExchange(ex);
  }
}

void FcgiDispatch::readProcStderr(Proc* p) {
  for (size_t total = 0; p->err.fd >= 0 && total < kReadChunk;) {
    const ssize_t n = ::read(p->err.fd, scratch_, kReadChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      closeProcFd(&p->err);
      stderrLines(*p->mount, p->stderr_line, p->stderr_dropped, p->label, {}, true);
      return;
    }
    total += static_cast<size_t>(n);
    stderrLines(*p->mount, p->stderr_line, p->stderr_dropped, p->label, std::string_view(scratch_, static_cast<size_t>(n)),
                false);
  }
}

void FcgiDispatch::reapProc(Proc* p) {
  if (!reapChild(p->exit.fd, &p->code, &p->signal)) return;
  p->exited = true;
  closeProcFd(&p->exit);
  if (p->stat_fd >= 0) ::close(p->stat_fd);  // its /proc entry is gone with the zombie
  p->stat_fd = -1;
}

void FcgiDispatch::releaseProc(Exchange* ex, int sig) {
  Proc* p = ex->proc;
  ex->proc = nullptr;
  if (p == nullptr) return;
  p->user = nullptr;
  if (p->paused) {  // keep draining: a blocked writer would never exit
    p->paused = false;
    watchProcFd(&p->out, EPOLLIN);
  }
  if (sig == 0 && p->mount->cfg.end_after_response) sig = SIGTERM;
  if (sig != 0) signalProc(p, sig);
  touchProc(p);  // a process that lingers after its response is still timed
  settleProc(p);
}

void FcgiDispatch::signalProc(Proc* p, int sig) {
  if (p->exited && p->out.fd < 0 && p->err.fd < 0) return;  // nothing of it left to reach
  if (p->signalled == SIGKILL) return;
  p->signalled = sig;
  kill(-p->pid, sig);  // the script leads its own group; ESRCH: the group is already empty
  if (sig == SIGTERM && p->kill_at_ms == 0) {
    p->kill_at_ms = uv_now(loop_) + kKillGraceMs;
    armProcTimer();
  }
}

void FcgiDispatch::touchProc(Proc* p) {
  p->deadline_ms = uv_now(loop_) + p->mount->cfg.timeout_ms;
  // A deadline only moves later here: a timer already set fires early at worst, and
  // sweepProcs sets the next. No scan of every process per output chunk.
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(proc_timer_))) armProcTimer();
}

// The leader's exit, once stdout has ended or the exchange no longer wants it (src/
// cgi_transport.ts 'close'): the exchange's outcome is decided and the slot is freed. The
// process itself is freed once its pipes have closed too.
void FcgiDispatch::settleProc(Proc* p) {
  if (!p->settled && p->exited && (p->out.fd < 0 || p->user == nullptr)) {
    p->settled = true;
    if (p->out.fd >= 0 || p->err.fd >= 0) {  // something it started still holds a pipe
      if (p->signalled == 0) {
        p->straggler_at_ms = uv_now(loop_) + kStragglerMs;
        armProcTimer();
      }
    }
    std::shared_ptr<Mount> m = p->mount;
    if (p->holds_slot) {
      p->holds_slot = false;
      --m->running;
    }
    if (Exchange* ex = p->user) {
      const Mount& mc = *m;
      const std::string how = p->signal != 0 ? "was killed by " + signalName(p->signal)
                                             : "exited with status " + std::to_string(p->code);
      const bool failed = p->signal != 0 || p->code != 0;
      if (!ex->head_done) {
        if (p->timed_out) {
          fail(ex, 504, p->label + " sent nothing for " + std::to_string(mc.cfg.timeout_ms) + " ms; killed");
        } else if (failed) {
          fail(ex, 500, p->label + " " + how + " before sending a response");
        } else {
          fail(ex, 502, "bad output from " + p->label + ": " +
                            (ex->head.empty() ? "no output" : "output ended before the blank line that closes the header section"));
        }
      } else if (!ex->ended) {
        if (p->timed_out) {
          log(LogLevel::kError, "cgi " + p->label + ": silent for " + std::to_string(mc.cfg.timeout_ms) + " ms after its head; killed");
        } else if (failed) {
          log(LogLevel::kWarn, "cgi " + p->label + ": " + how + " after its head");
        }
        // A killed or failing script may have stopped mid-body: close instead of ending the framing.
        finish(ex, p->timed_out || failed || ex->cutShort());
        endExchange(ex);
      } else {
        endExchange(ex);
      }
    }
    pump(m.get());
  }
  if (p->exited && p->out.fd < 0 && p->err.fd < 0 && p->in.fd < 0 && p->user == nullptr) {
    auto it = procs_.find(p);
    if (it != procs_.end()) {
      proc_graveyard_.push_back(std::move(it->second));
      procs_.erase(it);
    }
  }
}

void FcgiDispatch::sweepProcs() {
  graveyard_.clear();
  proc_graveyard_.clear();
  const uint64_t now = uv_now(loop_);
  std::vector<Proc*> due;
  for (auto& [ptr, p] : procs_) due.push_back(ptr);
  for (Proc* p : due) {
    if (procs_.find(p) == procs_.end()) continue;
    if (p->kill_at_ms != 0 && p->kill_at_ms <= now) {
      p->kill_at_ms = 0;
      signalProc(p, SIGKILL);
    }
    if (p->eof_wait_at_ms != 0 && p->eof_wait_at_ms <= now) {
      p->eof_wait_at_ms = 0;
      if (Exchange* ex = p->user; ex != nullptr && !ex->ended) {  // the leader runs on without stdout
        finish(ex, p->timed_out || ex->cutShort());
        endExchange(ex);  // releases the process, which keeps its slot until it exits
      }
    }
    if (p->straggler_at_ms != 0 && p->straggler_at_ms <= now) {
      p->straggler_at_ms = 0;
      if (p->out.fd >= 0 || p->err.fd >= 0) signalProc(p, SIGTERM);
    }
    if (timedProc(*p) && p->deadline_ms <= now) {
      p->timed_out = true;
      if (p->user == nullptr) {
        log(LogLevel::kWarn, "cgi " + p->label + ": still running " + std::to_string(p->mount->cfg.timeout_ms) +
                                 " ms after its response; killed");
      }
      signalProc(p, SIGKILL);
    }
  }
  armProcTimer();
}

void FcgiDispatch::armProcTimer() {
  uint64_t next = 0;
  for (auto& [ptr, p] : procs_) {
    for (uint64_t at : {timedProc(*p) ? p->deadline_ms : 0, p->kill_at_ms, p->straggler_at_ms, p->eof_wait_at_ms}) {
      if (at != 0 && (next == 0 || at < next)) next = at;
    }
  }
  if (next == 0) {
    uv_timer_stop(proc_timer_);
    proc_timer_at_ = 0;
    return;
  }
  if (proc_timer_at_ != 0 && proc_timer_at_ <= next && uv_is_active(reinterpret_cast<uv_handle_t*>(proc_timer_))) return;
  proc_timer_at_ = next;
  const uint64_t now = uv_now(loop_);
  uv_timer_start(proc_timer_, [](uv_timer_t* t) {
    auto* d = static_cast<FcgiDispatch*>(t->data);
    d->proc_timer_at_ = 0;
    d->sweepProcs();
  }, next > now ? next - now : 0, 0);
}

// Shutdown (after closeAll freed the exchanges): every process's group gets SIGTERM (as
// app_runner.ts stop()); nothing is watched any more.
void FcgiDispatch::closeProcs() {
  for (auto& [ptr, p] : procs_) {
    if (!p->exited) signalProc(p.get(), SIGTERM);
    for (ProcFd* f : {&p->in, &p->out, &p->err, &p->exit}) closeProcFd(f);
  }
  procs_.clear();
  proc_graveyard_.clear();
  spawner_.reset();  // kills and reaps what it started and nobody took on
  spawning_.clear();
  uv_timer_stop(proc_timer_);
  if (cgi_poll_ != nullptr) {
    InnerLoop::setEvents(inner_.get(), &cgi_watch_, cgi_poll_, 0, nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(cgi_poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    cgi_poll_ = nullptr;
    ::close(cgi_ep_);
    cgi_ep_ = -1;
  }
}

}  // namespace lisod
