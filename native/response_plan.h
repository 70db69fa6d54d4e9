// What a static file, an error or a redirect answers, decided once for HTTP/1.1 and
// HTTP/2 alike: the status, the headers beyond Server/Date/Connection/Content-Length, and
// the body (bytes, or a byte range of a cached open file). Each protocol session puts the
// plan on its own wire; no answer is computed twice.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "accept_encoding.h"
#include "file_cache.h"
#include "tls_identity.h"

namespace lisod {

class Server;
struct RequestInfo;

struct ResponsePlan {
  int status = 200;
  // Canonical HTTP/1 names (HTTP/2 lower-cases them); values checked by the emitter.
  std::vector<std::pair<std::string_view, std::string>> headers;
  bool send_length = true;  // Content-Length: bodySize() (false for 304)
  std::string body;         // the body when file is null
  std::shared_ptr<const FileEntry> file;  // else bytes [offset, offset + length) of it
  uint64_t offset = 0, length = 0;
  // Set by planStatic on a 200 with the whole file, identity coding: status and headers
  // then depend only on this entry (== file) and on vary, so a session may cache its head
  // on the entry (and ask planStatic to leave the headers out: addWholeFileHeaders).
  const FileEntry* whole_file = nullptr;
  bool vary = false;  // the answer carries Vary: Accept-Encoding
  // With StaticQuery::defer_coded_headers, a 200 of a whole compressed representation is
  // a whole_file plan too: whole_file is then the compressed entry, coding its coding.
  Coding coding = Coding::kIdentity;

  uint64_t bodySize() const { return file ? length : body.size(); }
  // Back to a default plan (every field above), keeping the buffers: a reused h2 stream
  // resets its plan without building and zeroing a temporary one.
  void clear() {
    status = 200;
    headers.clear();
    send_length = true;
    body.clear();
    file.reset();
    offset = length = 0;
    whole_file = nullptr;
    vary = false;
    coding = Coding::kIdentity;
  }
  // Copies up to len body bytes starting at body offset `at` (0 = first body byte) into
  // dst: from memory, or pread from the cached file (never the whole file). Returns the
  // count, or -1 when the file cannot be read (it shrank or vanished).
  long readBody(uint64_t at, char* dst, size_t len) const;
  // Appends exactly len body bytes starting at `at` to out (one copy: from memory, or
  // pread into out's new tail). false when the file cannot be read (out is unchanged).
  bool appendBody(uint64_t at, size_t len, std::string& out) const;
};

// The facts of a request a static answer depends on.
struct StaticQuery {
  std::string_view target;  // origin-form, with any query
  std::string_view if_modified_since, range;
  std::string_view if_none_match, if_match, if_unmodified_since, if_range, accept_encoding;
  bool get_or_head = true;  // false for a POST answered like GET (If-None-Match → 412)
  // A whole_file plan comes without headers; the caller adds them (addWholeFileHeaders)
  // when it has no head cached for that entry.
  bool defer_whole_file_headers = false;
  // … and for a whole compressed representation (only a session that caches its fields
  // per entry and coding asks: the HTTP/1.1 head cache is for identity alone).
  bool defer_coded_headers = false;
  const ClientIdentity* identity = nullptr;
};

// The request fields a static answer depends on (first occurrence of each), kept as
// copies: HTTP/1.1 fills them from its head (assign) before the head bytes go, an h2 stream
// from its header callback (take). query() is the one place a StaticQuery is made.
struct StaticFields {
  std::string if_modified_since, range, if_none_match, if_match, if_unmodified_since, if_range, accept_encoding;

  void assign(const RequestInfo& info);
  void clear();  // every field empty, buffers kept
  // Keeps value when lower_name is one of the fields above and it has none yet; false
  // when the name is not one of them.
  bool take(std::string_view lower_name, std::string_view value);
  StaticQuery query(std::string_view target, bool get_or_head, const ClientIdentity* identity) const;
};

// 200/206/304/412/416 for a file, 301 for a directory without '/', 406 when the client
// refuses every coding there is, or an error (400/403/404). Negotiates the content coding
// first (static_coding.cc), then the preconditions against the chosen representation's
// ETag (RFC 9110 §13.2.2), then Range (§14.2; If-Range §13.1.5).
ResponsePlan planStatic(Server& server, const StaticQuery& q);
// The headers planStatic leaves out of a whole_file plan when asked to defer them.
void addWholeFileHeaders(ResponsePlan& p);
// A small HTML page for status (405 carries Allow: GET, HEAD, POST); detail is escaped.
ResponsePlan planError(int status, std::string_view detail = {});
ResponsePlan planRedirect(const std::string& location);

}  // namespace lisod
