// Connection's static-file and error responses over HTTP/1.1: the answer is planned by
// response_plan.cc (shared with HTTP/2) and put on the wire here. Kept apart from the I/O
// state machine in connection.cc.
#include <string>

#include "connection.h"
#include "response.h"
#include "response_plan.h"
#include "static_file.h"

namespace lisod {

void Connection::serveStatic() {
  sendPlan(planStatic(*server_, req().fields.query(req().target, !req().post, transport_->identity())), keep_alive_);
}

int accessStatusFor(const AccessRules& rules, std::string_view target, const ClientIdentity* identity) {
  if (rules.empty()) return 0;
  std::string_view path = originPath(target);
  return rules.check(path.substr(0, path.find_first_of("?#")), identity);
}

int Connection::accessStatus(std::string_view target) {
  return accessStatusFor(server_->accessRules(), target, transport_->identity());
}

void Connection::respondError(int status, bool keep_alive, std::string_view detail) {
  req().active = true;
  if (req().method.empty() && server_->config().access_log) req().method = "-";
  sendPlan(planError(status, detail), keep_alive);
}

void Connection::sendPlan(ResponsePlan&& p, bool keep_alive) {
  keep_alive_ = keep_alive;
  req().status = p.status;
  // One allocation for head and in-memory body instead of a string growing by doubling.
  size_t need = out_.size() + 160;  // status line, Server, Date, Connection, Content-Length
  for (const auto& [name, value] : p.headers) need += name.size() + value.size() + 4;
  if (!req().head_only) need += !p.file ? p.body.size() : p.file->has_content ? p.length : 0;
  out_.reserve(need);
  appendResponseStart(out_, p.status, reasonPhrase(p.status), server_->httpDate(), keep_alive);
  for (const auto& [name, value] : p.headers) appendHeader(out_, name, value);
  uint64_t length = p.bodySize();
  if (p.send_length) appendHeader(out_, "Content-Length", length);
  out_.append("\r\n");
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
