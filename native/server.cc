#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "connection.h"
#include "static_file.h"
#include "transport.h"

namespace lisod {
namespace {

constexpr int kBacklog = 4096;
constexpr int kAcceptBurst = 4;            // accepts per readiness event
constexpr size_t kRejectSlots = 256;       // connections over the limit that still get a 503
constexpr int kHandshakeLogsPerMinute = 10;

void formatAddress(const sockaddr_storage& ss, std::string* host, int* port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    *port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
      inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    }
    *port = ntohs(a->sin6_port);
  }
  *host = buf;
}

template <typename Handle>
void closeHandle(Handle*& t) {
  if (t == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<Handle*>(h); });
  t = nullptr;
}

}  // namespace

struct Server::Listener {
  Server* server;
  int fd = -1;
  bool tls = false;
  std::string host;
  int port = 0;
  uv_poll_t* poll = nullptr;  // freed by its close callback
  bool polling = false;
  bool closed = false;
};

Server::Server(uv_loop_t* loop, ServerConfig config, ServerEvents* events)
    : loop_(loop), config_(std::move(config)), events_(events), files_(config_.root) {}

std::unique_ptr<Server> Server::create(uv_loop_t* loop, ServerConfig config, ServerEvents* events,
                                       std::string* error) {
  std::unique_ptr<Server> s(new Server(loop, std::move(config), events));
  bool any_tls = false;
  for (const auto& l : s->config_.listeners) any_tls = any_tls || l.tls;
  if (any_tls) {
    s->tls_ = TlsContext::create(s->config_.tls, error);
    if (!s->tls_) return nullptr;
  }
  if (s->config_.access_log_writer != 0 && !s->setAccessLog(s->config_.access_log_writer)) {
    *error = "the access log (writer " + std::to_string(s->config_.access_log_writer) + ") is already closed";
    return nullptr;
  }
  if (!s->bindAll(error)) return nullptr;
  s->sweep_timer_ = new uv_timer_t;
  uv_timer_init(loop, s->sweep_timer_);
  s->sweep_timer_->data = s.get();
  uv_timer_start(s->sweep_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->sweep(); }, 1000, 1000);
  uv_unref(reinterpret_cast<uv_handle_t*>(s->sweep_timer_));
  s->accept_pause_timer_ = new uv_timer_t;
  uv_timer_init(loop, s->accept_pause_timer_);
  s->accept_pause_timer_->data = s.get();
  s->drive_check_ = new uv_check_t;
  uv_check_init(loop, s->drive_check_);
  s->drive_check_->data = s.get();
  s->drive_idle_ = new uv_idle_t;
  uv_idle_init(loop, s->drive_idle_);
  s->drive_idle_->data = s.get();
  Server* raw = s.get();
  if (s->config_.nested_loop) s->inner_ = InnerLoop::create(loop, [raw] {
    if (!raw->drives_.empty() || !raw->access_lines_.empty()) raw->runTurnEnd();
  });
  return s;
}

bool Server::bindAll(std::string* error) {
  for (const auto& lc : config_.listeners) {
    std::string where = (lc.host.find(':') != std::string::npos ? "[" + lc.host + "]" : lc.host) + ":" +
                        std::to_string(lc.port);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    std::string port = std::to_string(lc.port);
    int gai = getaddrinfo(lc.host.empty() ? nullptr : lc.host.c_str(), port.c_str(), &hints, &res);
    if (gai != 0 || res == nullptr) {
      *error = "cannot listen on " + where + ": bind address '" + lc.host + "' is not valid (" +
               gai_strerror(gai) + ")";
      return false;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, zero = 0;
    bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
    if (ok && config_.reuse_port) ok = setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0;
    if (ok && res->ai_family == AF_INET6) {
      // "::" serves IPv4 too (dual stack); a specific v6 address only itself.
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    ok = ok && bind(fd, res->ai_addr, res->ai_addrlen) == 0 && listen(fd, kBacklog) == 0;
    freeaddrinfo(res);
    if (!ok) {
      *error = "cannot listen on " + where + ": " + strerror(errno) +
               (errno == EADDRINUSE ? " (another server uses this port; pick another port or stop it)"
                : errno == EACCES  ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                                   : "");
      if (fd >= 0) ::close(fd);
      return false;
    }
    auto l = std::make_unique<Listener>();
    l->server = this;
    l->fd = fd;
    l->tls = lc.tls;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    formatAddress(ss, &l->host, &l->port);
    l->poll = new uv_poll_t;
    uv_poll_init(loop_, l->poll, fd);
    l->poll->data = l.get();
    startPolling(l.get());
    listeners_.push_back(std::move(l));
  }
  return true;
}

Server::~Server() {
  closeAll();
  if (inner_) inner_->detach();
  flushAccessLines();
  closeHandle(sweep_timer_);
  closeHandle(accept_pause_timer_);
  closeHandle(drive_check_);
  closeHandle(drive_idle_);
}

std::vector<BoundListener> Server::addresses() const {
  std::vector<BoundListener> out;
  for (const auto& l : listeners_) out.push_back({l->host, l->port, l->tls});
  return out;
}

void Server::onAcceptable(Listener* l) {
  for (int i = 0; i < kAcceptBurst; ++i) {
    sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Out of descriptors: stop accepting briefly instead of spinning on a ready listener.
        log(LogLevel::kWarn, std::string("accept: ") + strerror(errno) + "; pausing accepts for 100 ms");
        for (auto& each : listeners_) {
          if (each->polling) uv_poll_stop(each->poll), each->polling = false;
        }
        uv_timer_start(accept_pause_timer_, [](uv_timer_t* t) {
          auto* s = static_cast<Server*>(t->data);
          for (auto& each : s->listeners_) s->startPolling(each.get());
        }, 100, 0);
        return;
      }
      log(LogLevel::kError, std::string("accept: ") + strerror(errno));
      return;
    }
    bool reject = connections_ >= config_.max_connections;
    if (reject && reclaimIdle()) reject = false;
    if (reject && connections_ >= config_.max_connections + kRejectSlots) {
      refuse(fd, l->tls);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    PeerInfo peer;
    formatAddress(ss, &peer.remote_address, &peer.remote_port);
    peer.local_address = l->host;
    peer.local_port = l->port;
    std::unique_ptr<Transport> t = l->tls ? makeTlsTransport(fd, tls_->get()) : makePlainTransport(fd);
    if (!t) {
      ::close(fd);
      continue;
    }
    adopt(fd, std::move(t), std::move(peer), reject);
  }
}

Connection* Server::adopt(int fd, std::unique_ptr<Transport> transport, PeerInfo peer, bool reject) {
  auto* c = new Connection(this, fd, std::move(transport), std::move(peer), reject);
  c->next = head_;
  if (head_) head_->prev = c;
  head_ = c;
  ++connections_;
  if (!c->start()) {
    // libuv refused the fd (epoll_ctl: ENOSPC at fs.epoll.max_user_watches, ENOMEM). No
    // poll handle exists, so abort()'s uv_close path would touch an uninitialised handle:
    // unlink and free the connection here (its destructor closes the fd).
    connectionClosed(c);
    delete c;
    return nullptr;
  }
  return c;
}

void Server::connectionClosed(Connection* c) {
  if (c->prev) c->prev->next = c->next;
  else if (head_ == c) head_ = c->next;
  if (c->next) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  --connections_;
}

void Server::scheduleDrive(Connection* c) {
  startTurnEnd();
  drives_.push_back(c);
}

void Server::startTurnEnd() {
  if (!drives_.empty() || !access_lines_.empty() || drive_check_ == nullptr) return;  // already started
  uv_check_start(drive_check_, [](uv_check_t* h) { static_cast<Server*>(h->data)->runTurnEnd(); });
  uv_idle_start(drive_idle_, [](uv_idle_t* h) { static_cast<Server*>(h->data)->runTurnEnd(); });
}

void Server::cancelDrive(Connection* c) {
  for (auto* list : {&drives_, &driving_}) {
    for (Connection*& each : *list) {
      if (each == c) each = nullptr;
    }
  }
}

void Server::runTurnEnd() {
  // A drive may queue more (another connection's output, or its own again): those wait
  // for the next run, so one busy connection cannot hold this loop turn.
  driving_.swap(drives_);
  for (size_t i = 0; i < driving_.size(); ++i) {
    if (Connection* c = driving_[i]) c->drivePending();
  }
  driving_.clear();
  flushAccessLines();
  if (drives_.empty()) {
    uv_check_stop(drive_check_);
    uv_idle_stop(drive_idle_);
  }
}

void Server::markIdle(Connection* c) {
  if (c->idle) return;
  c->idle = true;
  c->idle_prev = idle_tail_;
  c->idle_next = nullptr;
  if (idle_tail_) idle_tail_->idle_next = c;
  else idle_head_ = c;
  idle_tail_ = c;
}

void Server::markBusy(Connection* c) {
  if (!c->idle) return;
  c->idle = false;
  if (c->idle_prev) c->idle_prev->idle_next = c->idle_next;
  else idle_head_ = c->idle_next;
  if (c->idle_next) c->idle_next->idle_prev = c->idle_prev;
  else idle_tail_ = c->idle_prev;
  c->idle_prev = c->idle_next = nullptr;
}

bool Server::reclaimIdle() {
  Connection* oldest = idle_head_;
  if (oldest == nullptr) return false;
  oldest->abort();  // unlinks it from both lists and lowers connections_
  return true;
}

void Server::refuse(int fd, bool tls) {
  if (!tls) {
    static constexpr char kBody[] = "The server is at its connection limit; try again shortly.\n";
    std::string r = std::string("HTTP/1.1 503 Service Unavailable\r\nServer: Liso/1.0\r\nDate: ") + httpDate() +
                    "\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
                    std::to_string(sizeof kBody - 1) + "\r\n\r\n" + kBody;
    (void)::send(fd, r.data(), r.size(), MSG_DONTWAIT | MSG_NOSIGNAL);  // fits an empty socket buffer
    // Read what the client already sent, so the close is a FIN, not a reset that could
    // destroy the answer before the client reads it.
    char sink[4096];
    for (int i = 0; i < 4 && ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
    }
    ::shutdown(fd, SHUT_WR);
  }
  ::close(fd);
}

void Server::sweep() {
  uint64_t now = nowMs();
  for (Connection* c = head_; c != nullptr;) {
    Connection* next = c->next;
    c->sweep(now);
    c = next;
  }
  if (hs_suppressed_ > 0 && static_cast<int64_t>(now) - hs_window_start_ >= 60000) {
    log(LogLevel::kWarn, std::to_string(hs_suppressed_) + " more TLS handshake failures in the last minute");
    hs_suppressed_ = 0;
  }
}

void Server::stopAccepting() {
  for (auto& l : listeners_) {
    if (l->closed) continue;
    l->closed = true;
    if (l->polling) uv_poll_stop(l->poll);
    l->polling = false;
    uv_close(reinterpret_cast<uv_handle_t*>(l->poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    l->poll = nullptr;
    ::close(l->fd);  // libuv no longer watches it once uv_close has been called
    l->fd = -1;
  }
}

void Server::startPolling(Listener* l) {
  if (l->polling || l->closed) return;
  uv_poll_start(l->poll, UV_READABLE, [](uv_poll_t* h, int status, int) {
    auto* li = static_cast<Listener*>(h->data);
    if (status == 0) li->server->onAcceptable(li);
  });
  l->polling = true;
}

void Server::closeAll() {
  if (closed_) return;
  closed_ = true;
  stopAccepting();
  for (Connection* c = head_; c != nullptr;) {
    Connection* next = c->next;
    c->abort();
    c = next;
  }
  flushAccessLines();  // the caller closes the log next (src/main.ts)
}

void Server::stopWhenIdle() {
  for (Connection* c = head_; c != nullptr;) {
    Connection* next = c->next;
    c->stopWhenIdle();
    c = next;
  }
}

const char* Server::httpDate() {
  int64_t now = static_cast<int64_t>(time(nullptr));
  if (now != date_second_) {
    date_second_ = now;
    formatHttpDate(now, date_);
  }
  return date_;
}

uint32_t Server::registerApp(AppSink* sink) {
  uint32_t id = next_app_id_++;
  if (next_app_id_ == 0) next_app_id_ = 1;
  apps_[id] = sink;
  return id;
}

void Server::unregisterApp(uint32_t id) { apps_.erase(id); }

AppSink* Server::app(uint32_t id) const {
  auto it = apps_.find(id);
  return it == apps_.end() ? nullptr : it->second;
}

bool Server::reloadTls(const TlsOptions& options, std::string* error) {
  auto fresh = TlsContext::create(options, error);
  if (!fresh) return false;
  // Live SSL objects hold their own reference to the old SSL_CTX.
  tls_ = std::move(fresh);
  config_.tls = options;
  return true;
}

void Server::logAccess(const AccessEntry& e, AccessLineMemo* memo) {
  constexpr size_t kAccessBatchBytes = 16384;
  if (!access_log_) return;
  startTurnEnd();
  appendAccessLine(access_lines_, e, clf_clock_.now(), memo != nullptr ? *memo : access_memo_);
  if (access_lines_.size() >= kAccessBatchBytes) flushAccessLines();
}

void Server::flushAccessLines() {
  if (access_lines_.empty()) return;
  if (access_log_) access_log_->append(access_lines_);
  access_lines_.clear();
}

bool Server::setAccessLog(uint32_t writer_id) {
  std::shared_ptr<LogWriter> w = writer_id == 0 ? nullptr : LogWriter::find(writer_id);
  if (writer_id != 0 && !w) return false;
  flushAccessLines();  // this turn's lines go where their requests were logged
  access_log_ = std::move(w);
  return true;
}

void Server::logHandshakeFailure(const std::string& peer, const std::string& why) {
  int64_t now = static_cast<int64_t>(nowMs());
  if (now - hs_window_start_ >= 60000) {
    if (hs_suppressed_ > 0) {
      log(LogLevel::kWarn, std::to_string(hs_suppressed_) + " more TLS handshake failures in the last minute");
    }
    hs_window_start_ = now;
    hs_logged_ = 0;
    hs_suppressed_ = 0;
  }
  if (hs_logged_ < kHandshakeLogsPerMinute) {
    ++hs_logged_;
    log(LogLevel::kWarn, "TLS handshake with " + peer + " failed: " + (why.empty() ? "unknown error" : why));
  } else {
    ++hs_suppressed_;
  }
}

}  // namespace lisod
