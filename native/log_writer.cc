#include "log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <unordered_map>
#include <utility>

namespace lisod {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kGiveUpAfter = std::chrono::seconds(1);  // a blocked pipe at stop or reopen
constexpr int kPollMs = 100;

struct Registry {
  std::mutex mu;
  std::unordered_map<uint32_t, std::weak_ptr<LogWriter>> writers;
  std::atomic<uint32_t> next_id{1};
};

// Process-wide on purpose (see log_writer.h); never destroyed, so threads that outlive
// static destruction at exit still find it valid.
Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

std::string describe(int err) {
  switch (err) {
    case EPIPE: return "reader went away";
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EFBIG: return "file too large";
    case EIO: return "I/O error";
    case EBADF: return "file descriptor closed";
  }
  const char* desc = strerrordesc_np(err);
  return desc != nullptr ? desc : "error " + std::to_string(err);
}

// "ENOENT: no such file or directory", as Node words errno errors.
std::string errnoText(int err) {
  const char* name = strerrorname_np(err);
  const char* desc = strerrordesc_np(err);
  std::string text = std::string(name != nullptr ? name : "E?") + ": " + (desc != nullptr ? desc : "unknown error");
  if (desc != nullptr && text.size() > 0) {
    char& first = text[text.find(": ") + 2];
    if (first >= 'A' && first <= 'Z') first = static_cast<char>(first - 'A' + 'a');
  }
  return text;
}

int openLog(const std::string& path, std::string* error) {
  // O_NONBLOCK: opening a FIFO without a reader fails (ENXIO) instead of hanging, and
  // a full pipe returns EAGAIN to the writer thread instead of blocking it for good.
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0640);
  if (fd < 0) {
    *error = "cannot open log file '" + path + "': " + errnoText(errno);
    if (errno == ENXIO) *error += " (a FIFO needs a reader before lisod starts)";
  }
  return fd;
}

bool isPipe(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode));
}

size_t countLines(const char* data, size_t len) {
  size_t n = 0;
  for (const char* p = data; (p = static_cast<const char*>(memchr(p, '\n', data + len - p))) != nullptr; ++p) ++n;
  return n == 0 && len > 0 ? 1 : n;
}

}  // namespace

std::shared_ptr<LogWriter> LogWriter::open(const std::string& target, int std_fd, const LogWriterOptions& options,
                                           std::string* error) {
  int fd = std_fd;
  std::string name = std_fd == 1 ? "stdout" : "stderr";
  if (target != "-") {
    fd = openLog(target, error);
    if (fd < 0) return nullptr;
    name = target;
  }
  std::shared_ptr<LogWriter> w(new LogWriter(fd, target != "-", target, name, options));
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.writers[w->id_] = w;
  return w;
}

std::shared_ptr<LogWriter> LogWriter::find(uint32_t id) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.writers.find(id);
  return it == r.writers.end() ? nullptr : it->second.lock();
}

LogWriter::LogWriter(int fd, bool owns_fd, std::string target, std::string name, const LogWriterOptions& options)
    : id_(registry().next_id++),
      target_(std::move(target)),
      name_(std::move(name)),
      options_(options),
      owns_fd_(owns_fd),
      fd_(fd),
      is_pipe_(isPipe(fd)),
      thread_([this] { run(); }) {}

LogWriter::~LogWriter() {
  {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    r.writers.erase(id_);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    notify_ = nullptr;
  }
  wake_.notify_one();
  thread_.join();
  if (reopen_fd_ >= 0) ::close(reopen_fd_);
  if (owns_fd_) ::close(fd_);
}

void LogWriter::append(std::string_view lines, bool urgent) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    const size_t before = buffer_.size();
    if (before + lines.size() > options_.max_buffer) {
      dropped_ += countLines(lines.data(), lines.size());
      return;
    }
    buffer_.append(lines);
    // Wake the thread only when its deadline starts or its condition changes, not per line.
    wake = before == 0 || (before < options_.high_water && buffer_.size() >= options_.high_water) ||
           (urgent && !urgent_);
    urgent_ = urgent_ || urgent;
  }
  if (wake) wake_.notify_one();
}

bool LogWriter::flush(uint64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t want = ++flush_wanted_;
  wake_.notify_one();
  return done_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return flushed_ >= want; });
}

bool LogWriter::reopen(std::string* error) {
  if (!owns_fd_) return true;
  int fd = openLog(target_, error);
  if (fd < 0) return false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (reopen_fd_ >= 0) ::close(reopen_fd_);  // two reopens before the thread woke: the newer wins
    reopen_fd_ = fd;
    reopen_split_ = buffer_.size();
  }
  wake_.notify_one();
  return true;
}

void LogWriter::setNotify(std::function<void()> notify) {
  std::lock_guard<std::mutex> lock(mu_);
  notify_ = std::move(notify);
}

std::vector<std::string> LogWriter::takeWarnings() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(warnings_, {});
}

void LogWriter::warn(std::string message) {
  warnings_.push_back("log " + name_ + ": " + message);
  if (notify_) notify_();
}

void LogWriter::run() {
  std::unique_lock<std::mutex> lock(mu_);
  const auto busy = [this] { return stop_ || urgent_ || reopen_fd_ >= 0 || flush_wanted_ != flushed_; };
  for (;;) {
    wake_.wait(lock, [&] { return busy() || !buffer_.empty(); });
    // Lines are buffered: gather more until high water, the interval, or a reason to hurry.
    const auto deadline = Clock::now() + std::chrono::milliseconds(options_.flush_interval_ms);
    wake_.wait_until(lock, deadline, [&] { return busy() || buffer_.size() >= options_.high_water; });

    std::string batch = std::exchange(buffer_, std::move(spare_));
    buffer_.clear();
    urgent_ = false;
    const int next_fd = std::exchange(reopen_fd_, -1);
    const size_t split = next_fd >= 0 ? reopen_split_ : batch.size();
    const uint64_t flushed = flush_wanted_;
    const bool stopping = stop_;
    lock.unlock();

    writeOut(batch.data(), split);
    if (next_fd >= 0) {
      if (owns_fd_) ::close(fd_);
      fd_ = next_fd;
      is_pipe_ = isPipe(fd_);
      mid_line_ = cut_ = false;
      writeOut(batch.data() + split, batch.size() - split);
    }

    lock.lock();
    if (next_fd >= 0 && failing_) failing_ = false;  // a new file: report its failures afresh
    batch.clear();
    spare_ = std::move(batch);  // keeps its capacity for the next round
    flushed_ = flushed;
    done_.notify_all();
    if (stopping && buffer_.empty()) return;
  }
}

// Writer thread, without the lock (fd_ and is_pipe_ are its own; failing_ and dropped_ are
// taken under the lock when they change).
void LogWriter::writeOut(const char* data, size_t len) {
  Clock::time_point give_up{};
  while (len > 0) {
    ssize_t w;
    int err;
    if (cut_) {
      w = ::write(fd_, "\n", 1);  // ends the line a failed write cut short
      err = w < 0 ? errno : EIO;
      if (w == 1) {
        cut_ = mid_line_ = false;
        continue;
      }
    } else {
      size_t n = len;
      if (is_pipe_ && len > PIPE_BUF) {
        // Whole lines, at most PIPE_BUF bytes (atomic on a pipe); a longer line goes alone.
        const char* end = static_cast<const char*>(memrchr(data, '\n', PIPE_BUF));
        if (end == nullptr) end = static_cast<const char*>(memchr(data + PIPE_BUF, '\n', len - PIPE_BUF));
        n = end != nullptr ? static_cast<size_t>(end - data) + 1 : len;
      }
      w = ::write(fd_, data, n);
      err = w < 0 ? errno : EIO;  // w == 0 for n > 0: treat as an I/O error
      if (w > 0) {
        mid_line_ = data[w - 1] != '\n';
        data += w;
        len -= static_cast<size_t>(w);
        std::lock_guard<std::mutex> lock(mu_);
        if (failing_ || dropped_ > 0) {
          const uint64_t dropped = std::exchange(dropped_, 0);
          failing_ = false;
          warn("writing again" + (dropped > 0 ? " (" + std::to_string(dropped) + " line(s) dropped)" : std::string()));
        }
        give_up = {};
        continue;
      }
    }
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      // A full pipe: wait for room, unless stopping or reopening has waited long enough.
      bool hurry;
      {
        std::lock_guard<std::mutex> lock(mu_);
        hurry = stop_ || reopen_fd_ >= 0;
      }
      if (hurry && give_up == Clock::time_point{}) give_up = Clock::now() + kGiveUpAfter;
      if (!hurry || Clock::now() < give_up) {
        pollfd p{fd_, POLLOUT, 0};
        poll(&p, 1, kPollMs);
        continue;
      }
    }
    cut_ = cut_ || mid_line_;
    std::lock_guard<std::mutex> lock(mu_);
    dropped_ += countLines(data, len);
    if (!failing_) {
      failing_ = true;
      warn((err == EAGAIN || err == EWOULDBLOCK ? std::string("nobody reads the pipe")
                                                 : describe(err)) +
           "; dropping log lines until writes succeed again");
    }
    return;
  }
}

}  // namespace lisod
