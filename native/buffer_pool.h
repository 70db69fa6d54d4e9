// Spare I/O buffers of one event loop. A keep-alive connection hands its input and output
// buffers back when a response is done (so an idle client owns none) and the next request
// takes them again without a malloc/free pair per request. At most kMaxSpare of each kind
// are kept, so the pool adds a bounded ≈(16 + 32) KiB × kMaxSpare to the process at most.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace lisod {

class BufferPool {
 public:
  static constexpr size_t kInputBytes = 16384;       // one read's worth; larger inputs grow past it
  static constexpr size_t kMaxOutputCapacity = 32768;  // bigger strings are freed, not kept
  static constexpr size_t kMaxSpare = 16;

  // A buffer of kInputBytes (contents undefined).
  std::unique_ptr<char[]> takeInput() {
    if (inputs_.empty()) return std::unique_ptr<char[]>(new char[kInputBytes]);
    std::unique_ptr<char[]> b = std::move(inputs_.back());
    inputs_.pop_back();
    return b;
  }
  // b must hold kInputBytes.
  void giveInput(std::unique_ptr<char[]> b) {
    if (b && inputs_.size() < kMaxSpare) inputs_.push_back(std::move(b));
  }
  // An empty string, with the capacity of an earlier response's when one is spare.
  std::string takeOutput() {
    if (outputs_.empty()) return {};
    std::string s = std::move(outputs_.back());
    outputs_.pop_back();
    return s;
  }
  void giveOutput(std::string&& s) {
    if (s.capacity() < 256 || s.capacity() > kMaxOutputCapacity || outputs_.size() >= kMaxSpare) {
      std::string().swap(s);
      return;
    }
    s.clear();
    outputs_.push_back(std::move(s));
    s = std::string();
  }

 private:
  std::vector<std::unique_ptr<char[]>> inputs_;
  std::vector<std::string> outputs_;
};

}  // namespace lisod
