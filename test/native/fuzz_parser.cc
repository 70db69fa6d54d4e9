// libFuzzer target for the pure request-path code: parseRequest (both overloads),
// classifyRequest, ChunkedDecoder, resolveStaticPath, parseRange, HTTP dates, MIME.
// Beyond "no crash / no sanitizer report" it checks properties: fields lie inside the
// consumed head and have the promised shape, a prefix never changes the verdict,
// chunked decoding is independent of how the input is split, resolved files stay
// under the root. Built by scripts/fuzz.mjs (clang -fsanitize=fuzzer,address,undefined).
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "../../native/chunked.h"
#include "../../native/http_parser.h"
#include "../../native/http_request.h"
#include "../../native/static_file.h"
#include "fuzz_check.h"

using namespace lisod;

namespace {

bool isTchar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
}

bool inside(std::string_view v, const char* buf, size_t n) {
  return v.data() >= buf && v.data() + v.size() <= buf + n;
}

// Exact-size heap copy so ASan catches any read past n.
std::unique_ptr<char[]> copyOf(const char* data, size_t n) {
  std::unique_ptr<char[]> p(new char[n]);
  if (n) std::memcpy(p.get(), data, n);
  return p;
}

int parse(const char* data, size_t n, const ParseLimits& limits, size_t capacity,
          Header* headers, RequestHead* req) {
  auto buf = copyOf(data, n);
  req->headers = headers;
  req->num_headers = capacity;
  return parseRequest(buf.get(), n, req, limits);
}

// The root for resolveStaticPath: a small real tree with a symlink out of it.
// Fuzzer-only process state, created once.
std::string& fuzzRoot() {
  static std::string root;
  return root;
}

void makeFuzzTree() {
  char tmpl[] = "/tmp/lisod-fuzz-XXXXXX";
  if (!::mkdtemp(tmpl)) return;
  char real[PATH_MAX];
  if (!::realpath(tmpl, real)) return;
  const std::string base = real;
  ::mkdir((base + "/www").c_str(), 0755);
  ::mkdir((base + "/www/d").c_str(), 0755);
  ::mkdir((base + "/out").c_str(), 0755);
  for (const char* f : {"/www/a", "/www/d/index.html", "/out/secret"}) {
    if (FILE* fp = std::fopen((base + f).c_str(), "w")) std::fclose(fp);
  }
  [[maybe_unused]] int rc = ::symlink("../out", (base + "/www/l").c_str());
  rc = ::symlink("../../out/secret", (base + "/www/d/s").c_str());
  fuzzRoot() = base + "/www";
  std::atexit([] {
    const std::string base = fuzzRoot().substr(0, fuzzRoot().size() - 4);
    for (const char* f : {"/www/d/s", "/www/l", "/www/a", "/www/d/index.html", "/out/secret"})
      ::unlink((base + f).c_str());
    for (const char* d : {"/www/d", "/www", "/out", ""}) ::rmdir((base + d).c_str());
  });
}

void checkHead(const char* data, size_t size, uint8_t mode) {
  const ParseLimits limits = (mode & 1) ? ParseLimits{48, 24, 160} : ParseLimits{};
  const size_t capacity = (mode & 2) ? 3 : 32;
  Header headers[32];
  RequestHead req;
  const int r = parse(data, size, limits, capacity, headers, &req);
  FUZZ_CHECK(r >= kHeadTooLarge);
  FUZZ_CHECK(r < 0 ||
             (static_cast<size_t>(r) <= size && static_cast<size_t>(r) <= limits.max_head));

  // Prefix consistency (ungated) and the gated overload, at a data-chosen cut.
  const size_t k = size ? (static_cast<size_t>(mode) * 7919u) % (size + 1) : 0;
  {
    Header h2[32];
    RequestHead req2;
    const int rk = parse(data, k, limits, capacity, h2, &req2);
    if (r >= 0)
      FUZZ_CHECK(rk == (k >= static_cast<size_t>(r) ? r : kIncomplete));
    else
      FUZZ_CHECK(rk == kIncomplete || rk == r);
    if (rk == kIncomplete && k > 0 && k < size) {
      auto buf = copyOf(data, size);
      req2.headers = h2;
      req2.num_headers = capacity;
      const int rg = parseRequest(buf.get(), size, &req2, limits, k);
      FUZZ_CHECK(rg == kIncomplete || rg == r);
      if (r >= 0 || size >= limits.max_head) FUZZ_CHECK(rg == r);
    }
  }
  if (r < 0) return;

  // Re-parse into a buffer we keep, to check the views.
  auto buf = copyOf(data, size);
  req.headers = headers;
  req.num_headers = capacity;
  FUZZ_CHECK(parseRequest(buf.get(), size, &req, limits) == r);
  const char* b = buf.get();
  const size_t n = static_cast<size_t>(r);
  FUZZ_CHECK(n >= 4 && std::memcmp(b + n - 4, "\r\n\r\n", 4) == 0);
  FUZZ_CHECK(!req.method.empty() && inside(req.method, b, n));
  for (char c : req.method) FUZZ_CHECK(isTchar(c));
  FUZZ_CHECK(!req.target.empty() && req.target.size() <= limits.max_target &&
             inside(req.target, b, n));
  for (char c : req.target) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
  FUZZ_CHECK(req.minor_version == 0 || req.minor_version == 1);
  FUZZ_CHECK(req.num_headers <= capacity);
  for (size_t i = 0; i < req.num_headers; ++i) {
    const Header& h = headers[i];
    FUZZ_CHECK(!h.name.empty() && inside(h.name, b, n) && inside(h.value, b, n));
    for (char c : h.name) FUZZ_CHECK(isTchar(c));
    for (char c : h.value) {
      const auto u = static_cast<unsigned char>(c);
      FUZZ_CHECK(u == '\t' || (u >= 0x20 && u != 0x7f));
    }
    if (!h.value.empty()) {
      FUZZ_CHECK(h.value.front() != ' ' && h.value.front() != '\t');
      FUZZ_CHECK(h.value.back() != ' ' && h.value.back() != '\t');
    }
  }

  const uint64_t max_body = (mode & 4) ? 16 : 1 << 20;
  const RequestInfo info = classifyRequest(req, max_body);
  const int s = info.status;
  FUZZ_CHECK(s == 0 || s == 400 || s == 411 || s == 413 || s == 501);
  if (s == 0) {
    // Every valid token passes classify; only a static path refuses a method.
    FUZZ_CHECK(methodStatus(info.method, true) == 0);
    const int ms = methodStatus(info.method, false);
    FUZZ_CHECK(ms == 0 || ms == 405 || ms == 501);
    FUZZ_CHECK((ms == 0) == (info.method == Method::kGet || info.method == Method::kHead ||
                             info.method == Method::kPost));
    FUZZ_CHECK(!(info.chunked && info.has_length));
    FUZZ_CHECK(!info.has_length || info.content_length <= max_body);
    FUZZ_CHECK(info.method != Method::kPost || info.has_length || info.chunked);
    FUZZ_CHECK(req.minor_version == 0 || !info.host.data() || inside(info.host, b, n));
  }
  if (s == 400) FUZZ_CHECK(!info.keep_alive);
}

struct Decoded {
  long result = ChunkedDecoder::kNeedMore;
  std::string data;
  uint64_t total = 0;
};

Decoded decodeSplit(const char* data, size_t size, size_t cut, uint64_t max_body) {
  ChunkedDecoder d(max_body);
  Decoded out;
  size_t start = 0;
  for (size_t end : {cut, size}) {
    const size_t n = end - start;
    auto buf = copyOf(data + start, n);
    size_t len = n;
    const long r = d.decode(buf.get(), &len);
    FUZZ_CHECK(len <= n);
    out.data.append(buf.get(), len);
    if (r != ChunkedDecoder::kNeedMore) {
      FUZZ_CHECK(r == ChunkedDecoder::kError || r == ChunkedDecoder::kTooLarge ||
                 (r >= 0 && static_cast<size_t>(r) <= n - len));
      if (r >= 0) {
        FUZZ_CHECK(d.done());
        // The rest is the untouched tail of this piece.
        FUZZ_CHECK(std::memcmp(buf.get() + n - r, data + end - r, static_cast<size_t>(r)) == 0);
      }
      out.result = r >= 0 ? r + static_cast<long>(size - end) : r;
      break;
    }
    start = end;
  }
  out.total = d.decodedTotal();
  FUZZ_CHECK(out.total == out.data.size());
  FUZZ_CHECK(out.total <= max_body);
  return out;
}

void checkChunked(const char* data, size_t size, uint8_t mode) {
  const uint64_t max_body = (mode & 8) ? 64 : 1 << 20;
  const size_t cut = size ? (static_cast<size_t>(mode) * 104729u) % (size + 1) : 0;
  const Decoded whole = decodeSplit(data, size, size, max_body);
  const Decoded split = decodeSplit(data, size, cut, max_body);
  FUZZ_CHECK(whole.result == split.result);
  FUZZ_CHECK(whole.data == split.data);
}

void checkHelpers(const char* data, size_t size, uint8_t mode) {
  const std::string_view s(data, size);
  uint64_t first = 0;
  uint64_t last = 0;
  const uint64_t file_size = mode;
  if (parseRange(s, file_size, &first, &last) == RangeResult::kOk)
    FUZZ_CHECK(first <= last && last < file_size);

  const int64_t t = parseHttpDate(s);
  FUZZ_CHECK(t >= -1);
  if (t >= 0) {
    char out[30];
    FUZZ_CHECK(formatHttpDate(t, out) == 29);
    FUZZ_CHECK(parseHttpDate(std::string_view(out, 29)) == t);
  }
  const std::string_view type = mimeType(s);
  FUZZ_CHECK(!type.empty());

  if (!fuzzRoot().empty() && size < 512) {
    const std::string& root = fuzzRoot();
    const ResolvedPath r = resolveStaticPath(root, s);
    FUZZ_CHECK(r.status == 0 || r.status == 301 || r.status == 400 || r.status == 403 ||
               r.status == 404);
    if (r.status == 0) {
      FUZZ_CHECK(r.path.size() > root.size() && r.path.compare(0, root.size(), root) == 0 &&
                 r.path[root.size()] == '/');
      FUZZ_CHECK(r.path.find("/out/") == std::string::npos);
    }
    if (r.status == 301) {
      FUZZ_CHECK(!r.redirect.empty() && r.redirect.front() == '/' && r.redirect.back() == '/');
      for (char c : r.redirect) FUZZ_CHECK(static_cast<unsigned char>(c) > 0x20 && c != 0x7f);
    } else {
      FUZZ_CHECK(r.redirect.empty());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  makeFuzzTree();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = bytes[0];
  const char* data = reinterpret_cast<const char*>(bytes + 1);
  --size;
  checkHead(data, size, mode);
  checkChunked(data, size, mode);
  checkHelpers(data, size, mode);
  return 0;
}
