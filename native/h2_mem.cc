// H2Pool: size-class free lists behind nghttp2_mem.
#include "h2_mem.h"

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace lisod {
namespace {

// Each block starts with a header giving its class (or kBig and its size), padded to 16
// bytes so the caller's bytes keep malloc's alignment.
constexpr int kBig = -1;
struct alignas(16) Header {
  int cls;
  size_t size;  // usable bytes
};
static_assert(sizeof(Header) == 16);

Header* headerOf(void* p) { return static_cast<Header*>(p) - 1; }

// 0 for up to 64 bytes, 1 for up to 128, … (size ≤ kMaxClassBytes).
int classOf(size_t size) {
  return size <= H2Pool::kMinClassBytes ? 0 : static_cast<int>(std::bit_width((size - 1) / H2Pool::kMinClassBytes));
}

}  // namespace

H2Pool::~H2Pool() {
  for (Free*& head : free_) {
    while (head != nullptr) {
      Free* next = head->next;
      std::free(reinterpret_cast<Header*>(head) - 1);
      head = next;
    }
  }
}

nghttp2_mem H2Pool::mem() {
  nghttp2_mem m{};
  m.mem_user_data = this;
  m.malloc = [](size_t size, void* self) { return static_cast<H2Pool*>(self)->allocate(size); };
  m.free = [](void* p, void* self) { static_cast<H2Pool*>(self)->release(p); };
  m.calloc = [](size_t n, size_t size, void* self) -> void* {
    if (size != 0 && n > SIZE_MAX / size) return nullptr;
    void* p = static_cast<H2Pool*>(self)->allocate(n * size);
    if (p != nullptr) std::memset(p, 0, n * size);
    return p;
  };
  m.realloc = [](void* p, size_t size, void* self) { return static_cast<H2Pool*>(self)->reallocate(p, size); };
  return m;
}

void* H2Pool::allocate(size_t size) {
  if (size > kMaxClassBytes) {
    if (size > SIZE_MAX - sizeof(Header)) return nullptr;
    auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + size));
    if (h == nullptr) return nullptr;
    h->cls = kBig;
    h->size = size;
    return h + 1;
  }
  int c = classOf(size);
  size_t usable = kMinClassBytes << c;
  if (Free* f = free_[c]) {
    free_[c] = f->next;
    cached_ -= usable;
    return f;  // the header before it still says class c
  }
  auto* h = static_cast<Header*>(std::malloc(sizeof(Header) + usable));
  if (h == nullptr) return nullptr;
  h->cls = c;
  h->size = usable;
  return h + 1;
}

void H2Pool::release(void* p) {
  if (p == nullptr) return;
  Header* h = headerOf(p);
  if (h->cls == kBig || cached_ + h->size > kMaxCachedBytes) {
    std::free(h);
    return;
  }
  auto* f = static_cast<Free*>(p);
  f->next = free_[h->cls];
  free_[h->cls] = f;
  cached_ += h->size;
}

void* H2Pool::reallocate(void* p, size_t size) {
  if (p == nullptr) return allocate(size);
  Header* h = headerOf(p);
  if (size <= h->size && h->cls != kBig) return p;  // still fits its class
  void* q = allocate(size);
  if (q == nullptr) return nullptr;  // p stays valid, as realloc(3)
  std::memcpy(q, p, h->size < size ? h->size : size);
  release(p);
  return q;
}

}  // namespace lisod
