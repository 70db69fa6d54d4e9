// Connection's static-file and error responses: everything that answers a request
// without the application. Kept apart from the I/O state machine in connection.cc.
#include <string>

#include "connection.h"
#include "response.h"
#include "static_file.h"

namespace lisod {

void Connection::serveStatic() {
  std::string_view target = req_.target;
  size_t q = target.find_first_of("?#");
  if (q != std::string_view::npos) target = target.substr(0, q);
  FileLookup found = server_->files().lookup(target, server_->nowMs());
  if (found.status == 301) {
    std::string location = found.redirect;
    if (q != std::string_view::npos && req_.target[q] == '?') location += req_.target.substr(q);
    respondRedirect(location);
    return;
  }
  if (found.status != 0) {
    respondError(found.status, keep_alive_);
    return;
  }
  const FileEntry& f = *found.entry;
  if (!server_->accessRules().empty()) {
    // The resolved file is checked too: a symlink in a public directory must not expose a
    // protected one.
    const std::string& root = server_->config().root;
    std::string_view real = root == "/" ? std::string_view(f.path) : std::string_view(f.path).substr(root.size());
    if (server_->accessRules().checkNormalized(real, transport_->identity()) != 0) {
      respondError(403, keep_alive_);
      return;
    }
  }
  int status = 200;
  uint64_t first = 0, last = f.size == 0 ? 0 : f.size - 1, length = f.size;
  if (!req_.ims.empty()) {
    // RFC 9110 §13.1.3: the file is unmodified when its mtime is not after the date.
    int64_t since = parseHttpDate(req_.ims);
    if (since >= 0 && f.mtime <= since) status = 304;
  }
  if (status == 200 && !req_.range.empty()) {
    RangeResult rr = parseRange(req_.range, f.size, &first, &last);
    if (rr == RangeResult::kUnsatisfiable) {
      std::string body = errorPage(416, "The requested range is not satisfiable.");
      req_.status = 416;
      appendResponseStart(out_, 416, reasonPhrase(416), server_->httpDate(), keep_alive_);
      appendHeader(out_, "Content-Type", "text/html; charset=utf-8");
      appendHeader(out_, "Content-Range", "bytes */" + std::to_string(f.size));
      appendHeader(out_, "Content-Length", body.size());
      out_.append("\r\n");
      if (!req_.head_only) out_.append(body), req_.body_bytes_sent = body.size();
      state_ = State::kWrite;
      return;
    }
    if (rr == RangeResult::kOk) {
      status = 206;
      length = last - first + 1;
    }
  }
  req_.status = status;
  appendResponseStart(out_, status, reasonPhrase(status), server_->httpDate(), keep_alive_);
  appendHeader(out_, "Content-Type", f.mime);
  appendHeader(out_, "Last-Modified", std::string_view(f.last_modified, 29));
  appendHeader(out_, "Accept-Ranges", "bytes");
  if (status == 206) {
    appendHeader(out_, "Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                            std::to_string(f.size));
  }
  if (status != 304) appendHeader(out_, "Content-Length", length);
  out_.append("\r\n");
  state_ = State::kWrite;
  if (status == 304 || req_.head_only || length == 0) return;
  req_.body_bytes_sent = length;
  if (f.has_content) {
    out_.append(f.content, first, length);
    return;
  }
  file_ = found.entry;  // keeps the descriptor open while we send
  file_off_ = static_cast<off_t>(first);
  file_left_ = length;
  corked_ = true;  // full segments while the head and the file body go out
  transport_->setCork(true);
}

int Connection::accessStatus(std::string_view target) {
  const AccessRules& rules = server_->accessRules();
  if (rules.empty()) return 0;
  std::string_view path = originPath(target);
  return rules.check(path.substr(0, path.find_first_of("?#")), transport_->identity());
}

void Connection::respondError(int status, bool keep_alive, std::string_view detail) {
  keep_alive_ = keep_alive;
  req_.active = true;
  req_.status = status;
  if (req_.method.empty() && server_->config().access_log) req_.method = "-";
  std::string body = errorPage(status, detail);
  appendResponseStart(out_, status, reasonPhrase(status), server_->httpDate(), keep_alive);
  appendHeader(out_, "Content-Type", "text/html; charset=utf-8");
  appendHeader(out_, "Content-Length", body.size());
  if (status == 405) appendHeader(out_, "Allow", "GET, HEAD, POST");  // only static paths answer 405
  out_.append("\r\n");
  if (!req_.head_only) {
    out_.append(body);
    req_.body_bytes_sent = body.size();
  }
  state_ = State::kWrite;
}

void Connection::respondRedirect(const std::string& location) {
  req_.status = 301;
  std::string body = errorPage(301, "Moved to " + location);
  appendResponseStart(out_, 301, reasonPhrase(301), server_->httpDate(), keep_alive_);
  appendHeader(out_, "Location", location);
  appendHeader(out_, "Content-Type", "text/html; charset=utf-8");
  appendHeader(out_, "Content-Length", body.size());
  out_.append("\r\n");
  if (!req_.head_only) out_.append(body), req_.body_bytes_sent = body.size();
  state_ = State::kWrite;
}

}  // namespace lisod
