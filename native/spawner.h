// Process starts off the event loop. spawnChild's vfork suspends the thread that calls it
// until the child has exec'd; on a busy machine the child may first wait for a CPU behind the
// scripts already running, and the event loop (static requests included) waited with it: a
// 1 KiB file under a trivial CGI load (wrk -c16) took p90 26 ms, p99 41 ms, against 5 and
// 13 ms with lighttpd, which forks. A Spawner does the vfork on a thread of its own; finished
// starts come back through an eventfd that the loop polls. LISOD_SPAWN_DELAY_MS (tests only)
// makes the thread wait that long before each start, so that tests can act while one is under way.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spawn.h"

namespace lisod {

struct SpawnJob {
  uint64_t tag = 0;  // the caller's
  std::string file, cwd;
  std::vector<std::string> env;  // NAME=VALUE
  std::vector<std::string> args;  // argv[1…] (argv[0] is file)
  int stdin_mode = -2;           // as SpawnSpec::stdin_mode
  // Set by the spawner: 0 and child, or an errno with what naming the step (spawnChild).
  int err = 0;
  const char* what = "";
  Spawned child;
};

// Starts job's child here, on the calling thread (spawnChild with job's argv and envp): sets
// err, what and child.
void spawnJob(SpawnJob& job);

class Spawner {
 public:
  Spawner();  // fd() < 0 when no eventfd could be made (then nothing can be started)
  // A Spawner whose eventfd is in the epoll set epfd with data.ptr = tag; nullptr (errno set)
  // when there is no eventfd or epoll_ctl fails.
  static std::unique_ptr<Spawner> watchedBy(int epfd, void* tag);
  // Stops the thread; children started but not collected are killed and reaped.
  ~Spawner();
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  int fd() const { return efd_; }  // readable while finished jobs wait for collect()
  // Queued for the thread; run here if no thread can be had.
  void start(std::unique_ptr<SpawnJob> job);
  // The finished jobs, in the order they were started.
  std::vector<std::unique_ptr<SpawnJob>> collect();
  // A started child nobody takes on: killed, reaped, its pipes and pidfd closed.
  static void discard(SpawnJob& job);

 private:
  void run();
  void runJob(std::unique_ptr<SpawnJob> job);  // starts its child, then hands it to collect()

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<SpawnJob>> todo_, done_;  // under mu_
  bool stop_ = false;                                  // under mu_
  int efd_ = -1;
  std::thread thread_;
  bool threaded_ = false;  // the thread runs (started with the first job)
  unsigned delay_ms_ = 0;  // LISOD_SPAWN_DELAY_MS
};

}  // namespace lisod
