// Connection's side of application (CGI, FastCGI) exchanges: the request handed to the
// application (startApp), the calls the addon makes when the application answers, and how
// their framing is chosen. Kept apart from the I/O state machine in connection.cc.
#include <charconv>
#include <cstring>

#include "connection.h"
#include "http_request.h"
#include "response.h"

namespace lisod {
namespace {

constexpr size_t kAppHighWater = 256 * 1024;  // app write() returns false above this

// Hop-by-hop or server-owned headers an application may not set (RFC 9110 §7.6.1).
bool isServerOwnedHeader(std::string_view name) {
  return equalsIgnoreCase(name, "connection") || equalsIgnoreCase(name, "transfer-encoding") ||
         equalsIgnoreCase(name, "keep-alive") || equalsIgnoreCase(name, "server") ||
         equalsIgnoreCase(name, "date") || equalsIgnoreCase(name, "upgrade");
}

}  // namespace

void Connection::startApp(const RequestHead& head, int64_t content_length, int mount) {
  req().is_app = true;
  app_id_ = server_->registerApp(this);
  app_begun_ = app_ended_ = app_wants_drain_ = body_paused_ = false;
  AppRequest r;
  r.id = app_id_;
  r.method.assign(head.method);
  r.target.assign(head.target);
  r.version = head.minor_version == 0 ? "HTTP/1.0" : "HTTP/1.1";
  // RFC 9112 §3.2.2: with an absolute-form target the application sees the target's
  // authority as Host (HTTP_HOST, SERVER_NAME), whatever the Host field said.
  std::string_view authority = targetAuthority(head.target);
  bool host_seen = false;
  r.headers.reserve(head.num_headers * 2 + 2);
  for (size_t i = 0; i < head.num_headers; ++i) {
    bool is_host = !authority.empty() && equalsIgnoreCase(head.headers[i].name, "host");
    host_seen = host_seen || is_host;
    r.headers.emplace_back(head.headers[i].name);
    r.headers.emplace_back(is_host ? authority : head.headers[i].value);
  }
  if (!authority.empty() && !host_seen) {
    r.headers.emplace_back("Host");
    r.headers.emplace_back(authority);
  }
  r.remote_address = peer_.remote_address;
  r.remote_port = peer_.remote_port;
  r.local_address = peer_.local_address;
  r.local_port = peer_.local_port;
  r.tls = transport_->isTls();
  r.has_body = !req().body_done;
  r.content_length = content_length;
  r.identity = transport_->identity();
  r.mount = mount;
  deadline_ms_ = server_->nowMs() + server_->config().body_timeout_ms;
  server_->events()->onAppRequest(r);
}

void Connection::appBegin(int status, const std::string& reason, const std::vector<std::string>& headers) {
  if (app_begun_ || dead_) return;
  app_begun_ = true;
  last_write_ms_ = server_->nowMs();
  req().status = status;
  bool no_body = req().head_only || status == 204 || status == 304 || (status >= 100 && status < 200);
  bool has_length = false;
  for (size_t i = 0; i + 1 < headers.size(); i += 2) {
    if (equalsIgnoreCase(headers[i], "content-length")) {
      uint64_t v = 0;
      auto res = std::from_chars(headers[i + 1].data(), headers[i + 1].data() + headers[i + 1].size(), v);
      if (res.ec == std::errc() && res.ptr == headers[i + 1].data() + headers[i + 1].size()) {
        has_length = true;
        app_length_left_ = v;
      }
    }
  }
  if (no_body) framing_ = Framing::kNone;
  else if (has_length) framing_ = Framing::kLength;
  else if (req().version != "HTTP/1.0") framing_ = Framing::kChunked;
  else framing_ = Framing::kUntilClose;
  if (framing_ == Framing::kUntilClose || !req().body_done) keep_alive_ = false;
  bool own_reason = !reason.empty() && checkReason(reason) == nullptr;
  appendResponseStart(out_, status, own_reason ? std::string_view(reason) : reasonPhrase(status),
                      server_->httpDate(), keep_alive_);
  for (size_t i = 0; i + 1 < headers.size(); i += 2) {
    if (isServerOwnedHeader(headers[i])) continue;
    if (equalsIgnoreCase(headers[i], "content-length") && !has_length) continue;
    appendHeader(out_, headers[i], headers[i + 1]);  // drops a field it refuses (the addon throws first)
  }
  if (framing_ == Framing::kChunked) out_.append("Transfer-Encoding: chunked\r\n");
  out_.append("\r\n");
  kick();
}

void Connection::appBeginRaw(bool keep_alive) {
  if (app_begun_ || dead_) return;
  app_begun_ = true;
  framing_ = Framing::kRaw;
  // The caller checked that the script's own head frames the body (RFC 9112 §6.3) and ends
  // the response exactly there; the request's own wish (HTTP/1.0, Connection: close) and an
  // unread request body still close.
  if (!keep_alive || !req().body_done) keep_alive_ = false;
  req().status = 200;
  kick();
}

bool Connection::appWrite(const char* data, size_t len) {
  if (dead_ || !app_begun_ || app_ended_) return true;
  // The send timeout measures a client that does not read, from when output exists.
  if (out_off_ >= out_.size()) last_write_ms_ = server_->nowMs();
  switch (framing_) {
    case Framing::kNone: return true;
    case Framing::kLength:
      len = static_cast<size_t>(std::min<uint64_t>(len, app_length_left_));
      app_length_left_ -= len;
      out_.append(data, len);
      break;
    case Framing::kChunked: {
      if (len == 0) return true;
      char size[24];
      auto res = std::to_chars(size, size + sizeof size, len, 16);
      out_.append(size, res.ptr);
      out_.append("\r\n");
      out_.append(data, len);
      out_.append("\r\n");
      break;
    }
    case Framing::kRaw:
      if (req().body_bytes_sent == 0 && len >= 12 && std::memcmp(data, "HTTP/1.", 7) == 0) {
        int status = 0;
        std::from_chars(data + 9, data + 12, status);
        if (status >= 100) req().status = status;
      }
      out_.append(data, len);
      break;
    case Framing::kUntilClose: out_.append(data, len); break;
  }
  req().body_bytes_sent += len;
  kick();
  if (out_.size() - out_off_ > kAppHighWater) {
    app_wants_drain_ = true;
    return false;
  }
  return true;
}

void Connection::appEnd() {
  if (dead_ || app_ended_) return;
  if (!app_begun_) {
    respondError(502, false, "The application ended without a response.");
    app_begun_ = true;
  }
  if (framing_ == Framing::kChunked) out_.append("0\r\n\r\n");
  if (framing_ == Framing::kLength && app_length_left_ > 0) keep_alive_ = false;  // short body
  app_ended_ = true;
  if (state_ == State::kWrite) state_ = State::kAwaitApp;
  kick();
}

void Connection::appAbort() {
  if (dead_ || app_ended_) return;
  if (!app_begun_) {
    app_ended_ = true;  // no close event back to the application
    abort();
    return;
  }
  // What the application sent still goes out; then the connection closes without the end
  // of the framing (no last chunk, Content-Length short), so the client sees the cut.
  keep_alive_ = false;
  app_ended_ = true;
  if (state_ == State::kWrite) state_ = State::kAwaitApp;
  kick();
}

void Connection::appPauseBody(bool paused) {
  if (dead_ || body_paused_ == paused) return;
  body_paused_ = paused;
  uint64_t now = server_->nowMs();
  if (paused) {
    req().paused_at_ms = now;
  } else {
    deadline_ms_ = now + server_->config().body_timeout_ms;
    body_deadline_ms_ += now - req().paused_at_ms;  // the application's pause is not the client's time
  }
  kick();
}

}  // namespace lisod
