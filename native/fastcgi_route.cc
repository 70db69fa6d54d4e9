#include "fastcgi_route.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <vector>

namespace lisod {
namespace {

constexpr uint64_t kRootTtlMs = 1000;
constexpr size_t kMaxCachedRoutes = 512;

std::string realPath(const std::string& p) {
  char buf[PATH_MAX];
  return realpath(p.c_str(), buf) == nullptr ? std::string() : std::string(buf);
}

// path.join(root, name) for a name starting with '/' and free of . and .. segments.
std::string joinPath(const std::string& root, const std::string& name) {
  std::string out;
  const std::string whole = root + "/" + name;
  for (char c : whole) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::optional<ScriptRoute> RootRouter::route(const std::string& decoded, uint64_t now_ms) {
  if (!fresh_ || now_ms - at_ms_ > kRootTtlMs || real_root_.empty()) {
    fresh_ = true;
    at_ms_ = now_ms;
    routes_.clear();
    real_root_ = realPath(root_);
    if (!real_root_.empty() && real_root_.back() != '/') real_root_.push_back('/');
  }
  if (real_root_.empty()) return std::nullopt;
  if (auto it = routes_.find(decoded); it != routes_.end()) return it->second;
  std::optional<ScriptRoute> found = lookUp(decoded);
  if (routes_.size() >= kMaxCachedRoutes) routes_.clear();
  routes_.emplace(decoded, found);
  return found;
}

bool RootRouter::isScript(const std::string& script_name) const {
  const std::string p = root_ + script_name;
  struct stat st;
  if (stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  return realPath(p).compare(0, real_root_.size(), real_root_) == 0;
}

std::optional<ScriptRoute> RootRouter::lookUp(const std::string& decoded) const {
  std::vector<size_t> slashes;  // segment boundaries: decoded.split('/')
  size_t start = 0;
  for (size_t i = 0; i <= decoded.size(); ++i) {
    if (i == decoded.size() || decoded[i] == '/') {
      const std::string_view seg(decoded.data() + start, i - start);
      if (seg == "." || seg == "..") return std::nullopt;
      slashes.push_back(i);
      start = i + 1;
    }
  }
  auto found = [&](std::string name, std::string info) {
    return ScriptRoute{name, joinPath(root_, name), std::move(info)};
  };
  if (!decoded.empty() && decoded.back() == '/' && index_ && isScript(decoded + *index_)) return found(decoded + *index_, "");
  size_t min_segments = 1;
  for (char c : prefix_) min_segments += c == '/';
  // segments.slice(0, n).join('/') is decoded up to the n-th boundary.
  for (size_t n = slashes.size(); n >= min_segments && n >= 1; --n) {
    const std::string name = decoded.substr(0, slashes[n - 1]);
    if (name.empty() || name.back() == '/') continue;
    if (isScript(name)) return found(name, decoded.substr(name.size()));
  }
  return std::nullopt;
}

}  // namespace lisod
