// Combined Log Format lines, formatted in C++ so that the static path never enters
// JavaScript: host ident user [time] "request" status bytes "referer" "user-agent".
// Pure functions plus a per-loop clock that formats the time once per second.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lisod {

// One finished request. Views into the connection's request; valid during the call.
struct AccessEntry {
  std::string_view remote;      // peer address; IPv4-mapped IPv6 is written as plain IPv4
  std::string_view user;        // %u: who the request is authenticated as; empty = "-"
  std::string_view method;      // empty: the request never parsed, the request is "-"
  std::string_view target;      // raw request-target
  std::string_view version;     // "HTTP/1.1"; empty for a version-less line
  std::string_view referer;     // empty = "-"
  std::string_view user_agent;  // empty = "-"
  int status = 0;
  uint64_t bytes = 0;  // body bytes sent; 0 is written "-" (Apache %b)
};

// Appends one line (with its '\n') to out. Quoted fields and the user escape '"' and '\'
// with a backslash, control characters as \n, \r, \t or \xHH, and bytes that are not
// UTF-8 as \xHH, so a line is always one valid UTF-8 line that log analysers can split;
// the unquoted user field also writes a space as \x20. clf_time: "10/Oct/2000:13:55:36 -0700".
void appendAccessLine(std::string& out, const AccessEntry& e, std::string_view clf_time);

// The parts of a connection's lines that stay the same from request to request (peer and
// user; referer and user agent, which a client sends alike on every stream), escaped once
// and reused while their raw values repeat. One per connection; empty until first used.
struct AccessLineMemo {
  struct Part {
    std::string first, second;  // the raw values text was made from
    std::string text;
    bool made = false;
  };
  Part head;  // remote, user → `host - user [`
  Part tail;  // referer, user agent → `" "referer" "agent"\n`
};

// The same line as above, byte for byte; memo keeps the repeating parts escaped.
void appendAccessLine(std::string& out, const AccessEntry& e, std::string_view clf_time, AccessLineMemo& memo);

// The local wall-clock time as CLF text, recomputed (localtime_r for the zone offset, as
// JavaScript's getTimezoneOffset does) only when the second changes. One per event loop.
class ClfClock {
 public:
  std::string_view now();

 private:
  int64_t second_ = INT64_MIN;
  char text_[32] = {0};
  size_t len_ = 0;
};

// Length of the valid UTF-8 sequence starting at s[i] (2–4), or 0 (RFC 3629 §4: no
// overlongs, no surrogates, nothing above U+10FFFF). Contract: i < s.size().
size_t utf8Length(std::string_view s, size_t i);

}  // namespace lisod
