// An epoll set of lisod's own, nested in libuv's loop (ServerConfig::nested_loop; the addon
// turns it on unless LISOD_INNER_LOOP=0).
// Connections and FastCGI backend connections register here instead of in libuv. A
// prepare handle blocks in this set, with libuv's own backend fd in it, for as long as
// libuv would block: every wake-up that only concerns native fds is served without a
// libuv turn (node's per-turn CheckImmediate, idle notifier and the metrics poll). It
// returns to libuv as soon as libuv's fd is readable, a timer is due or libuv has work
// that must not wait (idle handles, pending or closing handles): JavaScript keeps its
// timers, immediates, signals and sockets.
#pragma once
#include <uv.h>

#include <functional>
#include <memory>

namespace lisod {

// One handle's registration, 16 bytes (every idle connection holds one). The uv_poll_t stays
// initialised (uv_poll_init) so that uv_close frees it as before, and is never started in
// libuv: its fd (uv_fileno) and its public poll_cb field serve this set. The callback gets
// libuv's arguments (UV_EBADF on EPOLLERR, after which the watch is stopped, as libuv stops
// a poll handle).
struct InnerWatch {
  uv_poll_t* handle = nullptr;
  int events = 0;  // UV_* mask registered (0: not in the set)
  bool holds_loop = true;  // as a ref'd uv_poll_t: while registered the loop stays alive
};

class InnerLoop {
 public:
  // Null when epoll_create1 fails (libuv then polls as before). turn_end: the server's
  // end-of-turn work, run before each wait. The loop must be run with UV_RUN_DEFAULT: the
  // prepare handle blocks for uv_backend_timeout(), which does not know the run mode.
  static std::shared_ptr<InnerLoop> create(uv_loop_t* loop, std::function<void()> turn_end);
  ~InnerLoop();
  InnerLoop(const InnerLoop&) = delete;
  InnerLoop& operator=(const InnerLoop&) = delete;

  void start(InnerWatch* w, uv_poll_t* h, int events, uv_poll_cb cb);  // as uv_poll_start
  void stop(InnerWatch* w);                                            // as uv_poll_stop
  // The server is going away: no more waiting here (watches still stop cleanly).
  void detach();

  // A poll handle's interest, in this set when there is one (il non-null), else in libuv;
  // events 0 stops it. The one switch every owner of a poll handle and watch goes through.
  static void setEvents(InnerLoop* il, InnerWatch* w, uv_poll_t* h, int events, uv_poll_cb cb);

 private:
  explicit InnerLoop(uv_loop_t* loop) : loop_(loop) {}
  void run();
  void dispatch(InnerWatch* w, uint32_t revents);

  uv_loop_t* loop_;
  int ep_ = -1;
  uv_prepare_t* prepare_ = nullptr;
  uv_idle_t* flush_ = nullptr;  // see create()
  std::function<void()> turn_end_;
  size_t holding_ = 0;  // registered watches with holds_loop: the prepare handle is ref'd while > 0
};

}  // namespace lisod
