// Pure HTTP/1.1 request-head parser (RFC 9112 §2–§5): one left-to-right pass, table
// lookups per byte, no allocation. Every decision depends only on bytes already seen,
// so a prefix of a request never yields a verdict different from the whole request.
#include "http_parser.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace lisod {
namespace {

using Table = std::array<uint8_t, 256>;

template <typename Pred>
constexpr Table makeTable(Pred pred) {
  Table t{};
  for (int c = 0; c < 256; ++c) t[static_cast<size_t>(c)] = pred(c) ? 1 : 0;
  return t;
}

constexpr bool isAlnum(int c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// tchar (RFC 9110 §5.6.2): "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
constexpr Table kTokenChar = makeTable([](int c) {
  if (isAlnum(c)) return true;
  for (const char* s = "!#$%&'*+-.^_`|~"; *s; ++s)
    if (c == *s) return true;
  return false;
});

// request-target bytes: anything visible (including obs-text), no SP, no CTL, no DEL.
constexpr Table kTargetChar = makeTable([](int c) { return c > 0x20 && c != 0x7f; });

// field-value bytes (RFC 9110 §5.5): VCHAR / obs-text / SP / HTAB; CR ends the value.
constexpr Table kValueChar =
    makeTable([](int c) { return c == '\t' || (c >= 0x20 && c != 0x7f); });

inline uint8_t u8(char c) { return static_cast<uint8_t>(c); }

// min(p + n, lim) without forming an out-of-range pointer.
inline const char* bound(const char* p, size_t n, const char* lim) {
  return static_cast<size_t>(lim - p) > n ? p + n : lim;
}

inline bool isOws(char c) { return c == ' ' || c == '\t'; }

// Word-at-a-time pre-scan (SWAR) for the long runs in targets and field values: skips
// 8 bytes while none of them can end the run; the byte loop after it has the final
// word. Loads only whole words below stop.
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
// Some byte of x is < n (n <= 128).
inline bool hasLess(uint64_t x, uint64_t n) { return ((x - kOnes * n) & ~x & kHighs) != 0; }
// Some byte of x equals b.
inline bool hasByte(uint64_t x, uint64_t b) {
  const uint64_t y = x ^ (kOnes * b);
  return ((y - kOnes) & ~y & kHighs) != 0;
}

// Advances p over bytes that are all > 0x20 (target) or >= 0x20 (value), and not DEL.
inline const char* skipWords(const char* p, const char* stop, uint64_t below) {
  while (stop - p >= 8) {
    const uint64_t x = load64(p);
    if (hasLess(x, below) || hasByte(x, 0x7f)) break;
    p += 8;
  }
  return p;
}

}  // namespace

int parseRequest(const char* buf, size_t len, RequestHead* req, const ParseLimits& limits) {
  // Nothing past max_head bytes is examined: a head that has not ended within them is
  // too large, whatever follows.
  const bool at_head_limit = len >= limits.max_head;
  const char* const lim = buf + (at_head_limit ? limits.max_head : len);
  const int out_of_bytes = at_head_limit ? kHeadTooLarge : kIncomplete;
  const size_t max_line = limits.max_line;
  const char* p = buf;

  // RFC 9112 §2.2: empty lines before the request-line are ignored.
  for (;;) {
    if (p == lim) return out_of_bytes;
    if (*p == '\n') return kBadRequest;
    if (*p != '\r') break;
    if (p + 1 == lim) return out_of_bytes;
    if (p[1] != '\n') return kBadRequest;
    p += 2;
  }

  // request-line = method SP request-target SP HTTP-version (RFC 9112 §3).
  const char* line = p;
  const char* line_stop = bound(line, max_line, lim);
  while (p < line_stop && kTokenChar[u8(*p)]) ++p;
  if (p == line_stop) {
    if (p == lim) return out_of_bytes;
    if (*p != '\r') return kHeadTooLarge;
  }
  if (p == line || *p != ' ') return kBadRequest;
  req->method = std::string_view(line, static_cast<size_t>(p - line));
  ++p;

  const char* target = p;
  const char* target_stop = bound(target, limits.max_target, line_stop);
  p = skipWords(p, target_stop, 0x21);
  while (p < target_stop && kTargetChar[u8(*p)]) ++p;
  if (p == target_stop) {
    if (p == lim) return out_of_bytes;
    if (static_cast<size_t>(p - target) == limits.max_target && kTargetChar[u8(*p)])
      return kUriTooLong;
    if (static_cast<size_t>(p - line) == max_line && *p != '\r') return kHeadTooLarge;
  }
  if (p == target || *p != ' ') return kBadRequest;
  req->target = std::string_view(target, static_cast<size_t>(p - target));
  ++p;

  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3), then CRLF.
  static constexpr char kVersionShape[] = "HTTP/0.0\r";
  for (int i = 0; i < 9; ++i, ++p) {
    if (p == lim) return out_of_bytes;
    const char c = *p;
    if (static_cast<size_t>(p - line) >= max_line && c != '\r') return kHeadTooLarge;
    const bool ok = (i == 5 || i == 7) ? (c >= '0' && c <= '9') : c == kVersionShape[i];
    if (!ok) return kBadRequest;
  }
  if (p == lim) return out_of_bytes;
  if (*p != '\n') return kBadRequest;
  ++p;
  const char major = p[-5];
  const char minor = p[-3];
  if (major != '1' || (minor != '0' && minor != '1')) return kBadVersion;
  req->minor_version = minor - '0';

  // field-line = field-name ":" OWS field-value OWS CRLF (RFC 9112 §5).
  const size_t capacity = req->num_headers;
  size_t count = 0;
  for (;;) {
    line = p;
    if (p == lim) return out_of_bytes;
    if (*p == '\r') {
      if (p + 1 == lim) return out_of_bytes;
      if (p[1] != '\n') return kBadRequest;
      req->num_headers = count;
      return static_cast<int>(p + 2 - buf);
    }
    // Leading whitespace is obs-fold, or whitespace before the first field line
    // (RFC 9112 §2.2, §5.2): both rejected.
    if (*p == '\n' || isOws(*p)) return kBadRequest;
    if (count == capacity) return kHeadTooLarge;

    line_stop = bound(line, max_line, lim);
    while (p < line_stop && kTokenChar[u8(*p)]) ++p;
    if (p == line_stop) {
      if (p == lim) return out_of_bytes;
      if (*p != '\r') return kHeadTooLarge;
    }
    // No whitespace between field name and colon (RFC 9112 §5.1).
    if (p == line || *p != ':') return kBadRequest;
    const std::string_view name(line, static_cast<size_t>(p - line));
    ++p;

    while (p < line_stop && isOws(*p)) ++p;
    const char* value = p;
    p = skipWords(p, line_stop, 0x20);
    while (p < line_stop && kValueChar[u8(*p)]) ++p;
    if (p == line_stop) {
      if (p == lim) return out_of_bytes;
      if (*p != '\r') return kHeadTooLarge;
    }
    if (*p != '\r') return kBadRequest;  // CTL, NUL or bare LF inside a field value
    const char* value_end = p;
    while (value_end > value && isOws(value_end[-1])) --value_end;
    if (p + 1 == lim) return out_of_bytes;
    if (p[1] != '\n') return kBadRequest;
    p += 2;
    req->headers[count++] =
        Header{name, std::string_view(value, static_cast<size_t>(value_end - value))};
  }
}

int parseRequest(const char* buf, size_t len, RequestHead* req, const ParseLimits& limits,
                 size_t last_len) {
  if (last_len == 0 || last_len >= len || len >= limits.max_head)
    return parseRequest(buf, len, req, limits);

  // Only the bytes that arrived since last_len can change the verdict from
  // kIncomplete: a CR or LF that completes the head or breaks CRLF pairing, or the
  // current line growing past a limit. Anything else waits for the full parse.
  for (size_t i = last_len - 1; i < len; ++i) {
    const char c = buf[i];
    if (c == '\r') {
      if (i + 1 < len && buf[i + 1] != '\n') return parseRequest(buf, len, req, limits);
    } else if (c == '\n') {
      if (i == 0 || buf[i - 1] != '\r') return parseRequest(buf, len, req, limits);
      if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r')
        return parseRequest(buf, len, req, limits);
    }
  }
  const size_t line_limit =
      limits.max_line < limits.max_target ? limits.max_line : limits.max_target;
  const size_t window = len < line_limit + 2 ? len : line_limit + 2;
  const void* lf = memrchr(buf + (len - window), '\n', window);
  const size_t line_start =
      lf ? static_cast<size_t>(static_cast<const char*>(lf) - buf) + 1 : len - window;
  if (!lf && line_start > 0) return parseRequest(buf, len, req, limits);
  if (len - line_start > line_limit) return parseRequest(buf, len, req, limits);
  return kIncomplete;
}

long findHeadEnd(const char* buf, size_t len) {
  const char* p = buf;
  const char* const end = buf + len;
  while (static_cast<size_t>(end - p) >= 4) {
    const void* cr = memchr(p, '\r', static_cast<size_t>(end - p) - 3);
    if (!cr) return -1;
    p = static_cast<const char*>(cr);
    if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n') return static_cast<long>(p + 4 - buf);
    ++p;
  }
  return -1;
}

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!kTokenChar[u8(c)]) return false;
  }
  return true;
}

}  // namespace lisod
