// A mount's slots and queue (see FcgiDispatch::acquireSlot in fastcgi_client.h): max_conns
// exchanges at once, max_queue waiting, counted once for the requests served here and the
// ones the TypeScript runner takes, which ask for their slot through acquireSlot. Waiters
// of both kinds are served in the order they arrived (Exchange::seq, Ticket::seq).
#include <cstdint>
#include <string>

#include "fastcgi_client.h"
#include "fastcgi_internal.h"

namespace lisod {

void FcgiDispatch::enqueue(Exchange* ex) {
  Mount* m = ex->mount.get();
  if (m->running < m->cfg.max_conns) {
    start(ex, false);
  } else if (pipeline(ex)) {
  } else if (m->waiting() < m->cfg.max_queue) {
    ex->phase = Exchange::kQueued;
    m->queue.push_back(ex);
  } else {
    fail(ex, 503, std::to_string(m->cfg.max_conns) + " running and " + std::to_string(m->cfg.max_queue) + " queued",
         LogLevel::kWarn);
  }
}

void FcgiDispatch::pump(Mount* m) {
  if (m->pumping) return;
  std::shared_ptr<Mount> keep = m->self.lock();  // a runner's grant may run anything
  m->pumping = true;
  while (m->running < m->cfg.max_conns && m->waiting() > 0) {
    const bool runner = !m->runner_queue.empty() && (m->queue.empty() || m->runner_queue.front().seq < m->queue.front()->seq);
    if (runner) {
      const uint32_t ticket = m->runner_queue.front().id;
      m->runner_queue.pop_front();
      ++m->running;
      if (auto it = runner_slots_.find(ticket); it != runner_slots_.end()) it->second.granted = true;
      next_->onAppSlot(ticket);  // JavaScript starts its exchange (or releases the slot at once)
      continue;
    }
    Exchange* ex = m->queue.front();
    m->queue.pop_front();
    start(ex, false);
  }
  while (!m->queue.empty()) {
    Exchange* ex = m->queue.front();
    m->queue.pop_front();
    if (!pipeline(ex)) {
      m->queue.push_front(ex);
      break;
    }
  }
  m->pumping = false;
}

std::optional<int64_t> FcgiDispatch::acquireSlot(int mount) {
  if (mount < 0 || static_cast<size_t>(mount) >= mounts_.size() || !mounts_[mount]) return std::nullopt;
  const std::shared_ptr<Mount>& m = mounts_[mount];
  // Waiters first: a free slot with a queue means a pump is under way, whose turn it is.
  const bool now = m->running < m->cfg.max_conns && m->waiting() == 0;
  if (!now && m->waiting() >= m->cfg.max_queue) return 0;
  do {
    next_ticket_ = next_ticket_ == INT32_MAX ? 1 : next_ticket_ + 1;
  } while (runner_slots_.count(next_ticket_) != 0);
  const uint32_t ticket = next_ticket_;
  runner_slots_.emplace(ticket, RunnerSlot{m, now});
  if (now) {
    ++m->running;
    return ticket;
  }
  m->runner_queue.push_back({++seq_, ticket});
  return -static_cast<int64_t>(ticket);
}

void FcgiDispatch::releaseSlot(uint32_t ticket) {
  auto it = runner_slots_.find(ticket);
  if (it == runner_slots_.end()) return;
  std::shared_ptr<Mount> m = std::move(it->second.mount);
  const bool granted = it->second.granted;
  runner_slots_.erase(it);
  if (!granted) {
    for (auto q = m->runner_queue.begin(); q != m->runner_queue.end(); ++q) {
      if (q->id == ticket) {
        m->runner_queue.erase(q);
        break;
      }
    }
    return;
  }
  if (m->running > 0) --m->running;
  pump(m.get());
}

}  // namespace lisod
