// Spawner (see spawner.h): one thread that runs spawnChild for the event loop.
#include "spawner.h"

#include <errno.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <system_error>

namespace lisod {

Spawner::Spawner() {
  efd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (const char* d = getenv("LISOD_SPAWN_DELAY_MS")) delay_ms_ = static_cast<unsigned>(strtoul(d, nullptr, 10));
}

Spawner::~Spawner() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& job : collect()) discard(*job);
  if (efd_ >= 0) ::close(efd_);
}

void Spawner::discard(SpawnJob& job) {
  if (job.err != 0) return;
  kill(-job.child.pid, SIGKILL);
  waitpid(job.child.pid, nullptr, 0);
  for (int fd : {job.child.pidfd, job.child.stdin_fd, job.child.stdout_fd, job.child.stderr_fd}) {
    if (fd >= 0) ::close(fd);
  }
  job.err = ESRCH;  // nothing of it left
}

void spawnJob(SpawnJob& job) {
  std::vector<char*> envp;
  envp.reserve(job.env.size() + 1);
  for (std::string& e : job.env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> argv{job.file.data()};
  for (std::string& a : job.args) argv.push_back(a.data());
  argv.push_back(nullptr);
  job.err = spawnChild({job.file.c_str(), argv.data(), envp.data(), job.cwd.c_str(), job.stdin_mode}, &job.child, &job.what);
}

std::unique_ptr<Spawner> Spawner::watchedBy(int epfd, void* tag) {
  auto spawner = std::make_unique<Spawner>();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = tag;
  if (spawner->fd() >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, spawner->fd(), &ev) == 0) return spawner;
  const int e = errno;  // eventfd's or epoll_ctl's
  spawner.reset();
  errno = e;
  return nullptr;
}

void Spawner::runJob(std::unique_ptr<SpawnJob> job) {
  spawnJob(*job);
  std::lock_guard<std::mutex> lock(mu_);
  done_.push_back(std::move(job));
  const uint64_t one = 1;
  (void)!::write(efd_, &one, sizeof one);  // a full counter (2^64-2 wake-ups) cannot happen
}

void Spawner::start(std::unique_ptr<SpawnJob> job) {
  if (!threaded_) {
    // Every signal but SIGCHLD blocked on the thread, as spawnChild wants around its vfork,
    // so no handler of Node's ever runs there; the thread inherits the mask set here.
    sigset_t all, saved;
    sigfillset(&all);
    sigdelset(&all, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    try {
      thread_ = std::thread([this] { run(); });
      threaded_ = true;
    } catch (const std::system_error&) {
      // No thread to be had (EAGAIN): start it here, as before Spawner existed.
    }
    pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  }
  if (!threaded_) {
    runJob(std::move(job));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    todo_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void Spawner::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !todo_.empty(); });
    if (stop_) return;  // jobs not yet started are dropped with the Spawner
    std::unique_ptr<SpawnJob> job = std::move(todo_.front());
    todo_.pop_front();
    lock.unlock();
    if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    runJob(std::move(job));
    lock.lock();
  }
}

std::vector<std::unique_ptr<SpawnJob>> Spawner::collect() {
  uint64_t count;
  (void)!::read(efd_, &count, sizeof count);
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::unique_ptr<SpawnJob>> out;
  out.reserve(done_.size());
  for (auto& job : done_) out.push_back(std::move(job));
  done_.clear();
  return out;
}

}  // namespace lisod
