// Connection's HTTP/2 mode: the transport's bytes go through an H2Session instead of the
// HTTP/1.1 parser; the connection keeps I/O, timeouts and the graceful stop.
#include <algorithm>

#include "connection.h"
#include "h2_session.h"

namespace lisod {
namespace {
constexpr size_t kH2OutBytes = 64 * 1024;  // frames gathered before each write
constexpr uint64_t kGoawayGraceMs = 2000;  // to flush our GOAWAY after the idle timeout
}  // namespace

bool Connection::startH2() {
  h2_ = H2Session::create(server_, peer_.remote_address, transport_->identity());
  if (!h2_) {
    die();
    return false;
  }
  h2_->attach([this] { kick(); }, H2Peer{peer_.local_address, peer_.remote_port, peer_.local_port});
  state_ = State::kH2;
  deadline_ms_ = server_->nowMs() + server_->config().keep_alive_timeout_ms;
  return true;
}

bool Connection::stepH2() {
  if (stop_when_idle_) h2_->shutdown();  // GOAWAY; streams in flight complete
  h2_->pumpApps();  // application events (JavaScript) run here, never inside nghttp2
  if (dead_) return false;
  if (flushOutput() != Flush::kDone) return false;
  if (h2_->produce(out_, kH2OutBytes)) {
    if (h2_->openStreams() == 0 && !stop_when_idle_) {
      deadline_ms_ = server_->nowMs() + server_->config().keep_alive_timeout_ms;
    }
    return true;
  }
  if (h2_->finished()) {
    beginLinger();
    return true;
  }
  if (inLen() == 0 && !readInput()) return false;
  h2_->receive(inPtr(), inLen());  // on a connection error the GOAWAY goes out, then finished()
  in_begin_ = in_end_ = 0;
  if (h2_->openStreams() == 0 && !stop_when_idle_) {
    deadline_ms_ = server_->nowMs() + server_->config().keep_alive_timeout_ms;
  }
  return true;
}

void Connection::sweepH2(uint64_t now) {
  const ServerConfig& cfg = server_->config();
  if (h2_->openStreams() == 0) {
    if (now < deadline_ms_) return;
    if (stop_when_idle_) {
      abort();  // our GOAWAY did not get out in time
      return;
    }
    stop_when_idle_ = true;  // idle: GOAWAY, then close
    deadline_ms_ = now + kGoawayGraceMs;
    kick();
    return;
  }
  // A client that holds the window shut (or stops reading) for send_timeout loses the
  // connection; one that never finishes a request gets 408 on that stream.
  if (h2_->responseStalled(now, cfg.send_timeout_ms) ||
      (out_off_ < out_.size() && now - last_write_ms_ >= cfg.send_timeout_ms)) {
    abort();
    return;
  }
  if (h2_->resetSlowStreams(now, std::max(cfg.header_timeout_ms, cfg.body_total_timeout_ms)) > 0) kick();
}

}  // namespace lisod
