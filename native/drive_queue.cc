#include "drive_queue.h"

#include <algorithm>

#include "connection.h"

namespace lisod {

DriveQueue::DriveQueue(uv_loop_t* loop) : check_(new uv_check_t), idle_(new uv_idle_t) {
  uv_check_init(loop, check_);
  uv_idle_init(loop, idle_);
  check_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  // idle_ stays referenced: while a drive is queued the loop is alive even if no poll is
  // active (a connection waiting for its application watches nothing).
}

DriveQueue::~DriveQueue() {
  uv_close(reinterpret_cast<uv_handle_t*>(check_), [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
}

void DriveQueue::add(Connection* c) {
  if (queued_.empty()) {
    uv_check_start(check_, [](uv_check_t* h) { static_cast<DriveQueue*>(h->data)->run(); });
    uv_idle_start(idle_, [](uv_idle_t*) {});  // keeps the poll phase from blocking meanwhile
  }
  queued_.push_back(c);
}

void DriveQueue::remove(Connection* c) {
  auto drop = [c](std::vector<Connection*>& v) {
    if (auto it = std::find(v.begin(), v.end(), c); it != v.end()) *it = nullptr;
  };
  drop(queued_);
  drop(running_);
}

void DriveQueue::run() {
  // A drive may queue others (an application writing to another request's connection):
  // those run in the same turn too.
  while (!queued_.empty()) {
    running_.swap(queued_);
    for (size_t i = 0; i < running_.size(); ++i) {
      if (Connection* c = running_[i]) c->drivePending();
    }
    running_.clear();
  }
  uv_check_stop(check_);
  uv_idle_stop(idle_);
}

}  // namespace lisod
