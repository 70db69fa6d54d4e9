// libFuzzer target for the CGI output head parser (native/cgi_output.cc), the bytes a
// script (or, later, a FastCGI backend) sends back. Besides ASan/UBSan it checks: the
// verdict does not depend on how the output was split (the scanned resume), views lie in
// the head, relayed fields are tokens without control characters or server-owned names,
// and interpretCgiLines on the same lines agrees with parseCgiHead; for NPH output, where its
// body ends (nph_framing.cc) does not depend on how the body is split.
// Input: byte 0 chooses the split point and the head limit; the rest is the output.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../native/cgi_output.h"
#include "../../native/http_parser.h"
#include "../../native/http_request.h"
#include "../../native/nph_framing.h"
#include "fuzz_check.h"

using namespace lisod;

namespace {

bool inside(std::string_view v, const char* buf, size_t n) {
  return v.empty() || (v.data() >= buf && v.data() + v.size() <= buf + n);
}

long parse(const char* buf, size_t len, size_t max_head, size_t scanned, std::vector<CgiField>* fields,
           CgiHead* out) {
  fields->assign(len + 1, CgiField{});
  out->fields = fields->data();
  out->num_fields = fields->size();
  return parseCgiHead(buf, len, max_head, scanned, out);
}

void checkSame(const CgiHead& a, const CgiHead& b) {
  FUZZ_CHECK(a.kind == b.kind && a.error == b.error && a.status == b.status);
  FUZZ_CHECK(a.error_text == b.error_text && a.reason == b.reason && a.location == b.location);
  FUZZ_CHECK(a.has_status == b.has_status && a.has_location == b.has_location);
  FUZZ_CHECK(a.num_fields == b.num_fields);
  for (size_t i = 0; i < a.num_fields; ++i) {
    FUZZ_CHECK(a.fields[i].name == b.fields[i].name && a.fields[i].value == b.fields[i].value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const size_t len = size - 1;
  // Exact-size copy so ASan catches any read past the end.
  std::unique_ptr<char[]> owned(new char[len + 1]);
  char* buf = owned.get();
  std::memcpy(buf, data + 1, len);
  const size_t max_head = mode & 1 ? 64 : 65536;

  std::vector<CgiField> fields;
  CgiHead head;
  const long r = parse(buf, len, max_head, 0, &fields, &head);
  FUZZ_CHECK(r == kCgiIncomplete || r == kCgiTooLarge || (r > 0 && static_cast<size_t>(r) <= len));
  if (r == kCgiIncomplete) FUZZ_CHECK(len <= max_head);
  if (r == kCgiTooLarge) FUZZ_CHECK(head.kind == CgiKind::kInvalid && head.error == CgiError::kTooLarge);

  // Fed in two pieces: the first call sees a prefix; the second resumes past it.
  const size_t cut = len ? (static_cast<size_t>(mode >> 1) * 7919u) % (len + 1) : 0;
  {
    std::vector<CgiField> f1, f2;
    CgiHead h1, h2;
    const long r1 = parse(buf, cut, max_head, 0, &f1, &h1);
    if (r1 == kCgiIncomplete) {
      const long r2 = parse(buf, len, max_head, cut, &f2, &h2);
      FUZZ_CHECK(r2 == r);
      if (r2 != kCgiIncomplete) checkSame(h2, head);
    } else {
      FUZZ_CHECK(r1 == r || (r1 == kCgiTooLarge && r > 0));
    }
  }
  if (r <= 0) return 0;

  const size_t n = static_cast<size_t>(r);
  FUZZ_CHECK(buf[n - 1] == '\n');
  FUZZ_CHECK(inside(head.error_text, buf, n) && inside(head.reason, buf, n) && inside(head.location, buf, n));
  switch (head.kind) {
    case CgiKind::kNph: {
      FUZZ_CHECK(std::memcmp(buf, "HTTP/1.", 7) == 0 && head.status >= 100 && head.status <= 999);
      // The relayed body's end (nph_framing.h) does not depend on how the output arrives:
      // whole, or in pieces of a size the mode byte picks.
      const std::string_view body(buf + n, len - n);
      const char* method = mode & 2 ? "HEAD" : "GET";
      const char* version = mode & 4 ? "HTTP/1.0" : "HTTP/1.1";
      NphFraming whole = nphFraming(std::string_view(buf, n), method, version);
      NphFraming split = whole;
      const size_t taken = whole.body.take(body);
      FUZZ_CHECK(taken <= body.size());
      if (!whole.body.delimited()) FUZZ_CHECK(taken == body.size() && !whole.body.complete() && !whole.keep_alive);
      const size_t step = 1 + (mode >> 3) % 7;
      size_t pieces = 0;
      for (size_t off = 0; off < body.size(); off += step) {
        const size_t got = split.body.take(body.substr(off, step));
        pieces += got;
        if (got < std::min(step, body.size() - off)) break;  // excess: the body ended in this piece
      }
      FUZZ_CHECK(pieces == taken && split.body.complete() == whole.body.complete());
      return 0;
    }
    case CgiKind::kLocalRedirect:
      FUZZ_CHECK(!head.has_status && head.location.size() >= 1 && head.location[0] == '/');
      FUZZ_CHECK(head.location.size() == 1 || head.location[1] != '/');
      break;
    case CgiKind::kResponse:
      FUZZ_CHECK(head.status >= 200 && head.status <= 599);
      FUZZ_CHECK(!head.has_location || !head.location.empty());
      for (size_t i = 0; i < head.num_fields; ++i) {
        const CgiField& f = head.fields[i];
        FUZZ_CHECK(isToken(f.name) && inside(f.name, buf, n) && inside(f.value, buf, n));
        FUZZ_CHECK(!equalsIgnoreCase(f.name, "status") && !equalsIgnoreCase(f.name, "location"));
        FUZZ_CHECK(!equalsIgnoreCase(f.name, "connection") && !equalsIgnoreCase(f.name, "transfer-encoding"));
        for (char c : f.value) {
          const auto u = static_cast<unsigned char>(c);
          FUZZ_CHECK(u == '\t' || (u >= 0x20 && u != 0x7f));
        }
        if (!f.value.empty()) FUZZ_CHECK(f.value.front() != ' ' && f.value.back() != ' ');
        if (equalsIgnoreCase(f.name, "content-length")) {
          FUZZ_CHECK(!f.value.empty() && f.value.size() <= 15 && (f.value == "0" || f.value[0] != '0'));
        }
      }
      break;
    case CgiKind::kInvalid:
      FUZZ_CHECK(head.error != CgiError::kNone && head.error != CgiError::kTooLarge);
      break;
  }
  if (std::memcmp(buf, "HTTP/", std::min<size_t>(n, 5)) == 0 && n >= 5) return 0;

  // The same lines through interpretCgiLines.
  std::vector<std::string_view> lines;
  for (size_t p = 0; p < n;) {
    const char* nl = static_cast<const char*>(std::memchr(buf + p, '\n', n - p));
    size_t stop = static_cast<size_t>(nl - buf);
    const size_t next = stop + 1;
    if (stop > p && buf[stop - 1] == '\r') --stop;
    if (stop == p) break;  // the blank line
    lines.emplace_back(buf + p, stop - p);
    p = next;
  }
  std::vector<CgiField> f3(lines.size() + 1);
  CgiHead h3;
  h3.fields = f3.data();
  h3.num_fields = f3.size();
  interpretCgiLines(lines.data(), lines.size(), &h3);
  checkSame(h3, head);
  return 0;
}
