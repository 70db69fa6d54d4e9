// Pure HTTP/1.1 request-head parser (RFC 9112 §2–§5), picohttpparser style:
// no allocation, fields are string_views into the caller's buffer.
#pragma once
#include <cstddef>
#include <string_view>

namespace lisod {

struct Header {
  std::string_view name;
  std::string_view value;  // OWS trimmed on both sides (RFC 9112 §5.1)
};

struct RequestHead {
  std::string_view method;
  std::string_view target;   // request-target as sent
  int minor_version = 1;     // HTTP/1.<minor>; only 0 and 1 are accepted
  Header* headers = nullptr; // caller-owned array
  size_t num_headers = 0;    // in: capacity of headers; out: count parsed
};

struct ParseLimits {
  size_t max_line = 8192;      // longest request line or header line (Liso: 8192)
  size_t max_target = 8000;    // longest request-target → kUriTooLong
  size_t max_head = 65536;     // whole head incl. blank line → kHeadTooLarge
};

// Negative results of parseRequest. Non-negative results are bytes consumed.
enum ParseError : int {
  kIncomplete = -1,     // need more bytes; nothing decided yet
  kBadRequest = -2,     // 400: garbage, bare CR or LF, obs-fold, bad token chars, ws before ':'
  kBadVersion = -3,     // 505: well-formed HTTP-version other than 1.0/1.1 (e.g. HTTP/0.1, HTTP/2.0)
  kUriTooLong = -4,     // 414
  kHeadTooLarge = -5,   // 431: a line over max_line, head over max_head, or more headers than capacity
};

// Parses one request head from buf[0, len). Leading empty lines (CRLF) are skipped
// (RFC 9112 §2.2). Returns the number of bytes up to and including the blank line
// that ends the head, or a ParseError. Line terminator is CRLF only; a bare CR or a
// bare LF is kBadRequest. A line longer than max_line is reported as kHeadTooLarge
// as soon as it is seen, even before its terminator arrives (so a caller can reject
// early); the same for the target (kUriTooLong) as soon as it exceeds max_target.
// req->num_headers is written only on success; after any other result it still holds
// the caller's capacity, so the same RequestHead can be passed again with more bytes.
int parseRequest(const char* buf, size_t len, RequestHead* req, const ParseLimits& limits);

// Same verdicts, for callers that re-parse a growing buffer (bytes arriving one by one
// must not cost O(n^2)): last_len is the buffer length at the previous call that
// returned kIncomplete for this head (0 at first). When the bytes since then cannot
// end the head, break CRLF pairing or push the current line past a limit, returns
// kIncomplete without re-scanning; otherwise returns parseRequest(buf, len, req,
// limits). Errors inside a line (bad token chars, CTLs, 505) are therefore reported
// when the head completes or a limit is crossed, never a different verdict.
int parseRequest(const char* buf, size_t len, RequestHead* req, const ParseLimits& limits,
                 size_t last_len);

// Finds the end of a request head ("\r\n\r\n") in buf[0, len). Returns the offset just
// past it, or -1. (The server no longer skips a rejected head to go on with the next
// request: it closes the connection instead. Kept for tools and tests.)
long findHeadEnd(const char* buf, size_t len);

// token (RFC 9110 §5.6.2): one or more tchar.
bool isToken(std::string_view s);

}  // namespace lisod
