// The event loop side of lisod: listening sockets and connections driven by uv_poll
// on Node's own libuv loop (no extra thread). Knows nothing of N-API: JavaScript is
// reached through the ServerEvents interface the addon implements.
#pragma once
#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "access_log.h"
#include "app_sink.h"
#include "inner_loop.h"
#include "access_rules.h"
#include "buffer_pool.h"
#include "compress_cache.h"
#include "file_cache.h"
#include "log_writer.h"
#include "tls_context.h"

namespace lisod {

class Connection;
class Transport;
struct PeerInfo;

struct ListenerConfig {
  std::string host;
  int port = 0;
  bool tls = false;
};

struct ServerConfig {
  std::vector<ListenerConfig> listeners;
  std::string root;  // realpath of the www root
  TlsOptions tls;
  std::vector<std::string> app_prefixes = {"/cgi"};  // application mounts (see matchAppPrefix)
  size_t max_connections = 10000;
  size_t max_line = 8192;
  size_t max_head = 65536;
  size_t max_target = 8000;
  uint64_t max_body = 100u << 20;
  uint64_t header_timeout_ms = 10000;
  uint64_t body_timeout_ms = 30000;        // between body bytes
  uint64_t body_total_timeout_ms = 60000;  // for a whole request body (paused time excluded)
  uint64_t keep_alive_timeout_ms = 15000;
  uint64_t send_timeout_ms = 60000;
  bool access_log = false;  // keep the fields the access log needs
  uint32_t access_log_writer = 0;  // LogWriter::find id the lines go to; 0 = none yet
  uint32_t h2_max_streams = 128;  // SETTINGS_MAX_CONCURRENT_STREAMS (tls.http2 turns h2 on)
  bool reuse_port = false;  // SO_REUSEPORT: several event loops (workers) accept on one port
  // Connections wait in the server's own epoll set nested in the loop (inner_loop.h); only
  // for a loop run with UV_RUN_DEFAULT, as Node runs its own (the set blocks as that would).
  bool nested_loop = false;
  std::shared_ptr<const AccessRules> access = std::make_shared<AccessRules>();  // [[access]]
  CompressSettings compress;  // [compress]: content codings of static files
};

// A request handed to the application (the /cgi/ prefix). Strings are copies.
struct AppRequest {
  uint32_t id;
  std::string method, target, version;
  std::vector<std::string> headers;  // flat name, value, …
  std::string remote_address, local_address;
  int remote_port, local_port;
  bool tls;
  bool has_body;
  int64_t content_length;  // -1 when chunked
  const ClientIdentity* identity = nullptr;  // TLS only; valid during onAppRequest
  int mount = 0;           // index into ServerConfig::app_prefixes
};

enum class LogLevel { kError, kWarn, kInfo };

class ServerEvents {
 public:
  virtual ~ServerEvents() = default;
  virtual void onAppRequest(const AppRequest& request) = 0;
  virtual void onAppBody(uint32_t id, const char* data, size_t len, bool end) = 0;
  virtual void onAppClose(uint32_t id) = 0;
  virtual void onAppDrain(uint32_t id) = 0;
  virtual void onLog(LogLevel level, const std::string& message) = 0;
  // A slot the TypeScript runner waited for is its now (FcgiDispatch::acquireSlot).
  virtual void onAppSlot(uint32_t /*ticket*/) {}
};

struct BoundListener {
  std::string host;
  int port;
  bool tls;
};

class Server {
 public:
  // Binds every listener and loads TLS material; on failure returns nullptr and sets
  // *error to one line naming the address or file.
  static std::unique_ptr<Server> create(uv_loop_t* loop, ServerConfig config, ServerEvents* events,
                                        std::string* error);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  std::vector<BoundListener> addresses() const;
  bool reloadTls(const TlsOptions& options, std::string* error);
  // New rules apply to every request from now on (a SIGHUP reload).
  void setAccessRules(std::shared_ptr<const AccessRules> rules) { config_.access = std::move(rules); }
  const AccessRules& accessRules() const { return *config_.access; }
  void stopAccepting();
  void stopWhenIdle();  // graceful stop: each connection closes after its current response
  void closeAll();  // listeners and connections; safe to call more than once
  size_t connectionCount() const { return connections_; }

  // Registers and starts a connection over fd (owned from here on; peer is the client's
  // address). The accept path calls it; the fuzzers bring their own transport. The
  // result (nullptr if libuv refused the fd) lives until connectionCount() drops.
  Connection* adopt(int fd, std::unique_ptr<Transport> transport, PeerInfo peer, bool reject);

  // Where application response AppRequest::id goes (an HTTP/1.1 connection or an HTTP/2
  // stream), or nullptr when it is gone (harmless for the caller: the client left).
  AppSink* app(uint32_t id) const;

  // Used by Connection.
  const ServerConfig& config() const { return config_; }
  ServerEvents* events() const { return events_; }
  uv_loop_t* loop() const { return loop_; }
  // The nested epoll set native connections use instead of libuv (null: libuv polls them).
  InnerLoop* inner() const { return inner_.get(); }
  const std::shared_ptr<InnerLoop>& innerShared() const { return inner_; }
  SSL_CTX* tlsContext() const { return tls_ ? tls_->get() : nullptr; }
  uint64_t nowMs() const { return uv_now(loop_); }
  FileCache& files() { return files_; }
  CompressCache& compressed() { return compressed_; }
  BufferPool& buffers() { return buffers_; }  // spare connection buffers (buffer_pool.h)
  const char* httpDate();  // cached IMF-fixdate for the current second
  uint32_t registerApp(AppSink* sink);
  void unregisterApp(uint32_t id);
  void connectionClosed(Connection* c);
  // Drives c at the end of this loop turn (after the poll phase; before the next poll at
  // the latest): output an application or a timer produced outside c's own poll callback
  // goes out without a WRITABLE poll round trip (two epoll_ctl and a loop turn each).
  void scheduleDrive(Connection* c);
  void cancelDrive(Connection* c);  // c is going away: forget it
  // Formats e (Combined Log Format) and appends it to the access log, if there is one.
  // memo: the connection's (access_log.h); without one (HTTP/1.1, which keeps none per
  // connection) the loop's own, which the clients of a busy loop share as often as not.
  void logAccess(const AccessEntry& e, AccessLineMemo* memo = nullptr);
  // Switches the access log to the writer with this id (reload); false when it is gone.
  bool setAccessLog(uint32_t writer_id);
  // Idle keep-alive connections (a response done, no byte of the next request yet), in
  // the order they became idle. At max_connections the oldest is closed to admit a new
  // client (nginx reuses keep-alive connections the same way).
  void markIdle(Connection* c);
  void markBusy(Connection* c);
  void logHandshakeFailure(const std::string& peer, const std::string& why);
  void log(LogLevel level, const std::string& message) { events_->onLog(level, message); }

 private:
  struct Listener;
  Server(uv_loop_t* loop, ServerConfig config, ServerEvents* events);
  bool bindAll(std::string* error);
  void onAcceptable(Listener* l);
  void startPolling(Listener* l);
  void sweep();
  void runTurnEnd();  // the drives kick() queued, then the access lines of this turn
  void startTurnEnd();
  void flushAccessLines();
  bool reclaimIdle();  // closes the oldest idle keep-alive connection; false if none
  // Over max_connections and every pending-503 slot taken: a canned 503 straight on the
  // socket (plain listeners; TLS cannot answer before a handshake), then close.
  void refuse(int fd, bool tls);

  uv_loop_t* loop_;
  ServerConfig config_;
  ServerEvents* events_;
  std::unique_ptr<TlsContext> tls_;
  FileCache files_;
  CompressCache compressed_;
  BufferPool buffers_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  Connection* head_ = nullptr;  // intrusive list of live connections
  Connection* idle_head_ = nullptr;  // oldest idle keep-alive connection …
  Connection* idle_tail_ = nullptr;  // … and the newest
  size_t connections_ = 0;
  std::unordered_map<uint32_t, AppSink*> apps_;
  uint32_t next_app_id_ = 1;
  uv_timer_t* sweep_timer_ = nullptr;
  uv_timer_t* accept_pause_timer_ = nullptr;
  // runTurnEnd: the check handle runs after the poll phase; the idle handle, active while
  // drives or access lines wait, keeps the next poll from blocking (work queued by a check
  // or close callback after ours ran is done at the next turn's idle phase).
  uv_check_t* drive_check_ = nullptr;
  uv_idle_t* drive_idle_ = nullptr;
  std::shared_ptr<InnerLoop> inner_;
  std::vector<Connection*> drives_, driving_;  // queued; being driven (nullptr: cancelled)
  std::shared_ptr<LogWriter> access_log_;
  ClfClock clf_clock_;
  AccessLineMemo access_memo_;  // logAccess without a memo of the caller's
  // Lines of this loop turn, handed to the writer in one append (one lock) at the end of
  // the turn (runTurnEnd) or once kAccessBatchBytes are waiting.
  std::string access_lines_;
  int64_t date_second_ = -1;
  char date_[32] = {0};
  int64_t hs_window_start_ = 0;
  int hs_logged_ = 0, hs_suppressed_ = 0;
  bool closed_ = false;

  friend class Connection;
};

}  // namespace lisod
