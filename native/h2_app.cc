// H2App: an application response on an HTTP/2 stream (see h2_app.h).
#include "h2_app.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>

#include "h2_session.h"
#include "http_request.h"
#include "response.h"
#include "response_plan.h"

namespace lisod {
namespace {

constexpr size_t kLowWater = 16 * 1024;  // drain is announced at or below this

// RFC 9113 §8.2.2: fields that are about an HTTP/1.1 connection are not sent over h2;
// Server and Date are ours.
bool droppedOverH2(std::string_view lower) {
  return lower == "connection" || lower == "keep-alive" || lower == "transfer-encoding" ||
         lower == "upgrade" || lower == "proxy-connection" || lower == "server" || lower == "date";
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The length of an NPH head through its blank line (LF or CRLF line ends), or 0.
size_t nphHeadLength(std::string_view buf) {
  for (size_t i = buf.find('\n'); i != std::string_view::npos; i = buf.find('\n', i + 1)) {
    if (i + 1 < buf.size() && buf[i + 1] == '\n') return i + 2;
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
  }
  return 0;
}

// "HTTP/1.x NNN reason" + "name: value" lines (RFC 3875 §6.2.2 as relayed over HTTP/1.1).
// false: no usable status line or a line without a field name.
bool parseNphHead(std::string_view head, int* status, std::vector<std::pair<std::string, std::string>>* fields,
                  bool* chunked) {
  size_t eol = head.find('\n');
  std::string_view line = trim(head.substr(0, eol));
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') return false;
  auto res = std::from_chars(line.data() + 9, line.data() + 12, *status);
  if (res.ec != std::errc() || res.ptr != line.data() + 12 || *status < 100 || *status > 999) return false;
  *chunked = false;
  for (size_t at = eol + 1; at < head.size();) {
    size_t end = head.find('\n', at);
    if (end == std::string_view::npos) end = head.size();
    line = trim(head.substr(at, end - at));
    at = end + 1;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return false;
    std::string_view name = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (equalsIgnoreCase(name, "transfer-encoding")) {
      std::string v(value);
      std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
      *chunked = v.size() >= 7 && v.compare(v.size() - 7, 7, "chunked") == 0;
    }
    fields->emplace_back(name, value);
  }
  return true;
}

}  // namespace

H2App::H2App(H2Session* session, int32_t stream_id, bool head_only, AppRequest request)
    : session_(session),
      server_(session->server_),
      stream_(stream_id),
      head_only_(head_only),
      request_(std::move(request)) {
  id_ = server_->registerApp(this);
  request_.id = id_;
  body_end_ = !request_.has_body;
  uint64_t now = server_->nowMs();
  last_body_ms_ = progress_ms_ = now;
  body_deadline_ms_ = now + server_->config().body_total_timeout_ms;
}

H2App::~H2App() {
  if (!detached_) server_->unregisterApp(id_);
}

void H2App::bodyData(const uint8_t* data, size_t len) {
  last_body_ms_ = server_->nowMs();
  body_bytes_ += len;
  if (!detached_ && !ended_ && body_bytes_ > server_->config().max_body) {
    if (begun_) {
      reset();
    } else {
      detach();
      session_->respondError(stream_, 413, "The request body is too large.");
    }
  }
  if (detached_ || ended_) {
    nghttp2_session_consume_stream(session_->session_, stream_, len);  // nobody wants it
    return;
  }
  in_.append(reinterpret_cast<const char*>(data), len);
  session_->wake_();
}

void H2App::bodyEnd() {
  body_end_ = true;
  session_->wake_();
}

void H2App::pump() {
  if (detached_) return;
  ServerEvents* events = server_->events();
  if (!started_) {
    started_ = true;
    events->onAppRequest(request_);
    request_.headers.clear();
    request_.headers.shrink_to_fit();
  }
  // Each event may pause the body or end the exchange: check again before the next.
  while (!detached_ && !in_.empty() && (!paused_ || ended_)) {
    std::string chunk;
    chunk.swap(in_);
    if (!ended_) events->onAppBody(id_, chunk.data(), chunk.size(), false);
    nghttp2_session_consume_stream(session_->session_, stream_, chunk.size());  // taken: more may come
  }
  if (!detached_ && !ended_ && !paused_ && body_end_ && in_.empty() && !body_end_sent_) {
    body_end_sent_ = true;
    events->onAppBody(id_, nullptr, 0, true);
  }
  if (!detached_ && drain_due_) {
    drain_due_ = false;
    events->onAppDrain(id_);
  }
}

void H2App::detach() {
  if (detached_) return;
  detached_ = true;
  server_->unregisterApp(id_);
  if (started_ && !ended_) server_->events()->onAppClose(id_);
}

bool H2App::expire(uint64_t now) {
  if (detached_) return false;
  const ServerConfig& cfg = server_->config();
  bool body_late = !body_end_ && !paused_ &&
                   (now - last_body_ms_ >= cfg.body_timeout_ms || now >= body_deadline_ms_);
  bool send_stuck = begun_ && out_off_ < out_.size() && now - progress_ms_ >= cfg.send_timeout_ms;
  if (!body_late && !send_stuck) return false;
  if (begun_) {
    reset();
    return true;
  }
  detach();
  session_->respondError(stream_, 408, "The request body did not arrive in time.");
  return true;
}

void H2App::appBegin(int status, const std::string&, const std::vector<std::string>& headers) {
  if (!live() || begun_) return;
  std::vector<std::pair<std::string, std::string>> fields;
  fields.reserve(headers.size() / 2);
  for (size_t i = 0; i + 1 < headers.size(); i += 2) fields.emplace_back(headers[i], headers[i + 1]);
  begin(status, fields);
}

void H2App::begin(int status, const std::vector<std::pair<std::string, std::string>>& fields) {
  begun_ = true;
  status_ = status;
  progress_ms_ = server_->nowMs();
  if (status < 200) {  // an interim status as the final answer: nothing valid to send
    reset();
    return;
  }
  bool no_body = head_only_ || status == 204 || status == 304;
  std::vector<std::string> names;  // lower-cased (RFC 9113 §8.2.1)
  names.reserve(fields.size());
  std::vector<const std::string*> values;
  values.reserve(fields.size());
  for (const auto& [name, value] : fields) {
    if (checkHeaderField(name, value) != nullptr) continue;
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (droppedOverH2(lower)) continue;
    if (lower == "content-length") {
      uint64_t v = 0;
      auto res = std::from_chars(value.data(), value.data() + value.size(), v);
      if (res.ec != std::errc() || res.ptr != value.data() + value.size() || length_left_ != UINT64_MAX) continue;
      length_left_ = v;
      if (status == 204) continue;
    }
    names.push_back(std::move(lower));
    values.push_back(&value);
  }
  std::string code = std::to_string(status);
  std::vector<nghttp2_nv> nv;
  nv.reserve(names.size() + 3);
  auto add = [&nv](std::string_view n, std::string_view v) {
    nv.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                  reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
  };
  add(":status", code);
  add("server", kServerSoftware);
  add("date", server_->httpDate());
  for (size_t i = 0; i < names.size(); ++i) add(names[i], *values[i]);
  has_body_ = !no_body && length_left_ != 0;
  if (!has_body_) length_left_ = 0;
  nghttp2_data_provider provider{};
  provider.source.ptr = this;
  provider.read_callback = &H2App::readBody;
  if (nghttp2_submit_response(session_->session_, stream_, nv.data(), nv.size(), has_body_ ? &provider : nullptr) != 0) {
    reset();
    return;
  }
  session_->wake_();
}

void H2App::appBeginRaw(bool) {
  if (!live() || begun_ || raw_) return;
  raw_ = true;
}

bool H2App::beginFromNph() {
  size_t n = nphHeadLength(raw_head_);
  int status = 0;
  bool chunked = false;
  std::vector<std::pair<std::string, std::string>> fields;
  if (!parseNphHead(std::string_view(raw_head_).substr(0, n), &status, &fields, &chunked)) return false;
  if (chunked) chunked_.emplace(UINT64_MAX);
  begin(status, fields);
  std::string rest = raw_head_.substr(n);
  raw_head_.clear();
  if (!rest.empty() && has_body_) append(rest.data(), rest.size());
  return true;
}

bool H2App::appWrite(const char* data, size_t len) {
  if (!live()) return true;
  if (raw_ && !begun_) {
    raw_head_.append(data, len);
    if (nphHeadLength(raw_head_) == 0) {
      if (raw_head_.size() > server_->config().max_head) appAbort();
      return true;
    }
    if (!beginFromNph()) {
      status_ = 502;
      appAbort();
      return true;
    }
  } else if (begun_ && has_body_) {
    append(data, len);
  }
  if (out_.size() - out_off_ > kHighWater) {
    wants_drain_ = true;
    return false;
  }
  return true;
}

void H2App::append(const char* data, size_t len) {
  std::string decoded;
  if (chunked_) {
    decoded.assign(data, len);
    long r = chunked_->decode(decoded.data(), &len);
    if (r == ChunkedDecoder::kError || r == ChunkedDecoder::kTooLarge) {
      appAbort();
      return;
    }
    data = decoded.data();
  }
  len = static_cast<size_t>(std::min<uint64_t>(len, length_left_));
  if (length_left_ != UINT64_MAX) length_left_ -= len;
  if (len == 0) return;
  if (out_off_ > 0 && out_off_ >= out_.size() / 2) {
    out_.erase(0, out_off_);
    out_off_ = 0;
  }
  out_.append(data, len);
  resume();
}

void H2App::resume() {
  if (deferred_) {
    deferred_ = false;
    nghttp2_session_resume_data(session_->session_, stream_);
  }
  session_->wake_();
}

void H2App::appEnd() {
  if (!live()) return;
  if (raw_ && !begun_) {  // an NPH head that never ended
    appAbort();
    return;
  }
  ended_ = true;
  if (!begun_) {
    detach();  // no close event: the application ended it
    session_->respondError(stream_, 502, "The application ended without a response.");
    return;
  }
  if (chunked_ && !chunked_->done()) aborted_ = true;
  if (has_body_) resume();
}

void H2App::appAbort() {
  if (!live()) return;
  ended_ = aborted_ = true;
  if (!begun_ || !has_body_) {
    reset();
    return;
  }
  resume();  // what was written goes out, then the reset (readBody)
}

void H2App::reset() {
  ended_ = true;
  nghttp2_submit_rst_stream(session_->session_, NGHTTP2_FLAG_NONE, stream_, NGHTTP2_INTERNAL_ERROR);
  session_->wake_();
}

void H2App::appPauseBody(bool paused) {
  if (detached_ || paused_ == paused) return;
  paused_ = paused;
  uint64_t now = server_->nowMs();
  if (paused) {
    paused_at_ms_ = now;
    return;
  }
  last_body_ms_ = now;
  body_deadline_ms_ += now - paused_at_ms_;  // the application's pause is not the client's time
  session_->wake_();
}

int H2App::accessStatus(std::string_view target) {
  return accessStatusFor(server_->accessRules(), target, session_->identity_);
}

ssize_t H2App::readBody(nghttp2_session*, int32_t, uint8_t* buf, size_t length, uint32_t* flags,
                     nghttp2_data_source* source, void*) {
  auto* self = static_cast<H2App*>(source->ptr);
  size_t avail = self->out_.size() - self->out_off_;
  if (avail == 0) {
    if (!self->ended_) {
      self->deferred_ = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    // Cut short (the script died, Content-Length not reached): the client must not take
    // this body for complete, so the stream is reset (RFC 9113 §8.1).
    if (self->aborted_ || (self->length_left_ != UINT64_MAX && self->length_left_ > 0)) {
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return 0;
  }
  size_t n = std::min(avail, length);
  std::memcpy(buf, self->out_.data() + self->out_off_, n);
  self->out_off_ += n;
  self->sent_ += n;
  self->progress_ms_ = self->server_->nowMs();
  avail -= n;
  if (avail == 0) {
    self->out_.clear();
    self->out_off_ = 0;
  }
  if (self->wants_drain_ && avail <= kLowWater) {
    self->wants_drain_ = false;
    self->drain_due_ = true;  // sent by pump(), outside nghttp2
    self->session_->wake_();
  }
  if (avail == 0 && self->ended_ && !self->aborted_ &&
      (self->length_left_ == UINT64_MAX || self->length_left_ == 0)) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace lisod
