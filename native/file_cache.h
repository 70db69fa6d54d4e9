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
  bool has_content = false;
  std::string content;     // the whole file when size <= kSmallFileBytes
  uint64_t checked_ms = 0;
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
  void clear() { map_.clear(); }

 private:
  FileLookup load(std::string_view target_path, uint64_t now_ms);

  // Transparent hash: lookups by string_view allocate nothing on the request path.
  struct PathHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::string root_;
  std::unordered_map<std::string, std::shared_ptr<FileEntry>, PathHash, std::equal_to<>> map_;
};

}  // namespace lisod
