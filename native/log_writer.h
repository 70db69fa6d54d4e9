// A buffered, append-only log file written by its own thread, shared by every event loop
// of the process: each worker thread's addon instance finds the main thread's writer by
// id (LogWriter::find), so there is one stream per file and lines never interleave.
//
// Contracts:
// - append() takes whole lines; each call is copied into the buffer under one lock, so
//   lines from different threads never mix. It never blocks on I/O: the writer thread
//   writes at 64 KiB (high water), after the flush interval (1 s) from the first buffered
//   line, at once for `urgent` lines, and on flush()/destruction. Beyond max_buffer
//   (a stalled pipe or disk) new lines are dropped and counted.
// - Pipes and sockets (a FIFO, `access_log = "-"` under a pipe): every write() holds whole
//   lines and at most PIPE_BUF bytes, so the kernel never splits a line between writers;
//   only a single line longer than PIPE_BUF goes out alone in one larger write.
// - A failed write (ENOSPC, EPIPE, EIO …) drops that batch and queues one warning per
//   failure episode ("log F: no space left on device; dropping log lines until writes
//   succeed again"), and one more when writes succeed again. A line cut short that way
//   (a disk filling mid-write) is ended with '\n' before the next write, so later lines
//   stay whole. Never a crash: SIGPIPE is ignored by Node; the thread only sees error codes.
// - reopen() (SIGHUP, logrotate) opens the path again; what was appended before goes to
//   the old file, what follows to the new one.
//
// The registry behind find() is the one piece of process-wide state in the addon, on
// purpose: worker threads load their own instance of the addon, and a log file must
// have one writer per process.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace lisod {

struct LogWriterOptions {
  uint64_t flush_interval_ms = 1000;
  size_t high_water = 64 << 10;
  size_t max_buffer = 4 << 20;
};

class LogWriter {
 public:
  // target: a path (opened O_WRONLY|O_APPEND|O_CREAT|O_NONBLOCK, mode 0640) or "-" for
  // std_fd (1 or 2, not closed). On failure returns nullptr and sets *error to
  // "cannot open log file 'PATH': ENOENT: no such file or directory".
  static std::shared_ptr<LogWriter> open(const std::string& target, int std_fd, const LogWriterOptions& options,
                                         std::string* error);
  // The live writer with this id, from any thread; nullptr once it is gone.
  static std::shared_ptr<LogWriter> find(uint32_t id);

  // Writes what is buffered (giving a blocked pipe about a second), stops the thread and
  // closes the file.
  ~LogWriter();
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  uint32_t id() const { return id_; }
  const std::string& name() const { return name_; }  // the path, "stdout" or "stderr"

  // Whole lines (ending in '\n'); any thread.
  void append(std::string_view lines, bool urgent = false);
  // Waits until everything appended before the call is written or dropped; false after
  // timeout_ms (e.g. a pipe nobody reads).
  bool flush(uint64_t timeout_ms);
  // false with *error (as open()) when the path cannot be opened; the old file is kept.
  bool reopen(std::string* error);

  // notify is called on the writer thread, under a lock, whenever a warning is queued:
  // it should only wake the owner (uv_async_send), which then calls takeWarnings().
  void setNotify(std::function<void()> notify);
  std::vector<std::string> takeWarnings();

 private:
  LogWriter(int fd, bool owns_fd, std::string target, std::string name, const LogWriterOptions& options);
  void run();
  void writeOut(const char* data, size_t len);
  void warn(std::string message);  // lock held

  const uint32_t id_;
  const std::string target_;
  const std::string name_;
  const LogWriterOptions options_;
  const bool owns_fd_;
  int fd_;         // used by the writer thread only (after construction)
  bool is_pipe_;   // writer thread only
  bool mid_line_ = false;  // writer thread: the last byte written to fd_ was not a '\n' …
  bool cut_ = false;       // … and the rest of that line was dropped: start a new line first

  std::mutex mu_;  // guards everything below
  std::condition_variable wake_;  // → writer thread
  std::condition_variable done_;  // → flush() callers
  std::string buffer_, spare_;
  bool urgent_ = false;
  bool stop_ = false;
  int reopen_fd_ = -1;        // a reopened file waiting to be switched to
  size_t reopen_split_ = 0;   // bytes of buffer_ that belong to the old file
  uint64_t flush_wanted_ = 0, flushed_ = 0;
  uint64_t dropped_ = 0;      // lines dropped since the last successful write
  bool failing_ = false;      // a warning was given; quiet until a write succeeds
  std::vector<std::string> warnings_;
  std::function<void()> notify_;
  std::thread thread_;        // last: starts once everything above is initialised
};

}  // namespace lisod
