#include "connection.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "h2_session.h"
#include "http_parser.h"
#include "http_request.h"
#include "response.h"
#include "socket_io.h"
#include "static_file.h"

namespace lisod {
namespace {

constexpr size_t kMaxHeaders = 128;
constexpr size_t kReadChunk = 16384;
constexpr uint32_t kMaxInputBytes = 1u << 30;  // the input buffer's offsets are 32-bit
constexpr size_t kTlsFileChunk = 16384;       // one full TLS record
// A plain file body goes out at most this much per connection per loop turn, then the other
// ready connections get theirs (as lighttpd's 256 KiB per write pass). One sendfile of a
// whole 1 MiB body into one socket outran BBR's pacing rate: the kernel then released it one
// skb per pacing-timer interrupt (7-9 hrtimers per response vs lighttpd's 2) and lisod paid
// 330-450 us of CPU per 1 MiB response against 123-163 us at 512 KiB per turn (wrk -c50).
constexpr size_t kSendfileTurnBytes = 512 * 1024;
constexpr uint64_t kLingerMs = 2000;
constexpr int kStepBudget = 64;               // steps per event: fairness between clients
// What an HTTP/1.1 connection waiting for bytes polls for. EPOLLRDHUP rides along (a
// hang-up also makes the socket readable, so nothing changes for the reading states) so
// that the interest stays the same while an application answers (kAwaitApp): libuv
// changes a poll's events with an EPOLL_CTL_DEL and an ADD.
constexpr int kReadInterest = UV_READABLE | UV_DISCONNECT;

}  // namespace

Connection::Connection(Server* server, int fd, std::unique_ptr<Transport> transport, PeerInfo peer,
                       bool reject)
    : server_(server),
      transport_(std::move(transport)),
      peer_(std::move(peer)),
      fd_(fd),
      state_(State::kHandshake),
      reject_(reject) {
  poll_.data = this;
  deadline_ms_ = server_->nowMs() + server_->config().header_timeout_ms;
}

Connection::~Connection() {
  transport_.reset();
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::start() {
  if (uv_poll_init(server_->loop(), &poll_, fd_) != 0) return false;
  // Served once the poll says it has bytes, not inside the accept burst: a TLS handshake
  // costs a signature (≈1 ms with RSA-2048), and a burst of them run here would hold up
  // requests on connections already open (the poll loop interleaves them instead).
  interest_ = kReadInterest;
  updateInterest();
  return true;
}

void Connection::onPoll(uv_poll_t* handle, int status, int events) {
  auto* c = static_cast<Connection*>(handle->data);
  // While the application works a hang-up (EPOLLRDHUP) means the client closed (or
  // half-closed, as nginx also treats it): it abandons its request.
  bool hung_up = (events & UV_DISCONNECT) && c->state_ == State::kAwaitApp && !c->app_ended_;
  if (status < 0 || hung_up) {
    c->die();
    c->updateInterest();
    return;
  }
  if (events & (UV_READABLE | UV_DISCONNECT)) c->read_drained_ = false;
  c->drive();
}

void Connection::kick() {
  if (dead_) return;
  if (in_drive_) {
    redrive_ = true;
    return;
  }
  // Driven at the end of this loop turn: no WRITABLE poll round trip.
  if (!drive_queued_) {
    drive_queued_ = true;
    server_->scheduleDrive(this);
  }
}

void Connection::drivePending() {
  drive_queued_ = false;
  drive();
}

void Connection::drive() {
  if (dead_) return;
  if (in_drive_) {
    redrive_ = true;
    return;
  }
  in_drive_ = true;
  do {
    redrive_ = false;
    interest_ = 0;
    step();
  } while (redrive_ && !dead_);
  in_drive_ = false;
  updateInterest();
}

void Connection::updateInterest() {
  if (dead_) {
    if (!closed_handle_) {
      closed_handle_ = true;
      InnerLoop::setEvents(server_->inner(), &watch_, &poll_, 0, nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&poll_),
               [](uv_handle_t* h) { delete static_cast<Connection*>(h->data); });
    }
    return;
  }
  if (interest_ == polled_) return;
  polled_ = interest_;
  InnerLoop::setEvents(server_->inner(), &watch_, &poll_, interest_, onPoll);
}

void Connection::step() {
  for (int budget = kStepBudget; budget > 0 && !dead_; --budget) {
    switch (state_) {
      case State::kHandshake: {
        IoResult r = transport_->handshake();
        if (r.kind == IoResult::kOk) {
          state_ = State::kReadHead;
          if (!reject_ && transport_->negotiatedH2() && !startH2()) return;
          if (reject_) {
            respondError(503, false, "The server is at its connection limit; try again shortly.");
          }
          continue;
        }
        if (r.kind == IoResult::kWantRead) interest_ |= UV_READABLE;
        else if (r.kind == IoResult::kWantWrite) interest_ |= UV_WRITABLE;
        else if (transport_->plainHttpOnTls()) {
          state_ = State::kReadHead;
          respondError(400, false, "The plain HTTP request was sent to HTTPS port.");
          continue;
        } else {
          if (r.kind == IoResult::kError) {
            server_->logHandshakeFailure(peer_.remote_address, transport_->lastError());
          }
          die();
        }
        return;
      }
      case State::kReadHead: {
        if (inLen() > 0) {
          if (!head_started_) {
            head_started_ = true;
            deadline_ms_ = server_->nowMs() + server_->config().header_timeout_ms;
          }
          // Left uninitialised on purpose: parseRequest fills the slots it reports, and
          // zeroing all of them (4 KiB of string_views) cost more than parsing a head.
          union HeaderSlots {
            HeaderSlots() {}
            Header at[kMaxHeaders];
          } headers;
          RequestHead head;
          head.headers = headers.at;
          head.num_headers = kMaxHeaders;
          ParseLimits limits{server_->config().max_line, server_->config().max_target,
                             server_->config().max_head};
          int n = parseRequest(inPtr(), inLen(), &head, limits, head_scanned_);
          head_scanned_ = n == kIncomplete ? inLen() : 0;  // no O(n²) rescans of a dribbled head
          if (n >= 0) {
            handleHead(static_cast<size_t>(n), head);
            continue;
          }
          if (n != kIncomplete) {
            handleParseError(n);
            continue;
          }
        }
        if (stop_when_idle_ && inLen() == 0) {
          die();
          return;
        }
        if (!readInput()) return;
        continue;
      }
      case State::kReadBody: {
        if (out_off_ < out_.size() && flushOutput() == Flush::kDead) return;
        if (app_ended_) {
          if (out_off_ < out_.size()) return;
          finishResponse();  // answered before the whole body came: closes
          continue;
        }
        if (body_paused_) return;
        if (inLen() > 0) {
          consumeBody();
          continue;
        }
        if (!readInput()) return;
        continue;
      }
      case State::kAwaitApp: {
        // The application works: a hang-up abandons the request (onPoll). While the socket
        // holds no unread byte, readable is quiet too, and keeping it saves two epoll_ctl
        // on the way in and two on the way back to kReadHead; a pipelined byte drops it.
        if (!app_ended_) interest_ |= read_drained_ ? kReadInterest : UV_DISCONNECT;
        Flush f = flushOutput();
        if (f != Flush::kDone) return;
        if (!app_ended_) return;  // the application writes more later; kick() wakes us
        finishResponse();
        continue;
      }
      case State::kWrite: {
        if (flushOutput() != Flush::kDone) return;
        finishResponse();
        continue;
      }
      case State::kH2:
        if (stepH2()) continue;
        return;
      case State::kLinger: {
        // Discard what the client still sends so our close does not reset the
        // connection before it has read the response (RFC 9112 §9.6).
        char sink[4096];
        IoResult r = transport_->read(sink, sizeof sink);
        if (r.kind == IoResult::kOk) continue;
        if (r.kind == IoResult::kWantRead) interest_ |= UV_READABLE;
        else if (r.kind == IoResult::kWantWrite) interest_ |= UV_WRITABLE;
        else die();
        return;
      }
    }
  }
  if (!dead_) interest_ |= UV_READABLE | UV_WRITABLE;  // budget spent: come back next turn
}

bool Connection::readInput() {
  // An idle connection owns no buffer: it takes one from the server's pool for a read and
  // keeps it only once bytes arrive (≈0.5 KiB per idle keep-alive client).
  if (read_drained_) {
    interest_ |= kReadInterest;
    return false;
  }
  bool borrowed = in_cap_ == 0;
  if (borrowed) {
    in_ = server_->buffers().takeInput();
    in_cap_ = BufferPool::kInputBytes;
    in_begin_ = in_end_ = 0;
  } else if (in_cap_ - in_end_ < kReadChunk / 2) {
    if (in_begin_ > 0) {
      std::memmove(in_.get(), in_.get() + in_begin_, inLen());
      in_end_ -= in_begin_;
      in_begin_ = 0;
    }
    if (in_cap_ - in_end_ < kReadChunk / 2) {
      // One head plus a read: max_head bounds it. Only a max_header_bytes near 1 GiB gets
      // this far; the client is dropped before the 32-bit offsets could overflow.
      if (in_cap_ >= kMaxInputBytes) {
        die();
        return false;
      }
      growInput(static_cast<size_t>(in_cap_) * 2);
    }
  }
  size_t room = in_cap_ - in_end_;
  IoResult r = transport_->read(in_.get() + in_end_, room);
  if (r.kind != IoResult::kOk && borrowed) {
    in_cap_ = 0;
    server_->buffers().giveInput(std::move(in_));
  }
  switch (r.kind) {
    case IoResult::kOk:
      read_drained_ = transport_->readDrained(room, r.n);
      if (idle) server_->markBusy(this);
      in_end_ += r.n;
      if (state_ == State::kReadBody) {
        deadline_ms_ = server_->nowMs() + server_->config().body_timeout_ms;
      }
      return true;
    case IoResult::kWantRead: interest_ |= kReadInterest; return false;
    case IoResult::kWantWrite: interest_ |= UV_WRITABLE; return false;
    default: die(); return false;  // peer closed or vanished mid-stream
  }
}

void Connection::handleParseError(int error) {
  switch (error) {
    // Every parse error closes after the answer: the rest of the stream has no trusted
    // framing, and reading it as a new request is request smuggling behind a proxy with
    // other limits. (Liso answered 431, skipped that head and went on; README: Departures.)
    case kHeadTooLarge:
      respondError(431, false, "A header line or the header block is too large.");
      return;
    case kUriTooLong: respondError(414, false, "The request target is too long."); return;
    case kBadVersion: respondError(505, false, "Only HTTP/1.0 and HTTP/1.1 are supported."); return;
    default: respondError(400, false, "The request could not be parsed."); return;
  }
}

void Connection::handleHead(size_t consumed, const RequestHead& head) {
  const ServerConfig& cfg = server_->config();
  RequestInfo info = classifyRequest(head, cfg.max_body);
  if (req_) *req_ = Request{};
  else req_ = std::make_unique<Request>();
  req().active = true;
  if (out_.empty() && out_.capacity() < 256) out_ = server_->buffers().takeOutput();
  last_write_ms_ = server_->nowMs();  // the send timeout counts from when output exists
  req().head_only = info.method == Method::kHead;
  req().target.assign(head.target);
  keep_alive_ = info.keep_alive;
  req().version = head.minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1";
  if (cfg.access_log) {
    req().method.assign(head.method);
    for (size_t i = 0; i < head.num_headers; ++i) {
      if (equalsIgnoreCase(head.headers[i].name, "referer")) req().referer.assign(head.headers[i].value);
      if (equalsIgnoreCase(head.headers[i].name, "user-agent")) req().user_agent.assign(head.headers[i].value);
    }
  }
  body_deadline_ms_ = server_->nowMs() + cfg.body_total_timeout_ms;
  req().body_chunked = info.chunked;
  req().body_left = info.chunked ? 0 : info.content_length;
  req().body_done = !info.chunked && info.content_length == 0;
  if (info.chunked) req().chunked.emplace(cfg.max_body);

  if (info.status != 0) {
    in_begin_ += consumed;
    respondError(info.status, false);  // framing or limits broken: close after answering
    return;
  }
  std::string_view path = originPath(head.target);
  if (int denied = accessStatus(path)) {  // before any file or script is touched
    in_begin_ += consumed;
    respondError(denied, keep_alive_ && req().body_done);
    return;
  }
  const int mount = matchAppPrefix(path, cfg.app_prefixes);
  const bool is_app = mount >= 0;
  if (int status = methodStatus(info.method, is_app); status != 0) {
    in_begin_ += consumed;
    // Kept alive only when the request ended with its head; a body we would have to
    // skip leaves the stream unframed for us. No 100 Continue: the body is not wanted.
    respondError(status, keep_alive_ && req().body_done,
                 status == 405 ? "This resource accepts GET, HEAD and POST." : "This method is not implemented.");
    return;
  }
  if (info.expect_continue && !req().body_done && head.minor_version == 1) {
    out_.append("HTTP/1.1 100 Continue\r\n\r\n");
  }
  if (is_app) {
    startApp(head, info.chunked ? -1 : static_cast<int64_t>(info.content_length), mount);
    if (dead_) return;
    in_begin_ += consumed;
    state_ = req().body_done ? State::kAwaitApp : State::kReadBody;
    if (req().body_done) server_->events()->onAppBody(app_id_, nullptr, 0, true);
    return;
  }
  if (path.size() != head.target.size()) req().target.assign(path);  // else the same bytes
  req().fields.assign(info);
  req().post = info.method == Method::kPost;
  in_begin_ += consumed;
  if (req().body_done) {
    serveStatic();
  } else {
    state_ = State::kReadBody;  // POST to a static file: read the body, answer like GET
    deadline_ms_ = server_->nowMs() + cfg.body_timeout_ms;
  }
}

void Connection::consumeBody() {
  char* data = inPtr();
  size_t avail = inLen();
  size_t deliver_len = 0;
  bool finished = false;
  if (req().body_chunked) {
    size_t len = avail;
    long r = req().chunked->decode(data, &len);
    if (r == ChunkedDecoder::kError || r == ChunkedDecoder::kTooLarge) {
      int status = r == ChunkedDecoder::kError ? 400 : 413;
      in_begin_ = in_end_ = 0;
      if (req().is_app && app_begun_) {
        die();
        return;
      }
      detachApp();
      respondError(status, false, status == 413 ? "The request body is too large." : "Bad chunked body.");
      return;
    }
    deliver_len = len;
    if (r >= 0) {
      finished = true;
      in_begin_ = in_begin_ + avail - static_cast<size_t>(r);
    } else {
      in_begin_ = in_end_;
    }
  } else {
    deliver_len = static_cast<size_t>(std::min<uint64_t>(req().body_left, avail));
    req().body_left -= deliver_len;
    in_begin_ += deliver_len;
    finished = req().body_left == 0;
  }
  if (req().is_app && deliver_len > 0) server_->events()->onAppBody(app_id_, data, deliver_len, false);
  if (dead_ || !finished) return;
  req().body_done = true;
  if (req().is_app) {
    state_ = State::kAwaitApp;
    server_->events()->onAppBody(app_id_, nullptr, 0, true);
  } else {
    serveStatic();
  }
}

Connection::Flush Connection::flushOutput() {
  for (;;) {
    if (out_off_ < out_.size()) {
      IoResult r = transport_->write(out_.data() + out_off_, out_.size() - out_off_);
      if (r.kind == IoResult::kOk) {
        size_t asked = out_.size() - out_off_;
        out_off_ += r.n;
        last_write_ms_ = server_->nowMs();
        if (r.n < asked && transport_->shortCountMeansWouldBlock()) {
          interest_ |= UV_WRITABLE;  // the socket buffer is full: a retry would only say EAGAIN
          return Flush::kBlocked;
        }
        continue;
      }
      if (r.kind == IoResult::kWantWrite) interest_ |= UV_WRITABLE;
      else if (r.kind == IoResult::kWantRead) interest_ |= UV_READABLE;
      else {
        die();
        return Flush::kDead;
      }
      return Flush::kBlocked;
    }
    uint64_t file_left = fileLeft();
    if (file_left > 0 && !transport_->canSendFile()) {
      // TLS: a bounded buffer of one record, refilled only when empty and read over the
      // bytes just sent (resizing a cleared string would zero-fill 16 KiB per record).
      // 64 KiB per pread (four records) cut pread calls 4× but no CPU in an A/B.
      auto& send = req_->send;
      size_t want = static_cast<size_t>(std::min<uint64_t>(file_left, kTlsFileChunk));
      if (out_.size() != want) out_.resize(want);
      ssize_t n = preadNoCancel(send.file->fd, out_.data(), want, send.off);
      if (n <= 0) {
        die();
        return Flush::kDead;
      }
      out_.resize(static_cast<size_t>(n));
      out_off_ = 0;
      send.off += n;
      send.left -= static_cast<uint64_t>(n);
      continue;
    }
    out_.clear();
    out_off_ = 0;
    if (file_left > 0) {  // plain: straight from the page cache
      auto& send = req_->send;
      size_t want = static_cast<size_t>(std::min<uint64_t>(file_left, kSendfileTurnBytes));
      IoResult r = transport_->sendFile(send.file->fd, &send.off, want);
      if (r.kind == IoResult::kOk && r.n > 0) {
        send.left -= r.n;
        last_write_ms_ = server_->nowMs();
        if (send.left > 0 && r.n == want) {  // this turn's share: the rest when polled again
          interest_ |= UV_WRITABLE;
          return Flush::kBlocked;
        }
        if (r.n < want && send.left > 0 && transport_->shortCountMeansWouldBlock()) {
          interest_ |= UV_WRITABLE;  // socket buffer full: wait for room, no EAGAIN round trip
          return Flush::kBlocked;
        }
        continue;
      }
      if (r.kind == IoResult::kWantWrite) {
        interest_ |= UV_WRITABLE;
        return Flush::kBlocked;
      }
      die();  // error, or the file shrank (sendfile returned 0)
      return Flush::kDead;
    }
    if (req_ && req_->send.file) {
      req_->send.file.reset();
      if (req_->send.corked) {
        req_->send.corked = false;
        transport_->setCork(false);  // flushes the last partial segment
      }
    }
    if (app_wants_drain_ && app_id_ != 0) {
      app_wants_drain_ = false;
      // The application may write its output and end the response inside this callback
      // (a paused stream resumed here emits what it buffered, end included): that output
      // goes out before kDone lets the caller finish the response.
      server_->events()->onAppDrain(app_id_);
      if (dead_) return Flush::kDead;
      continue;
    }
    return Flush::kDone;
  }
}

void Connection::finishResponse() {
  logAccess();
  if (app_id_ != 0) {
    server_->unregisterApp(app_id_);
    app_id_ = 0;
  }
  bool body_pending = !req().body_done;
  req_.reset();  // an idle connection holds no Request (see req())
  framing_ = Framing::kNone;
  app_begun_ = app_ended_ = body_paused_ = false;
  if (!keep_alive_ || body_pending || stop_when_idle_) {
    beginLinger();
    return;
  }
  state_ = State::kReadHead;
  head_started_ = false;
  deadline_ms_ = server_->nowMs() + server_->config().keep_alive_timeout_ms;
  if (inLen() == 0) server_->markIdle(this);  // pipelined bytes waiting: not idle
  maybeReleaseBuffers();
}

void Connection::growInput(size_t capacity) {
  std::unique_ptr<char[]> bigger(new char[capacity]);
  if (inLen() > 0) std::memcpy(bigger.get(), in_.get() + in_begin_, inLen());
  in_end_ = inLen();
  in_begin_ = 0;
  in_ = std::move(bigger);
  in_cap_ = capacity;
}

void Connection::maybeReleaseBuffers() {
  if (inLen() == 0) {
    in_begin_ = in_end_ = 0;
    if (in_cap_ == BufferPool::kInputBytes) server_->buffers().giveInput(std::move(in_));
    in_.reset();
    in_cap_ = 0;
  }
  server_->buffers().giveOutput(std::move(out_));
}

void Connection::beginLinger() {
  transport_->shutdown();
  ::shutdown(fd_, SHUT_WR);
  state_ = State::kLinger;
  deadline_ms_ = server_->nowMs() + kLingerMs;
  in_begin_ = in_end_ = 0;
}

void Connection::logAccess() {
  if (!req_ || !req_->active || !server_->config().access_log) return;
  AccessEntry e;
  e.remote = peer_.remote_address;
  const ClientIdentity* id = transport_->identity();  // the verified CN, once per connection
  e.user = id != nullptr ? id->user() : std::string_view(req().user);
  e.method = req().method.empty() ? std::string_view("-") : std::string_view(req().method);
  e.target = req().target;
  e.version = req().version;
  e.referer = req().referer;
  e.user_agent = req().user_agent;
  e.status = req().status;
  e.bytes = req().body_bytes_sent;
  server_->logAccess(e);
  req().active = false;
}

void Connection::die() {
  if (dead_) return;
  if (req_ && req_->active && req_->status != 0) logAccess();
  if (h2_) h2_->logUnfinished();  // and each application still answering gets its close
  dead_ = true;
  if (drive_queued_) {  // the queue must not outlive us (freed after the poll handle closes)
    drive_queued_ = false;
    server_->cancelDrive(this);
  }
  if (idle) server_->markBusy(this);
  if (app_ended_) {
    server_->unregisterApp(app_id_);
    app_id_ = 0;
  }
  detachApp();
  server_->connectionClosed(this);
}

void Connection::detachApp() {
  if (app_id_ == 0) return;
  uint32_t id = app_id_;
  app_id_ = 0;
  req().is_app = false;
  server_->unregisterApp(id);
  server_->events()->onAppClose(id);
}

void Connection::abort() {
  if (dead_) return;
  die();
  if (!in_drive_) updateInterest();
}

void Connection::stopWhenIdle() {
  stop_when_idle_ = true;
  keep_alive_ = false;
  kick();
}

void Connection::sweep(uint64_t now) {
  if (dead_) return;
  bool expired = now >= deadline_ms_;
  switch (state_) {
    case State::kH2:
      sweepH2(now);
      return;
    case State::kHandshake:
    case State::kLinger:
      if (expired) abort();
      return;
    case State::kReadHead:
      if (!expired) return;
      if (head_started_) {
        respondError(408, false, "The request head did not arrive in time.");
        kick();
      } else {
        abort();  // idle keep-alive connection: close silently
      }
      return;
    case State::kReadBody: {
      // Each byte re-arms body_timeout; body_total_timeout bounds the whole body, so a
      // client sending a byte a second cannot hold a connection (or a script) for long.
      bool total = now >= body_deadline_ms_;
      if ((!expired && !total) || body_paused_) return;
      if (req().is_app && app_begun_) {
        abort();
        return;
      }
      detachApp();
      req().body_done = true;
      respondError(408, false, total ? "The request body took longer than body_total_timeout."
                                     : "The request body did not arrive in time.");
      kick();
      return;
    }
    case State::kAwaitApp:
    case State::kWrite:
      if (out_off_ < out_.size() || fileLeft() > 0) {
        if (now - last_write_ms_ > server_->config().send_timeout_ms) abort();
      }
      return;
  }
}

}  // namespace lisod
