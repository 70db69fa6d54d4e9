// The response side of the native FastCGI client (fastcgi_client.h): STDOUT through the
// CGI head parser into the request's AppSink, the RFC 3875 §6 rules (parsed headers, NPH,
// local redirects), END_REQUEST, STDERR lines, error pages — the rules of
// src/app_runner.ts, in its words, so a request reads the same in the logs whichever path
// served it.
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>

#include "cgi_output.h"
#include "fastcgi_env.h"
#include "fastcgi_internal.h"
#include "fastcgi_record.h"
#include "http_request.h"
#include "response.h"

namespace lisod {
namespace {

constexpr size_t kMaxHead = 64 * 1024;  // src/cgi_output.ts kDefaultMaxHeadBytes
constexpr int kMaxLocalRedirects = 10;
constexpr size_t kMaxStderrLine = 4096;
constexpr double kStderrBytesPerSec = 64 * 1024;
constexpr double kStderrBurst = 256 * 1024;

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s.substr(0, 80)) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", c);
      out += esc;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

// src/cgi_output.ts fromLayout's reasons.
std::string invalidReason(const CgiHead& h) {
  switch (h.error) {
    case CgiError::kTooLarge: return "header section longer than " + std::to_string(kMaxHead) + " bytes";
    case CgiError::kNoFields: return "no header fields before the blank line";
    case CgiError::kMalformedLine: return "malformed header line " + quoted(h.error_text);
    case CgiError::kBadName: return "bad header name " + quoted(h.error_text);
    case CgiError::kControlChar: return "control character in " + std::string(h.error_text);
    case CgiError::kTwoStatus: return "more than one Status field";
    case CgiError::kTwoLocation: return "more than one Location field";
    case CgiError::kBadContentLength: return "bad Content-Length " + quoted(h.error_text);
    case CgiError::kConflictingLength: return "conflicting Content-Length fields";
    case CgiError::kBadStatus: return "bad Status " + quoted(h.error_text);
    case CgiError::kNotFinal: return "Status " + std::to_string(h.status) + " is not a final status";
    case CgiError::kEmptyLocation: return "empty Location";
    case CgiError::kBadNphLine: return "bad NPH status line " + quoted(h.error_text);
    case CgiError::kTooManyFields: return "too many header fields";
    default: return "invalid output";
  }
}

// src/app_runner.ts kMessages.
const char* pageMessage(int status) {
  switch (status) {
    case 400: return "The request cannot be handed to the application.";
    case 403: return "You do not have access to this resource.";
    case 404: return "No application script matches this path.";
    case 500: return "The application failed.";
    case 502: return "The application failed or sent a response the server cannot understand.";
    case 503: return "Too many requests for the application are in progress. Try again shortly.";
    case 504: return "The application did not answer in time.";
    default: return nullptr;
  }
}

}  // namespace

bool FcgiDispatch::isIdempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE" || m == "PUT" || m == "DELETE";
}

bool FcgiDispatch::canResend(const Exchange* ex) const { return !ex->retried && !ex->ended && !ex->emitted; }

void FcgiDispatch::onStdout(Exchange* ex, std::string_view data) {
  if (ex->head_done) {
    forward(ex, data);
    return;
  }
  // A head that arrives whole (the common case: one STDOUT record) is parsed where it lies,
  // in the backend's read buffer, which outlives this call; only a split one is gathered.
  std::string_view buf = data;
  if (!ex->head.empty()) {
    ex->head.append(data);
    buf = ex->head;
  }
  size_t lines = 0;
  for (char c : buf) lines += c == '\n';
  CgiField few[64];
  std::vector<CgiField> many(lines + 1 > std::size(few) ? lines + 1 : 0);
  CgiHead h;
  h.fields = many.empty() ? few : many.data();
  h.num_fields = many.empty() ? std::min(std::size(few), lines + 1) : many.size();
  const long n = parseCgiHead(buf.data(), buf.size(), kMaxHead, ex->scanned, &h);
  if (n == kCgiIncomplete) {
    if (ex->head.empty()) ex->head.assign(data);
    ex->scanned = ex->head.size();
    return;
  }
  ex->head_done = true;
  AppSink* s = sink(ex);
  const bool head_only = ex->req.method == "HEAD";
  switch (h.kind) {
    case CgiKind::kInvalid:
      if (ex->proc) signalProc(ex->proc, SIGKILL);
      fail(ex, 502, "bad output from " + label(ex) + ": " + invalidReason(h));
      return;
    case CgiKind::kLocalRedirect:
      localRedirect(ex, h.location);
      return;
    case CgiKind::kNph: {
      // RFC 3875 §5: relayed as written; the script's own head decides whether the
      // connection can be reused (as app_runner.ts), and HEAD gets the head only.
      const NphFraming framing = nphFraming(buf.substr(0, static_cast<size_t>(n)), ex->req.method, ex->req.version);
      ex->began = true;
      ex->body_end = framing.body;
      if (s) s->appBeginRaw(framing.keep_alive);
      if (s) s->appWrite(buf.data(), static_cast<size_t>(n));
      if (ex->body_end.complete()) {
        finish(ex, false);
        return;
      }
      break;
    }
    case CgiKind::kResponse: {
      std::vector<std::string> headers;
      headers.reserve(2 * h.num_fields + 2);
      bool has_length = false;
      uint64_t length = 0;
      for (size_t i = 0; i < h.num_fields; ++i) {
        const CgiField& f = h.fields[i];
        if (const char* why = checkHeaderField(f.name, f.value)) {
          fail(ex, 502, "bad output from " + label(ex) + ": header " + quoted(f.name) + ": " + why);
          return;
        }
        if (equalsIgnoreCase(f.name, "content-length")) {
          has_length = std::from_chars(f.value.data(), f.value.data() + f.value.size(), length).ec == std::errc();
        }
        headers.emplace_back(f.name);
        headers.emplace_back(f.value);
      }
      if (h.has_location) {
        headers.emplace_back("Location");
        headers.emplace_back(h.location);
      }
      const std::string reason = h.has_status ? std::string(h.reason) : h.has_location ? "Found" : "OK";
      const bool no_body = head_only || h.status == 204 || h.status == 304;
      ex->body_end = no_body ? BodyEnd::length(0) : has_length ? BodyEnd::length(length) : BodyEnd::untilEof();
      ex->began = true;
      if (s) s->appBegin(h.status, reason, headers);
      if (ex->body_end.complete()) {
        finish(ex, false);
        return;
      }
      break;
    }
  }
  forward(ex, buf.substr(static_cast<size_t>(n)));  // forward copies what it keeps
  ex->head.clear();
  ex->head.shrink_to_fit();
}

void FcgiDispatch::forward(Exchange* ex, std::string_view data) {
  if (ex->ended || data.empty()) return;
  const size_t n = ex->body_end.take(data);
  if (n > 0) {
    AppSink* s = sink(ex);
    if (s && !s->appWrite(data.data(), n)) ex->paused = true;  // onAppDrain resumes
  }
  // Content-Length (or the NPH framing) reached: done without waiting for END_REQUEST
  // (read on for the pool) or the script's EOF.
  if (ex->body_end.complete()) finish(ex, false);
}

void FcgiDispatch::finish(Exchange* ex, bool cut) {
  if (ex->ended) return;
  ex->ended = true;
  ex->paused = false;  // what follows is read and dropped
  if (AppSink* s = sink(ex)) cut ? s->appAbort() : s->appEnd();
}

void FcgiDispatch::onEnd(Exchange* ex, std::string_view content) {
  FcgiEnd e;
  if (content.size() != 8 || !parseFcgiEnd(content, &e)) {
    fail(ex, 502, label(ex) + ": END_REQUEST body of " + std::to_string(content.size()) + " bytes, not 8",
         LogLevel::kError, true);
    return;
  }
  switch (e.protocol_status) {
    case kFcgiComplete: break;
    case kFcgiCantMpx:
      if (canResend(ex)) {
        dropBackend(ex->backend);
        ex->backend = nullptr;
        ex->retried = true;
        start(ex, true);
        return;
      }
      fail(ex, 502, label(ex) + ": the backend refused the request (FCGI_CANT_MPX_CONN) twice", LogLevel::kError, true);
      return;
    case kFcgiOverloaded:
      fail(ex, 503, label(ex) + ": the backend is overloaded (FCGI_OVERLOADED)", LogLevel::kError, true);
      return;
    case kFcgiUnknownRole:
      fail(ex, 502, label(ex) + ": the backend does not play the responder role (FCGI_UNKNOWN_ROLE)", LogLevel::kError, true);
      return;
    default:
      fail(ex, 502, label(ex) + ": END_REQUEST with unknown protocolStatus " + std::to_string(e.protocol_status),
           LogLevel::kError, true);
      return;
  }
  Backend* b = ex->backend;
  ex->backend = nullptr;
  release(b);
  onStderr(ex, {}, true);
  const std::string code = std::to_string(static_cast<int32_t>(e.app_status));
  if (!ex->head_done) {
    if (e.app_status != 0) {
      fail(ex, 500, label(ex) + " exited with status " + code + " before sending a response");
    } else {
      fail(ex, 502, "bad output from " + label(ex) + ": " +
                        (ex->head.empty() ? "no output" : "output ended before the blank line that closes the header section"));
    }
    return;
  }
  if (!ex->ended) {
    if (e.app_status != 0) log(LogLevel::kWarn, "fastcgi " + label(ex) + ": exited with status " + code + " after its head");
    // A failing application may have stopped mid-body: close instead of ending the framing.
    finish(ex, e.app_status != 0 || ex->cutShort());
  }
  endExchange(ex);
}

void FcgiDispatch::onStderr(Exchange* ex, std::string_view data, bool flush) {
  stderrLines(*ex->mount, ex->stderr_line, ex->stderr_dropped, label(ex), data, flush);
}

void FcgiDispatch::stderrLines(Mount& m, std::string& line, uint64_t& dropped, const std::string& who,
                               std::string_view data, bool flush) {
  auto reportDropped = [&] {
    if (dropped == 0) return;
    log(LogLevel::kError, m.tag + " " + who + ": [" + std::to_string(dropped) + " bytes of stderr dropped: over 65536 bytes/s]");
    dropped = 0;
  };
  if (!data.empty()) {
    // Rate limit per mount: what does not fit is dropped, and counted for this stream.
    const uint64_t now = uv_now(loop_);
    m.stderr_tokens = std::min(kStderrBurst, m.stderr_tokens + (now - m.stderr_at_ms) * kStderrBytesPerSec / 1000);
    m.stderr_at_ms = now;
    if (static_cast<double>(data.size()) > m.stderr_tokens) {
      dropped += data.size();
      data = {};
    } else {
      m.stderr_tokens -= static_cast<double>(data.size());
      reportDropped();
    }
  }
  auto emit = [&](std::string_view l) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!l.empty()) log(LogLevel::kError, m.tag + " " + who + ": " + std::string(l.substr(0, kMaxStderrLine)));
  };
  for (char c : data) {
    if (c == '\n') {
      emit(line);
      line.clear();
    } else {
      line.push_back(c);
    }
  }
  if (line.size() > kMaxStderrLine || (flush && !line.empty())) {
    emit(line);
    line.clear();
  }
  if (flush) reportDropped();  // the stream ended: what it lost is said now, under its name
}

void FcgiDispatch::localRedirect(Exchange* ex, std::string_view location_view) {
  const std::string location(location_view);
  // RFC 3875 §6.2.2: answer as if the client had sent a GET for the new location. The
  // backend connection is not waited for: it closes (a CGI process keeps its slot until it exits).
  if (ex->backend) dropBackend(ex->backend);
  ex->backend = nullptr;
  if (ex->proc) releaseProc(ex, 0);
  if (ex->redirects >= kMaxLocalRedirects) {
    fail(ex, 500, "more than " + std::to_string(kMaxLocalRedirects) + " local redirects (last " + location + ")");
    return;
  }
  Mount& m = *ex->mount;
  AppRequest r = ex->req;
  r.method = "GET";
  r.target = location;
  r.has_body = false;
  r.content_length = 0;
  for (size_t i = 0; i + 1 < ex->headers.size(); i += 2) {
    const std::string& name = ex->headers[i];
    if (equalsIgnoreCase(name, "content-length") || equalsIgnoreCase(name, "content-type") ||
        equalsIgnoreCase(name, "transfer-encoding")) {
      continue;
    }
    r.headers.push_back(name);
    r.headers.push_back(ex->headers[i + 1]);
  }
  std::string params, miss;
  // A target outside this mount (or one that cannot be mapped): the native server or
  // another mount owns it; let the client ask (app_runner.ts does the same).
  std::string_view path, query;
  splitCgiTarget(location, &path, &query);
  const std::string& prefix = m.cfg.prefix;
  const bool inside = path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/');
  const int rc = inside ? routeParams(m, r, &params, &miss) : -1;
  AppSink* s = sink(ex);
  if (rc < 0) {
    ex->began = true;
    if (s) s->appBegin(302, "Found", {"Location", location, "Content-Length", "0"});
    finish(ex, false);
    endExchange(ex);
    return;
  }
  const int denied = s ? s->accessStatus(location) : 403;
  if (denied != 0) {
    fail(ex, denied, "local redirect to " + location + " refused by [[access]]", LogLevel::kInfo);
    return;
  }
  if (rc == 404) {
    fail(ex, 404, "no script for " + miss, LogLevel::kInfo);
    return;
  }
  ex->redirects++;
  ex->req.method = "GET";
  ex->req.target = location;
  ex->req.has_body = false;
  ex->req.content_length = 0;
  ex->headers = std::move(r.headers);
  ex->params = std::move(params) + ex->identity_params;
  ex->body.clear();
  ex->idempotent = true;
  ex->answered = ex->retried = ex->emitted = ex->head_done = false;
  ex->body_end = BodyEnd::untilEof();
  ex->head.clear();
  ex->scanned = 0;
  if (m.cfg.cgi) {
    enqueue(ex);  // a new process, in turn
  } else {
    start(ex, false);  // keeps its slot
  }
}

void FcgiDispatch::fail(Exchange* ex, int status, const std::string& detail, LogLevel level, bool cut) {
  if (ex->done) return;
  if (ex->backend) dropBackend(ex->backend);
  ex->backend = nullptr;
  if (ex->proc) releaseProc(ex, 0);
  if (ex->ended) {  // the response is complete; only the backend's tail went wrong
    endExchange(ex);
    return;
  }
  if (!detail.empty()) {
    log(level, ex->mount->tag + " " + ex->req.method + " " + ex->req.target + ": " + std::to_string(status) + " " + detail);
  }
  if (ex->began) {
    finish(ex, cut);
    endExchange(ex);
    return;
  }
  const std::string reason(reasonPhrase(status));
  const char* message = pageMessage(status);
  const std::string body = "<!DOCTYPE html>\n<html><head><title>" + std::to_string(status) + " " + reason +
                           "</title></head>\n<body><h1>" + std::to_string(status) + " " + reason + "</h1>\n<p>" +
                           (message ? message : reason.c_str()) + "</p></body></html>\n";
  std::vector<std::string> headers = {"Content-Type", "text/html; charset=utf-8", "Content-Length", std::to_string(body.size())};
  if (status == 503) headers.insert(headers.end(), {"Retry-After", "1"});
  ex->began = true;
  if (AppSink* s = sink(ex)) {
    s->appBegin(status, reason, headers);
    s->appWrite(body.data(), body.size());
  }
  finish(ex, false);
  endExchange(ex);
}

void FcgiDispatch::endExchange(Exchange* ex) {
  if (ex->done) return;
  ex->done = true;
  std::shared_ptr<Mount> m = ex->mount;
  if (ex->phase == Exchange::kPipelined && ex->behind != nullptr) {
    ex->behind->next = nullptr;  // its records are out: the connection closes when it comes up
    ex->behind = nullptr;
  }
  if (ex->phase == Exchange::kQueued) {
    for (auto it = m->queue.begin(); it != m->queue.end(); ++it) {
      if (*it == ex) {
        m->queue.erase(it);
        break;
      }
    }
  }
  if (ex->backend) dropBackend(ex->backend);
  ex->backend = nullptr;
  if (ex->proc) releaseProc(ex, 0);
  if (auto w = spawning_.find(ex->spawn_id); ex->spawn_id != 0 && w != spawning_.end()) {
    // Its process is still starting: ended once started, it holds the slot until it exits.
    w->second.ex = nullptr;
    w->second.holds_slot = ex->has_slot;
    ex->has_slot = false;
  }
  ex->spawn_id = 0;
  const bool had_slot = ex->has_slot;
  if (had_slot) {
    ex->has_slot = false;
    --m->running;
  }
  if (auto it = exchanges_.find(ex->id); it != exchanges_.end() && it->second.get() == ex) {
    graveyard_.push_back(std::move(it->second));
    exchanges_.erase(it);
  }
  if (had_slot) pump(m.get());
}

}  // namespace lisod
