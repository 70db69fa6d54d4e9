// See inner_loop.h.
#include "inner_loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace lisod {
namespace {

uint32_t toEpoll(int events) {
  uint32_t e = 0;
  if (events & UV_READABLE) e |= EPOLLIN;
  if (events & UV_WRITABLE) e |= EPOLLOUT;
  if (events & UV_DISCONNECT) e |= EPOLLRDHUP;
  if (events & UV_PRIORITIZED) e |= EPOLLPRI;
  return e;
}

// Watchers that JavaScript started or changed since libuv's last poll (a pipe write that
// met EAGAIN, a new socket): uv__io_start only queues them; libuv's own poll makes the
// epoll_ctl calls. Until it does, their readiness cannot wake a wait here.
// The queue's layout changed in libuv 1.46 (Node 20's); the fuzz bed builds against
// Debian's libuv1-dev (1.44), where it is QUEUE, void* [2] with [0] the next element.
bool hasUnappliedWatchers(uv_loop_t* loop) {
#if UV_VERSION_HEX >= 0x012E00
  return loop->watcher_queue.next != &loop->watcher_queue;
#else
  return loop->watcher_queue[0] != static_cast<void*>(&loop->watcher_queue);
#endif
}

}  // namespace

std::shared_ptr<InnerLoop> InnerLoop::create(uv_loop_t* loop, std::function<void()> turn_end) {
  std::shared_ptr<InnerLoop> il(new InnerLoop(loop));
  il->ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (il->ep_ < 0) return nullptr;
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.ptr = nullptr;  // libuv's own set: its readiness ends a wait here
  if (epoll_ctl(il->ep_, EPOLL_CTL_ADD, uv_backend_fd(loop), &e) != 0) return nullptr;
  il->turn_end_ = std::move(turn_end);
  il->prepare_ = new uv_prepare_t;
  uv_prepare_init(loop, il->prepare_);
  il->prepare_->data = il.get();
  uv_prepare_start(il->prepare_, [](uv_prepare_t* p) { static_cast<InnerLoop*>(p->data)->run(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(il->prepare_));
  // Runs from each return to libuv to the next wait here, only to make libuv's poll
  // non-blocking (uv_backend_timeout() is 0 while an idle handle is active): all waiting
  // happens in run(). Unref'd: it never keeps the loop alive.
  il->flush_ = new uv_idle_t;
  uv_idle_init(loop, il->flush_);
  uv_unref(reinterpret_cast<uv_handle_t*>(il->flush_));
  return il;
}

InnerLoop::~InnerLoop() {
  detach();
  if (ep_ >= 0) ::close(ep_);
}

void InnerLoop::detach() {
  turn_end_ = nullptr;
  if (prepare_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(prepare_), [](uv_handle_t* h) { delete reinterpret_cast<uv_prepare_t*>(h); });
    prepare_ = nullptr;
  }
  if (flush_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(flush_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    flush_ = nullptr;
  }
}

void InnerLoop::start(InnerWatch* w, uv_poll_t* h, int events, uv_poll_cb cb) {
  w->handle = h;
  h->poll_cb = cb;  // as uv_poll_start would; libuv never polls h itself
  if (events == w->events) return;
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(h), &fd) != 0) return;
  epoll_event e{};
  e.events = toEpoll(events);
  e.data.ptr = w;
  const int op = w->events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(ep_, op, fd, &e) != 0 && errno == EEXIST) epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
  if (w->events == 0 && w->holds_loop && holding_++ == 0 && prepare_ != nullptr) {
    uv_ref(reinterpret_cast<uv_handle_t*>(prepare_));
  }
  w->events = events;
}

void InnerLoop::stop(InnerWatch* w) {
  if (w->events == 0) return;
  w->events = 0;
  if (w->holds_loop && --holding_ == 0 && prepare_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(prepare_));
  uv_os_fd_t fd;
  epoll_event e{};
  if (uv_fileno(reinterpret_cast<const uv_handle_t*>(w->handle), &fd) == 0) epoll_ctl(ep_, EPOLL_CTL_DEL, fd, &e);
}

void InnerLoop::setEvents(InnerLoop* il, InnerWatch* w, uv_poll_t* h, int events, uv_poll_cb cb) {
  if (il != nullptr) {
    if (events == 0) il->stop(w);
    else il->start(w, h, events, cb);
  } else if (events == 0) {
    uv_poll_stop(h);
  } else {
    uv_poll_start(h, events, cb);
  }
}

void InnerLoop::dispatch(InnerWatch* w, uint32_t revents) {
  if (w->events == 0) return;  // stopped earlier in this batch (its memory lives until uv_close's callback)
  const uint32_t want = toEpoll(w->events);
  revents &= want | EPOLLERR | EPOLLHUP;
  if (revents == EPOLLERR || revents == EPOLLHUP) revents |= want;  // as libuv's uv__io_poll
  if ((revents & EPOLLERR) && !(revents & EPOLLPRI)) {  // as libuv's uv__poll_io
    stop(w);
    w->handle->poll_cb(w->handle, UV_EBADF, 0);
    return;
  }
  int ev = 0;
  if (revents & EPOLLIN) ev |= UV_READABLE;
  if (revents & EPOLLPRI) ev |= UV_PRIORITIZED;
  if (revents & EPOLLOUT) ev |= UV_WRITABLE;
  if (revents & EPOLLRDHUP) ev |= UV_DISCONNECT;
  if (ev != 0) w->handle->poll_cb(w->handle, 0, ev);
}

void InnerLoop::run() {
  epoll_event ev[64];
  if (flush_ != nullptr) uv_idle_stop(flush_);
  for (;;) {
    if (turn_end_) turn_end_();
    if (hasUnappliedWatchers(loop_)) break;  // libuv applies them in its (non-blocking) poll
    uv_update_time(loop_);
    const int timeout = uv_backend_timeout(loop_);  // what libuv's poll would wait now
    const int n = epoll_wait(ep_, ev, 64, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bool uv_ready = false;
    for (int i = 0; i < n; ++i) {
      auto* w = static_cast<InnerWatch*>(ev[i].data.ptr);
      if (w == nullptr) uv_ready = true;
      else dispatch(w, ev[i].events);
    }
    if (uv_ready || timeout == 0 || turn_end_ == nullptr) break;
  }
  if (turn_end_) turn_end_();
  uv_update_time(loop_);
  // libuv's poll comes next and must not block: lisod's sockets are not in its set. Even
  // when its fd woke us, the event may be stale (a watcher JavaScript has stopped), and with
  // idle-time metrics on (Node turns them on) libuv then waits again for the whole timeout.
  if (flush_ != nullptr && turn_end_) uv_idle_start(flush_, [](uv_idle_t*) {});
}

}  // namespace lisod
