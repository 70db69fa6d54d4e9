#include "nph_framing.h"

#include <algorithm>

namespace lisod {
namespace {

inline uint8_t u8(char c) { return static_cast<uint8_t>(c); }

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }

// What String.prototype.trim removes from a latin1-decoded string: each byte is the code point
// U+00XX, and of those JavaScript counts HT, LF, VT, FF, CR, space and NBSP (U+00A0) as white
// space or line terminators (not U+0085, not the FS/GS/RS/US controls).
bool isJsSpace(char c) {
  const uint8_t b = u8(c);
  return b == ' ' || (b >= 0x09 && b <= 0x0d) || b == 0xa0;
}

std::string_view jsTrim(std::string_view s) {
  while (!s.empty() && isJsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && isJsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// s.toLowerCase() === lower, for an ASCII lower-case target: no latin1 letter outside ASCII
// lower-cases into ASCII, so folding A–Z alone decides it.
bool jsLowerEquals(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

// value.split(',').some((t) => t.trim().toLowerCase() === token)
bool hasToken(std::string_view value, std::string_view token) {
  for (;;) {
    const size_t comma = value.find(',');
    if (jsLowerEquals(jsTrim(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) return false;
    value.remove_prefix(comma + 1);
  }
}

// Walks head.split(/\r?\n/): a line ends at each LF, and one CR right before it goes with the
// separator; the text after the last LF is a line too, as in JavaScript.
class Lines {
 public:
  explicit Lines(std::string_view s) : rest_(s) {}
  bool next(std::string_view* line) {
    if (done_) return false;
    const size_t lf = rest_.find('\n');
    if (lf == std::string_view::npos) {
      *line = rest_;
      done_ = true;
      return true;
    }
    *line = rest_.substr(0, lf > 0 && rest_[lf - 1] == '\r' ? lf - 1 : lf);
    rest_.remove_prefix(lf + 1);
    return true;
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

// /^HTTP\/1\.[0-9] ([0-9]{3})/ on the first line; 0 when it does not match.
int statusOf(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ') return 0;
  if (!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11])) return 0;
  return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

}  // namespace

BodyEnd BodyEnd::length(uint64_t n) { return BodyEnd(Kind::kLength, n); }
BodyEnd BodyEnd::chunked() { return BodyEnd(Kind::kChunked, 0); }
BodyEnd BodyEnd::untilEof() { return BodyEnd(Kind::kEof, 0); }

bool BodyEnd::delimited() const { return kind_ != Kind::kEof; }
bool BodyEnd::complete() const { return complete_; }

size_t BodyEnd::take(std::string_view data) {
  if (complete_) return 0;
  switch (kind_) {
    case Kind::kChunked: {
      const size_t end = scan_.push(data);
      if (end == ChunkedScan::kNoEnd) return data.size();
      complete_ = true;
      return end;
    }
    case Kind::kEof:
      return data.size();
    case Kind::kLength:
      break;
  }
  const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size(), remaining_));
  remaining_ -= n;
  if (remaining_ == 0) complete_ = true;
  return n;
}

// The state machine of ChunkedEnd.push, transition for transition. Past a framing error it stays
// in kBad and never reports an end: the body is then delimited by EOF, not rejected.
size_t BodyEnd::ChunkedScan::push(std::string_view b) {
  for (size_t i = 0; i < b.size(); ++i) {
    const char c = b[i];
    switch (state_) {
      case State::kSize: {
        const int v = hexValue(c);
        if (v >= 0 && digits_ < 12) {
          size_ = size_ * 16 + static_cast<uint64_t>(v);
          ++digits_;
        } else if (digits_ > 0 && (c == ';' || c == ' ' || c == '\t')) {
          state_ = State::kExt;
        } else if (digits_ > 0 && c == '\r') {
          state_ = State::kSizeLf;
        } else {
          state_ = State::kBad;  // no digits, a 13th digit, or any other byte
        }
        break;
      }
      case State::kExt:  // extensions (and whitespace before them) are skipped up to CR
        if (c == '\r') state_ = State::kSizeLf;
        break;
      case State::kSizeLf:
        if (c != '\n') {
          state_ = State::kBad;
        } else if (size_ == 0) {
          state_ = State::kTrailer;
        } else {
          left_ = size_;
          state_ = State::kData;
        }
        break;
      case State::kData: {
        // Skip the data in one step; i ends on its last byte (the loop's ++i moves past it).
        const uint64_t n = std::min<uint64_t>(left_, b.size() - i);
        left_ -= n;
        i += static_cast<size_t>(n) - 1;
        if (left_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        state_ = c == '\r' ? State::kDataLf : State::kBad;
        break;
      case State::kDataLf:
        if (c != '\n') {
          state_ = State::kBad;
        } else {
          state_ = State::kSize;
          size_ = 0;
          digits_ = 0;
        }
        break;
      case State::kTrailer:  // start of a trailer line, or the final CRLF
        state_ = c == '\r' ? State::kEndLf : State::kTrailerLine;
        break;
      case State::kTrailerLine:
        if (c == '\r') state_ = State::kTrailerLf;
        break;
      case State::kTrailerLf:
        state_ = c == '\n' ? State::kTrailer : State::kBad;
        break;
      case State::kEndLf:
        if (c == '\n') return i + 1;
        state_ = State::kBad;
        break;
      case State::kBad:
        return kNoEnd;
    }
  }
  return kNoEnd;
}

NphFraming nphFraming(std::string_view head, std::string_view method, std::string_view version) {
  Lines lines(head);
  std::string_view first;
  lines.next(&first);  // split() always yields at least one (possibly empty) line
  const int status = statusOf(first);

  bool has_length = false;
  uint64_t length = 0;
  bool length_bad = false;
  // The TypeScript joins every Transfer-Encoding value with ", " and looks at the last coding;
  // that coding always comes from the last field's value, so only that value is kept. A field
  // counts even when empty (its coding is then "", not chunked).
  bool has_te = false;
  std::string_view last_te;
  bool close = false;
  for (std::string_view line; lines.next(&line);) {
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    const std::string_view name = jsTrim(line.substr(0, colon));
    const std::string_view value = jsTrim(line.substr(colon + 1));
    if (jsLowerEquals(name, "content-length")) {
      // /^[0-9]{1,15}$/, then Number(): 15 digits stay exact (below 2^53), leading zeros ignored.
      bool ok = !value.empty() && value.size() <= 15;
      uint64_t n = 0;
      for (size_t i = 0; ok && i < value.size(); ++i) {
        ok = isDigit(value[i]);
        if (ok) n = n * 10 + static_cast<uint64_t>(value[i] - '0');
      }
      if (!ok || (has_length && length != n)) {
        length_bad = true;
      } else {
        has_length = true;
        length = n;
      }
    } else if (jsLowerEquals(name, "transfer-encoding")) {
      has_te = true;
      last_te = value;
    } else if (jsLowerEquals(name, "connection")) {
      if (hasToken(value, "close")) close = true;
    }
  }

  const bool http11 = version == "HTTP/1.1" && first.substr(0, 9) == "HTTP/1.1 ";
  BodyEnd body = BodyEnd::untilEof();
  if (method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304) {
    body = BodyEnd::length(0);
  } else if (has_te) {
    const size_t comma = last_te.rfind(',');
    const std::string_view coding = jsTrim(comma == std::string_view::npos ? last_te : last_te.substr(comma + 1));
    if (jsLowerEquals(coding, "chunked") && http11) body = BodyEnd::chunked();
  } else if (has_length && !length_bad) {
    body = BodyEnd::length(length);
  }
  return NphFraming{body, body.delimited() && !close && http11};
}

}  // namespace lisod
