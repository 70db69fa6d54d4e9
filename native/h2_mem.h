// A per-session block cache for nghttp2's allocations (nghttp2_mem): an h2 connection
// allocates and frees the same few objects for every stream (the stream, its outbound
// items, the copied header list, the HPACK buffers), so freed blocks are kept in
// power-of-two size classes and handed out again, instead of a malloc/free pair each.
//
// Contracts: every block comes from this pool and goes back to it (nghttp2 copies the
// nghttp2_mem into the session, so the pool must outlive nghttp2_session_del). Blocks
// above kMaxClassBytes go to malloc directly. The cache keeps at most kMaxCachedBytes;
// beyond that freed blocks go back to malloc. Not thread-safe: one session, one loop.
#pragma once
#include <cstddef>

#include <nghttp2/nghttp2.h>

namespace lisod {

class H2Pool {
 public:
  static constexpr size_t kMinClassBytes = 64;    // usable bytes of the smallest class
  static constexpr size_t kMaxClassBytes = 4096;  // larger requests are not cached
  static constexpr size_t kMaxCachedBytes = 64 * 1024;

  H2Pool() = default;
  ~H2Pool();
  H2Pool(const H2Pool&) = delete;
  H2Pool& operator=(const H2Pool&) = delete;

  // The allocator to pass to nghttp2_session_server_new3 (it points at this pool).
  nghttp2_mem mem();

  void* allocate(size_t size);
  void release(void* p);
  void* reallocate(void* p, size_t size);

 private:
  static constexpr int kClasses = 7;  // 64, 128, … 4096
  struct Free {
    Free* next;
  };
  Free* free_[kClasses] = {};
  size_t cached_ = 0;  // bytes in the free lists
};

}  // namespace lisod
