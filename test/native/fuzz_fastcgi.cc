// libFuzzer target for the FastCGI record decoder (native/fastcgi_record.cc), the bytes a
// backend sends. Besides ASan/UBSan it checks: a record's view lies inside the input, the
// decoding does not depend on how the stream is split, and re-encoding a decoded STDOUT
// record's content decodes to the same content.
#include <cstdint>
#include <string>
#include <vector>

#include "../../native/fastcgi_record.h"
#include "fuzz_check.h"

using namespace lisod;

namespace {

struct Seen {
  uint8_t type;
  uint16_t id;
  std::string content;
  bool operator==(const Seen& o) const { return type == o.type && id == o.id && content == o.content; }
};

// Decodes the stream fed in pieces of `step` bytes (0: all at once), as a connection would.
std::vector<Seen> decode(const char* data, size_t size, size_t step, long* last) {
  std::vector<Seen> seen;
  std::string buf;
  size_t fed = 0;
  *last = 0;
  while (fed < size || !buf.empty()) {
    size_t n = step == 0 ? size - fed : std::min(step, size - fed);
    buf.append(data + fed, n);
    fed += n;
    size_t off = 0;
    for (;;) {
      FcgiRecord r;
      long used = parseFcgiRecord(buf.data() + off, buf.size() - off, &r);
      if (used == kFcgiBadVersion) {
        *last = used;
        return seen;
      }
      if (used == kFcgiIncomplete) break;
      FUZZ_CHECK(used >= 8 && static_cast<size_t>(used) <= buf.size() - off);
      FUZZ_CHECK(r.content.data() >= buf.data() + off && r.content.data() + r.content.size() <= buf.data() + off + used);
      seen.push_back({r.type, r.id, std::string(r.content)});
      if (r.type == kFcgiEndRequest) {
        FcgiEnd e;
        (void)parseFcgiEnd(r.content, &e);
      }
      off += used;
    }
    buf.erase(0, off);
    if (fed == size) break;
  }
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t step = data[0] % 17;
  const char* body = reinterpret_cast<const char*>(data + 1);
  long a_end = 0, b_end = 0;
  std::vector<Seen> whole = decode(body, size - 1, 0, &a_end);
  std::vector<Seen> pieces = decode(body, size - 1, step == 0 ? 1 : step, &b_end);
  FUZZ_CHECK(whole == pieces && a_end == b_end);
  for (const Seen& s : whole) {
    std::string again;
    appendFcgiRecords(again, s.type, s.id, s.content);
    FcgiRecord r;
    long used = parseFcgiRecord(again.data(), again.size(), &r);
    if (s.content.size() <= kFcgiMaxContent) {
      FUZZ_CHECK(static_cast<size_t>(used) == again.size() && r.content == s.content && r.type == s.type && r.id == s.id);
    }
  }
  return 0;
}
