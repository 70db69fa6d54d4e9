// Test bed for the fuzzers that drive a real Connection (fuzz_connection.cc, fuzz_tls.cc):
// a temp docroot, one libuv loop, listener-less Servers (default and small limits, access
// log on and off), a fake application behind ServerEvents that checks the event
// contract, and a reader for the fuzzer input as a script. Fuzzer-only process state,
// created once on first use.
#pragma once
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "../../native/connection.h"
#include "../../native/server.h"
#include "fuzz_check.h"

namespace lisod::fuzz {

// A fuzzer input read front to back: op bytes and the payload bytes they take.
class Script {
 public:
  Script(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool done() const { return p_ >= end_; }
  uint8_t next() { return p_ < end_ ? *p_++ : 0; }
  // Up to n bytes (fewer when the input ends).
  std::string_view take(size_t n) {
    size_t k = std::min<size_t>(n, static_cast<size_t>(end_ - p_));
    std::string_view v(reinterpret_cast<const char*>(p_), k);
    p_ += k;
    return v;
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// The application behind /cgi/. Answers when the script says so (act), or at once in the
// auto modes, always through Server::app(id) as the addon does. Checks that every request
// handed over ends exactly once — ended by the application while the connection held it,
// or closed by the server — and that body events follow their framing.
class FakeApp final : public ServerEvents {
 public:
  struct Modes {
    bool answer_at_body_end = false;  // 200 "ok" inside the body-end event (re-entrant)
    bool answer_at_request = false;   // 503 inside the request event, before any body
    bool multiplexed = false;         // HTTP/2: several exchanges at once, version HTTP/2.0
  };
  void reset(Server* server, Modes modes);
  // One application step chosen by action (payload bytes come from s).
  void act(uint8_t action, Script& s);
  // Resumes paused bodies and ends every exchange the connection still holds.
  void endAll();
  // End-of-input checks; call once the connection is gone.
  void finish();
  size_t requests() const { return ex_.size(); }

  void onAppRequest(const AppRequest& r) override;
  void onAppBody(uint32_t id, const char* data, size_t len, bool end) override;
  void onAppClose(uint32_t id) override;
  void onAppDrain(uint32_t id) override;
  void onLog(LogLevel, const std::string&) override {}

 private:
  struct Exchange {
    uint32_t id = 0;
    int64_t content_length = 0;  // -1 chunked
    bool has_body = false;
    uint64_t body_bytes = 0;
    bool body_end = false, begun = false, ended = false, closed = false;
  };
  Exchange* find(uint32_t id);
  Exchange* current();  // the newest exchange still open, or nullptr
  void begin(Exchange& e, int status, std::string_view reason, std::vector<std::string> headers);
  void end(Exchange& e, bool abort);

  Server* server_ = nullptr;
  Modes modes_;
  std::vector<Exchange> ex_;
};

struct Bed {
  uv_loop_t loop;
  std::string dir;   // temp dir: www/ and the TLS key and certificate
  std::string root;  // realpath of dir/www
  FakeApp app;
  // [small limits][access log]
  std::unique_ptr<Server> servers[2][2];
};

Bed& bed();
// The server for one input, checked idle, with the application reset to modes.
Server* startInput(bool small, bool access_log, FakeApp::Modes modes);
// Time jumps an input may ask for before a sweep: around each timeout of ServerConfig.
inline constexpr uint64_t kJumpMs[] = {0, 999, 1001, 10001, 15001, 30001, 60001, 1000000000};
// Runs the loop once without blocking, n times: poll callbacks, timers, handle closes.
void tick(int n = 1);

// A connected AF_UNIX stream pair; [0] goes to the Connection, [1] stays with the fuzzer.
// Non-blocking, close-on-exec. sndbuf > 0 shrinks both send buffers.
void socketPair(int fds[2], int sndbuf = 0);

// The end of every input: the application ends what it holds and the loop turns (pump
// runs before each turn: the caller's peer reads what arrived) until the connection the
// fuzzer adopted closes by itself. The caller has already made the peer close (EOF).
// Checks that it does close within a bounded number of turns and the application
// contract; aborts it otherwise so the next input starts clean.
void finishConnection(Server* server, const std::function<void()>& pump);

}  // namespace lisod::fuzz
