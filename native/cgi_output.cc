#include "cgi_output.h"

#include <cstring>

#include "http_parser.h"
#include "http_request.h"

namespace lisod {
namespace {

inline uint8_t u8(char c) { return static_cast<uint8_t>(c); }

// Length of the JavaScript whitespace or line terminator (as UTF-8) that starts s, or 0.
size_t jsSpaceAtStart(std::string_view s) {
  if (s.empty()) return 0;
  const uint8_t a = u8(s[0]);
  if (a == ' ' || (a >= 0x09 && a <= 0x0d)) return 1;  // HT LF VT FF CR
  if (s.size() >= 2 && a == 0xc2 && u8(s[1]) == 0xa0) return 2;  // U+00A0
  if (s.size() < 3) return 0;
  const uint8_t b = u8(s[1]), c = u8(s[2]);
  if (a == 0xe1 && b == 0x9a && c == 0x80) return 3;                  // U+1680
  if (a == 0xe2 && b == 0x80 && ((c >= 0x80 && c <= 0x8a) || c == 0xa8 || c == 0xa9 || c == 0xaf)) return 3;
  if (a == 0xe2 && b == 0x81 && c == 0x9f) return 3;                  // U+205F
  if (a == 0xe3 && b == 0x80 && c == 0x80) return 3;                  // U+3000
  if (a == 0xef && b == 0xbb && c == 0xbf) return 3;                  // U+FEFF
  return 0;
}

// The same, for the whitespace that ends s. Each form above is a lead byte plus
// continuation bytes that no other sequence ends with, so matching the tail is exact.
size_t jsSpaceAtEnd(std::string_view s) {
  for (size_t k = 1; k <= 3 && k <= s.size(); ++k) {
    if (jsSpaceAtStart(s.substr(s.size() - k)) == k) return k;
  }
  return 0;
}

// String.prototype.trim on the UTF-8 text.
std::string_view jsTrim(std::string_view s) {
  for (size_t k; (k = jsSpaceAtStart(s)) > 0;) s.remove_prefix(k);
  for (size_t k; (k = jsSpaceAtEnd(s)) > 0;) s.remove_suffix(k);
  return s;
}

// JavaScript's "." (no s flag): anything but LF, CR, U+2028, U+2029.
bool jsDotAll(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const uint8_t c = u8(s[i]);
    if (c == '\n' || c == '\r') return false;
    if (c == 0xe2 && i + 2 < s.size() && u8(s[i + 1]) == 0x80 && (u8(s[i + 2]) == 0xa8 || u8(s[i + 2]) == 0xa9))
      return false;
  }
  return true;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// Three digits, the first 1-9.
bool isStatusCode(std::string_view s) {
  return s.size() >= 3 && s[0] >= '1' && s[0] <= '9' && isDigit(s[1]) && isDigit(s[2]);
}

int statusValue(std::string_view s) { return (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0'); }

// Field values hold HTAB, visible and obs-text octets only (RFC 9110 §5.5).
bool hasControlChar(std::string_view v) {
  for (char ch : v) {
    const uint8_t c = u8(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return true;
  }
  return false;
}

// Owned by the server: it writes Server, Date, Connection and the framing itself.
bool isServerOwned(std::string_view name) {
  for (const char* owned : {"server", "date", "connection", "keep-alive", "transfer-encoding", "te", "trailer",
                            "upgrade", "proxy-connection"}) {
    if (equalsIgnoreCase(name, owned)) return true;
  }
  return false;
}

// Reads header lines one at a time and keeps the first error (RFC 3875 §6.2, §6.3).
class Interpreter {
 public:
  explicit Interpreter(CgiHead* out) : out_(out), capacity_(out->num_fields) {
    out_->num_fields = 0;
    out_->error = CgiError::kNone;
  }

  void line(std::string_view line) {
    if (failed()) return;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail(CgiError::kMalformedLine, line);
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = jsTrim(line.substr(colon + 1));
    if (!isToken(name)) return fail(CgiError::kBadName, name);
    if (hasControlChar(value)) return fail(CgiError::kControlChar, name);
    if (equalsIgnoreCase(name, "status")) {
      if (has_status_) return fail(CgiError::kTwoStatus, {});
      has_status_ = true;
      status_ = value;
    } else if (equalsIgnoreCase(name, "location")) {
      if (out_->has_location) return fail(CgiError::kTwoLocation, {});
      out_->has_location = true;
      out_->location = value;
    } else if (equalsIgnoreCase(name, "content-length")) {
      if (value.empty() || value.size() > 15) return fail(CgiError::kBadContentLength, value);
      for (char c : value) {
        if (!isDigit(c)) return fail(CgiError::kBadContentLength, value);
      }
      std::string_view digits = value;
      while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
      if (has_length_ && digits != length_) return fail(CgiError::kConflictingLength, {});
      if (!has_length_) add(name, digits);
      has_length_ = true;
      length_ = digits;
    } else if (!isServerOwned(name)) {
      add(name, value);
    }
  }

  // After the last line: the Status and Location rules.
  void finish() {
    if (failed()) return;
    out_->kind = CgiKind::kResponse;
    out_->has_status = has_status_;
    if (has_status_) {
      // "NNN" or "NNN" [ \t]+ reason, where reason is JavaScript's .* (then trimmed).
      const std::string_view s = status_;
      if (!isStatusCode(s)) return fail(CgiError::kBadStatus, s);
      std::string_view rest = s.substr(3);
      if (!rest.empty()) {
        size_t ws = 0;
        while (ws < rest.size() && (rest[ws] == ' ' || rest[ws] == '\t')) ++ws;
        if (ws == 0 || !jsDotAll(rest.substr(ws))) return fail(CgiError::kBadStatus, s);
        out_->reason = jsTrim(rest.substr(ws));
      }
      out_->status = statusValue(s);
      if (out_->status < 200 || out_->status > 599) return fail(CgiError::kNotFinal, {});
    }
    if (out_->has_location) {
      const std::string_view loc = out_->location;
      if (loc.empty()) return fail(CgiError::kEmptyLocation, {});
      // §6.2.2: a local path with no Status is a local redirect, served by the server.
      if (!has_status_ && loc[0] == '/' && (loc.size() == 1 || loc[1] != '/')) {
        out_->kind = CgiKind::kLocalRedirect;
        out_->num_fields = 0;
        return;
      }
      if (!has_status_) out_->status = 302;  // §6.2.3 client redirect
    }
  }

  void fail(CgiError error, std::string_view text) {
    out_->kind = CgiKind::kInvalid;
    out_->error = error;
    out_->error_text = text;
  }

 private:
  bool failed() const { return out_->error != CgiError::kNone; }
  void add(std::string_view name, std::string_view value) {
    if (out_->num_fields == capacity_) return fail(CgiError::kTooManyFields, {});
    out_->fields[out_->num_fields++] = {name, value};
  }

  CgiHead* out_;
  size_t capacity_;
  bool has_status_ = false, has_length_ = false;
  std::string_view status_, length_;
};

void resetHead(CgiHead* out) {
  CgiField* fields = out->fields;
  size_t capacity = out->num_fields;
  *out = CgiHead{};
  out->fields = fields;
  out->num_fields = capacity;
}

// "HTTP/1.D NNN" then the end or " " and JavaScript's .*.
bool isNphStatusLine(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ') return false;
  if (!isStatusCode(line.substr(9))) return false;
  return line.size() == 12 || (line[12] == ' ' && jsDotAll(line.substr(13)));
}

// Offset just past the first empty line (LF or CRLF alone) in buf[from, len) that
// starts at a line start, or -1. from must be 0 or just past an LF.
long findBlankLine(const char* buf, size_t len, size_t from) {
  size_t p = from;
  while (p < len) {
    if (buf[p] == '\n') return static_cast<long>(p + 1);
    if (buf[p] == '\r' && p + 1 < len && buf[p + 1] == '\n') return static_cast<long>(p + 2);
    const void* nl = std::memchr(buf + p, '\n', len - p);
    if (nl == nullptr) return -1;
    p = static_cast<size_t>(static_cast<const char*>(nl) - buf) + 1;
  }
  return -1;
}

}  // namespace

long parseCgiHead(const char* buf, size_t len, size_t max_head, size_t scanned, CgiHead* out) {
  resetHead(out);
  // Resume at the start of the last line seen whole: just past the last LF before scanned.
  size_t from = 0;
  if (scanned > 0 && scanned <= len) {
    for (size_t i = scanned; i > 0; --i) {
      if (buf[i - 1] == '\n') {
        from = i;
        break;
      }
    }
  }
  const long end = findBlankLine(buf, len, from);
  if (end < 0) {
    if (len <= max_head) return kCgiIncomplete;
    out->kind = CgiKind::kInvalid;
    out->error = CgiError::kTooLarge;
    out->num_fields = 0;
    return kCgiTooLarge;
  }
  const size_t head_end = static_cast<size_t>(end);
  const size_t blank = buf[head_end - 1] == '\n' && head_end >= 2 && buf[head_end - 2] == '\r' ? head_end - 2
                                                                                                : head_end - 1;
  // Lines of buf[0, blank), each ending in LF or CRLF.
  auto lineAt = [&](size_t p, size_t* next) {
    const void* nl = std::memchr(buf + p, '\n', blank - p);
    size_t stop = static_cast<size_t>(static_cast<const char*>(nl) - buf);
    *next = stop + 1;
    if (stop > p && buf[stop - 1] == '\r') --stop;
    return std::string_view(buf + p, stop - p);
  };
  if (blank == 0) {
    Interpreter(out).fail(CgiError::kNoFields, {});
    return end;
  }
  size_t next = 0;
  const std::string_view first = lineAt(0, &next);
  if (first.substr(0, 5) == "HTTP/") {
    out->num_fields = 0;
    if (!isNphStatusLine(first)) {
      Interpreter(out).fail(CgiError::kBadNphLine, first);
      return end;
    }
    out->kind = CgiKind::kNph;
    out->status = statusValue(first.substr(9));
    return end;
  }
  Interpreter in(out);
  for (size_t p = 0; p < blank; p = next) in.line(lineAt(p, &next));
  in.finish();
  return end;
}

void interpretCgiLines(const std::string_view* lines, size_t n, CgiHead* out) {
  resetHead(out);
  Interpreter in(out);
  if (n == 0) return in.fail(CgiError::kNoFields, {});
  for (size_t i = 0; i < n; ++i) in.line(lines[i]);
  in.finish();
}

}  // namespace lisod
