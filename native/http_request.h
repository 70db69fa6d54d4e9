// Semantic checks on a parsed request head (RFC 9110/9112): framing, connection
// persistence, Host, Expect. Pure function, table-tested.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "http_parser.h"

namespace lisod {

// kStandard: another method defined by RFC 9110 §9 or RFC 5789 (PUT, DELETE, PATCH, OPTIONS,
// CONNECT, TRACE); kOther: any other syntactically valid token (methods are case-sensitive).
enum class Method { kGet, kHead, kPost, kStandard, kOther };

// The class of a method token (case-sensitive, RFC 9110 §9.1).
Method methodOf(std::string_view method);

struct RequestInfo {
  int status = 0;             // 0 = acceptable; else the error status to answer (400, 411, 413, 501 …)
  Method method = Method::kOther;
  bool keep_alive = true;     // 1.1: unless "Connection: close"; 1.0: only with "keep-alive"
  bool chunked = false;       // Transfer-Encoding: chunked (final coding)
  bool has_length = false;    // Content-Length present
  uint64_t content_length = 0;
  bool expect_continue = false;  // "Expect: 100-continue" (case-insensitive)
  std::string_view host;      // the request's host: an absolute-form target's authority
                              // (RFC 9112 §3.2.2), else the Host value (empty: 1.0 without)
  std::string_view if_modified_since;
  std::string_view range;
  // Conditional and negotiation fields for static files (first occurrence of each).
  std::string_view if_none_match, if_match, if_unmodified_since, if_range, accept_encoding;
};

// Classifies a parsed head. Rules (status in RequestInfo.status):
// - method: every valid token passes here; whether a path accepts it is methodStatus().
// - 1.1 without exactly one Host header → 400 (RFC 9112 §3.2). Two Host headers → 400.
//   An empty Host → 400 in any version (RFC 9110 §4.2.1: an http URI has a non-empty host).
// - target: origin- or absolute-form; "*" only with OPTIONS, authority-form only with
//   CONNECT (RFC 9112 §3.2.3, §3.2.4); anything else → 400. An absolute-form target
//   needs a valid, non-empty authority (no userinfo) → else 400.
// - Content-Length: digits only (no sign, no spaces inside); several CL headers or a
//   comma list with differing values → 400; "-1" or any non-digit → 400 (RFC 9112 §6.3).
// - Transfer-Encoding together with Content-Length → 400 (RFC 9112 §6.1 smuggling).
// - Transfer-Encoding whose final coding is not "chunked" → 400 (we cannot find the
//   end of such a body); any coding other than chunked → 501.
// - Content-Length above max_body → 413.
// - POST with neither Content-Length nor chunked → 411 (other methods: no body, §6.3).
// - keep_alive: Connection header tokens (comma separated, case-insensitive).
// Header name comparisons are case-insensitive.
RequestInfo classifyRequest(const RequestHead& head, uint64_t max_body);

// The authority of an absolute-form target ("http://h:1/p" → "h:1"; the scheme is
// case-insensitive), or "" for any other form.
std::string_view targetAuthority(std::string_view target);

// What a path answers to a method: 0 = serve it. Applications receive every token;
// static files take GET, HEAD and POST, 405 for the other standard methods (the caller
// sends `Allow: GET, HEAD, POST`, RFC 9110 §15.5.6) and 501 for unknown ones (§15.6.2).
int methodStatus(Method method, bool is_app);

bool equalsIgnoreCase(std::string_view a, std::string_view b);

// Which application mount serves `target` (origin-form path, query included, undecoded): the
// index of the longest prefix p in `prefixes` (each without a trailing '/') such that target
// is p or continues with '/' or '?' (segment boundary: "/php" serves "/php", "/php?q" and
// "/php/x", not "/phpx"); -1 when none does. An empty prefix never matches.
int matchAppPrefix(std::string_view path, const std::vector<std::string>& prefixes);

}  // namespace lisod
