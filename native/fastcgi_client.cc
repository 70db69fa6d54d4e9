// The native FastCGI client (see fastcgi_client.h): the backend side — mounts, pooled
// connections and the record stream of one exchange. The response side (head, body,
// errors, redirects) is fastcgi_exchange.cc.
#include "fastcgi_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fastcgi_env.h"
#include "fastcgi_internal.h"
#include "fastcgi_record.h"
#include "http_request.h"
#include "spawner.h"

namespace lisod {
namespace {

constexpr uint64_t kSweepMs = 250;
constexpr uint64_t kIdleMs = 2000;  // an idle pooled connection is closed after this
constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kMaxBuffered = 256 * 1024;  // unprocessed backend bytes read ahead

std::string errName(int err) {
  const char* n = strerrorname_np(err);
  return n != nullptr ? n : std::to_string(err);
}

// "unix:PATH", "HOST:PORT" or "[V6]:PORT" (validated by src/config_fastcgi.ts) → address.
bool resolveAddress(const std::string& text, sockaddr_storage* out, socklen_t* len, std::string* error) {
  std::memset(out, 0, sizeof *out);
  if (text.rfind("unix:", 0) == 0) {
    const std::string path = text.substr(5);
    auto* un = reinterpret_cast<sockaddr_un*>(out);
    if (path.size() >= sizeof un->sun_path) {
      *error = "socket path too long: " + path;
      return false;
    }
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size() + 1);
    *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + 1);
    return true;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    *error = "\"" + text + "\" is not unix:PATH or HOST:PORT";
    return false;
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  // A name resolves once, here (the TypeScript transport resolved per connection).
  if (int rc = getaddrinfo(host.c_str(), text.c_str() + colon + 1, &hints, &res); rc != 0 || res == nullptr) {
    *error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return true;
}

}  // namespace

FcgiDispatch::FcgiDispatch(uv_loop_t* loop, ServerEvents* next) : loop_(loop), next_(next) {
  for (uv_timer_t** t : {&timer_, &proc_timer_, &cpu_timer_}) {
    *t = new uv_timer_t;
    uv_timer_init(loop_, *t);
    (*t)->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(*t));
  }
}

FcgiDispatch::~FcgiDispatch() {
  closeAll();
  for (uv_timer_t* t : {timer_, proc_timer_, cpu_timer_}) {
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

bool FcgiDispatch::setMounts(std::vector<FcgiMountConfig> configs, std::string* error) {
  std::vector<std::shared_ptr<Mount>> mounts;
  for (FcgiMountConfig& c : configs) {
    auto m = std::make_shared<Mount>();
    m->self = m;
    m->tag = c.cgi ? "cgi" : "fastcgi";
    if (c.cgi) {
      const size_t slash = c.script_filename.rfind('/');
      if (c.script_filename.empty() || c.script_filename[0] != '/' || slash == std::string::npos) {
        *error = "[cgi] " + c.prefix + "/: the script path must be absolute";
        return false;
      }
      m->cwd = slash == 0 ? "/" : c.script_filename.substr(0, slash);
      m->name = c.script_filename.substr(slash + 1);
      c.pipeline = false;
    } else if (!resolveAddress(c.address, &m->addr, &m->addr_len, error)) {
      *error = "[[fastcgi]] " + c.prefix + "/: " + *error;
      return false;
    }
    if (c.root) m->router.emplace(c.prefix, *c.root, c.index);
    c.inherited = filterInheritedEnv(c.inherited);
    c.max_conns = std::max<size_t>(c.max_conns, 1);
    m->cfg = std::move(c);
    if (m->cfg.mount < 0 || m->cfg.mount > 1000) {
      *error = "[[fastcgi]] " + m->cfg.prefix + "/: bad mount index";
      return false;
    }
    if (mounts.size() <= static_cast<size_t>(m->cfg.mount)) mounts.resize(m->cfg.mount + 1);
    mounts[m->cfg.mount] = std::move(m);
  }
  for (auto& old : mounts_) {
    if (!old) continue;
    old->retired = true;  // its exchanges finish; their connections close then
    while (!old->idle.empty()) dropBackend(old->idle.front());
  }
  mounts_ = std::move(mounts);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(timer_))) {
    uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<FcgiDispatch*>(t->data)->sweep(); }, kSweepMs, kSweepMs);
  }
  return true;
}

void FcgiDispatch::closeAll() {
  for (auto& [id, ex] : exchanges_) {
    if (ex->backend) dropBackend(ex->backend);
    ex->backend = nullptr;
  }
  exchanges_.clear();
  graveyard_.clear();
  runner_slots_.clear();
  for (auto& m : mounts_) {
    if (!m) continue;
    m->queue.clear();
    m->runner_queue.clear();
    m->running = 0;
    while (!m->idle.empty()) dropBackend(m->idle.front());
  }
  uv_timer_stop(timer_);
  uv_timer_stop(cpu_timer_);
  cpu_held_.clear();
  closeProcs();
}

// --- requests in ---------------------------------------------------------------------

bool FcgiDispatch::takes(const Mount& m, const AppRequest& r) const {
  if (!r.has_body) return true;
  return r.content_length >= 0 && m.cfg.request_buffering && static_cast<uint64_t>(r.content_length) <= kMemoryBody;
}

int FcgiDispatch::routeParams(Mount& m, const AppRequest& r, std::string* params, std::string* miss) {
  std::string_view path, query;
  splitCgiTarget(r.target, &path, &query);
  std::string decoded;
  if (m.router) {
    if (!percentDecodePath(path, &decoded)) return -1;
    std::optional<ScriptRoute> route = m.router->route(decoded, uv_now(loop_));
    if (!route) {
      *miss = std::string(path);
      return 404;
    }
    appendCgiParams(*params, r, {route->script_name, route->script_filename, route->path_info, query}, m.cfg.inherited,
                    m.cfg.server_name);
    return 0;
  }
  const std::string& prefix = m.cfg.prefix;
  if (path.substr(0, prefix.size()) != prefix || (path.size() > prefix.size() && path[prefix.size()] != '/')) return -1;
  if (!percentDecodePath(path.substr(prefix.size()), &decoded)) return -1;
  appendCgiParams(*params, r, {prefix, m.cfg.script_filename, decoded, query}, m.cfg.inherited, m.cfg.server_name);
  return 0;
}

void FcgiDispatch::onAppRequest(const AppRequest& r) {
  Mount* m = r.mount >= 0 && static_cast<size_t>(r.mount) < mounts_.size() ? mounts_[r.mount].get() : nullptr;
  if (m == nullptr || !takes(*m, r)) {
    next_->onAppRequest(r);
    return;
  }
  auto ex = std::make_unique<Exchange>();
  std::string miss;
  const int rc = routeParams(*m, r, &ex->params, &miss);
  if (rc < 0) {
    next_->onAppRequest(r);  // JavaScript words the 400
    return;
  }
  ex->id = r.id;
  ex->mount = mounts_[r.mount];
  ex->seq = ++seq_;
  ex->req = r;
  ex->req.identity = nullptr;  // valid during this call only
  ex->headers = std::move(ex->req.headers);  // for a local redirect's new request
  if (r.identity != nullptr) {
    appendIdentityParams(ex->identity_params, *r.identity);
    ex->params += ex->identity_params;
  }
  ex->idempotent = isIdempotent(r.method);
  Exchange* e = ex.get();
  exchanges_.emplace(r.id, std::move(ex));
  ++stats_.requests;
  if (!m->announced) {  // once per mount and event loop: tests and operators see which path serves
    m->announced = true;
    log(LogLevel::kInfo, m->cfg.cgi ? "cgi " + m->cfg.prefix + "/: scripts run by the native CGI client"
                                    : "fastcgi " + m->cfg.prefix + "/: served by the native FastCGI client");
  }
  if (rc == 404) fail(e, 404, "no script for " + miss, LogLevel::kInfo);
}

FcgiDispatch::Exchange* FcgiDispatch::exchange(uint32_t id) const {
  auto it = exchanges_.find(id);
  return it == exchanges_.end() ? nullptr : it->second.get();
}

void FcgiDispatch::onAppBody(uint32_t id, const char* data, size_t len, bool end) {
  Exchange* ex = exchange(id);
  if (ex == nullptr) return next_->onAppBody(id, data, len, end);  // not ours: the next transport's
  if (ex->phase != Exchange::kBody) return;
  ex->body.append(data, len);
  if (end) enqueue(ex);
}

void FcgiDispatch::onAppClose(uint32_t id) {
  Exchange* ex = exchange(id);
  if (ex == nullptr) return next_->onAppClose(id);  // not ours: the next transport's
  ex->gone = true;
  if (ex->proc) {  // as app_runner.ts: SIGTERM (SIGKILL after a grace); the slot is held until it exits
    ex->proc->gone = true;
    releaseProc(ex, SIGTERM);
  }
  if (ex->ended) return;  // draining the backend to END_REQUEST for its connection's sake
  // php-fpm ignores FCGI_ABORT_REQUEST: closing the connection is what stops the work.
  if (ex->backend) dropBackend(ex->backend);
  ex->backend = nullptr;
  ex->ended = true;
  endExchange(ex);
}

void FcgiDispatch::onAppDrain(uint32_t id) {
  Exchange* ex = exchange(id);
  if (ex == nullptr) return next_->onAppDrain(id);  // not ours: the next transport's
  if (!ex->paused) return;
  ex->paused = false;
  touch(ex);
  if (Proc* p = ex->proc) {
    p->paused = false;
    watchProcFd(&p->out, EPOLLIN);
  }
  if (Backend* b = ex->backend) {
    processRecords(b);
    if (!b->closed) afterRead(b);
  }
}

// --- the pool (slots and queue: fastcgi_slots.cc) -----------------------------------

void FcgiDispatch::start(Exchange* ex, bool fresh) {
  Mount* m = ex->mount.get();
  ex->phase = Exchange::kRunning;
  if (!ex->has_slot) {
    ex->has_slot = true;
    ++m->running;
  }
  if (m->cfg.cgi) {
    startCgi(ex);
    return;
  }
  std::string why;
  // A pooled connection may turn out dead once the request is out; only an idempotent
  // request can then be sent again, so the others always get a new connection.
  Backend* b = acquire(m, fresh || !ex->idempotent, &why);
  if (b == nullptr) {
    fail(ex, 502, label(ex) + ": cannot connect to the backend: " + why);
    return;
  }
  ex->backend = b;
  b->user = ex;
  ex->started_ms = uv_now(loop_);
  sendRequest(b, ex);
  touch(ex);
  if (b->connected) flushBackend(b);
  if (!b->closed) updatePoll(b);
}

void FcgiDispatch::sendRequest(Backend* b, Exchange* ex) {
  b->next_id = static_cast<uint16_t>(b->next_id % 0xffff + 1);  // 1..65535: a stray record is noticed
  ex->rid = b->next_id;
  std::string& out = b->out;
  appendFcgiBegin(out, ex->rid, true);
  appendFcgiRecords(out, kFcgiParams, ex->rid, ex->params);
  appendFcgiRecords(out, kFcgiParams, ex->rid, {});
  if (!ex->body.empty()) appendFcgiRecords(out, kFcgiStdin, ex->rid, ex->body);
  appendFcgiRecords(out, kFcgiStdin, ex->rid, {});
}

FcgiDispatch::Backend* FcgiDispatch::acquire(Mount* m, bool fresh, std::string* why) {
  if (!fresh && !m->idle.empty()) {
    Backend* b = m->idle.back();  // most recently used
    m->idle.pop_back();
    b->reused = true;
    ++stats_.reused;
    return b;
  }
  // A backend process serves one connection at a time (php-fpm children, php-cgi,
  // flaskr.fcgi): an idle connection of ours would keep a process from accepting the new one.
  if (!m->idle.empty()) dropBackend(m->idle.front());
  while (m->conns.size() >= m->cfg.max_conns && !m->idle.empty()) dropBackend(m->idle.front());
  const int family = m->addr.ss_family;
  const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = errName(errno);
    return nullptr;
  }
  if (family != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  bool connected = true;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&m->addr), m->addr_len) != 0) {
    if (errno != EINPROGRESS) {
      *why = errName(errno);  // ECONNREFUSED, ENOENT; EAGAIN: a Unix socket's backlog is full
      ::close(fd);
      return nullptr;
    }
    connected = false;
  }
  auto* b = new Backend;
  b->dispatch = this;
  b->mount = m->self.lock();
  b->fd = fd;
  b->connected = connected;
  uv_poll_init(loop_, &b->poll, fd);
  b->poll.data = b;
  uv_unref(reinterpret_cast<uv_handle_t*>(&b->poll));
  b->watch.holds_loop = false;  // as the unref'd poll handle
  m->conns.push_back(b);
  ++stats_.connects;
  return b;
}

void FcgiDispatch::release(Backend* b) {
  Mount* m = b->mount.get();
  b->user = nullptr;
  if (b->next_rid != 0) {
    promote(b);
    return;
  }
  if (m->retired || m->idle.size() >= m->cfg.max_conns || b->in_off < b->in.size() || !b->out.empty() || b->eof) {
    dropBackend(b);
    return;
  }
  b->in.clear();
  b->in_off = 0;
  b->idle_since = uv_now(loop_);
  m->idle.push_back(b);
  updatePoll(b);  // readable while idle: a close or a stray byte drops it
}

void FcgiDispatch::dropBackend(Backend* b) {
  if (b->closed) return;
  b->closed = true;
  Mount* m = b->mount.get();
  if (auto it = std::find(m->idle.begin(), m->idle.end(), b); it != m->idle.end()) m->idle.erase(it);
  if (auto it = std::find(m->conns.begin(), m->conns.end(), b); it != m->conns.end()) m->conns.erase(it);
  b->user = nullptr;
  // A pipelined request the backend had not begun (it serves one at a time, and the
  // request before it never ended): back to the queue's front, for the next slot.
  requeueBehind(b);
  InnerLoop::setEvents(inner_.get(), &b->watch, &b->poll, 0, nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&b->poll), [](uv_handle_t* h) { delete static_cast<Backend*>(h->data); });
  ::close(b->fd);
}

void FcgiDispatch::updatePoll(Backend* b) {
  int want = 0;
  if (!b->connected || !b->out.empty()) want |= UV_WRITABLE;
  if (b->connected && !b->eof && !(b->user && b->user->paused)) want |= UV_READABLE;
  if (want == b->polled) return;
  b->polled = want;
  const uv_poll_cb cb = [](uv_poll_t* h, int status, int events) {
    auto* be = static_cast<Backend*>(h->data);
    be->dispatch->onBackendEvent(be, status, events);
  };
  InnerLoop::setEvents(inner_.get(), &b->watch, &b->poll, want, cb);
}

// --- the byte stream -----------------------------------------------------------------

void FcgiDispatch::onBackendEvent(Backend* b, int status, int events) {
  graveyard_.clear();
  if (b->closed) return;
  if (status < 0 || (!b->connected && (events & UV_WRITABLE))) {
    // A failed connect (or a reset) shows as an error event: the socket says which.
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (!b->connected && (err != 0 || status < 0)) {
      broken(b, err != 0 ? errName(err) : uv_err_name(status));
      return;
    }
    if (status < 0) {
      // POLLERR on a connected socket (libuv stopped the handle): the peer reset it, e.g.
      // php-cgi exiting at PHP_FCGI_MAX_REQUESTS. What it sent before is still queued
      // here — often the whole answer — so read it all before calling the connection broken.
      b->polled = 0;
      readBackend(b, true, err != 0 ? errName(err) : uv_err_name(status));
      return;
    }
    b->connected = true;
    if (b->user) touch(b->user);  // from here on the silence timeout
  }
  if (events & UV_WRITABLE) flushBackend(b);
  if (!b->closed && (events & (UV_READABLE | UV_DISCONNECT))) readBackend(b);
  if (!b->closed) updatePoll(b);
}

void FcgiDispatch::flushBackend(Backend* b) {
  while (b->out_off < b->out.size()) {
    ssize_t n = ::send(b->fd, b->out.data() + b->out_off, b->out.size() - b->out_off, MSG_NOSIGNAL);
    if (n > 0) {
      b->out_off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    // EPIPE, ECONNRESET: what the backend already answered may still be readable.
    readBackend(b, true, errName(errno));
    return;
  }
  b->out.clear();
  b->out_off = 0;
}

void FcgiDispatch::readBackend(Backend* b, bool all, std::string error) {
  if (all) b->eof = true;  // the socket is done: whatever it still holds is read now
  while ((all || !b->eof) && (all || (b->in.size() - b->in_off < kMaxBuffered && !(b->user && b->user->paused)))) {
    ssize_t n = ::read(b->fd, scratch_, kReadChunk);
    if (n > 0) {
      if (b->user == nullptr) {  // nothing may arrive between requests
        dropBackend(b);
        return;
      }
      if (b->in_off == b->in.size()) {
        b->in.clear();
        b->in_off = 0;
      }
      b->in.append(scratch_, static_cast<size_t>(n));
      if (!all && static_cast<size_t>(n) < kReadChunk) break;
      continue;
    }
    if (n == 0) {
      b->eof = true;
    } else if (errno == EINTR) {
      continue;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      if (error.empty()) error = errName(errno);
      b->eof = true;
    }
    break;
  }
  if (b->user == nullptr) {
    if (b->eof) dropBackend(b);
    return;
  }
  processRecords(b);
  if (!b->closed) afterRead(b, error);
}

void FcgiDispatch::afterRead(Backend* b, const std::string& error) {
  if (b->in_off > kReadChunk) {
    b->in.erase(0, b->in_off);
    b->in_off = 0;
  }
  if (b->eof && b->user && !b->user->paused) {
    broken(b, error.empty() ? "connection closed" : error);
    return;
  }
  if (b->eof && b->user == nullptr) {
    dropBackend(b);
    return;
  }
  updatePoll(b);
}

void FcgiDispatch::processRecords(Backend* b) {
  while (!b->closed && b->user != nullptr && !b->user->paused) {
    Exchange* ex = b->user;
    FcgiRecord r;
    const long n = parseFcgiRecord(b->in.data() + b->in_off, b->in.size() - b->in_off, &r);
    if (n == kFcgiIncomplete) return;
    if (n == kFcgiBadVersion) {
      fail(ex, 502, label(ex) + ": malformed FastCGI record from the backend: record version " +
                        std::to_string(static_cast<unsigned char>(b->in[b->in_off])) + ", not 1",
           LogLevel::kError, true);
      return;
    }
    b->in_off += static_cast<size_t>(n);
    if (r.id != ex->rid && r.id == b->next_rid && b->next_rid != 0) {
      // The backend looked at the pipelined request before finishing the current one.
      Mount* m = ex->mount.get();
      const bool first = m->pipelining;
      m->pipelining = false;
      FcgiEnd e;
      if (r.type == kFcgiEndRequest && parseFcgiEnd(r.content, &e) && e.protocol_status == kFcgiCantMpx) {
        if (first) {
          log(LogLevel::kInfo, "fastcgi " + m->cfg.prefix + "/: the backend refuses a request sent behind another " +
                                   "(FCGI_CANT_MPX_CONN); requests wait in lisod's queue instead");
        }
        requeueBehind(b);
        continue;
      }
      fail(ex, 502, label(ex) + ": the backend answered a request sent behind this one before ending it (" +
                        "lisod does not demultiplex); requests wait in lisod's queue from now on",
           LogLevel::kError, true);
      return;
    }
    ex->answered = true;
    touch(ex);
    if (r.id != ex->rid) {
      fail(ex, 502, label(ex) + ": FastCGI record type " + std::to_string(r.type) + " for request " +
                        std::to_string(r.id) + ", expected " + std::to_string(ex->rid),
           LogLevel::kError, true);
      return;
    }
    switch (r.type) {
      case kFcgiStdout:
        if (!r.content.empty() && !ex->ended) {
          ex->emitted = true;
          onStdout(ex, r.content);
        }
        break;
      case kFcgiStderr: onStderr(ex, r.content, false); break;
      case kFcgiEndRequest: onEnd(ex, r.content); break;  // b may go on with a pipelined request
      default:
        fail(ex, 502, label(ex) + ": unexpected FastCGI record type " + std::to_string(r.type) + " from the backend",
             LogLevel::kError, true);
        return;
    }
  }
}

void FcgiDispatch::broken(Backend* b, const std::string& why) {
  Exchange* ex = b->user;
  const bool was_connected = b->connected, reused = b->reused;
  dropBackend(b);
  if (ex == nullptr) return;
  ex->backend = nullptr;
  // A keep-conn connection the backend closed while it sat in the pool (php-fpm's
  // pm.max_requests, a restart) before answering anything: try a fresh one. Only
  // idempotent methods (RFC 9110 §9.2.2) are sent again, as nginx does.
  if (reused && !ex->answered && ex->idempotent && canResend(ex)) {
    ex->retried = true;
    start(ex, true);
    return;
  }
  fail(ex, 502,
       label(ex) + (was_connected ? ": the backend connection failed: " : ": cannot connect to the backend: ") + why,
       LogLevel::kError, true);
}

void FcgiDispatch::touch(Exchange* ex) {
  if (ex->proc) touchProc(ex->proc);
  const Mount& m = *ex->mount;
  const bool connecting = ex->backend != nullptr && !ex->backend->connected;
  ex->deadline_ms = uv_now(loop_) + (connecting ? m.cfg.connect_timeout_ms : m.cfg.timeout_ms);
}

void FcgiDispatch::sweep() {
  graveyard_.clear();
  const uint64_t now = uv_now(loop_);
  std::vector<Exchange*> due;
  for (auto& [id, ex] : exchanges_) {
    // A CGI exchange's silence is its process's (sweepProcs).
    if (ex->phase == Exchange::kRunning && !ex->paused && ex->deadline_ms <= now && !ex->mount->cfg.cgi) {
      due.push_back(ex.get());
    }
  }
  unstick(now);
  for (Exchange* ex : due) {
    if (ex->done) continue;
    const Mount& m = *ex->mount;
    if (ex->backend != nullptr && !ex->backend->connected) {
      fail(ex, 504, label(ex) + ": connecting to the backend took over " + std::to_string(m.cfg.connect_timeout_ms) + " ms");
    } else if (ex->ended) {
      log(LogLevel::kWarn, "fastcgi " + label(ex) + ": still running " + std::to_string(m.cfg.timeout_ms) +
                               " ms after its response; dropped");
      fail(ex, 504, "", LogLevel::kWarn);
    } else if (!ex->head_done) {
      fail(ex, 504, label(ex) + " sent nothing for " + std::to_string(m.cfg.timeout_ms) + " ms; killed");
    } else {
      log(LogLevel::kError, "fastcgi " + label(ex) + ": silent for " + std::to_string(m.cfg.timeout_ms) +
                                " ms after its head; killed");
      fail(ex, 504, "", LogLevel::kError, true);
    }
  }
  for (auto& mp : mounts_) {
    if (!mp) continue;
    while (!mp->idle.empty() && mp->idle.front()->idle_since + kIdleMs <= now) dropBackend(mp->idle.front());
  }
}

AppSink* FcgiDispatch::sink(const Exchange* ex) const { return server_ ? server_->app(ex->id) : nullptr; }

std::string FcgiDispatch::label(const Exchange* ex) const {
  if (ex->mount->cfg.cgi) return ex->proc_label;
  return ex->mount->cfg.prefix + "/#" + std::to_string(ex->seq);
}

}  // namespace lisod
