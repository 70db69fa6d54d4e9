// One client connection: a single state machine (handshake → read head → read body
// → respond → keep-alive | close) over a Transport, driven by a uv_poll on its fd.
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "app_sink.h"
#include "chunked.h"
#include "file_cache.h"
#include "response_plan.h"
#include "server.h"
#include "transport.h"

namespace lisod {

class H2Session;

struct PeerInfo {
  std::string remote_address, local_address;
  int remote_port = 0, local_port = 0;
};

class Connection final : public AppSink {
 public:
  // Takes ownership of fd. reject: answer 503 to the first request and close.
  Connection(Server* server, int fd, std::unique_ptr<Transport> transport, PeerInfo peer, bool reject);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool start();                  // begins polling; false if libuv refused the fd
  void sweep(uint64_t now_ms);   // timeouts, called about once a second
  void abort();                  // server shutdown: close as soon as possible
  void stopWhenIdle();           // graceful stop: close once the current response is done
  void drivePending();           // Server::runTurnEnd: the drive kick() asked for

  // AppSink (connection_app.cc): the HTTP/1.1 application response, see Server::app.
  void appBegin(int status, const std::string& reason, const std::vector<std::string>& headers) override;
  void appBeginRaw(bool keep_alive) override;  // NPH: bytes as written
  bool appWrite(const char* data, size_t len) override;
  void appEnd() override;
  void appAbort() override;  // closes without completing the framing
  void appPauseBody(bool paused) override;
  int accessStatus(std::string_view target) override;

  Connection* prev = nullptr;
  Connection* next = nullptr;
  // Server's list of idle keep-alive connections, oldest first (see Server::reclaimIdle).
  Connection* idle_prev = nullptr;
  Connection* idle_next = nullptr;
  bool idle = false;

 private:
  enum class State : uint8_t { kHandshake, kReadHead, kReadBody, kAwaitApp, kWrite, kLinger, kH2 };
  enum class Flush { kDone, kBlocked, kDead };
  enum class Framing : uint8_t { kNone, kLength, kChunked, kRaw, kUntilClose };

  // Per-request facts kept after the head bytes are gone.
  struct Request {
    bool head_only = false;
    bool is_app = false;
    bool body_chunked = false;
    std::optional<ChunkedDecoder> chunked;  // set when body_chunked
    uint64_t body_left = 0;     // Content-Length bytes still to read
    bool body_done = true;
    std::string target;
    StaticFields fields;  // for a static answer
    bool post = false;
    // access log
    std::string method, referer, user_agent;
    std::string_view version;  // a literal: "HTTP/1.0" or "HTTP/1.1"
    std::string user;  // %u: the authenticated user (e.g. a verified client CN); empty = "-"
    int status = 0;
    uint64_t body_bytes_sent = 0;
    uint64_t paused_at_ms = 0;  // when the application paused the body (not the client's time)
    bool active = false;
    // A large file being sent (plain: sendfile; TLS: pread into out_); the descriptor is
    // owned by the cache entry.
    struct {
      std::shared_ptr<const FileEntry> file;
      off_t off = 0;
      uint64_t left = 0;
      bool corked = false;
    } send;
  };

  static void onPoll(uv_poll_t* handle, int status, int events);
  void drive();
  void step();
  bool readInput();
  void handleHead(size_t consumed, const struct RequestHead& head);
  void handleParseError(int error);
  void consumeBody();
  void startApp(const struct RequestHead& head, int64_t content_length, int mount);
  void serveStatic();
  void respondError(int status, bool keep_alive, std::string_view detail = {});
  // HTTP/2 (connection_h2.cc): the session replaces the HTTP/1.1 states after ALPN "h2".
  bool startH2();
  bool stepH2();  // true: step again
  void sweepH2(uint64_t now_ms);
  // Puts a planned answer (response_plan.h) on the wire as HTTP/1.1.
  void sendPlan(ResponsePlan&& plan, bool keep_alive);
  Flush flushOutput();
  void finishResponse();
  void beginLinger();
  void die();
  // The application will not finish this request: forget its id and tell it (close event).
  void detachApp();
  void kick();
  void updateInterest();
  void logAccess();
  void maybeReleaseBuffers();
  size_t inLen() const { return in_end_ - in_begin_; }
  char* inPtr() { return in_.get() + in_begin_; }
  void growInput(size_t capacity);

  // Ordered by size, flags as bit-fields: every idle keep-alive client holds one of these
  // (see the idle-http bench row), so padding costs memory per connection.
  Server* server_;
  uv_poll_t poll_;
  InnerWatch watch_;  // poll_ in the server's InnerLoop, when it has one
  std::unique_ptr<Transport> transport_;
  PeerInfo peer_;

  std::unique_ptr<char[]> in_;  // nullptr while idle (see readInput)
  std::string out_;
  size_t out_off_ = 0;

  std::unique_ptr<H2Session> h2_;
  // The current request's facts, allocated when a request starts and freed when its
  // response is done, so an idle keep-alive connection does not carry ≈0.5 KiB of them.
  // req() creates an empty one on demand for the paths that run between requests.
  std::unique_ptr<Request> req_;
  Request& req() {
    if (!req_) req_ = std::make_unique<Request>();
    return *req_;
  }
  uint64_t fileLeft() const { return req_ ? req_->send.left : 0; }
  uint64_t app_length_left_ = 0;

  uint64_t deadline_ms_ = 0;     // meaning depends on state_
  uint64_t body_deadline_ms_ = 0;  // kReadBody: the whole body by then (body_total_timeout)
  uint64_t last_write_ms_ = 0;
  // The input buffer: its capacity and the unread bytes [in_begin_, in_end_). Bounded by
  // max_head plus one read (growInput), far below 4 GiB.
  uint32_t in_cap_ = 0;
  uint32_t in_begin_ = 0, in_end_ = 0;
  uint32_t head_scanned_ = 0;  // bytes of the current head already scanned (≤ in_end_)
  uint32_t app_id_ = 0;
  int fd_;
  State state_;
  Framing framing_ = Framing::kNone;
  int8_t interest_ = 0;
  int8_t polled_ = -1;
  bool reject_ : 1;
  bool keep_alive_ : 1 = true;
  bool app_begun_ : 1 = false, app_ended_ : 1 = false, app_wants_drain_ : 1 = false, body_paused_ : 1 = false;
  bool head_started_ : 1 = false;
  bool stop_when_idle_ : 1 = false;
  bool in_drive_ : 1 = false, redrive_ : 1 = false, dead_ : 1 = false, closed_handle_ : 1 = false;
  bool drive_queued_ : 1 = false;  // in Server's drive queue (kick)
  // A read emptied the socket (Transport::readDrained): the next read
  // waits for poll to report bytes instead of costing a recv that returns EAGAIN.
  bool read_drained_ : 1 = false;
};

}  // namespace lisod
