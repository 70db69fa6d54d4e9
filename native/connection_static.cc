// Connection's static-file and error responses over HTTP/1.1: the answer is planned by
// response_plan.cc (shared with HTTP/2) and put on the wire here. Kept apart from the I/O
// state machine in connection.cc.
#include <cstring>
#include <string>

#include "connection.h"
#include "response.h"
#include "response_plan.h"
#include "static_file.h"

namespace lisod {

void Connection::serveStatic() {
  StaticQuery q = req().fields.query(req().target, !req().post, transport_->identity());
  q.defer_whole_file_headers = true;  // sendPlan formats them only when no head is cached
  sendPlan(planStatic(*server_, q), keep_alive_);
}

int accessStatusFor(const AccessRules& rules, std::string_view target, const ClientIdentity* identity) {
  if (rules.empty()) return 0;
  std::string_view path = originPath(target);
  return rules.check(path.substr(0, queryStart(path)), identity);
}

int Connection::accessStatus(std::string_view target) {
  return accessStatusFor(server_->accessRules(), target, transport_->identity());
}

void Connection::respondError(int status, bool keep_alive, std::string_view detail) {
  req().active = true;
  if (req().method.empty() && server_->config().access_log) req().method = "-";
  sendPlan(planError(status, detail), keep_alive);
}

namespace {

// The head of p's answer: status line, Server, Date, Connection, p's headers, length.
void appendHead(std::string& out, const ResponsePlan& p, const char* date, bool keep_alive) {
  appendResponseStart(out, p.status, reasonPhrase(p.status), date, keep_alive);
  for (const auto& [name, value] : p.headers) appendHeader(out, name, value);
  if (p.send_length) appendHeader(out, "Content-Length", p.bodySize());
  out.append("\r\n");
}

}  // namespace

void Connection::sendPlan(ResponsePlan&& p, bool keep_alive) {
  keep_alive_ = keep_alive;
  req().status = p.status;
  const char* date = server_->httpDate();
  // A whole file's head is formatted once per entry and Connection value; each response
  // copies it and writes the current Date over the cached one (same length: IMF-fixdate).
  const FileEntry::CachedHead* cached = nullptr;
  if (p.whole_file != nullptr) {
    FileEntry::CachedHead& c = p.whole_file->h1_head[keep_alive ? 1 : 0];
    if (c.bytes.empty() || c.vary != p.vary) {
      addWholeFileHeaders(p);
      c.bytes.clear();
      appendHead(c.bytes, p, date, keep_alive);
      c.date_at = c.bytes.find("\r\nDate: ") + 8;
      c.vary = p.vary;
    }
    cached = &c;
  }
  // One allocation for head and in-memory body instead of a string growing by doubling.
  size_t need = out_.size() + (cached != nullptr ? cached->bytes.size() : 160);  // 160: status line, Server, …
  if (cached == nullptr) {
    for (const auto& [name, value] : p.headers) need += name.size() + value.size() + 4;
  }
  if (!req().head_only) need += !p.file ? p.body.size() : p.file->has_content ? p.length : 0;
  out_.reserve(need);
  if (cached != nullptr) {
    size_t at = out_.size() + cached->date_at;
    out_.append(cached->bytes);
    std::memcpy(out_.data() + at, date, 29);
  } else {
    appendHead(out_, p, date, keep_alive);
  }
  uint64_t length = p.bodySize();
  state_ = State::kWrite;
  if (req().head_only || length == 0) return;
  req().body_bytes_sent = length;
  if (!p.file) {
    out_.append(p.body);
  } else if (p.file->has_content) {
    out_.append(p.file->content, p.offset, length);
  } else {
    auto& send = req().send;
    send.file = std::move(p.file);  // keeps the descriptor open while we send
    send.off = static_cast<off_t>(p.offset);
    send.left = length;
    send.corked = true;  // full segments while the head and the file body go out
    transport_->setCork(true);
  }
}

}  // namespace lisod
