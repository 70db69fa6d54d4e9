// Which representation of a static file a request gets: the file itself, a precompressed
// sibling (file.br, file.gz) or a compressed copy from the CompressCache, chosen by
// Accept-Encoding (RFC 9110 §12.5.3) — with the ETag and Vary that go with it. Shared by
// the HTTP/1.1 and HTTP/2 sessions through planStatic.
#pragma once
#include <memory>
#include <string>

#include "accept_encoding.h"
#include "file_cache.h"
#include "response_plan.h"

namespace lisod {

struct Representation {
  std::shared_ptr<const FileEntry> entry;  // the bytes to send (nullptr with kNone)
  Coding coding = Coding::kIdentity;       // kNone: no acceptable representation (406)
  std::string etag;                        // strong, distinct per representation
  bool vary = false;                       // the choice depended on Accept-Encoding
};

// [[access]] on a file's resolved path (root-relative), for the client's identity.
bool accessAllowsFile(Server& server, const FileEntry& f, const ClientIdentity* identity);

// Rules, in order (documented in README "Compression"):
// - a coding is available from a sibling "<resolved file>.br|.gz" that passes the same
//   root/realpath and [[access]] checks as the file and is not older than it (a stale
//   sibling of an edited file is ignored), else on the fly for a type in compress.types
//   whose size is in [min_bytes, max_bytes] (min_bytes is waived when identity is refused);
// - a request with Range gets the file itself when identity is acceptable (ranges of a
//   compressed body are not offered); otherwise Range is ignored;
// - vary whenever some coding was available, so caches key on Accept-Encoding (304s too).
Representation selectRepresentation(Server& server, const std::shared_ptr<const FileEntry>& file,
                                    const StaticQuery& q);

}  // namespace lisod
