// Content-coding negotiation for static files: siblings, the compress cache, ETags.
#include "static_coding.h"

#include "conditional.h"
#include "server.h"

namespace lisod {
namespace {

// A sibling that may stand in for f: not older than f, and allowed by [[access]].
std::shared_ptr<const FileEntry> usableSibling(Server& server, const FileEntry& f, std::string_view suffix,
                                               const StaticQuery& q) {
  std::shared_ptr<const FileEntry> s = server.files().sibling(f, suffix, server.nowMs());
  if (!s || s->mtime < f.mtime || !accessAllowsFile(server, *s, q.identity)) return nullptr;
  return s;
}

}  // namespace

bool accessAllowsFile(Server& server, const FileEntry& f, const ClientIdentity* identity) {
  if (server.accessRules().empty()) return true;
  const std::string& root = server.config().root;
  std::string_view real = root == "/" ? std::string_view(f.path) : std::string_view(f.path).substr(root.size());
  return server.accessRules().checkNormalized(real, identity) == 0;
}

Representation selectRepresentation(Server& server, const std::shared_ptr<const FileEntry>& file,
                                    const StaticQuery& q) {
  const CompressSettings& cs = server.config().compress;
  const FileEntry& f = *file;
  Representation r;
  std::shared_ptr<const FileEntry> sib_br, sib_gz;
  if (cs.precompressed) {
    sib_br = usableSibling(server, f, ".br", q);
    sib_gz = usableSibling(server, f, ".gz", q);
  }
  const bool fly_type = cs.on_the_fly && f.size <= cs.max_bytes && compressibleType(cs.types, f.mime);
  const AcceptEncoding ae = parseAcceptEncoding(q.accept_encoding);
  const bool identity_ok = chooseCoding(ae, false, false) == Coding::kIdentity;
  const bool fly = fly_type && (f.size >= cs.min_bytes || !identity_ok);
  r.vary = sib_br || sib_gz || fly_type;

  Coding c = Coding::kIdentity;
  if (!(identity_ok && !q.range.empty())) c = chooseCoding(ae, sib_br || fly, sib_gz || fly);
  if (c == Coding::kBr || c == Coding::kGzip) {
    const bool br = c == Coding::kBr;
    const std::shared_ptr<const FileEntry>& sib = br ? sib_br : sib_gz;
    if (sib) {
      r.entry = sib;
      r.coding = c;
      r.etag = makeEtag(sib->mtime, sib->size, br ? "-br" : "-gz");
      return r;
    }
    const int level = br ? cs.brotli_quality : cs.gzip_level;
    std::shared_ptr<const FileEntry> packed = server.compressed().get(f, c, level, cs.cache_bytes, !identity_ok);
    if (packed) {
      r.etag = packed->etag;  // made once with the entry (compress_cache.h)
      r.entry = std::move(packed);
      r.coding = c;
      return r;
    }
    c = identity_ok ? Coding::kIdentity : Coding::kNone;  // compressing did not pay off
  }
  r.coding = c;
  if (c == Coding::kIdentity) {
    r.entry = file;
    r.etag = f.etag.empty() ? makeEtag(f.mtime, f.size) : f.etag;  // cached when the file was opened
  }
  return r;
}

}  // namespace lisod
