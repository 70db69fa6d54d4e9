// Connections whose drive() is due this loop turn (Connection::kick). Run from a uv_check
// right after the poll phase, so output an application produced in a poll callback (a
// FastCGI backend's answer, a CGI pipe's bytes) goes out in the same turn: no WRITABLE
// interest round trip through epoll (two epoll_ctl and one more loop turn per response).
// A uv_idle runs while anything is queued, so a kick from outside the poll phase (a timer,
// a setImmediate) does not wait for the next event.
#pragma once
#include <uv.h>

#include <vector>

namespace lisod {

class Connection;

class DriveQueue {
 public:
  explicit DriveQueue(uv_loop_t* loop);
  ~DriveQueue();
  DriveQueue(const DriveQueue&) = delete;
  DriveQueue& operator=(const DriveQueue&) = delete;

  void add(Connection* c);     // contract: not already queued (the caller keeps a flag)
  void remove(Connection* c);  // before c's handle closes

 private:
  void run();

  uv_check_t* check_;
  uv_idle_t* idle_;
  std::vector<Connection*> queued_, running_;
};

}  // namespace lisod
