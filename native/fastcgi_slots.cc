// A mount's slots and queue (see FcgiDispatch::acquireSlot in fastcgi_client.h): max_conns
// exchanges at once, max_queue waiting, counted once for the requests served here and the
// ones the TypeScript runner takes, which ask for their slot through acquireSlot. Waiters
// of both kinds are served in the order they arrived (Exchange::seq, Ticket::seq). A [cgi]
// mount's waiters may also wait with a slot free, for a CPU (max_runnable, cgi_cpu.cc):
// those slots then count as queue room, so that 503 still comes only past max_conns +
// max_queue.
#include <algorithm>
#include <cstdint>
#include <string>

#include "fastcgi_client.h"
#include "fastcgi_internal.h"

namespace lisod {

uint64_t FcgiDispatch::Mount::oldestWait() const {
  if (queue.empty()) return runner_queue.front().since_ms;
  if (runner_queue.empty()) return queue.front()->queued_ms;
  return std::min(queue.front()->queued_ms, runner_queue.front().since_ms);
}

bool FcgiDispatch::slotFree(Mount* m) {
  return m->running < m->cfg.max_conns && (!m->cfg.cgi || cpuFree(m));
}

bool FcgiDispatch::queueFree(const Mount& m) const {
  const size_t idle = m.cfg.max_conns > m.running ? m.cfg.max_conns - m.running : 0;
  return m.waiting() < m.cfg.max_queue + idle;
}

void FcgiDispatch::enqueue(Exchange* ex) {
  Mount* m = ex->mount.get();
  // Waiters first: with a queue, a free slot is theirs (held back for a CPU, or a pump under way).
  if (m->waiting() == 0 && slotFree(m)) {
    start(ex, false);
  } else if (pipeline(ex)) {
  } else if (queueFree(*m)) {
    ex->phase = Exchange::kQueued;
    ex->queued_ms = uv_now(loop_);
    m->queue.push_back(ex);
    holdForCpu(m, true);
  } else {
    fail(ex, 503, std::to_string(m->cfg.max_conns) + " running and " + std::to_string(m->cfg.max_queue) + " queued",
         LogLevel::kWarn);
  }
}

void FcgiDispatch::pump(Mount* m) {
  if (m->pumping) return;
  std::shared_ptr<Mount> keep = m->self.lock();  // a runner's grant may run anything
  m->pumping = true;
  while (m->waiting() > 0 && slotFree(m)) {
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
  holdForCpu(m, false);
}

std::optional<int64_t> FcgiDispatch::acquireSlot(int mount) {
  if (mount < 0 || static_cast<size_t>(mount) >= mounts_.size() || !mounts_[mount]) return std::nullopt;
  const std::shared_ptr<Mount>& m = mounts_[mount];
  // Waiters first: a free slot with a queue is theirs (held back for a CPU, or a pump under way).
  const bool now = m->waiting() == 0 && slotFree(m.get());
  if (!now && !queueFree(*m)) return 0;
  do {
    next_ticket_ = next_ticket_ == INT32_MAX ? 1 : next_ticket_ + 1;
  } while (runner_slots_.count(next_ticket_) != 0);
  const uint32_t ticket = next_ticket_;
  runner_slots_.emplace(ticket, RunnerSlot{m, now});
  if (now) {
    ++m->running;
    return ticket;
  }
  m->runner_queue.push_back({++seq_, ticket, uv_now(loop_)});
  holdForCpu(m.get(), true);
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
