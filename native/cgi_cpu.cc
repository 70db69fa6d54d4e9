// [cgi] max_runnable: a waiting request starts its script only while fewer of the mount's
// scripts than max_runnable are runnable (Linux state R: on a CPU or waiting for one). A
// script per request is mostly CPU (a Python interpreter's start is ~7 ms of it); more of
// them than CPUs only take turns, each slower for the caches and TLB the others evict —
// measured here, 10 trivial Python scripts at once on one CPU cost 8.1 ms of CPU each, one
// or two at a time 7.0 ms. A script that waits on I/O (a database, the network, its upload)
// is in state S and leaves its CPU to the next one, so I/O-bound scripts still run up to
// max_conns (max_processes) at once.
//
// The state comes from /proc/PID/stat of each process that has not exited: a child is
// never reaped before its exit is seen here, so its PID cannot name another process.
// Starting processes (the Spawner's) count as runnable. The probe runs only with at least
// max_runnable slots taken, and stops at the max_runnable-th runnable script.
//
// No event says that a script went from computing to waiting, so while requests wait with
// a slot free, the mount is pumped again every kCpuRecheckMs. A request waits for a CPU at
// most 500 ms (LISOD_CPU_WAIT_MS in the environment, for tests): a few long CPU-bound
// scripts cannot hold back every other request.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fastcgi_client.h"
#include "fastcgi_internal.h"

namespace lisod {
namespace {

constexpr uint64_t kCpuRecheckMs = 10;

uint64_t cpuWaitMs() {
  static const uint64_t ms = [] {
    const char* v = std::getenv("LISOD_CPU_WAIT_MS");
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : uint64_t{500};
  }();
  return ms;
}

// Whether process pid is runnable now ('R' in /proc/PID/stat). False when it cannot be
// read (then no process is held back for it).
bool runnable(pid_t pid) {
  char path[32];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) S ...": comm may hold anything, ')' included; the state follows the last ')'.
  const char* close_paren = std::strrchr(buf, ')');
  return close_paren != nullptr && close_paren[1] == ' ' && close_paren[2] == 'R';
}

}  // namespace

bool FcgiDispatch::cpuFree(Mount* m) {
  const size_t cap = m->cfg.max_runnable;
  if (cap == 0 || m->running < cap) return true;
  if (m->waiting() > 0 && uv_now(loop_) - m->oldestWait() >= cpuWaitMs()) return true;
  size_t busy = 0;
  for (const auto& [tag, w] : spawning_) {
    if (w.mount.get() == m && ++busy >= cap) return false;
  }
  for (const auto& [p, owned] : procs_) {
    if (p->mount.get() == m && !p->exited && runnable(p->pid) && ++busy >= cap) return false;
  }
  return true;
}

void FcgiDispatch::holdForCpu(Mount* m, bool arrived) {
  if (!m->cfg.cgi || m->waiting() == 0 || m->running >= m->cfg.max_conns) return;
  if (arrived) ++stats_.cpu_waits;
  if (cpu_timer_ == nullptr) {
    cpu_timer_ = new uv_timer_t;
    uv_timer_init(loop_, cpu_timer_);
    cpu_timer_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(cpu_timer_));
  }
  bool listed = false;
  for (const std::weak_ptr<Mount>& w : cpu_held_) listed = listed || w.lock().get() == m;
  if (!listed) cpu_held_.push_back(m->self);
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(cpu_timer_))) {
    uv_timer_start(cpu_timer_, [](uv_timer_t* t) { static_cast<FcgiDispatch*>(t->data)->onCpuTimer(); }, kCpuRecheckMs, 0);
  }
}

void FcgiDispatch::onCpuTimer() {
  std::vector<std::weak_ptr<Mount>> held;
  held.swap(cpu_held_);
  for (const std::weak_ptr<Mount>& w : held) {
    if (std::shared_ptr<Mount> m = w.lock()) pump(m.get());  // holds it again if still waiting
  }
}

}  // namespace lisod
