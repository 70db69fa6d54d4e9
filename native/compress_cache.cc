// Compression with Node's zlib / Brotli encoder, and the cache of compressed bodies.
#include "compress_cache.h"

#include <brotli/encode.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>

#include "conditional.h"

namespace lisod {

bool compressibleType(const std::vector<std::string>& types, std::string_view mime) {
  mime = mime.substr(0, mime.find(';'));
  while (!mime.empty() && mime.back() == ' ') mime.remove_suffix(1);
  for (const std::string& t : types) {
    std::string_view want = t;
    if (want.size() >= 2 && want.substr(want.size() - 2) == "/*") {
      if (mime.size() > want.size() - 1 && mime.substr(0, want.size() - 1) == want.substr(0, want.size() - 1))
        return true;
    } else if (mime == want) {
      return true;
    }
  }
  return false;
}

namespace {

bool gzipBytes(int level, std::string_view data, std::string* out) {
  z_stream z{};
  // windowBits 15 + 16: a gzip wrapper; memLevel 8 (zlib's default): ~256 KiB of state.
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->resize(deflateBound(&z, data.size()));
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out->data());
  z.avail_out = static_cast<uInt>(out->size());
  int r = deflate(&z, Z_FINISH);
  out->resize(z.total_out);
  deflateEnd(&z);
  return r == Z_STREAM_END;
}

bool brotliBytes(int quality, std::string_view data, std::string* out) {
  BrotliEncoderState* s = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
  if (s == nullptr) return false;
  // The window need not exceed the input: a 20 KiB file gets a 32 KiB window, not 4 MiB.
  int lgwin = BROTLI_MIN_WINDOW_BITS;
  while (lgwin < BROTLI_DEFAULT_WINDOW && (uint64_t{1} << lgwin) - 16 < data.size()) ++lgwin;
  BrotliEncoderSetParameter(s, BROTLI_PARAM_QUALITY, static_cast<uint32_t>(quality));
  BrotliEncoderSetParameter(s, BROTLI_PARAM_LGWIN, static_cast<uint32_t>(lgwin));
  BrotliEncoderSetParameter(s, BROTLI_PARAM_SIZE_HINT, static_cast<uint32_t>(std::min<size_t>(data.size(), 1u << 30)));
  const uint8_t* in = reinterpret_cast<const uint8_t*>(data.data());
  size_t avail_in = data.size();
  out->clear();
  bool ok = true;
  for (;;) {
    uint8_t buf[16384];
    uint8_t* next_out = buf;
    size_t avail_out = sizeof buf;
    if (!BrotliEncoderCompressStream(s, BROTLI_OPERATION_FINISH, &avail_in, &in, &avail_out, &next_out, nullptr)) {
      ok = false;
      break;
    }
    out->append(reinterpret_cast<char*>(buf), sizeof buf - avail_out);
    if (BrotliEncoderIsFinished(s)) break;
  }
  BrotliEncoderDestroyInstance(s);
  return ok;
}

}  // namespace

bool compressBytes(Coding coding, int level, std::string_view data, std::string* out) {
  if (coding == Coding::kGzip) return gzipBytes(level, data, out);
  if (coding == Coding::kBr) return brotliBytes(level, data, out);
  return false;
}

std::shared_ptr<const FileEntry> CompressCache::get(const FileEntry& f, Coding coding, int level, uint64_t budget,
                                                    bool even_if_larger) {
  key_.assign(f.path);
  key_.push_back('\0');
  key_.append(codingName(coding));
  auto it = map_.find(std::string_view(key_));
  if (it != map_.end()) {
    Slot& s = *it->second;
    if (s.dev == f.dev && s.ino == f.ino && s.size == f.size && s.mtime == f.mtime && s.level == level) {
      lru_.splice(lru_.begin(), lru_, it->second);
      return s.smaller || even_if_larger ? s.entry : nullptr;
    }
    if (s.entry) bytes_ -= s.entry->size;  // the file changed (or the level): compress again
    lru_.erase(it->second);
    map_.erase(it);
  }
  std::string plain;
  std::string_view data;
  if (f.has_content) {
    data = f.content;
  } else {
    plain.resize(f.size);
    uint64_t got = 0;
    while (got < f.size) {
      ssize_t n = ::pread(f.fd, plain.data() + got, f.size - got, static_cast<off_t>(got));
      if (n <= 0) return nullptr;  // shrank or unreadable: the caller sends it as it is
      got += static_cast<uint64_t>(n);
    }
    data = plain;
  }
  ++compressions_;
  std::string packed;
  std::shared_ptr<FileEntry> e;
  if (compressBytes(coding, level, data, &packed)) {
    e = std::make_shared<FileEntry>();
    e->path = f.path;
    e->size = packed.size();
    e->mtime = f.mtime;
    e->dev = f.dev;
    e->ino = f.ino;
    e->mime = f.mime;
    std::copy(std::begin(f.last_modified), std::end(f.last_modified), e->last_modified);
    e->content = std::move(packed);
    e->has_content = true;
    e->etag = makeEtag(f.mtime, f.size, std::string(coding == Coding::kBr ? "-br" : "-gz") + std::to_string(level));
  }
  const bool smaller = e && e->size < f.size;
  std::shared_ptr<const FileEntry> answer = smaller || even_if_larger ? e : nullptr;
  uint64_t cost = e ? e->size : 0;
  if (cost > budget) return answer;  // served once, not kept
  evictTo(budget - cost);
  lru_.push_front(Slot{key_, f.dev, f.ino, f.size, f.mtime, level, e, smaller});
  map_.emplace(key_, lru_.begin());
  bytes_ += cost;
  if (map_.size() > FileCache::kMaxEntries * 2) {  // bound the bookkeeping of tiny slots too
    Slot& last = lru_.back();
    if (last.entry) bytes_ -= last.entry->size;
    map_.erase(last.key);
    lru_.pop_back();
  }
  return answer;
}

void CompressCache::evictTo(uint64_t budget) {
  while (bytes_ > budget && !lru_.empty()) {
    Slot& last = lru_.back();
    if (last.entry) bytes_ -= last.entry->size;
    map_.erase(last.key);
    lru_.pop_back();
  }
}

void CompressCache::clear() {
  lru_.clear();
  map_.clear();
  bytes_ = 0;
}

}  // namespace lisod
