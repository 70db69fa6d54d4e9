// Validated open-file cache for static files: resolved path, open fd, metadata and,
// for small files, the bytes. An entry is trusted for kValidMs, then re-checked with
// one stat(); a changed file (inode, size, mtime) is resolved again from scratch.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace lisod {

struct FileEntry {
  FileEntry() = default;
  ~FileEntry();
  FileEntry(const FileEntry&) = delete;
  FileEntry& operator=(const FileEntry&) = delete;

  std::string path;        // realpath inside the root
  int fd = -1;             // open read-only; closed when the last holder lets go
  uint64_t size = 0;
  int64_t mtime = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string_view mime;
  char last_modified[32] = {0};
  std::string etag;        // the identity representation's strong ETag (makeEtag)
  bool has_content = false;
  std::string content;     // the whole file when size <= kSmallFileBytes
  uint64_t checked_ms = 0;
  // The HTTP/1.1 head of a whole-file 200 of this entry (connection_static.cc), indexed by
  // keep-alive, formatted once and copied per response with its Date rewritten: a
  // formatting cache (one event loop owns the entry), not file state, hence mutable.
  struct CachedHead {
    std::string bytes;
    size_t date_at = 0;
    bool vary = false;
  };
  mutable CachedHead h1_head[2];
  // The same for HTTP/2 (h2_head.cc): the fields of a whole-file 200 beyond :status, server,
  // date and content-length, with lower-case names (RFC 9113 §8.2.1), values checked.
  struct CachedFields {
    std::vector<std::pair<std::string_view, std::string>> fields;
    bool built = false;
    bool vary = false;
  };
  mutable CachedFields h2_fields;
  // FileCache::sibling's answers for ".br" [0] and ".gz" [1], trusted as long as its map's
  // (kValidMs from checked_ms): the common request costs no key building and no hashing.
  struct SiblingMemo {
    std::shared_ptr<const FileEntry> entry;  // nullptr: there is none
    uint64_t checked_ms = 0;
    bool known = false;
  };
  mutable SiblingMemo sibling_memo[2];
};

struct FileLookup {
  int status = 0;          // 0: entry is set; else 301 (redirect set), 400, 403, 404
  std::string redirect;
  std::shared_ptr<const FileEntry> entry;
};

class FileCache {
 public:
  static constexpr uint64_t kValidMs = 1000;
  static constexpr size_t kSmallFileBytes = 32 * 1024;
  static constexpr size_t kMaxEntries = 4096;

  explicit FileCache(std::string root) : root_(std::move(root)) {}
  // target_path: the request-target's path (no query). now_ms: a monotonic clock.
  FileLookup lookup(std::string_view target_path, uint64_t now_ms);
  // The file at original.path + suffix (".br", ".gz": a precompressed sibling), under the
  // same rules as a requested file (inside the root after realpath, regular, readable), or
  // nullptr. Absence is remembered for kValidMs too, so files without siblings cost one
  // hash lookup per request, not a stat.
  std::shared_ptr<const FileEntry> sibling(const FileEntry& original, std::string_view suffix, uint64_t now_ms);
  void clear() { map_.clear(); siblings_.clear(); }

 private:
  FileLookup load(std::string_view target_path, uint64_t now_ms);
  struct Sibling;
  const Sibling& findSibling(const FileEntry& original, std::string_view suffix, uint64_t now_ms);
  // Opens a resolved path into a new entry; nullptr with *status 403/404 on failure.
  std::shared_ptr<FileEntry> open(std::string real_path, uint64_t now_ms, int* status);
  static bool unchanged(const FileEntry& e);

  // Transparent hash: lookups by string_view allocate nothing on the request path.
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::string root_;
  std::unordered_map<std::string, std::shared_ptr<FileEntry>, PathHash, std::equal_to<>> map_;
  struct Sibling {
    std::shared_ptr<FileEntry> entry;  // nullptr: there is none
    uint64_t checked_ms = 0;
  };
  std::unordered_map<std::string, Sibling> siblings_;  // by original path + suffix
  std::string sibling_key_;  // sibling()'s lookup key, reused: no allocation per request
};

}  // namespace lisod
