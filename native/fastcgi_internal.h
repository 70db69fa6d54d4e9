// The state behind FcgiDispatch (fastcgi_client.h), shared by fastcgi_client.cc (backend
// side) and fastcgi_exchange.cc (response side). Not for other files.
#pragma once
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fastcgi_client.h"
#include "fastcgi_route.h"
#include "nph_framing.h"

namespace lisod {

struct FcgiDispatch::Mount {
  FcgiMountConfig cfg;  // inherited already filtered (filterInheritedEnv)
  std::weak_ptr<Mount> self;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::optional<RootRouter> router;
  std::vector<Backend*> idle;  // pooled connections, oldest first
  std::vector<Backend*> conns;  // every connection not yet closed, idle ones included
  size_t running = 0;          // exchanges holding a slot (max_conns), the runner's included
  std::deque<Exchange*> queue;  // waiting for a slot (max_queue)
  // The TypeScript runner's requests for this mount waiting for a slot (acquireSlot): they
  // count against max_queue with the native ones and are served in arrival order with them.
  struct Ticket {
    uint64_t seq;
    uint32_t id;
    uint64_t since_ms;  // queued at (uv_now)
  };
  std::deque<Ticket> runner_queue;
  size_t waiting() const { return queue.size() + runner_queue.size(); }
  uint64_t oldestWait() const;  // uv_now of the longest-waiting request's queueing (waiting() > 0)
  bool pumping = false;
  bool retired = false;
  bool pipelining = true;  // off once the backend refused a pipelined request (FCGI_CANT_MPX_CONN)
  bool announced = false;  // the first request's log line went out
  std::string tag;  // log prefix: "fastcgi", or "cgi" for the [cgi] mount
  std::string cwd, name;  // [cgi]: the script's directory and file name
  // FCGI_STDERR budget: a token bucket of bytes (as src/fastcgi/backend.ts StderrBudget).
  double stderr_tokens = 256 * 1024;
  uint64_t stderr_at_ms = 0;
};

// One backend connection; one exchange uses it at a time, and one more may wait behind it
// (pipelined: its records already sent, read by the backend when it is done with the first).
// Freed by uv_close's callback after dropBackend.
struct FcgiDispatch::Backend {
  FcgiDispatch* dispatch = nullptr;
  std::shared_ptr<Mount> mount;
  int fd = -1;
  uv_poll_t poll;
  InnerWatch watch;  // poll in the server's InnerLoop, when it has one
  int polled = -1;
  bool connected = false, reused = false, closed = false, eof = false;
  uint16_t next_id = 0;
  uint64_t idle_since = 0;
  std::string in;  // unprocessed bytes from in_off
  size_t in_off = 0;
  std::string out;  // records not yet written, from out_off
  size_t out_off = 0;
  Exchange* user = nullptr;
  Exchange* next = nullptr;  // the pipelined exchange; null with next_rid set: its client left
  uint16_t next_rid = 0;     // 0: nothing pipelined
};

// One client request served natively (possibly over several backend requests: a retry,
// local redirects).
struct FcgiDispatch::Exchange {
  enum Phase { kBody, kQueued, kPipelined, kRunning };
  uint32_t id = 0;  // the AppSink id
  std::shared_ptr<Mount> mount;
  uint64_t seq = 0;
  AppRequest req;  // without headers and identity (see below)
  std::vector<std::string> headers;  // the request's, for a local redirect's new request
  std::string params, identity_params;  // PARAMS pairs (identity ones included in params)
  std::string body;
  bool idempotent = false;
  Phase phase = kBody;
  bool has_slot = false;
  Backend* backend = nullptr;
  Backend* behind = nullptr;  // kPipelined: the connection it waits on
  uint16_t rid = 0;
  uint64_t started_ms = 0;
  uint64_t queued_ms = 0;  // kQueued since (uv_now)
  uint64_t deadline_ms = 0;
  bool answered = false, retried = false, emitted = false;
  bool head_done = false, began = false, ended = false, paused = false, gone = false, done = false;
  BodyEnd body_end = BodyEnd::untilEof();  // where the response body ends (Content-Length, NPH framing)
  std::string head;   // STDOUT until the head is complete
  size_t scanned = 0;
  int redirects = 0;
  std::string stderr_line;
  uint64_t stderr_dropped = 0;  // bytes over the mount's stderr budget, not yet reported
  // The body stopped before its own framing was complete: the client must not take it as whole.
  bool cutShort() const { return body_end.delimited() && !body_end.complete(); }
  Proc* proc = nullptr;     // [cgi]: the running script process
  uint64_t spawn_id = 0;    // [cgi]: its process is being started (FcgiDispatch::spawning_)
  std::string proc_label;  // [cgi]: "name[pid]" of the last process started
};

// [cgi]: one of a process's fds in FcgiDispatch::cgi_ep_ (epoll_event.data.ptr).
struct FcgiDispatch::ProcFd {
  Proc* proc = nullptr;
  int fd = -1;
  uint32_t events = 0;  // registered (0: not in the set)
};

// [cgi]: one script process. Outlives its exchange when the response is complete first
// (the leader may still be writing to a database); freed once its leader has been reaped
// and its pipes are closed.
struct FcgiDispatch::Proc {
  std::shared_ptr<Mount> mount;
  Exchange* user = nullptr;  // null once the exchange wants nothing more
  pid_t pid = -1;
  std::string label;
  ProcFd in, out, err, exit;
  std::string body;  // what stdin still gets, from body_off
  size_t body_off = 0;
  bool exited = false, settled = false, holds_slot = false;
  bool timed_out = false, gone = false;  // gone: the client left, no silence timeout
  bool paused = false;  // stdout not read: the client is slow
  int code = -1, signal = 0;  // the leader's exit
  int signalled = 0;  // strongest signal sent to the group
  uint64_t deadline_ms = 0, kill_at_ms = 0, straggler_at_ms = 0, eof_wait_at_ms = 0;  // 0: not set
  std::string stderr_line;
  uint64_t stderr_dropped = 0;
  // cgi_cpu.cc's last look: when (uv_hrtime), the CPU time then, and the verdict (a
  // process younger than a look counts as runnable: it is starting).
  uint64_t looked_ns = 0;
  int64_t looked_cpu_ns = 0;
  bool looked_busy = true;
  int stat_fd = -1;  // /proc/PID/stat, opened by cgi_cpu.cc when needed; closed once reaped
  ~Proc() {
    if (stat_fd >= 0) ::close(stat_fd);
  }
};

}  // namespace lisod
