// resolveStaticPath against a real temporary tree: traversal, encoded separators, NUL,
// symlinks leaving the root (absolute, relative, sibling-prefix, via index.html),
// directories, redirects, non-regular and unreadable files.
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "../../native/file_cache.h"
#include "../../native/static_file.h"
#include "test_support.h"

namespace lisod::test {
namespace {

namespace fs = std::filesystem;

void writeFile(const fs::path& p, const std::string& content) {
  std::ofstream(p, std::ios::binary) << content;
}

// Owns the temporary tree; removes it on scope exit.
class TempTree {
 public:
  TempTree() {
    char tmpl[] = "/tmp/lisod-native-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    char real[PATH_MAX];
    if (::realpath(tmpl, real) == nullptr) return;
    base_ = real;
  }
  ~TempTree() {
    if (base_.empty()) return;
    std::error_code ec;
    ::chmod((base_ / "www" / "noread.txt").c_str(), 0644);
    fs::remove_all(base_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;
  const fs::path& base() const { return base_; }

 private:
  fs::path base_;
};

bool build(const fs::path& base) {
  std::error_code ec;
  const fs::path www = base / "www";
  for (const char* d : {"outside", "www", "www2", "www/sub", "www/empty_dir", "www/we ird",
                        "www/idx_is_dir", "www/idx_is_dir/index.html", "www/link_index_out"}) {
    fs::create_directories(base / d, ec);
    if (ec) return false;
  }
  writeFile(base / "outside/secret.txt", "secret");
  writeFile(base / "www2/secret.txt", "sibling secret");
  writeFile(www / "index.html", "<h1>root</h1>");
  writeFile(www / "a.txt", "a");
  writeFile(www / "space file.txt", "s");
  writeFile(www / "100%.txt", "p");
  writeFile(www / "sub/index.html", "sub");
  writeFile(www / "sub/page.html", "page");
  writeFile(www / "we ird/index.html", "weird");
  writeFile(www / "noread.txt", "x");
  ::chmod((www / "noread.txt").c_str(), 0);
  fs::create_symlink(base / "outside/secret.txt", www / "link_out", ec);
  fs::create_symlink("a.txt", www / "link_in", ec);
  fs::create_symlink("../outside", www / "link_dir_out", ec);
  fs::create_symlink("../../outside/secret.txt", www / "sub/link_up", ec);
  fs::create_symlink("../www2/secret.txt", www / "link_sibling", ec);
  fs::create_symlink("../../outside/secret.txt", www / "link_index_out/index.html", ec);
  fs::create_symlink("sub", www / "link_sub", ec);
  fs::create_symlink("loop", www / "loop", ec);
  if (ec) return false;
  return ::mkfifo((www / "fifo").c_str(), 0644) == 0;
}

struct Row {
  const char* target;
  int status;
  const char* file = "";      // expected path relative to root when status is 0
  const char* redirect = "";  // expected redirect when status is 301
};

const Row kRows[] = {
    {"/", 0, "index.html"},
    {"/index.html", 0, "index.html"},
    {"/a.txt", 0, "a.txt"},
    {"//a.txt", 0, "a.txt"},
    {"/./a.txt", 0, "a.txt"},
    {"/sub/", 0, "sub/index.html"},
    {"/sub/page.html", 0, "sub/page.html"},
    {"/sub/../a.txt", 0, "a.txt"},
    {"/sub/./../sub/page.html", 0, "sub/page.html"},
    {"/sub/%2e%2e/a.txt", 0, "a.txt"},
    {"/sub/.%2E/a.txt", 0, "a.txt"},
    {"/sub/..", 0, "index.html"},
    {"/%61.txt", 0, "a.txt"},
    {"/space%20file.txt", 0, "space file.txt"},
    {"/100%25.txt", 0, "100%.txt"},
    {"/link_in", 0, "a.txt"},
    {"/link_sub/page.html", 0, "sub/page.html"},
    {"/link_sub/", 0, "sub/index.html"},
    {"http://example.com/a.txt", 0, "a.txt"},
    {"HTTPS://example.com", 0, "index.html"},
    // directories without a trailing slash → 301 to the slash form
    {"/sub", 301, "", "/sub/"},
    {"/we%20ird", 301, "", "/we%20ird/"},
    {"/empty_dir", 301, "", "/empty_dir/"},
    {"/sub/../sub", 301, "", "/sub/"},
    // climbing out, encoded separators, NUL, bad escapes → 400
    {"/..", 400},
    {"/../a.txt", 400},
    {"/sub/../../a.txt", 400},
    {"/%2e%2e/outside/secret.txt", 400},
    {"/%2E%2E%2Foutside/secret.txt", 400},
    {"/sub%2Fpage.html", 400},
    {"/sub%2fpage.html", 400},
    {"/a.txt%00", 400},
    {"/a.txt%00.html", 400},
    {"/sub%5Cpage.html", 400},
    {"/a%zz", 400},
    {"/a%2", 400},
    {"/a%", 400},
    {"a.txt", 400},
    {"*", 400},
    {"", 400},
    // symlinks leaving the root, missing files → 404
    {"/link_out", 404},
    {"/link_dir_out/secret.txt", 404},
    {"/link_dir_out/", 404},
    {"/sub/link_up", 404},
    {"/link_sibling", 404},
    {"/link_index_out/", 404},
    {"/loop", 404},
    {"/nope", 404},
    {"/a.txt/", 404},
    {"/empty_dir/", 404},
    {"/idx_is_dir/", 404},
    // not a regular file → 403
    {"/fifo", 403},
};

}  // namespace

void runStaticFileTests(Suite& suite) {
  TempTree tree;
  {
    Case c(suite, "static: temporary tree");
    if (!c.check(!tree.base().empty() && build(tree.base()), "build the tree")) return;
  }
  const std::string root = (tree.base() / "www").string();
  for (const Row& row : kRows) {
    Case c(suite, std::string("static: ") + show(row.target));
    const ResolvedPath r = resolveStaticPath(root, row.target);
    c.eq(r.status, row.status, "status");
    if (row.status == 0) c.eq(r.path, root + "/" + row.file, "path");
    else c.eq(r.path, std::string(), "no path on error");
    c.eq(r.redirect, std::string(row.redirect), "redirect");
  }
  if (::geteuid() == 0) {
    // root reads everything; access(2) cannot be made to fail for it.
    std::printf("  (skipped: unreadable file → 403, running as root)\n");
  } else {
    Case c(suite, "static: unreadable file → 403");
    c.eq(resolveStaticPath(root, "/noread.txt").status, 403, "status");
  }
  {
    Case c(suite, "static: root with a trailing slash");
    const ResolvedPath r = resolveStaticPath(root + "/", "/a.txt");
    c.eq(r.status, 0, "status");
    c.eq(r.path, root + "/a.txt", "path");
  }
  {
    // FileCache::sibling: a precompressed sibling's presence and absence are trusted for
    // kValidMs (the entry's memo and the cache's map alike), then checked again.
    Case c(suite, "static: precompressed siblings appear and vanish after kValidMs");
    FileCache cache(root);
    const uint64_t t0 = 5000, later = t0 + FileCache::kValidMs;
    FileLookup page = cache.lookup("/sub/page.html", t0);
    if (!c.check(page.entry != nullptr, "page found")) return;
    const FileEntry& f = *page.entry;
    c.check(cache.sibling(f, ".gz", t0) == nullptr, "no .gz yet");
    c.check(cache.sibling(f, ".zz", t0) == nullptr, "no .zz yet");
    writeFile(tree.base() / "www/sub/page.html.gz", "gz bytes");
    writeFile(tree.base() / "www/sub/page.html.zz", "zz bytes");
    c.check(cache.sibling(f, ".gz", later - 1) == nullptr, "absence trusted within kValidMs");
    std::shared_ptr<const FileEntry> gz = cache.sibling(f, ".gz", later);
    c.check(gz != nullptr && gz->size == 8 && gz->path == f.path + ".gz", ".gz found after kValidMs");
    c.check(cache.sibling(f, ".br", later) == nullptr, "no .br");
    c.check(cache.sibling(f, ".zz", later) != nullptr, "other suffixes (no memo) found too");
    c.check(cache.sibling(f, ".gz", later + 1) == gz, "the same entry while valid");
    std::error_code ec;
    fs::remove(tree.base() / "www/sub/page.html.gz", ec);
    c.check(cache.sibling(f, ".gz", later + FileCache::kValidMs - 1) == gz, "presence trusted within kValidMs");
    c.check(cache.sibling(f, ".gz", later + FileCache::kValidMs) == nullptr, "gone after kValidMs");
  }
  {
    Case c(suite, "static: redirect target is percent-encoded (no header injection)");
    std::error_code ec;
    fs::create_directories(tree.base() / "www" / "x\r\ny", ec);
    const ResolvedPath r = resolveStaticPath(root, "/x%0D%0Ay");
    c.eq(r.status, 301, "status");
    c.eq(r.redirect, std::string("/x%0D%0Ay/"), "redirect");
  }
}

}  // namespace lisod::test
