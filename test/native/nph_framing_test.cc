// Tests for the NPH response framing (native/nph_framing.h), the port of src/app_framing.ts:
// the same cases as test/app_framing.test.ts plus the byte-level details of reading the head
// (LF-only lines, JavaScript trimming, repeated fields), so both runners keep the same connections.
#include <string>
#include <vector>

#include "../../native/nph_framing.h"
#include "test_support.h"

namespace lisod::test {
namespace {

using namespace std::string_literals;

const std::string kChunked = "5\r\nhello\r\n6;ext=\"a b\"\r\n world\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n";

// Feeds pieces in order until the body completes; returns how many bytes of the whole input
// belonged to the body, or -1 when it never completed.
long feed(BodyEnd& body, const std::string& in, const std::vector<size_t>& cuts) {
  size_t start = 0;
  size_t taken = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : in.size();
    const size_t n = body.take(std::string_view(in).substr(start, end - start));
    taken += n;
    if (body.complete()) return static_cast<long>(taken);
    if (n != end - start) return -2;  // bytes left over without completing: a bug
    start = end;
  }
  return -1;
}

// The head as a script writes it: "\n" in the text becomes CRLF unless lf_only.
std::string head(const std::string& text, bool lf_only = false) {
  std::string out;
  for (char ch : text) {
    if (ch == '\n' && !lf_only) out += '\r';
    out += ch;
  }
  return out + (lf_only ? "\n" : "\r\n");
}

struct Row {
  const char* text;
  const char* method;
  const char* version;
  bool keep_alive;
  bool delimited;
};

}  // namespace

void runNphFramingTests(Suite& suite) {
  {
    Case c(suite, "nph: Content-Length counted across take() calls, the excess cut");
    BodyEnd b = BodyEnd::length(5);
    c.check(b.delimited(), "delimited");
    c.eq(b.take("hel"), size_t{3}, "first");
    c.check(!b.complete(), "not complete after 3");
    c.eq(b.take(""), size_t{0}, "empty");
    c.eq(b.take("l"), size_t{1}, "second");
    c.eq(b.take("oEXTRA"), size_t{1}, "third");
    c.check(b.complete(), "complete");
    c.eq(b.take("more"), size_t{0}, "after complete");
    c.check(BodyEnd::length(0).complete(), "length 0 complete at once");
    BodyEnd eof = BodyEnd::untilEof();
    c.eq(eof.take(std::string(10, 'x')), size_t{10}, "untilEof takes all");
    c.check(!eof.complete(), "untilEof never complete");
    c.check(!eof.delimited(), "untilEof not delimited");
  }
  {
    Case c(suite, "nph: chunked end with extensions and trailers, at every split and byte by byte");
    for (size_t split = 0; split <= kChunked.size(); ++split) {
      BodyEnd b = BodyEnd::chunked();
      c.eq(feed(b, kChunked + "NEXT", {split}), static_cast<long>(kChunked.size()), "split " + std::to_string(split));
    }
    std::vector<size_t> every;
    for (size_t i = 1; i < kChunked.size() + 4; ++i) every.push_back(i);
    BodyEnd b = BodyEnd::chunked();
    c.eq(feed(b, kChunked + "NEXT", every), static_cast<long>(kChunked.size()), "byte by byte");
    c.eq(b.take("x"), size_t{0}, "after complete");
  }
  {
    Case c(suite, "nph: chunked end, last chunk alone; data holding CRLF; big chunk in pieces");
    BodyEnd a = BodyEnd::chunked();
    c.eq(a.take("0\r\n\r\nrest"), size_t{5}, "last chunk only");
    c.check(a.complete(), "complete");
    BodyEnd d = BodyEnd::chunked();
    c.eq(d.take("4\r\n\r\n\r\n\r\n0;x\r\n\r\n"s), size_t{16}, "data is CRLFCRLF");
    const std::string big = "Ff\r\n" + std::string(255, 'z') + "\r\n000\r\n\r\n";
    BodyEnd e = BodyEnd::chunked();
    c.eq(feed(e, big + "++", {2, 10, 100, 258, 260, 261}), static_cast<long>(big.size()), "pieces");
  }
  {
    Case c(suite, "nph: malformed chunked framing never completes");
    const std::vector<std::string> bad = {
        "x\r\n", "5\r\nhelloXX", "5\nhello\r\n0\r\n\r\n", "\r\n0\r\n\r\n", "1234567890abc\r\n",
        ";ext\r\n", "5\r\nhello\r\r", "0\r\nX: 1\r\r\n", "0\r\n\rX", "-1\r\n",
    };
    for (const std::string& s : bad) {
      BodyEnd b = BodyEnd::chunked();
      const std::string in = s + "0\r\n\r\n";
      c.eq(b.take(in), in.size(), "takes all: " + show(s));
      c.eq(b.take("0\r\n\r\n"), size_t{5}, "still takes all: " + show(s));
      c.check(!b.complete(), "never complete: " + show(s));
      c.check(b.delimited(), "still delimited (the connection closes at EOF instead)");
    }
    BodyEnd twelve = BodyEnd::chunked();  // 12 hex digits are still a size
    c.eq(twelve.take("000000000001\r\nA\r\n0\r\n\r\n"), size_t{22}, "12 digits");
  }
  {
    Case c(suite, "nph: keep-alive only when the head frames the body, says no close, both sides 1.1");
    const std::vector<Row> rows = {
        {"HTTP/1.1 200 OK\nContent-Length: 5\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 200 OK\nContent-Type: text/plain\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nContent-Length: 5\nConnection: keep-alive, close\n", "GET", "HTTP/1.1", false, true},
        {"HTTP/1.1 200 OK\nContent-Length: 5\nConnection: keep-alive,  CLOSE \n", "GET", "HTTP/1.1", false, true},
        {"HTTP/1.1 200 OK\nContent-Length: 5\nConnection: closed\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.0 200 OK\nContent-Length: 5\n", "GET", "HTTP/1.1", false, true},
        {"HTTP/1.1 200 OK\nContent-Length: 5\n", "GET", "HTTP/1.0", false, true},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", "GET", "HTTP/1.0", false, false},
        {"HTTP/1.0 200 OK\nTransfer-Encoding: chunked\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 6\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nContent-Length: 5\nContent-Length: 005\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 200 OK\nContent-Length: 5x\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nContent-Length: 1234567890123456\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: gzip\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: chunked, gzip\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: gzip\nTransfer-Encoding: Chunked\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nTransfer-Encoding:\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: gzip\nContent-Length: 5\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1 204 No Content\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 304 Not Modified\nConnection: close\n", "GET", "HTTP/1.1", false, true},
        {"HTTP/1.1 101 Switching Protocols\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 200 OK\n", "HEAD", "HTTP/1.1", true, true},
        {"HTTP/1.1 200 OK\n", "head", "HTTP/1.1", false, false},
        {"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n", "HEAD", "HTTP/1.0", false, true},
        {"HTTP/1.1  200 OK\nContent-Length: 0\n", "GET", "HTTP/1.1", true, true},
        {"HTTP/1.1 20 OK\n", "GET", "HTTP/1.1", false, false},
        {"HTTP/1.1\t204\n", "GET", "HTTP/1.1", false, false},
    };
    for (const Row& r : rows) {
      for (bool lf_only : {false, true}) {
        const NphFraming f = nphFraming(head(r.text, lf_only), r.method, r.version);
        const std::string what = show(r.text) + " " + r.method + " " + r.version + (lf_only ? " (LF)" : "");
        c.eq(f.keep_alive, r.keep_alive, "keep_alive " + what);
        c.eq(f.body.delimited(), r.delimited, "delimited " + what);
      }
    }
  }
  {
    Case c(suite, "nph: HEAD, 1xx, 204 and 304 have no body whatever the head frames");
    for (const char* text : {"HTTP/1.1 204 No Content\nContent-Length: 10\n", "HTTP/1.1 304 Not Modified\n",
                             "HTTP/1.1 199 X\nTransfer-Encoding: chunked\n", "HTTP/1.1 100 Continue\n"}) {
      NphFraming f = nphFraming(head(text), "GET", "HTTP/1.1");
      c.check(f.body.complete(), "complete at once: " + show(text));
      c.eq(f.body.take("body"), size_t{0}, "takes nothing: " + show(text));
    }
    NphFraming h = nphFraming(head("HTTP/1.1 200 OK\nContent-Length: 10\n"), "HEAD", "HTTP/1.1");
    c.check(h.body.complete(), "HEAD complete at once");
    c.check(h.keep_alive, "HEAD keeps the connection");
  }
  {
    Case c(suite, "nph: the framing found counts the body that follows");
    NphFraming l = nphFraming(head("HTTP/1.1 200 OK\nContent-Length: 3\n"), "GET", "HTTP/1.1");
    c.eq(l.body.take("abcdef"), size_t{3}, "length");
    c.check(l.body.complete(), "length complete");
    NphFraming k = nphFraming(head("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n"), "GET", "HTTP/1.1");
    c.eq(k.body.take("1\r\na\r\n0\r\n\r\nNEXT"), size_t{11}, "chunked");
    c.check(k.body.complete(), "chunked complete");
  }
  {
    Case c(suite, "nph: head lines split on LF with an optional CR, names and values trimmed as in JS");
    auto keep = [](std::string h) { return nphFraming(h, "GET", "HTTP/1.1").keep_alive; };
    c.check(keep("HTTP/1.1 200 OK\nContent-Length: 5\n\n"), "LF only");
    c.check(keep("HTTP/1.1 200 OK\r\nContent-Length: 5\n\r\n"), "mixed");
    c.check(keep("HTTP/1.1 200 OK\r\nContent-Length: 5"), "no final line end");
    c.check(!keep("HTTP/1.1 200 OK\rContent-Length: 5\r\n\r\n"), "a lone CR does not end a line");
    c.check(keep("HTTP/1.1 200 OK\r\n\t Content-LENGTH \v:\f 5 \xa0\r\r\n\r\n"), "JS trim: HT VT FF CR NBSP");
    c.check(!keep("HTTP/1.1 200 OK\r\nContent-Length: 5\x85\r\n\r\n"), "U+0085 is not JS white space");
    c.check(!keep("HTTP/1.1 200 OK\r\nContent-Length: 5\x1f\r\n\r\n"), "nor is US");
    c.check(!keep("HTTP/1.1 200 OK\r\n:Content-Length: 5\r\n\r\n"), "a line starting with ':' is skipped");
    c.check(!keep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: x\xa0,\xa0" "close\r\n\r\n"),
            "Connection tokens trimmed of NBSP");
    c.check(!keep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nConnection: close\r\n"),
            "lines after the blank line are read too, as in JS");
    c.check(!keep("http/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "the status line is case-sensitive");
    c.check(!keep("\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), "the status line must come first");
    c.check(!nphFraming(head("HTTP/1.1 200 OK\nContent-Length: 5\n"), "GET", "HTTP/1.2").keep_alive, "1.2 request");
    c.check(!nphFraming(""s, "GET", "HTTP/1.1").body.delimited(), "empty head");
    c.check(nphFraming("HTTP/1.1 2040\r\n"s, "GET", "HTTP/1.1").body.complete(), "status is the first 3 digits");
  }
}

}  // namespace lisod::test
