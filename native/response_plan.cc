// planStatic/planError/planRedirect: the answers shared by the HTTP/1.1 and HTTP/2 sessions.
#include "response_plan.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "response.h"
#include "conditional.h"
#include "http_request.h"
#include "server.h"
#include "socket_io.h"
#include "static_coding.h"
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

void StaticFields::assign(const RequestInfo& info) {
  // Most requests carry none of these: an empty field over an empty one costs nothing.
  const auto set = [](std::string& field, std::string_view value) {
    if (!value.empty() || !field.empty()) field.assign(value);
  };
  set(if_modified_since, info.if_modified_since);
  set(range, info.range);
  set(if_none_match, info.if_none_match);
  set(if_match, info.if_match);
  set(if_unmodified_since, info.if_unmodified_since);
  set(if_range, info.if_range);
  set(accept_encoding, info.accept_encoding);
}

void StaticFields::clear() {
  for (std::string* f : {&if_modified_since, &range, &if_none_match, &if_match, &if_unmodified_since, &if_range,
                         &accept_encoding}) {
    if (!f->empty()) f->clear();
  }
}

bool StaticFields::take(std::string_view n, std::string_view v) {
  std::string* field = n == "if-modified-since"     ? &if_modified_since
                       : n == "range"               ? &range
                       : n == "if-none-match"       ? &if_none_match
                       : n == "if-match"            ? &if_match
                       : n == "if-unmodified-since" ? &if_unmodified_since
                       : n == "if-range"            ? &if_range
                       : n == "accept-encoding"     ? &accept_encoding
                                                    : nullptr;
  if (field == nullptr) return false;
  if (field->empty()) field->assign(v);
  return true;
}

StaticQuery StaticFields::query(std::string_view target, bool get_or_head, const ClientIdentity* identity) const {
  StaticQuery q;
  q.target = target;
  q.if_modified_since = if_modified_since;
  q.range = range;
  q.if_none_match = if_none_match;
  q.if_match = if_match;
  q.if_unmodified_since = if_unmodified_since;
  q.if_range = if_range;
  q.accept_encoding = accept_encoding;
  q.get_or_head = get_or_head;
  q.identity = identity;
  return q;
}

bool ResponsePlan::appendBody(uint64_t at, size_t len, std::string& out) const {
  if (at + len > bodySize()) return false;
  if (!file) {
    out.append(body, static_cast<size_t>(at), len);
    return true;
  }
  if (file->has_content) {
    if (offset + at + len > file->content.size()) return false;
    out.append(file->content, static_cast<size_t>(offset + at), len);
    return true;
  }
  size_t base = out.size();
  out.resize(base + len);
  size_t done = 0;
  while (done < len) {
    ssize_t got = preadNoCancel(file->fd, out.data() + base + done, len - done, static_cast<off_t>(offset + at + done));
    if (got <= 0) {  // the file shrank or vanished
      out.resize(base);
      return false;
    }
    done += static_cast<size_t>(got);
  }
  return true;
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

namespace {

// A file answer's headers beyond Server, Date, Connection, Content-Length (and
// Content-Range): f is the requested file, coding and etag those of the representation.
void addFileHeaders(ResponsePlan& p, const FileEntry& f, Coding coding, const std::string& etag, bool vary) {
  p.headers.reserve(7);  // the most a file answer carries: one allocation
  p.headers.emplace_back("Content-Type", std::string(f.mime));
  if (coding != Coding::kIdentity) p.headers.emplace_back("Content-Encoding", std::string(codingName(coding)));
  p.headers.emplace_back("Last-Modified", std::string(f.last_modified, 29));
  p.headers.emplace_back("ETag", etag);
  if (vary) p.headers.emplace_back("Vary", "Accept-Encoding");
  if (coding == Coding::kIdentity) p.headers.emplace_back("Accept-Ranges", "bytes");
}

}  // namespace

void addWholeFileHeaders(ResponsePlan& p) {
  if (p.whole_file == nullptr || !p.headers.empty()) return;
  const FileEntry& f = *p.whole_file;  // a compressed entry keeps the file's type and date
  addFileHeaders(p, f, p.coding, f.etag.empty() ? makeEtag(f.mtime, f.size) : f.etag, p.vary);
}

ResponsePlan planStatic(Server& server, const StaticQuery& q) {
  std::string_view target = q.target;
  const size_t cut = queryStart(target);
  const bool has_query = cut < target.size();
  target = target.substr(0, cut);
  FileLookup found = server.files().lookup(target, server.nowMs());
  if (found.status == 301) {
    std::string location = found.redirect;
    if (has_query && q.target[cut] == '?') location += q.target.substr(cut);
    return planRedirect(location);
  }
  if (found.status != 0) return planError(found.status);
  const FileEntry& f = *found.entry;
  // The resolved file is checked too: a symlink in a public directory must not expose a
  // protected one.
  if (!accessAllowsFile(server, f, q.identity)) return planError(403);
  Representation rep = selectRepresentation(server, found.entry, q);
  if (rep.coding == Coding::kNone) {
    ResponsePlan e = planError(406, "No acceptable content coding: this file is available as identity"
                                    " and, where listed, br or gzip.");
    if (rep.vary) e.headers.emplace_back("Vary", "Accept-Encoding");
    return e;
  }
  const FileEntry& r = *rep.entry;
  ResponsePlan p;
  Preconditions pre;
  pre.if_match = q.if_match;
  pre.if_none_match = q.if_none_match;
  pre.if_modified_since = q.if_modified_since;
  pre.if_unmodified_since = q.if_unmodified_since;
  pre.get_or_head = q.get_or_head;
  Precondition verdict = evaluatePreconditions(pre, rep.etag, f.mtime);
  if (verdict == Precondition::kFailed) {
    ResponsePlan e = planError(412, "A precondition of the request does not hold for the current file.");
    e.headers.emplace_back("ETag", rep.etag);
    if (rep.vary) e.headers.emplace_back("Vary", "Accept-Encoding");
    return e;
  }
  if (verdict == Precondition::kNotModified) p.status = 304;
  uint64_t first = 0, last = r.size == 0 ? 0 : r.size - 1, length = r.size;
  const bool ranges = rep.coding == Coding::kIdentity;
  if (p.status == 200 && ranges && !q.range.empty() && ifRangeAllows(q.if_range, rep.etag, f.mtime)) {
    RangeResult rr = parseRange(q.range, r.size, &first, &last);
    if (rr == RangeResult::kUnsatisfiable) {
      ResponsePlan e = planError(416, "The requested range is not satisfiable.");
      e.headers.emplace_back("Content-Range", "bytes */" + std::to_string(r.size));
      return e;
    }
    if (rr == RangeResult::kOk) {
      p.status = 206;
      length = last - first + 1;
    }
  }
  const bool identity = rep.coding == Coding::kIdentity;
  // A compressed entry made from f (same path; its type, date and ETag are the answer's)
  // can stand for its headers; a precompressed sibling (another path) cannot.
  const bool coded_whole = !identity && q.defer_coded_headers && r.path == f.path;
  const bool whole = p.status == 200 && length == r.size && (identity || coded_whole);
  if (whole) {
    p.whole_file = &r;
    p.vary = rep.vary;
    p.coding = rep.coding;
  }
  if (!whole || (identity && !q.defer_whole_file_headers)) {
    addFileHeaders(p, f, rep.coding, rep.etag, rep.vary);
  }
  if (p.status == 206) {
    p.headers.emplace_back("Content-Range", "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/" +
                                                std::to_string(r.size));
  }
  if (p.status == 304) {
    p.send_length = false;
    return p;
  }
  p.file = std::move(rep.entry);  // keeps the descriptor open while the body goes out
  p.offset = first;
  p.length = length;
  return p;
}

}  // namespace lisod
