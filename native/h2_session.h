// One HTTP/2 server session (RFC 9113) over a TLS connection that negotiated ALPN "h2",
// on the nghttp2 that Node's binary exports (no second copy is linked). Bytes in, frames
// out: the Connection keeps the transport, the timeouts and the TLS identity, and feeds
// this the bytes it reads and writes what produce() returns. Requests are answered by the
// code HTTP/1.1 uses (response_plan.h, access rules, the access log), never a copy.
//
// Served over h2: static files (HEAD, 304, 206, 416), redirects, every error status, and
// the application mounts (CGI, FastCGI) through H2App (h2_app.h), bodies streamed both
// ways under flow control. No server push, no h2c; priorities and request trailers are
// ignored.
//
// Limits (abuse is refused on this connection only): SETTINGS_MAX_CONCURRENT_STREAMS;
// SETTINGS_MAX_HEADER_LIST_SIZE = max_head (a larger decoded header list resets the
// stream, which also bounds HPACK bombs); request bodies above max_body get 413; more
// than 8 CONTINUATION frames per header block and stream resets beyond a token bucket
// (rapid reset, CVE-2023-44487) end the session with GOAWAY (nghttp2 ≥ 1.61 enforces both).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "access_log.h"
#include "h2_mem.h"
#include "tls_identity.h"

typedef struct nghttp2_session nghttp2_session;

namespace lisod {

class Server;
class H2App;
struct H2Stream;

// Where the connection is, for the application's environment (RFC 3875 §4.1).
struct H2Peer {
  std::string local_address;
  int remote_port = 0, local_port = 0;
};

class H2Session {
 public:
  // remote: the peer address for the access log; identity: the TLS client identity (may
  // be null), both outliving the session. Returns nullptr when nghttp2 cannot allocate.
  static std::unique_ptr<H2Session> create(Server* server, std::string_view remote, const ClientIdentity* identity);
  ~H2Session();
  H2Session(const H2Session&) = delete;
  H2Session& operator=(const H2Session&) = delete;

  // Feeds bytes read from the client. false: the session is over (a connection error; a
  // GOAWAY is queued for produce()).
  bool receive(const char* data, size_t len);
  // Appends frames to out until it holds about max bytes or nothing is ready. Returns
  // whether anything was appended. false + finished(): close the connection.
  bool produce(std::string& out, size_t max);
  // Neither side has anything more to say (GOAWAY exchanged or sent and streams done).
  bool finished() const;
  // Graceful stop: GOAWAY with the last stream id seen; streams in flight complete.
  void shutdown();
  // Streams open now; responses whose data waits for the client's flow-control window.
  size_t openStreams() const { return streams_.size(); }
  // A response body has made no progress (the client's flow-control window stays shut,
  // or it does not read) for limit_ms.
  bool responseStalled(uint64_t now_ms, uint64_t limit_ms) const;
  // Resets streams whose request (headers or body) has not finished within limit_ms of
  // opening: a slow-stream client cannot hold its slots. Returns how many were reset.
  size_t resetSlowStreams(uint64_t now_ms, uint64_t limit_ms);
  // The connection's wake-up (its kick): application calls made outside the connection's
  // step (a response write, a body resume) need it to step again. peer: for AppRequest.
  void attach(std::function<void()> wake, H2Peer peer);
  // From the connection's step, outside nghttp2: events due to the application (H2App::pump).
  void pumpApps();
  // The connection is gone: each application still answering gets its close event.
  void detachApps();
  // The connection is going away (detaches the applications too): access lines for the answered streams still open (the
  // bytes field counts what reached nghttp2), as HTTP/1.1 logs a response cut short.
  void logUnfinished();

 private:
  H2Session(Server* server, std::string_view remote, const ClientIdentity* identity);
  friend struct H2Callbacks;
  friend class H2App;
  void dispatch(H2Stream& s);
  void startApp(H2Stream& s, int mount);
  // Answers stream id with an error page, if the stream is still open (H2App's fallback
  // before any response head went out).
  void respondError(int32_t id, int status, std::string_view detail);
  void respond(H2Stream& s, struct ResponsePlan&& plan);
  void logStream(const H2Stream& s);
  // nghttp2 closed the stream: out of streams_, into spare_ (or freed).
  void closeStream(H2Stream& s);

  Server* server_;
  std::string remote_;
  const ClientIdentity* identity_;
  std::function<void()> wake_ = [] {};
  H2Peer peer_;
  size_t app_streams_ = 0;  // streams with an H2App
  H2Pool pool_;  // nghttp2's allocator: outlives session_ (deleted in ~H2Session)
  nghttp2_session* session_ = nullptr;
  bool failed_ = false;       // a connection error: the GOAWAY goes out, then close
  bool send_failed_ = false;  // nghttp2 cannot produce more (out of memory): close now
  bool stopping_ = false;  // our GOAWAY is queued
  std::vector<std::unique_ptr<H2Stream>> streams_;  // open streams (H2Stream::slot is the index)
  static constexpr size_t kSpareStreams = 32;       // closed streams kept for reuse
  std::vector<std::unique_ptr<H2Stream>> spare_;
  H2Stream* hot_ = nullptr;  // the stream H2Callbacks::stream found last (open: closeStream clears it)
  AccessLineMemo log_memo_;  // peer, user, referer and user agent repeat on every stream
  std::string* produce_out_ = nullptr;  // during produce(): where sendData appends DATA frames,
  size_t produce_max_ = 0;              // pausing nghttp2 once out holds this much
};

}  // namespace lisod
