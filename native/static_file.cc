// Request-target → file under the www root (percent-decoding, dot segments, symlink
// containment), and single byte-range parsing (RFC 9110 §14).
#include "static_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <limits>
#include <memory>

namespace lisod {
namespace {

inline char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool startsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i)
    if (lower(s[i]) != lower(prefix[i])) return false;
  return true;
}

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes path into out. False on an invalid escape, or one that yields '/',
// '\\' or NUL (they would change how the path splits into segments), or a raw NUL.
bool percentDecode(std::string_view path, std::string* out) {
  out->clear();
  out->reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      if (i + 2 >= path.size()) return false;
      const int hi = hexValue(path[i + 1]);
      const int lo = hexValue(path[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '/' || c == '\\' || c == '\0') return false;
      i += 2;
    } else if (c == '\0') {
      return false;
    }
    out->push_back(c);
  }
  return true;
}

// Removes dot segments and empty segments (RFC 3986 §5.2.4) from an absolute decoded
// path. False when ".." would climb above "/".
bool normalizePath(std::string_view path, std::string* out) {
  out->assign("/");
  bool trailing_slash = false;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view seg = path.substr(pos, slash - pos);
    const bool last = slash == path.size();
    if (seg.empty() || seg == ".") {
      trailing_slash = last;
    } else if (seg == "..") {
      if (out->size() == 1) return false;
      out->pop_back();  // the '/' after the last segment
      out->erase(out->rfind('/') + 1);
      trailing_slash = last;
    } else {
      out->append(seg);
      out->push_back('/');
      trailing_slash = false;
    }
    pos = slash + 1;
  }
  // out ends with '/' here; keep it only when the path named a directory.
  if (out->size() > 1 && !trailing_slash) out->pop_back();
  return true;
}

// Percent-encodes everything but unreserved, sub-delims, ':', '@' and '/' (RFC 3986
// §3.3 pchar), so the result is safe in a Location header.
std::string encodePath(std::string_view path) {
  constexpr std::string_view kHex = "0123456789ABCDEF";
  constexpr std::string_view kPlainPunct = "-._~!$&'()*+,;=:@/";
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    const auto u = static_cast<unsigned char>(c);
    const bool alnum = (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z');
    if (alnum || kPlainPunct.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

// realpath(3) of path, and whether it stays inside root. status 0 when it exists and
// is inside; 404/403 otherwise.
int realInside(std::string_view root, const std::string& path, std::string* real) {
  std::unique_ptr<char, FreeDeleter> resolved(::realpath(path.c_str(), nullptr));
  if (!resolved) return errno == EACCES ? 403 : 404;
  const std::string_view r(resolved.get());
  const bool inside =
      root == "/" || r == root ||
      (r.size() > root.size() && r.compare(0, root.size(), root) == 0 && r[root.size()] == '/');
  if (!inside) return 404;  // 403 would reveal that the link target exists
  real->assign(r);
  return 0;
}

// A regular, readable file → 0; otherwise 403 (not regular, unreadable) or 404.
int checkFile(const std::string& path, const struct stat& st) {
  if (!S_ISREG(st.st_mode)) return 403;
  if (::access(path.c_str(), R_OK) != 0) return errno == EACCES ? 403 : 404;
  return 0;
}

}  // namespace

bool normalizeDecodedPath(std::string_view path, std::string* out) { return normalizePath(path, out); }

int resolveFilePath(const std::string& root_path, const std::string& path, std::string* real) {
  std::string_view root = root_path;
  while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  if (int status = realInside(root, path, real); status != 0) return status;
  struct stat st;
  if (::stat(real->c_str(), &st) != 0) return errno == EACCES ? 403 : 404;
  return checkFile(*real, st);
}

std::string_view originPath(std::string_view target) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (startsWithIgnoreCase(target, scheme)) {
      target.remove_prefix(scheme.size());
      const size_t slash = target.find('/');
      return slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
    }
  }
  return target;
}

ResolvedPath resolveStaticPath(const std::string& root_path, std::string_view target_path) {
  ResolvedPath r;
  std::string_view root = root_path;
  while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  std::string_view path = originPath(target_path);
  if (path.empty() || path[0] != '/') {
    r.status = 400;
    return r;
  }

  std::string decoded;
  std::string normal;
  if (!percentDecode(path, &decoded) || !normalizePath(decoded, &normal)) {
    r.status = 400;
    return r;
  }

  std::string full(root == "/" ? std::string_view() : root);
  full += normal;

  std::string real;
  if ((r.status = realInside(root, full, &real)) != 0) return r;
  struct stat st;
  if (::stat(real.c_str(), &st) != 0) {
    r.status = errno == EACCES ? 403 : 404;
    return r;
  }
  if (S_ISDIR(st.st_mode)) {
    if (normal.back() != '/') {
      r.status = 301;
      r.redirect = encodePath(normal + "/");
      return r;
    }
    std::string index = real;
    if (index.back() != '/') index.push_back('/');
    index += "index.html";
    if ((r.status = realInside(root, index, &real)) != 0) return r;
    if (::stat(real.c_str(), &st) != 0) {
      r.status = errno == EACCES ? 403 : 404;
      return r;
    }
    if (S_ISDIR(st.st_mode)) {
      r.status = 404;
      return r;
    }
  }
  if ((r.status = checkFile(real, st)) != 0) return r;
  r.path = std::move(real);
  return r;
}

RangeResult parseRange(std::string_view value, uint64_t size, uint64_t* first, uint64_t* last) {
  // ranges-specifier = range-unit "=" range-set; the unit is case-insensitive (§14.1).
  if (!startsWithIgnoreCase(value, "bytes=")) return RangeResult::kNone;
  std::string_view set = value.substr(6);
  auto isOws = [](char c) { return c == ' ' || c == '\t'; };
  while (!set.empty() && isOws(set.front())) set.remove_prefix(1);
  while (!set.empty() && isOws(set.back())) set.remove_suffix(1);
  // Ignore empty list elements; more than one real range → serve the whole file.
  while (!set.empty() && (set.front() == ',' || isOws(set.front()))) set.remove_prefix(1);
  while (!set.empty() && (set.back() == ',' || isOws(set.back()))) set.remove_suffix(1);
  if (set.empty() || set.find(',') != std::string_view::npos) return RangeResult::kNone;

  const size_t dash = set.find('-');
  if (dash == std::string_view::npos) return RangeResult::kNone;
  auto parseNum = [](std::string_view s, uint64_t* out) {
    if (s.empty()) return false;
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      const uint64_t d = static_cast<uint64_t>(c - '0');
      v = v > (std::numeric_limits<uint64_t>::max() - d) / 10 ? std::numeric_limits<uint64_t>::max()
                                                              : v * 10 + d;
    }
    *out = v;
    return true;
  };
  const std::string_view a = set.substr(0, dash);
  const std::string_view b = set.substr(dash + 1);
  uint64_t x = 0;
  uint64_t y = 0;
  if (a.empty()) {
    // suffix-range "-n": the last n bytes (§14.1.1).
    if (!parseNum(b, &y)) return RangeResult::kNone;
    if (y == 0 || size == 0) return RangeResult::kUnsatisfiable;
    *first = y >= size ? 0 : size - y;
    *last = size - 1;
    return RangeResult::kOk;
  }
  if (!parseNum(a, &x)) return RangeResult::kNone;
  if (b.empty()) {
    y = std::numeric_limits<uint64_t>::max();
  } else if (!parseNum(b, &y) || y < x) {
    return RangeResult::kNone;  // invalid range-spec: ignore the header
  }
  if (x >= size) return RangeResult::kUnsatisfiable;
  *first = x;
  *last = y >= size ? size - 1 : y;
  return RangeResult::kOk;
}

}  // namespace lisod
