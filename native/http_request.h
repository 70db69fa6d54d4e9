// Semantic checks on a parsed request head (RFC 9110/9112): framing, connection
// persistence, Host, Expect. Pure function, table-tested.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "http_parser.h"

namespace lisod {

enum class Method { kGet, kHead, kPost, kOther };

struct RequestInfo {
  int status = 0;             // 0 = acceptable; else the error status to answer (400, 411, 413, 501 …)
  Method method = Method::kOther;
  bool keep_alive = true;     // 1.1: unless "Connection: close"; 1.0: only with "keep-alive"
  bool chunked = false;       // Transfer-Encoding: chunked (final coding)
  bool has_length = false;    // Content-Length present
  uint64_t content_length = 0;
  bool expect_continue = false;  // "Expect: 100-continue" (case-insensitive)
  std::string_view host;      // Host header value (may be empty on 1.0)
  std::string_view if_modified_since;
  std::string_view range;
};

// Classifies a parsed head. Rules (status in RequestInfo.status):
// - method: GET/HEAD/POST known; any other syntactically valid token → 501.
// - 1.1 without exactly one Host header → 400 (RFC 9112 §3.2). Two Host headers → 400.
// - Content-Length: digits only (no sign, no spaces inside); several CL headers or a
//   comma list with differing values → 400; "-1" or any non-digit → 400 (RFC 9112 §6.3).
// - Transfer-Encoding together with Content-Length → 400 (RFC 9112 §6.1 smuggling).
// - Transfer-Encoding whose final coding is not "chunked" → 400 (we cannot find the
//   end of such a body); any coding other than chunked → 501.
// - Content-Length above max_body → 413.
// - POST with neither Content-Length nor chunked → 411.
// - keep_alive: Connection header tokens (comma separated, case-insensitive).
// Header name comparisons are case-insensitive.
RequestInfo classifyRequest(const RequestHead& head, uint64_t max_body);

bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Which application mount serves `target` (origin-form path, query included, undecoded): the
// index of the longest prefix p in `prefixes` (each without a trailing '/') such that target
// is p or continues with '/' or '?' (segment boundary: "/php" serves "/php", "/php?q" and
// "/php/x", not "/phpx"); -1 when none does. An empty prefix never matches.
int matchAppPrefix(std::string_view path, const std::vector<std::string>& prefixes);

}  // namespace lisod
