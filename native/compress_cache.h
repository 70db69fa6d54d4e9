// On-the-fly gzip and Brotli for static files, compressed once and kept: a bounded cache
// of compressed representations keyed by file path and coding, each remembering the file
// identity (device, inode, size, mtime) and level it was made from, so a changed file or a
// new level is compressed again and never served stale. zlib and the Brotli encoder are
// the copies Node's own binary exports (no second library linked).
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "accept_encoding.h"
#include "file_cache.h"

namespace lisod {

struct CompressSettings {
  bool on_the_fly = true;       // compress eligible files when the client accepts it
  bool precompressed = true;    // serve file.br / file.gz siblings
  uint64_t min_bytes = 1024;    // smaller files are sent as they are (unless identity is refused)
  uint64_t max_bytes = 8u << 20;  // larger ones are never compressed on the fly
  uint64_t cache_bytes = 64u << 20;  // all cached compressed bodies together (per event loop)
  int gzip_level = 6;           // 1–9
  int brotli_quality = 5;       // 0–11
  // Media types compressed on the fly: "type/sub" exact or "type/*" (parameters ignored).
  std::vector<std::string> types = {"text/*", "application/javascript", "application/json",
                                    "application/xml", "application/wasm", "image/svg+xml",
                                    "application/manifest+json", "image/x-icon"};
};

// Whether mime (possibly with parameters) is listed in types.
bool compressibleType(const std::vector<std::string>& types, std::string_view mime);

// Compresses data with the coding (gzip: RFC 1952 member; br: RFC 7932 stream) into *out.
// Memory is bounded by the level and by a window sized to the input. False on error.
bool compressBytes(Coding coding, int level, std::string_view data, std::string* out);

class CompressCache {
 public:
  // The compressed representation of f (read through its cached bytes or fd), or nullptr
  // when compressing fails, or does not make it smaller and !even_if_larger (send f as it
  // is). The entry is an in-memory FileEntry (has_content) of the compressed length; its
  // etag is the representation's: f's, with "-br"/"-gz" and the level (other settings
  // make other bytes).
  std::shared_ptr<const FileEntry> get(const FileEntry& f, Coding coding, int level, uint64_t budget,
                                       bool even_if_larger = false);
  uint64_t compressions() const { return compressions_; }  // for tests: misses that compressed
  uint64_t bytes() const { return bytes_; }
  void clear();

 private:
  struct Slot {
    std::string key;
    dev_t dev = 0;
    ino_t ino = 0;
    uint64_t size = 0;
    int64_t mtime = 0;
    int level = 0;
    std::shared_ptr<FileEntry> entry;  // nullptr: compressing failed
    bool smaller = false;              // entry is smaller than the file
  };
  void evictTo(uint64_t budget);

  // Transparent hash: get() looks up by its reused key_, with no allocation per request.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::list<Slot> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Slot>::iterator, KeyHash, std::equal_to<>> map_;
  std::string key_;  // get()'s lookup key: path, '\0', coding
  uint64_t bytes_ = 0;
  uint64_t compressions_ = 0;
};

}  // namespace lisod
