#include "file_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "conditional.h"
#include "static_file.h"

namespace lisod {

FileEntry::~FileEntry() {
  if (fd >= 0) ::close(fd);
}

FileLookup FileCache::lookup(std::string_view target_path, uint64_t now_ms) {
  auto it = map_.find(target_path);
  if (it != map_.end()) {
    FileEntry& e = *it->second;
    if (now_ms - e.checked_ms < kValidMs) return {0, {}, it->second};
    if (unchanged(e)) {
      e.checked_ms = now_ms;
      return {0, {}, it->second};
    }
    map_.erase(it);  // changed or gone: resolve again (holders keep their copy)
  }
  return load(target_path, now_ms);
}

FileLookup FileCache::load(std::string_view target_path, uint64_t now_ms) {
  FileLookup out;
  ResolvedPath rp = resolveStaticPath(root_, target_path);
  if (!rp.redirect.empty()) {
    out.status = 301;
    out.redirect = std::move(rp.redirect);
    return out;
  }
  if (rp.status != 0) {
    out.status = rp.status;
    return out;
  }
  int status = 0;
  std::shared_ptr<FileEntry> e = open(std::move(rp.path), now_ms, &status);
  if (!e) {
    out.status = status;
    return out;
  }
  if (map_.size() >= kMaxEntries) map_.clear();  // crude bound; a full reload costs one miss each
  map_.emplace(std::string(target_path), e);
  out.entry = std::move(e);
  return out;
}

bool FileCache::unchanged(const FileEntry& e) {
  struct stat st;
  return ::stat(e.path.c_str(), &st) == 0 && st.st_dev == e.dev && st.st_ino == e.ino &&
         static_cast<uint64_t>(st.st_size) == e.size && st.st_mtim.tv_sec == e.mtime;
}

std::shared_ptr<FileEntry> FileCache::open(std::string real_path, uint64_t now_ms, int* status) {
  auto e = std::make_shared<FileEntry>();
  e->fd = ::open(real_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  struct stat st;
  if (e->fd < 0 || ::fstat(e->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *status = errno == EACCES ? 403 : 404;
    return nullptr;
  }
  e->path = std::move(real_path);
  e->size = static_cast<uint64_t>(st.st_size);
  e->mtime = st.st_mtim.tv_sec;
  e->dev = st.st_dev;
  e->ino = st.st_ino;
  e->mime = mimeType(e->path);
  formatHttpDate(e->mtime, e->last_modified);
  e->etag = makeEtag(e->mtime, e->size);
  e->checked_ms = now_ms;
  if (e->size <= kSmallFileBytes) {
    e->content.resize(e->size);
    ssize_t n = e->size == 0 ? 0 : ::pread(e->fd, e->content.data(), e->size, 0);
    e->has_content = n == static_cast<ssize_t>(e->size);
    if (e->has_content) {
      ::close(e->fd);  // bytes are in memory; don't hold a descriptor per small file
      e->fd = -1;
    } else {
      e->content.clear();
    }
  }
  return e;
}

std::shared_ptr<const FileEntry> FileCache::sibling(const FileEntry& original, std::string_view suffix,
                                                    uint64_t now_ms) {
  const int slot = suffix == ".br" ? 0 : suffix == ".gz" ? 1 : -1;
  if (slot < 0) return findSibling(original, suffix, now_ms).entry;
  FileEntry::SiblingMemo& memo = original.sibling_memo[slot];
  if (!memo.known || now_ms - memo.checked_ms >= kValidMs) {
    const Sibling& s = findSibling(original, suffix, now_ms);
    memo.entry = s.entry;
    memo.checked_ms = s.checked_ms;
    memo.known = true;
  }
  return memo.entry;
}

const FileCache::Sibling& FileCache::findSibling(const FileEntry& original, std::string_view suffix,
                                                 uint64_t now_ms) {
  sibling_key_.assign(original.path).append(suffix);
  const std::string& key = sibling_key_;
  auto it = siblings_.find(key);
  if (it != siblings_.end()) {
    Sibling& s = it->second;
    if (now_ms - s.checked_ms < kValidMs) return s;
    if (s.entry && unchanged(*s.entry)) {
      s.checked_ms = now_ms;
      return s;
    }
    siblings_.erase(it);
  }
  std::string real;
  std::shared_ptr<FileEntry> e;
  int status = resolveFilePath(root_, key, &real);
  if (status == 0) e = open(std::move(real), now_ms, &status);
  if (siblings_.size() >= kMaxEntries) siblings_.clear();
  Sibling& s = siblings_[key];
  s = Sibling{e, now_ms};
  return s;
}

}  // namespace lisod
