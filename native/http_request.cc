// Semantic checks on a parsed request head: message framing (RFC 9112 §6), Host
// (RFC 9112 §3.2), persistence (RFC 9112 §9.3) and Expect (RFC 9110 §10.1.1).
#include "http_request.h"

#include <array>
#include <cstdint>
#include <limits>

namespace lisod {
namespace {

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

inline bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

// Calls fn(element) for each OWS-trimmed, non-empty element of a comma-separated list
// (RFC 9110 §5.6.1: recipients accept and ignore empty elements). Stops when fn
// returns false.
template <typename Fn>
void forEachElement(std::string_view list, Fn fn) {
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view element = trimOws(list.substr(0, comma));
    if (!element.empty() && !fn(element)) return;
    if (comma == std::string_view::npos) return;
    list.remove_prefix(comma + 1);
  }
}

// Content-Length = 1*DIGIT. Saturates at UINT64_MAX (which any max_body rejects).
bool parseLength(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10)
      v = std::numeric_limits<uint64_t>::max();
    else
      v = v * 10 + d;
  }
  *out = v;
  return true;
}

// Host = uri-host [ ":" port ] (RFC 9110 §7.2): reg-name / IPv4 / IP-literal chars only.
constexpr auto kHostByte = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (unsigned char c : std::string_view("-._~%!$&'()*+,;=:[]")) t[c] = true;
  return t;
}();

bool validHost(std::string_view host) {
  for (char c : host) {
    if (!kHostByte[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

enum class Field { kOther, kHost, kContentLength, kTransferEncoding, kConnection, kExpect,
                   kIfModifiedSince, kRange, kIfNoneMatch, kIfMatch, kIfUnmodifiedSince, kIfRange,
                   kAcceptEncoding };

Field fieldOf(std::string_view name) {
  switch (name.size()) {
    case 4:
      if (equalsIgnoreCase(name, "host")) return Field::kHost;
      break;
    case 5:
      if (equalsIgnoreCase(name, "range")) return Field::kRange;
      break;
    case 6:
      if (equalsIgnoreCase(name, "expect")) return Field::kExpect;
      break;
    case 8:
      if (equalsIgnoreCase(name, "if-match")) return Field::kIfMatch;
      if (equalsIgnoreCase(name, "if-range")) return Field::kIfRange;
      break;
    case 10:
      if (equalsIgnoreCase(name, "connection")) return Field::kConnection;
      break;
    case 13:
      if (equalsIgnoreCase(name, "if-none-match")) return Field::kIfNoneMatch;
      break;
    case 15:
      if (equalsIgnoreCase(name, "accept-encoding")) return Field::kAcceptEncoding;
      break;
    case 19:
      if (equalsIgnoreCase(name, "if-unmodified-since")) return Field::kIfUnmodifiedSince;
      break;
    case 14:
      if (equalsIgnoreCase(name, "content-length")) return Field::kContentLength;
      break;
    case 17:
      if (equalsIgnoreCase(name, "transfer-encoding")) return Field::kTransferEncoding;
      if (equalsIgnoreCase(name, "if-modified-since")) return Field::kIfModifiedSince;
      break;
    default:
      break;
  }
  return Field::kOther;
}

}  // namespace

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

Method methodOf(std::string_view m) {
  if (m == "GET") return Method::kGet;
  if (m == "HEAD") return Method::kHead;
  if (m == "POST") return Method::kPost;
  if (m == "PUT" || m == "DELETE" || m == "PATCH" || m == "OPTIONS" || m == "CONNECT" || m == "TRACE")
    return Method::kStandard;
  return Method::kOther;
}

RequestInfo classifyRequest(const RequestHead& head, uint64_t max_body) {
  RequestInfo info;
  const bool http11 = head.minor_version >= 1;
  info.method = methodOf(head.method);

  int host_count = 0;
  bool bad_host = false;
  bool bad_length = false;
  bool has_te = false;
  bool te_empty = true;
  bool te_final_chunked = false;
  int te_chunked_count = 0;
  bool te_other = false;
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool expect_continue = false;

  for (size_t i = 0; i < head.num_headers; ++i) {
    const Header& h = head.headers[i];
    switch (fieldOf(h.name)) {
      case Field::kHost:
        if (++host_count == 1) info.host = h.value;
        if (h.value.empty() || !validHost(h.value)) bad_host = true;
        break;
      case Field::kContentLength: {
        // Several lines or a list are acceptable only if every value is the same
        // (RFC 9112 §6.3 item 5, RFC 9110 §8.6).
        bool any = false;
        forEachElement(h.value, [&](std::string_view element) {
          uint64_t v = 0;
          any = true;
          if (!parseLength(element, &v) || (info.has_length && v != info.content_length)) {
            bad_length = true;
            return false;
          }
          info.has_length = true;
          info.content_length = v;
          return true;
        });
        if (!any) bad_length = true;
        break;
      }
      case Field::kTransferEncoding:
        has_te = true;
        forEachElement(h.value, [&](std::string_view coding) {
          te_empty = false;
          te_final_chunked = equalsIgnoreCase(coding, "chunked");
          if (te_final_chunked) ++te_chunked_count;
          else te_other = true;
          return true;
        });
        break;
      case Field::kConnection:
        forEachElement(h.value, [&](std::string_view option) {
          if (equalsIgnoreCase(option, "close")) conn_close = true;
          else if (equalsIgnoreCase(option, "keep-alive")) conn_keep_alive = true;
          return true;
        });
        break;
      case Field::kExpect:
        forEachElement(h.value, [&](std::string_view e) {
          if (equalsIgnoreCase(e, "100-continue")) expect_continue = true;
          return true;
        });
        break;
      case Field::kIfModifiedSince:
        if (info.if_modified_since.empty()) info.if_modified_since = h.value;
        break;
      case Field::kRange:
        if (info.range.empty()) info.range = h.value;
        break;
      case Field::kIfNoneMatch:
        if (info.if_none_match.empty()) info.if_none_match = h.value;
        break;
      case Field::kIfMatch:
        if (info.if_match.empty()) info.if_match = h.value;
        break;
      case Field::kIfUnmodifiedSince:
        if (info.if_unmodified_since.empty()) info.if_unmodified_since = h.value;
        break;
      case Field::kIfRange:
        if (info.if_range.empty()) info.if_range = h.value;
        break;
      case Field::kAcceptEncoding:
        if (info.accept_encoding.empty()) info.accept_encoding = h.value;
        break;
      case Field::kOther:
        break;
    }
  }

  info.keep_alive = !conn_close && (http11 || conn_keep_alive);
  info.chunked = has_te && te_final_chunked;
  // RFC 9110 §10.1.1: a 100-continue expectation in an HTTP/1.0 request is ignored.
  info.expect_continue = expect_continue && http11;

  auto reject = [&](int status) {
    info.status = status;
    if (status == 400) info.keep_alive = false;  // framing cannot be trusted
    return info;
  };

  // RFC 9112 §3.2: exactly one valid Host in HTTP/1.1; never more than one.
  if (host_count > 1 || bad_host || (http11 && host_count == 0)) return reject(400);
  if (bad_length) return reject(400);
  if (has_te) {
    // RFC 9112 §6.1: TE with CL is a smuggling vector; TE in HTTP/1.0 means faulty
    // framing; chunked must be final and applied once; a coding we do not
    // implement → 501.
    if (info.has_length || !http11 || te_empty || !te_final_chunked || te_chunked_count > 1)
      return reject(400);
    if (te_other) return reject(501);
  }
  // RFC 9112 §3.2: origin-form or absolute-form; asterisk-form for OPTIONS and
  // authority-form (no '/') for CONNECT only.
  const std::string_view target = head.target;
  const bool origin_or_absolute =
      !target.empty() && (target[0] == '/' || startsWithIgnoreCase(target, "http://") ||
                          startsWithIgnoreCase(target, "https://"));
  const bool asterisk = target == "*" && head.method == "OPTIONS";
  const bool authority = head.method == "CONNECT" && !target.empty() &&
                         target.find('/') == std::string_view::npos && validHost(target);
  if (!origin_or_absolute && !asterisk && !authority) return reject(400);
  if (target[0] != '/') {
    const std::string_view from_target = targetAuthority(target);
    if (origin_or_absolute && (from_target.empty() || !validHost(from_target))) return reject(400);
    if (!from_target.empty()) info.host = from_target;  // RFC 9112 §3.2.2: the Host field is ignored
  }
  if (info.has_length && info.content_length > max_body) return reject(413);
  if (info.method == Method::kPost && !info.has_length && !info.chunked) return reject(411);
  return info;
}

std::string_view targetAuthority(std::string_view target) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (startsWithIgnoreCase(target, scheme)) {
      target.remove_prefix(scheme.size());
      return target.substr(0, target.find_first_of("/?#"));
    }
  }
  return {};
}

int methodStatus(Method method, bool is_app) {
  if (is_app) return 0;
  switch (method) {
    case Method::kGet:
    case Method::kHead:
    case Method::kPost: return 0;
    case Method::kStandard: return 405;
    case Method::kOther: return 501;
  }
  return 501;
}

int matchAppPrefix(std::string_view path, const std::vector<std::string>& prefixes) {
  int best = -1;
  size_t best_len = 0;
  for (size_t i = 0; i < prefixes.size(); ++i) {
    std::string_view p = prefixes[i];
    if (p.empty() || p.size() < best_len || path.substr(0, p.size()) != p) continue;
    if (path.size() == p.size() || path[p.size()] == '/' || path[p.size()] == '?') {
      best = static_cast<int>(i);
      best_len = p.size();
    }
  }
  return best;
}

}  // namespace lisod
