// FastCGI pipelining (see FcgiDispatch::pipeline in fastcgi_client.h): when every
// connection of a mount is busy, a waiting GET/HEAD is sent behind the request running on
// one of them. A backend that serves one request at a time per connection (php-fpm,
// php-cgi, cgi-bin/wsgi_fcgi.py) then finds it waiting when it writes END_REQUEST, instead
// of sleeping until lisod has read that answer and sent the next request: one wake-up of a
// backend process per request less, which is what lighttpd's connection per request buys
// at the price of a connect and an accept. A pipelined request holds no slot until it is
// promoted to its connection's user; if the connection ends before that, it goes back to
// the queue's front (fastcgi_client.cc dropBackend), which is safe because only safe
// methods without a body are pipelined. So does one whose connection's request runs for
// over kPipelineBehindMs (unstick, from the sweep): a request never waits long behind a
// slow one, at the price of the backend perhaps running it twice.
#include <sys/socket.h>

#include <vector>

#include "fastcgi_client.h"
#include "fastcgi_internal.h"
#include "socket_io.h"

namespace lisod {
namespace {

constexpr uint64_t kPipelineBehindMs = 1000;  // nothing is pipelined behind a request older than this

}  // namespace

bool FcgiDispatch::pipeline(Exchange* ex) {
  Mount* m = ex->mount.get();
  // Only safe requests without a body: if the connection fails before the backend answers,
  // the request is sent again elsewhere, and the backend may have begun it.
  if (!m->cfg.pipeline || !m->pipelining || m->retired || !ex->body.empty() || (ex->req.method != "GET" && ex->req.method != "HEAD")) {
    return false;
  }
  // The connection whose request has run longest is likely done first, unless it has run
  // so long that it looks slow: a request behind it would wait while others free up.
  const uint64_t now = uv_now(loop_);
  Backend* best = nullptr;
  for (Backend* b : m->conns) {
    if (b->closed || !b->connected || b->eof || b->user == nullptr || b->next_rid != 0) continue;
    if (b->user->ended || b->user->paused) continue;  // draining, or held back by a slow client
    if (b->user->started_ms + kPipelineBehindMs < now) continue;
    if (best == nullptr || b->user->started_ms < best->user->started_ms) best = b;
  }
  if (best == nullptr) return false;
  ex->phase = Exchange::kPipelined;
  ex->behind = best;
  best->next = ex;
  sendRequest(best, ex);
  best->next_rid = ex->rid;
  ++stats_.pipelined;
  // Sent at once; a failure here is left for the connection's next event to report, so
  // that nothing is dropped under the caller's feet.
  if (best->out_off == 0) {
    const ssize_t n = sendNoCancel(best->fd, best->out.data(), best->out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) best->out_off = static_cast<size_t>(n);
    if (best->out_off == best->out.size()) {
      best->out.clear();
      best->out_off = 0;
    }
  }
  updatePoll(best);
  return true;
}

void FcgiDispatch::promote(Backend* b) {
  Exchange* ex = b->next;
  b->next = nullptr;
  b->next_rid = 0;
  if (ex == nullptr) {  // its client left: closing the connection is what stops the work
    dropBackend(b);
    return;
  }
  Mount* m = ex->mount.get();
  ex->behind = nullptr;
  ex->backend = b;
  ex->phase = Exchange::kRunning;
  ex->has_slot = true;  // the slot of the exchange that just ended on b
  ++m->running;
  ex->started_ms = uv_now(loop_);
  b->user = ex;
  b->reused = true;
  ++stats_.reused;
  touch(ex);
}

void FcgiDispatch::unstick(uint64_t now) {
  std::vector<Exchange*> stuck;
  for (auto& [id, ex] : exchanges_) {
    const Backend* b = ex->behind;
    if (ex->phase == Exchange::kPipelined && b != nullptr && b->user != nullptr && b->user->started_ms + kPipelineBehindMs < now) {
      stuck.push_back(ex.get());
    }
  }
  for (Exchange* ex : stuck) {
    if (ex->done || ex->phase != Exchange::kPipelined || ex->behind == nullptr) continue;  // moved meanwhile
    ex->behind->next = nullptr;  // next_rid stays: the connection closes when that request comes up
    requeue(ex);
    pump(ex->mount.get());
  }
}

void FcgiDispatch::requeueBehind(Backend* b) {
  if (b->next != nullptr) requeue(b->next);
  b->next = nullptr;
  b->next_rid = 0;
}

void FcgiDispatch::requeue(Exchange* ex) {
  ex->behind = nullptr;
  ex->phase = Exchange::kQueued;
  ex->mount->queue.push_front(ex);
}

}  // namespace lisod
