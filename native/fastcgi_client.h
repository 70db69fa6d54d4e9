// The native FastCGI data plane (issue 10): lisod's FastCGI responder client inside the
// addon's poll loop, the way lighttpd's mod_fastcgi works — a backend connection pool per
// [[fastcgi]] mount (FCGI_KEEP_CONN reuse, a waiting GET/HEAD pipelined behind a busy
// connection's request (fastcgi_pipeline.cc), max_conns + max_queue → 503, non-blocking
// connect with connect_timeout → 504), the CGI environment encoded straight into PARAMS
// (fastcgi_env.h), STDOUT through the CGI head parser (cgi_output.h) into the request's
// AppSink (HTTP/1.1 connection or HTTP/2 stream), STDERR lines to the error log
// (rate-limited), END_REQUEST's protocolStatus mapped, silence → 504, backpressure both
// ways, a client that leaves closes its backend connection. No JavaScript runs for a
// request it takes.
//
// FcgiDispatch sits between the Server and the addon's ServerEvents: requests for a mount
// it was given (setMounts) are served here when they are the common case; everything else
// goes on to JavaScript's runner (src/app_runner.ts), which stays the complete
// implementation. Left to JavaScript (see takes()): a chunked request body (it must be
// spooled to learn CONTENT_LENGTH), a body over kMemoryBody bytes (spooled to disk there),
// any body on a mount with request_buffering = false (streamed there), and a target whose
// path does not percent-decode to UTF-8 (JavaScript answers 400 in its words).
#pragma once
#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "fastcgi_route.h"
#include "server.h"

namespace lisod {

class Spawner;
struct SpawnJob;

// One [[fastcgi]] mount as src/app_mounts.ts hands it over (per event loop).
struct FcgiMountConfig {
  int mount = -1;            // index into ServerConfig::app_prefixes
  std::string prefix;        // "/php"
  std::string address;       // "unix:/path" or "HOST:PORT" ("[v6]:PORT")
  std::optional<std::string> root, index;
  std::string script_filename;  // SCRIPT_FILENAME without root (command[0], or "")
  std::vector<std::pair<std::string, std::string>> inherited;  // fixed variables for every request
  std::string server_name;
  uint64_t timeout_ms = 30000, connect_timeout_ms = 5000;
  size_t max_conns = 16, max_queue = 64;
  bool request_buffering = true;
  bool pipeline = true;  // see FcgiDispatch::pipeline
  // The Liso [cgi] mount instead of a backend (cgi_run.cc): a process of script_filename per
  // request, max_conns processes at once; no address, no pipelining.
  bool cgi = false;
  bool end_after_response = false;  // [cgi] end_after_response: SIGTERM the group once answered
  // [cgi] max_runnable (cgi_cpu.cc): a waiting request starts only while fewer of the
  // mount's scripts than this are runnable (on or waiting for a CPU); 0: no such limit.
  size_t max_runnable = 0;
};

struct FcgiStats {
  uint64_t requests = 0;      // taken by the native path (CGI included)
  uint64_t spawned = 0;       // CGI processes started
  uint64_t connects = 0;      // backend connections opened
  uint64_t reused = 0;        // requests sent on a pooled connection
  uint64_t pipelined = 0;     // requests sent behind another on a busy connection
  uint64_t cpu_waits = 0;     // [cgi] requests that waited only for a CPU (max_runnable)
};

class FcgiDispatch final : public ServerEvents {
 public:
  // next: where requests this does not take (and logs) go; both outlive nothing here.
  FcgiDispatch(uv_loop_t* loop, ServerEvents* next);
  ~FcgiDispatch() override;
  FcgiDispatch(const FcgiDispatch&) = delete;
  FcgiDispatch& operator=(const FcgiDispatch&) = delete;

  void attach(Server* server) {
    server_ = server;
    inner_ = server->innerShared();
  }
  // Replaces the mount table (start, SIGHUP). Requests in flight finish on their old
  // mount; its idle connections close. False with *error naming the mount when an address
  // does not parse or resolve.
  bool setMounts(std::vector<FcgiMountConfig> mounts, std::string* error);
  // Shutdown: every exchange and backend connection is closed (clients get what was sent).
  void closeAll();
  const FcgiStats& stats() const { return stats_; }
  // One slot pool per mount: the TypeScript runner (src/app_slots.ts) takes the requests
  // this leaves (takes()) under the same max_conns and max_queue, so a mount never runs
  // more than max_conns exchanges whichever path serves them. Returns a ticket > 0 when a
  // slot is free now, -ticket when the request waits in the mount's queue (onAppSlot(ticket)
  // comes when it has one), 0 when the queue is full (503), nullopt for a mount not served here.
  std::optional<int64_t> acquireSlot(int mount);
  // A granted ticket's slot is free again, or a waiting ticket is withdrawn; unknown: ignored.
  void releaseSlot(uint32_t ticket);

  void onAppRequest(const AppRequest& request) override;
  void onAppBody(uint32_t id, const char* data, size_t len, bool end) override;
  void onAppClose(uint32_t id) override;
  void onAppDrain(uint32_t id) override;
  void onLog(LogLevel level, const std::string& message) override { next_->onLog(level, message); }

  struct Mount;
  struct Backend;
  struct Exchange;
  struct Proc;
  struct ProcFd;

 private:
  static constexpr uint64_t kMemoryBody = 64 * 1024;  // src/app_spool.ts kMemoryBodyBytes
  bool takes(const Mount& m, const AppRequest& r) const;
  // PARAMS for r on m: 0, 404 (root: no script; *miss = the path) or -1 (not mappable).
  int routeParams(Mount& m, const AppRequest& r, std::string* params, std::string* miss);
  Exchange* exchange(uint32_t id) const;  // this dispatch's exchange for an app id, or null
  void enqueue(Exchange* ex);
  void start(Exchange* ex, bool fresh);
  void sendRequest(Backend* b, Exchange* ex);  // its records into b's output
  // A queued GET/HEAD sent behind the request on a busy keep-conn connection, so that the
  // backend process finds it waiting when it is done instead of sleeping until lisod has
  // seen the END_REQUEST. False when no connection can take it (ex unchanged).
  bool pipeline(Exchange* ex);
  void promote(Backend* b);       // the pipelined exchange becomes b's user
  void requeue(Exchange* ex);     // a pipelined exchange whose connection closed: queue front
  void requeueBehind(Backend* b);  // b's pipelined exchange (if any) requeued; nothing waits on b
  // Pipelined exchanges whose connection's request has run over kPipelineBehindMs (a slow
  // request, or a slow client holding its output back) go back to the queue's front; their
  // connections close when their turn comes (the backend may run such a request anyway).
  void unstick(uint64_t now);
  void pump(Mount* m);
  // fastcgi_slots.cc: a waiting request may start now (a slot, and for [cgi] a CPU), and
  // one more may wait (max_queue, plus the slots held back for a CPU).
  bool slotFree(Mount* m);
  bool queueFree(const Mount& m) const;
  // cgi_cpu.cc: [cgi] max_runnable. cpuFree: fewer than max_runnable of m's scripts are
  // runnable, or the oldest waiter has waited 500 ms. holdForCpu: when requests wait
  // with a slot free, pump again 10 ms after the last look at the scripts (one that blocks
  // on I/O frees its CPU without any event here); arrived: a request that has just been
  // queued, which looked at nothing (and counts in stats).
  bool cpuFree(Mount* m);
  void holdForCpu(Mount* m, bool arrived);
  void onCpuTimer();
  Backend* acquire(Mount* m, bool fresh, std::string* why);
  void release(Backend* b);
  void dropBackend(Backend* b);
  void onBackendEvent(Backend* b, int status, int events);
  void flushBackend(Backend* b);
  // all: the socket failed or closed; read what it still holds regardless of backpressure.
  void readBackend(Backend* b, bool all = false, std::string error = {});
  void afterRead(Backend* b, const std::string& error = {});
  void processRecords(Backend* b);
  void broken(Backend* b, const std::string& why);
  // fastcgi_exchange.cc: the response side.
  void onStdout(Exchange* ex, std::string_view data);
  void forward(Exchange* ex, std::string_view data);
  void onEnd(Exchange* ex, std::string_view content);
  void onStderr(Exchange* ex, std::string_view data, bool flush);
  // Whole lines of an application's stderr to the error log as "TAG who: line", within the
  // mount's byte budget (what does not fit is counted in dropped and reported under who at
  // the stream's next line or its end); flush: the stream ended, its last partial line goes too.
  void stderrLines(Mount& m, std::string& line, uint64_t& dropped, const std::string& who, std::string_view data,
                   bool flush);
  void localRedirect(Exchange* ex, std::string_view location);
  // Logs "fastcgi METHOD TARGET: STATUS detail" (nothing when detail is empty) and answers
  // an error page, or ends the response already begun (cut: without its framing).
  void fail(Exchange* ex, int status, const std::string& detail, LogLevel level = LogLevel::kError, bool cut = false);
  void finish(Exchange* ex, bool cut);
  void endExchange(Exchange* ex);
  bool canResend(const Exchange* ex) const;
  static bool isIdempotent(std::string_view method);
  void touch(Exchange* ex);
  void updatePoll(Backend* b);
  void sweep();
  std::string label(const Exchange* ex) const;
  // cgi_run.cc: [cgi] mounts. The process holds the slot from its start until its leader
  // exits (as src/app_runner.ts), also after its exchange has ended.
  // The process is started by spawner_ (off the loop); adoptChild takes it on once started.
  void startCgi(Exchange* ex);
  bool cgiEpoll();  // the epoll set of the processes (and of spawner_'s eventfd), made once
  void onSpawned();
  void adoptChild(Exchange* ex, const std::shared_ptr<Mount>& mount, bool holds_slot, SpawnJob& job);
  // The exchange wants nothing more from its process (answered, failed, redirected, gone):
  // output is drained and dropped from here on; sig (0: none, or SIGTERM with
  // end_after_response) goes to its group.
  void releaseProc(Exchange* ex, int sig);
  void onCgiEvents();
  void onProcFd(ProcFd* f, uint32_t events);
  void readProcStdout(Proc* p);
  void readProcStderr(Proc* p);
  void writeProcStdin(Proc* p);
  void reapProc(Proc* p);
  void settleProc(Proc* p);  // the leader's exit decides the exchange; slot freed
  void signalProc(Proc* p, int sig);
  void closeProcFd(ProcFd* f);
  void watchProcFd(ProcFd* f, uint32_t events);
  void touchProc(Proc* p);
  void sweepProcs();
  void armProcTimer();
  void closeProcs();
  void log(LogLevel level, const std::string& message) { next_->onLog(level, message); }
  AppSink* sink(const Exchange* ex) const;  // nullptr once the client is gone

  uv_loop_t* loop_;
  ServerEvents* next_;
  Server* server_ = nullptr;
  std::shared_ptr<InnerLoop> inner_;  // the server's nested epoll set (null: libuv polls)
  std::vector<std::shared_ptr<Mount>> mounts_;  // by AppRequest::mount (nullptr: not native)
  std::unordered_map<uint32_t, std::unique_ptr<Exchange>> exchanges_;
  // Ended exchanges, freed at the start of the next loop callback: whoever is still on
  // the stack may hold the pointer.
  std::vector<std::unique_ptr<Exchange>> graveyard_;
  std::unordered_map<Proc*, std::unique_ptr<Proc>> procs_;  // running or draining CGI processes
  std::vector<std::unique_ptr<Proc>> proc_graveyard_;        // freed as graveyard_
  int cgi_ep_ = -1;                  // an epoll set of the processes' pipes and pidfds …
  uv_poll_t* cgi_poll_ = nullptr;    // … watched as one fd (2 epoll_ctl per pipe, no uv_poll each)
  InnerWatch cgi_watch_;
  std::unique_ptr<Spawner> spawner_;  // started with the first script; its eventfd is in cgi_ep_
  struct SpawnWait {
    std::shared_ptr<Mount> mount;
    Exchange* ex = nullptr;   // null once the exchange ended while its process was starting
    bool holds_slot = false;  // the ended exchange's slot, kept until that process exits
  };
  std::unordered_map<uint64_t, SpawnWait> spawning_;  // by SpawnJob::tag (Exchange::spawn_id)
  uint64_t spawn_seq_ = 0;
  uv_timer_t* proc_timer_ = nullptr;  // the next process deadline (silence, SIGKILL, straggler)
  uint64_t proc_timer_at_ = 0;
  uv_timer_t* timer_ = nullptr;
  uv_timer_t* cpu_timer_ = nullptr;  // holdForCpu's recheck
  std::vector<std::weak_ptr<Mount>> cpu_held_;  // mounts (retired ones too) whose waiters wait for a CPU
  FcgiStats stats_;
  uint64_t seq_ = 0;
  struct RunnerSlot {
    std::shared_ptr<Mount> mount;
    bool granted = false;
  };
  std::unordered_map<uint32_t, RunnerSlot> runner_slots_;  // by ticket
  uint32_t next_ticket_ = 0;
  char scratch_[64 * 1024];
};

}  // namespace lisod
