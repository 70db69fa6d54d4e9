// H2Session: nghttp2 callbacks → requests answered by response_plan.cc, one stream each.
#include "h2_session.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <charconv>
#include <cctype>
#include <vector>

#include "access_log.h"
#include "h2_app.h"
#include "h2_head.h"
#include "http_request.h"
#include "response.h"
#include "response_plan.h"
#include "server.h"
#include "static_file.h"

namespace lisod {

// One request/response exchange. Owned by H2Session::streams_ (at index slot); nghttp2
// holds a raw pointer as stream user data and as the data source of the response body.
// Closed streams are reset and reused (H2Session::spare_), keeping their strings' buffers.
struct H2Stream {
  int32_t id = 0;
  size_t slot = 0;
  uint64_t opened_ms = 0, progress_ms = 0;  // progress: the last response DATA produced
  std::string method, path, referer, user_agent;
  StaticFields fields;  // for a static answer
  size_t header_bytes = 0;  // decoded header list size as RFC 9113 §6.5.2 counts it
  uint64_t body_bytes = 0;
  bool request_done = false, responded = false, head_only = false;
  ResponsePlan plan;
  uint64_t sent = 0;    // body bytes written out (static bodies: by sendData)
  uint64_t queued = 0;  // static body bytes promised to nghttp2's DATA frames (≥ sent)
  int status = 0;
  // Application mounts: every regular field is kept for the AppRequest.
  static constexpr int kMountUnknown = -2;
  int mount = kMountUnknown;  // matchAppPrefix of :path, known at the first regular field
  std::string authority;
  std::vector<std::string> app_headers;  // flat name, value
  int64_t content_length = -1;
  std::unique_ptr<H2App> app;

  // Back to a new stream's state, keeping the strings' buffers. Every field above is
  // reset here: a field added to H2Stream must be added here too.
  void reset() {
    id = 0;
    slot = 0;
    opened_ms = progress_ms = 0;
    for (std::string* str : {&method, &path, &referer, &user_agent, &authority}) str->clear();
    fields.clear();
    header_bytes = 0;
    body_bytes = 0;
    request_done = responded = head_only = false;
    plan.clear();  // also lets go of the response's file
    sent = queued = 0;
    status = 0;
    mount = kMountUnknown;
    app_headers.clear();
    content_length = -1;
    app.reset();
  }
};

namespace {

constexpr uint64_t kResetBurst = 1000;   // nghttp2's token bucket for stream resets:
constexpr uint64_t kResetRate = 33;      // a burst, then this many per second
constexpr size_t kMaxContinuations = 8;  // CONTINUATION frames per header block

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

}  // namespace

// nghttp2's C callbacks, forwarding to the session (user_data) and its streams.
struct H2Callbacks {
  // The stream of a frame: the last one found (a request's header fields and frames come
  // one after another), else nghttp2's stream user data; nullptr when closed or unknown.
  static H2Stream* stream(H2Session* self, int32_t id) {
    if (self->hot_ != nullptr && self->hot_->id == id) return self->hot_;
    auto* s = static_cast<H2Stream*>(nghttp2_session_get_stream_user_data(self->session_, id));
    if (s != nullptr) self->hot_ = s;
    return s;
  }

  static int onBeginHeaders(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<H2Session*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    std::unique_ptr<H2Stream> s;
    if (self->spare_.empty()) {
      s = std::make_unique<H2Stream>();
    } else {
      s = std::move(self->spare_.back());
      self->spare_.pop_back();
    }
    s->id = frame->hd.stream_id;
    s->opened_ms = self->server_->nowMs();
    s->slot = self->streams_.size();
    nghttp2_session_set_stream_user_data(ng, s->id, s.get());
    self->streams_.push_back(std::move(s));
    return 0;
  }

  static int onHeader(nghttp2_session* ng, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                      const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    auto* self = static_cast<H2Session*>(user);
    H2Stream* s = stream(self, frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->header_bytes += namelen + valuelen + 32;
    // Over SETTINGS_MAX_HEADER_LIST_SIZE: reset the stream (and stop decoding into it),
    // which is also where an HPACK bomb stops.
    if (s->header_bytes > self->server_->config().max_head) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers are ignored
    std::string_view n = view(name, namelen), v = view(value, valuelen);
    if (!n.empty() && n[0] != ':') {
      if (s->mount == H2Stream::kMountUnknown) s->mount = matchAppPrefix(s->path, self->server_->config().app_prefixes);
      if (s->mount >= 0 && n != "host") {  // :authority is the host (RFC 9113 §8.3.1)
        s->app_headers.emplace_back(n);
        s->app_headers.emplace_back(v);
      }
    }
    if (n == ":method") s->method.assign(v);
    else if (n == ":authority") s->authority.assign(v);
    else if (n == "content-length") {  // nghttp2 checked it is a number
      std::from_chars(v.data(), v.data() + v.size(), s->content_length);
    }
    else if (n == ":path") s->path.assign(v);
    else if (s->fields.take(n, v)) return 0;
    else if (n == "referer") s->referer.assign(v);
    else if (n == "user-agent") s->user_agent.assign(v);
    return 0;
  }

  static int onDataChunk(nghttp2_session* ng, uint8_t, int32_t id, const uint8_t* data, size_t len, void* user) {
    auto* self = static_cast<H2Session*>(user);
    // With NGHTTP2_OPT_NO_AUTO_WINDOW_UPDATE: the connection window comes back at once
    // (each stream's window bounds what waits); a stream's as its reader takes the bytes.
    nghttp2_session_consume_connection(ng, len);
    H2Stream* s = stream(self, id);
    if (s == nullptr) return 0;
    if (s->app) {
      s->app->bodyData(data, len);
      return 0;
    }
    nghttp2_session_consume_stream(ng, id, len);
    s->body_bytes += len;
    if (s->body_bytes > self->server_->config().max_body && !s->responded) {
      self->respond(*s, planError(413, "The request body is too large."));
    }
    return 0;
  }

  static int onFrameRecv(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
    auto* self = static_cast<H2Session*>(user);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    H2Stream* s = stream(self, frame->hd.stream_id);
    if (s == nullptr) return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST && !s->responded) {
      if (s->mount == H2Stream::kMountUnknown) s->mount = matchAppPrefix(s->path, self->server_->config().app_prefixes);
      if (s->mount >= 0) {  // an application takes the body as it comes
        s->request_done = end;
        self->dispatch(*s);
        return 0;
      }
    }
    if (!end) return 0;
    s->request_done = true;
    if (s->app) {
      s->app->bodyEnd();
      return 0;
    }
    if (!s->responded) self->dispatch(*s);
    return 0;
  }

  static int onStreamClose(nghttp2_session* ng, int32_t id, uint32_t, void* user) {
    auto* self = static_cast<H2Session*>(user);
    H2Stream* s = stream(self, id);
    if (s == nullptr) return 0;
    if (s->app) {
      s->app->detach();  // a client reset kills the script
      --self->app_streams_;
    }
    if (s->status != 0 || (s->app && s->app->status() != 0)) self->logStream(*s);
    self->closeStream(*s);
    return 0;
  }

  // A static body's DATA frame: only its length is decided here (NGHTTP2_DATA_FLAG_NO_COPY);
  // sendData then writes the frame with the bytes straight from the plan into produce()'s
  // output, not through nghttp2's frame buffer (one copy fewer per body byte).
  static ssize_t readBody(nghttp2_session*, int32_t, uint8_t*, size_t length, uint32_t* flags,
                          nghttp2_data_source* source, void* user) {
    auto* self = static_cast<H2Session*>(user);
    auto* s = static_cast<H2Stream*>(source->ptr);
    uint64_t size = s->plan.bodySize();
    size_t n = static_cast<size_t>(std::min<uint64_t>(length, size - std::min(size, s->queued)));
    s->queued += n;
    s->progress_ms = self->server_->nowMs();
    if (s->queued >= size) *flags |= NGHTTP2_DATA_FLAG_EOF;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    return static_cast<ssize_t>(n);
  }

  // DATA payload sizes that end each frame on a TLS record boundary of produce()'s output
  // (whose first byte starts an SSL_write): a 16 KiB record then never carries a frame's
  // tail and the next one's head, and a 64 KiB batch is four full records, not four and a
  // few bytes (one more record, seal and write). nghttp2 clamps this to the flow-control
  // windows and the client's SETTINGS_MAX_FRAME_SIZE.
  static ssize_t dataLength(nghttp2_session*, uint8_t, int32_t, int32_t, int32_t, uint32_t max_frame, void* user) {
    auto* self = static_cast<H2Session*>(user);
    constexpr size_t kRecord = 16384, kFrameHeader = 9, kMinPayload = 4096;
    if (self->produce_out_ == nullptr) return std::min<uint32_t>(max_frame, kRecord);
    size_t room = kRecord - (self->produce_out_->size() + kFrameHeader) % kRecord;
    if (room < kMinPayload) room += kRecord;  // a full record more rather than a tiny frame
    return static_cast<ssize_t>(std::min<size_t>(room, max_frame));
  }

  static int sendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                      nghttp2_data_source* source, void* user) {
    auto* self = static_cast<H2Session*>(user);
    auto* s = static_cast<H2Stream*>(source->ptr);
    if (self->produce_out_ == nullptr) return NGHTTP2_ERR_WOULDBLOCK;  // only produce() sends
    std::string& out = *self->produce_out_;
    size_t mark = out.size();
    out.append(reinterpret_cast<const char*>(framehd), 9);
    if (frame->data.padlen > 0) out.push_back(static_cast<char>(frame->data.padlen - 1));  // we never pad
    if (!s->plan.appendBody(s->sent, length, out)) {
      out.resize(mark);
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // the file shrank: reset the stream
    }
    if (frame->data.padlen > 1) out.append(frame->data.padlen - 1, '\0');
    s->sent += length;
    return out.size() >= self->produce_max_ ? NGHTTP2_ERR_PAUSE : 0;  // mem_send returns; produce() writes
  }
};

std::unique_ptr<H2Session> H2Session::create(Server* server, std::string_view remote,
                                             const ClientIdentity* identity) {
  std::unique_ptr<H2Session> self(new H2Session(server, remote, identity));
  nghttp2_session_callbacks* cbs = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0) return nullptr;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, H2Callbacks::onBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(cbs, H2Callbacks::onHeader);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, H2Callbacks::onDataChunk);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, H2Callbacks::onFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, H2Callbacks::onStreamClose);
  nghttp2_session_callbacks_set_send_data_callback(cbs, H2Callbacks::sendData);
  nghttp2_session_callbacks_set_data_source_read_length_callback(cbs, H2Callbacks::dataLength);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    return nullptr;
  }
  nghttp2_option_set_no_http_messaging(opt, 0);
  nghttp2_option_set_no_auto_window_update(opt, 1);  // windows come back as bodies are taken  // pseudo-header and content-length checks on
  nghttp2_option_set_stream_reset_rate_limit(opt, kResetBurst, kResetRate);
  nghttp2_option_set_max_continuations(opt, kMaxContinuations);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  nghttp2_option_set_no_closed_streams(opt, 1);  // no RFC 7540 priority tree to keep them for
  nghttp2_mem mem = self->pool_.mem();
  int rv = nghttp2_session_server_new3(&self->session_, cbs, self.get(), opt, &mem);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);
  if (rv != 0) return nullptr;
  const ServerConfig& cfg = server->config();
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, cfg.h2_max_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(std::min<size_t>(cfg.max_head, UINT32_MAX))},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      // RFC 9218 §2.1: no RFC 7540 dependency tree (lisod ignores priorities anyway); nghttp2
      // then schedules streams round-robin by urgency and keeps no tree per stream.
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  if (nghttp2_submit_settings(self->session_, NGHTTP2_FLAG_NONE, settings, std::size(settings)) != 0) return nullptr;
  return self;
}

H2Session::H2Session(Server* server, std::string_view remote, const ClientIdentity* identity)
    : server_(server), remote_(remote), identity_(identity) {}

H2Session::~H2Session() {
  if (session_ != nullptr) nghttp2_session_del(session_);  // no callbacks: streams_ just goes
}

bool H2Session::receive(const char* data, size_t len) {
  ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(data), len);
  if (rv >= 0) return true;
  // Fatal for the connection. nghttp2 queues its own GOAWAY for most protocol errors; for
  // the floods it only stops, so say why (RFC 9113 §5.4.1) before closing.
  uint32_t code = rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || rv == NGHTTP2_ERR_FLOODED
                      ? NGHTTP2_ENHANCE_YOUR_CALM
                      : NGHTTP2_PROTOCOL_ERROR;
  if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC) nghttp2_session_terminate_session(session_, code);
  failed_ = true;
  return false;
}

bool H2Session::produce(std::string& out, size_t max) {
  size_t before = out.size();
  produce_out_ = &out;  // sendData appends DATA frames here, in order with the rest
  produce_max_ = max;
  while (out.size() < max && !send_failed_) {
    const uint8_t* p = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &p);
    if (n < 0) send_failed_ = true;
    if (n <= 0) break;
    out.append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  produce_out_ = nullptr;
  return out.size() > before;
}

bool H2Session::finished() const {
  if (send_failed_ || (failed_ && !nghttp2_session_want_write(session_))) return true;
  if (stopping_ && streams_.empty() && !nghttp2_session_want_write(session_)) return true;
  return !nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_);
}

void H2Session::shutdown() {
  if (stopping_) return;
  stopping_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

bool H2Session::responseStalled(uint64_t now_ms, uint64_t limit_ms) const {
  for (const auto& s : streams_) {
    if (s->responded && s->sent < s->plan.bodySize() && now_ms - s->progress_ms >= limit_ms) return true;
  }
  return false;
}

size_t H2Session::resetSlowStreams(uint64_t now_ms, uint64_t limit_ms) {
  std::vector<H2Stream*> slow;
  for (const auto& s : streams_) {
    if (!s->request_done && !s->responded && now_ms - s->opened_ms >= limit_ms) slow.push_back(s.get());
  }
  for (H2Stream* s : slow) respond(*s, planError(408, "The request did not arrive in time."));
  size_t n = slow.size();
  std::vector<H2App*> apps;
  for (const auto& s : streams_) {
    if (s->app) apps.push_back(s->app.get());
  }
  for (H2App* app : apps) n += app->expire(now_ms) ? 1 : 0;  // resets are queued, not closed yet
  return n;
}

void H2Session::dispatch(H2Stream& s) {
  const ServerConfig& cfg = server_->config();
  std::string_view path = s.path;
  if (s.method.empty() || path.empty() || path[0] != '/') {
    respond(s, planError(400, "The request could not be parsed."));
    return;
  }
  std::string_view clean = path.substr(0, queryStart(path));
  if (int denied = server_->accessRules().check(clean, identity_)) {  // before any file or script
    respond(s, planError(denied));
    return;
  }
  if (s.mount == H2Stream::kMountUnknown) s.mount = matchAppPrefix(path, cfg.app_prefixes);
  if (s.mount >= 0) {
    startApp(s, s.mount);
    return;
  }
  Method m = methodOf(s.method);
  s.head_only = m == Method::kHead;
  if (int status = methodStatus(m, false)) {
    respond(s, planError(status, status == 405 ? "This resource accepts GET, HEAD and POST."
                                               : "This method is not implemented."));
    return;
  }
  StaticQuery q = s.fields.query(path, m != Method::kPost, identity_);
  q.defer_whole_file_headers = q.defer_coded_headers = true;  // H2Head adds them from its cache
  respond(s, planStatic(*server_, q));
}

void H2Session::startApp(H2Stream& s, int mount) {
  if (int status = methodStatus(methodOf(s.method), true)) {
    respond(s, planError(status, "This method is not implemented."));
    return;
  }
  if (s.content_length > 0 && static_cast<uint64_t>(s.content_length) > server_->config().max_body) {
    respond(s, planError(413, "The request body is too large."));
    return;
  }
  AppRequest r;
  r.method = s.method;
  r.target = s.path;
  r.version = "HTTP/2.0";
  r.headers = std::move(s.app_headers);
  if (!s.authority.empty()) {  // HTTP_HOST and SERVER_NAME come from :authority
    r.headers.emplace_back("host");
    r.headers.emplace_back(s.authority);
  }
  r.remote_address = remote_;
  r.remote_port = peer_.remote_port;
  r.local_address = peer_.local_address;
  r.local_port = peer_.local_port;
  r.tls = true;
  r.has_body = !s.request_done && s.content_length != 0;  // content-length: 0 is no body (nghttp2 holds DATA to it)
  r.content_length = r.has_body ? s.content_length : 0;
  r.identity = identity_;
  r.mount = mount;
  s.responded = true;  // from here on the application answers
  s.head_only = s.method == "HEAD";
  s.app = std::make_unique<H2App>(this, s.id, s.head_only, std::move(r));
  ++app_streams_;
  wake_();
}

void H2Session::respondError(int32_t id, int status, std::string_view detail) {
  H2Stream* s = H2Callbacks::stream(this, id);
  if (s == nullptr) return;
  respond(*s, planError(status, detail));
  wake_();
}

void H2Session::closeStream(H2Stream& s) {
  if (hot_ == &s) hot_ = nullptr;
  size_t slot = s.slot;
  std::unique_ptr<H2Stream> mine = std::move(streams_[slot]);
  if (slot + 1 != streams_.size()) {  // the last stream takes the freed slot
    streams_[slot] = std::move(streams_.back());
    streams_[slot]->slot = slot;
  }
  streams_.pop_back();
  if (spare_.size() < kSpareStreams) {
    mine->reset();
    spare_.push_back(std::move(mine));
  }
}

void H2Session::attach(std::function<void()> wake, H2Peer peer) {
  wake_ = std::move(wake);
  peer_ = std::move(peer);
}

void H2Session::pumpApps() {
  if (app_streams_ == 0) return;
  std::vector<int32_t> ids;
  for (const auto& s : streams_) {
    if (s->app) ids.push_back(s->id);
  }
  // JavaScript runs in pump(); it queues frames but cannot close a stream meanwhile.
  for (int32_t id : ids) {
    H2Stream* s = H2Callbacks::stream(this, id);
    if (s != nullptr && s->app) s->app->pump();
  }
}

void H2Session::detachApps() {
  for (auto& s : streams_) {
    if (s->app) s->app->detach();
  }
}

void H2Session::respond(H2Stream& s, ResponsePlan&& plan) {
  s.responded = true;
  s.plan = std::move(plan);
  s.status = s.plan.status;
  H2Head head(s.plan, server_->httpDate());  // on the stack; nghttp2_submit_response copies it
  bool body = !s.head_only && s.plan.bodySize() > 0;
  s.progress_ms = server_->nowMs();
  nghttp2_data_provider provider{};
  provider.source.ptr = &s;
  provider.read_callback = H2Callbacks::readBody;
  nghttp2_submit_response(session_, s.id, head.nv(), head.size(), body ? &provider : nullptr);
}

void H2Session::logUnfinished() {
  for (auto& s : streams_) {
    if (s->status != 0 || (s->app && s->app->status() != 0)) logStream(*s);
    s->status = 0;
    if (s->app) s->app->detach();  // kept: a pump() on the stack may still be inside it
  }
}

void H2Session::logStream(const H2Stream& s) {
  if (!server_->config().access_log) return;
  AccessEntry e;
  e.remote = remote_;
  e.user = identity_ != nullptr ? identity_->user() : std::string_view();
  e.method = s.method.empty() ? std::string_view("-") : std::string_view(s.method);
  e.target = s.path;
  e.version = "HTTP/2.0";
  e.referer = s.referer;
  e.user_agent = s.user_agent;
  bool app = s.app && s.app->status() != 0;  // else an error answered for the application
  e.status = app ? s.app->status() : s.status;
  e.bytes = app ? s.app->sent() : s.sent;
  server_->logAccess(e, &log_memo_);
}

}  // namespace lisod
