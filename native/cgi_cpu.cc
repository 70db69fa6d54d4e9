// [cgi] max_runnable: a waiting request starts its script only while fewer of the mount's
// scripts than max_runnable are runnable (Linux state R: on a CPU or waiting for one). A
// script per request is mostly CPU (a Python interpreter's start is ~7 ms of it); more of
// them than CPUs only take turns, each slower for the caches and TLB the others evict —
// measured here, 10 trivial Python scripts at once on one CPU cost 8.1 ms of CPU each, one
// or two at a time 7.0 ms. A script that waits on I/O (a database, the network, its upload)
// is in state S and leaves its CPU to the next one, so I/O-bound scripts still run up to
// max_conns (max_processes) at once.
//
// Whether a process counts as runnable, looked at no more than every kLookMs (a newer
// look reuses the last verdict; a process younger than that counts: it is starting):
// - its CPU clock (one clock_gettime, no file) advanced by at least a quarter of the wall
//   time since the last look: computing;
// - else it is asleep, or runnable but starved of CPU (many scripts at once), and its state
//   in /proc/PID/stat says which (the file opened once per process, read with pread).
// A child is never reaped before its exit is seen here, so its PID names no other process.
// Starting processes (the Spawner's) count as runnable. Processes are looked at only with
// at least max_runnable slots taken, and no further than the max_runnable-th runnable one.
//
// No event says that a script went from computing to waiting, so while requests wait with
// a slot free, the mount is pumped again kCpuRecheckMs after its last look. A request
// waits for a CPU at most 500 ms (LISOD_CPU_WAIT_MS in the environment, for tests): a few
// long CPU-bound scripts cannot hold back every other request.
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fastcgi_client.h"
#include "fastcgi_internal.h"

namespace lisod {
namespace {

constexpr uint64_t kCpuRecheckMs = 10;
constexpr uint64_t kLookMs = 5;

uint64_t cpuWaitMs() {
  static const uint64_t ms = [] {
    const char* v = std::getenv("LISOD_CPU_WAIT_MS");
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : uint64_t{500};
  }();
  return ms;
}

// 'R' in /proc/PID/stat: on a CPU or waiting for one. The file stays open: each read from
// offset 0 renders it anew. False when it cannot be read (no process is held back for it).
bool stateRunnable(FcgiDispatch::Proc& p) {
  if (p.stat_fd < 0) {
    char path[32];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(p.pid));
    p.stat_fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (p.stat_fd < 0) return false;
  }
  char buf[512];
  const ssize_t n = ::pread(p.stat_fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "pid (comm) S ...": comm may hold anything, ')' included; the state follows the last ')'.
  const char* close_paren = std::strrchr(buf, ')');
  return close_paren != nullptr && close_paren[1] == ' ' && close_paren[2] == 'R';
}

// The process's CPU time in ns (all its threads), or -1. The clock id is the kernel's
// process CPU clock (MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)); clock_getcpuclockid
// would cost a clock_getres call to build it.
int64_t cpuNs(pid_t pid) {
  const clockid_t clock = static_cast<clockid_t>((~static_cast<unsigned>(pid) << 3) | 2);
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool runnable(FcgiDispatch::Proc& p, uint64_t now_ns) {
  const uint64_t window = now_ns - p.looked_ns;
  if (window < kLookMs * 1000000) return p.looked_busy;
  const int64_t cpu = cpuNs(p.pid);
  const bool computing = cpu >= 0 && static_cast<uint64_t>(cpu - p.looked_cpu_ns) * 4 >= window;
  p.looked_ns = now_ns;
  p.looked_cpu_ns = cpu >= 0 ? cpu : p.looked_cpu_ns;
  p.looked_busy = computing || stateRunnable(p);
  return p.looked_busy;
}

}  // namespace

bool FcgiDispatch::cpuFree(Mount* m) {
  const size_t cap = m->cfg.max_runnable;
  if (cap == 0 || m->running < cap) return true;
  if (m->waiting() > 0 && uv_now(loop_) - m->oldestWait() >= cpuWaitMs()) return true;
  size_t busy = 0;
  const uint64_t now_ns = uv_hrtime();
  for (const auto& [tag, w] : spawning_) {
    if (w.mount.get() == m && ++busy >= cap) return false;
  }
  for (const auto& [p, owned] : procs_) {
    if (p->mount.get() == m && !p->exited && runnable(*p, now_ns) && ++busy >= cap) return false;
  }
  return true;
}

void FcgiDispatch::holdForCpu(Mount* m, bool arrived) {
  if (!m->cfg.cgi || m->waiting() == 0 || m->running >= m->cfg.max_conns) return;
  if (arrived) ++stats_.cpu_waits;
  bool listed = false;
  for (const std::weak_ptr<Mount>& w : cpu_held_) listed = listed || w.lock().get() == m;
  if (!listed) cpu_held_.push_back(m->self);
  // A pump has just looked at the processes: the next look is due kCpuRecheckMs from now
  // (under CPU-bound load a script ends more often than that, and the timer never fires).
  // A request that arrived looked at nothing: it leaves a pending look where it is.
  if (!arrived || !uv_is_active(reinterpret_cast<uv_handle_t*>(cpu_timer_))) {
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
