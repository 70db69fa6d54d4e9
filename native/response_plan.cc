// planStatic/planError/planRedirect: the answers shared by the HTTP/1.1 and HTTP/2 sessions.
#include "response_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "response.h"
#include "server.h"
#include "static_file.h"

namespace lisod {

long ResponsePlan::readBody(uint64_t at, char* dst, size_t len) const {
  uint64_t size = bodySize();
  if (at >= size) return 0;
  size_t n = static_cast<size_t>(std::min<uint64_t>(len, size - at));
  if (!file) {
    std::memcpy(dst, body.data() + at, n);
    return static_cast<long>(n);
  }
  if (file->has_content) {
    if (offset + at + n > file->content.size()) return -1;
    std::memcpy(dst, file->content.data() + offset + at, n);
    return static_cast<long>(n);
  }
  ssize_t got = ::pread(file->fd, dst, n, static_cast<off_t>(offset + at));
  return got <= 0 ? -1 : static_cast<long>(got);
}

ResponsePlan planError(int status, std::string_view detail) {
  ResponsePlan p;
  p.status = status;
  p.body = errorPage(status, detail);
  p.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  if (status == 405) p.headers.emplace_back("Allow", "GET, HEAD, POST");  // only static paths answer 405
  return p;
}

ResponsePlan planRedirect(const std::string& location) {
  ResponsePlan p;
  p.status = 301;
  p.body = errorPage(301, "Moved to " + location);
  p.headers.emplace_back("Location", location);
  p.headers.emplace_back("Content-Type", "text/html; charset=utf-8");
  return p;
}

ResponsePlan planStatic(Server& server, const StaticQuery& q) {
  std::string_view target = q.target;
  size_t cut = target.find_first_of("?#");
  if (cut != std::string_view::npos) target = target.substr(0, cut);
  FileLookup found = server.files().lookup(target, server.nowMs());
  if (found.status == 301) {
    std::string location = found.redirect;
    if (cut != std::string_view::npos && q.target[cut] == '?') location += q.target.substr(cut);
    return planRedirect(location);
  }
  if (found.status != 0) return planError(found.status);
  const FileEntry& f = *found.entry;
  if (!server.accessRules().empty()) {
    // The resolved file is checked too: a symlink in a public directory must not expose a
    // protected one.
    const std::string& root = server.config().root;
    std::string_view real = root == "/" ? std::string_view(f.path) : std::string_view(f.path).substr(root.size());
    if (server.accessRules().checkNormalized(real, q.identity) != 0) return planError(403);
  }
  ResponsePlan p;
  uint64_t first = 0, last = f.size == 0 ? 0 : f.size - 1, length = f.size;
  if (!q.if_modified_since.empty()) {
    // RFC 9110 §13.1.3: the file is unmodified when its mtime is not after the date.
    int64_t since = parseHttpDate(q.if_modified_since);
    if (since >= 0 && f.mtime <= since) p.status = 304;
  }
  if (p.status == 200 && !q.range.empty()) {
    RangeResult rr = parseRange(q.range, f.size, &first, &last);
    if (rr == RangeResult::kUnsatisfiable) {
      ResponsePlan e = planError(416, "The requested range is not satisfiable.");
      e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(f.size));
      return e;
    }
    if (rr == RangeResult::kOk) {
      p.status = 206;
      length = last - first + 1;
    }
  }
  p.headers.emplace_back("Content-Type", std::string(f.mime));
  p.headers.emplace_back("Last-Modified", std::string(f.last_modified, 29));
  p.headers.emplace_back("Accept-Ranges", "bytes");
  if (p.status == 206) {
    p.headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                                std::to_string(f.size));
  }
  if (p.status == 304) {
    p.send_length = false;
    return p;
  }
  p.file = found.entry;  // keeps the descriptor open while the body goes out
  p.offset = first;
  p.length = length;
  return p;
}

}  // namespace lisod
