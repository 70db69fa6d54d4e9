// Table tests for parseRequest/findHeadEnd: every error class, limits at their exact
// boundaries, every prefix of every row (a prefix may only be kIncomplete or the
// row's own verdict), byte-by-byte feeding through the gated overload, pipelining.
#include <memory>
#include <string>
#include <vector>

#include "../../native/http_parser.h"
#include "test_support.h"

namespace lisod::test {
namespace {

using namespace std::string_literals;

constexpr int kAll = 1 << 30;  // expect: the whole input is one head

struct Row {
  std::string name;
  std::string input;
  int expect;
  ParseLimits limits = {};
  size_t capacity = 32;
};

// Parses the first n bytes of s. Up to 4 KiB they are copied into a heap block of
// exactly n bytes so ASan sees any read past the end (larger rows would make the
// byte-by-byte feed quadratic in copying).
int parseCopy(const std::string& s, size_t n, const ParseLimits& limits, size_t capacity,
              size_t last_len = 0, bool gated = false) {
  std::unique_ptr<char[]> copy;
  const char* data = s.data();
  if (n <= 4096 || n == s.size()) {
    copy.reset(new char[n]);
    std::copy(s.data(), s.data() + n, copy.get());
    data = copy.get();
  }
  std::vector<Header> headers(capacity);
  RequestHead req;
  req.headers = headers.data();
  req.num_headers = capacity;
  return gated ? parseRequest(data, n, &req, limits, last_len)
               : parseRequest(data, n, &req, limits);
}

const char* kSimple = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n";
constexpr int kSimpleLen = 37;

std::string crlfs(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "\r\n";
  return s;
}

std::vector<Row> rows() {
  const ParseLimits tiny{/*max_line=*/64, /*max_target=*/32, /*max_head=*/60};
  const std::string h = "Host: a\r\n";
  std::vector<Row> r = {
      // --- accepted
      {"simple GET", kSimple, kAll},
      {"HTTP/1.0 without headers", "GET / HTTP/1.0\r\n\r\n", kAll},
      {"POST with headers", "POST /cgi/x?a=b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
       kAll},
      {"lower-case method is a token", "get / HTTP/1.1\r\n" + h + "\r\n", kAll},
      {"unusual token method", "M-SEARCH! * HTTP/1.1\r\n" + h + "\r\n", kAll},
      {"leading empty lines skipped", "\r\n\r\n" + std::string(kSimple), kAll},
      {"absolute-form target", "GET http://a/b?c HTTP/1.1\r\n" + h + "\r\n", kAll},
      {"obs-text in target", "GET /caf\xc3\xa9 HTTP/1.1\r\n" + h + "\r\n", kAll},
      {"empty field value", "GET / HTTP/1.1\r\nX-E:\r\nX-F:   \r\n" + h + "\r\n", kAll},
      {"HTAB and obs-text in value", "GET / HTTP/1.1\r\nX: a\tb \xff\r\n" + h + "\r\n", kAll},
      {"value with colons", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", kAll},
      {"body bytes after head are not consumed", std::string(kSimple) + "hello", kSimpleLen},
      {"pipelined: only the first head", std::string(kSimple) + kSimple, kSimpleLen},
      // --- incomplete
      {"empty input", "", kIncomplete},
      {"only leading CRLF", "\r\n", kIncomplete},
      {"partial method", "GE", kIncomplete},
      {"partial version", "GET / HTTP/1.", kIncomplete},
      {"version without LF", "GET / HTTP/1.1\r", kIncomplete},
      {"headers without blank line", "GET / HTTP/1.1\r\nHost: a\r\n", kIncomplete},
      {"final CR without LF", "GET / HTTP/1.1\r\nHost: a\r\n\r", kIncomplete},
      // --- 400
      {"garbage line", "garbage\r\n\r\n", kBadRequest},
      {"binary garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"s, kBadRequest},
      {"method only", "GET\r\n\r\n", kBadRequest},
      {"no version", "GET /\r\n\r\n", kBadRequest},
      {"empty version", "GET / \r\n\r\n", kBadRequest},
      {"empty method", " / HTTP/1.1\r\n\r\n", kBadRequest},
      {"double space after method", "GET  / HTTP/1.1\r\n\r\n", kBadRequest},
      {"double space after target", "GET /  HTTP/1.1\r\n\r\n", kBadRequest},
      {"tab as separator", "GET\t/ HTTP/1.1\r\n\r\n", kBadRequest},
      {"bad char in method", "G(T / HTTP/1.1\r\n\r\n", kBadRequest},
      {"NUL in method", "GE\0T / HTTP/1.1\r\n\r\n"s, kBadRequest},
      {"CTL in target", "GET /a\x01 HTTP/1.1\r\n\r\n", kBadRequest},
      {"DEL in target", "GET /a\x7f HTTP/1.1\r\n\r\n", kBadRequest},
      {"NUL in target", "GET /a\0b HTTP/1.1\r\n\r\n"s, kBadRequest},
      {"lower-case http", "GET / http/1.1\r\n\r\n", kBadRequest},
      {"HTTPS/1.1", "GET / HTTPS/1.1\r\n\r\n", kBadRequest},
      {"HTTP/1", "GET / HTTP/1\r\n\r\n", kBadRequest},
      {"HTTP/11", "GET / HTTP/11\r\n\r\n", kBadRequest},
      {"HTTP/1.10", "GET / HTTP/1.10\r\n\r\n", kBadRequest},
      {"HTTP/x.y", "GET / HTTP/x.y\r\n\r\n", kBadRequest},
      {"space after version", "GET / HTTP/1.1 \r\n\r\n", kBadRequest},
      {"bare LF after request line", "GET / HTTP/1.1\nHost: a\n\n", kBadRequest},
      {"bare CR after request line", "GET / HTTP/1.1\rHost: a\r\n\r\n", kBadRequest},
      {"bare LF ending a header", "GET / HTTP/1.1\r\nHost: a\n\r\n", kBadRequest},
      {"bare CR inside a value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", kBadRequest},
      {"bare LF as blank line", "GET / HTTP/1.1\r\nHost: a\r\n\n", kBadRequest},
      {"CR not followed by LF at end", "GET / HTTP/1.1\r\nHost: a\r\n\rX", kBadRequest},
      {"leading bare LF", "\nGET / HTTP/1.1\r\n\r\n", kBadRequest},
      {"leading bare CR", "\r\rGET / HTTP/1.1\r\n\r\n", kBadRequest},
      {"obs-fold with spaces", "GET / HTTP/1.1\r\nHost: a\r\n  folded\r\n\r\n", kBadRequest},
      {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\n\tfolded\r\n\r\n", kBadRequest},
      {"whitespace before first header", "GET / HTTP/1.1\r\n Host: a\r\n\r\n", kBadRequest},
      {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", kBadRequest},
      {"tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", kBadRequest},
      {"empty field name", "GET / HTTP/1.1\r\n: a\r\n\r\n", kBadRequest},
      {"no colon", "GET / HTTP/1.1\r\nHost a\r\n\r\n", kBadRequest},
      {"no colon, line ends", "GET / HTTP/1.1\r\nHost\r\n\r\n", kBadRequest},
      {"paren in field name", "GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", kBadRequest},
      {"slash in field name", "GET / HTTP/1.1\r\nX/Y: a\r\n\r\n", kBadRequest},
      {"non-ASCII field name", "GET / HTTP/1.1\r\nH\xc3\xb6st: a\r\n\r\n", kBadRequest},
      {"NUL in field name", "GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n"s, kBadRequest},
      {"NUL in field value", "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n"s, kBadRequest},
      {"CTL in field value", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", kBadRequest},
      {"DEL in field value", "GET / HTTP/1.1\r\nHost: a\x7f\r\n\r\n", kBadRequest},
      {"ESC in field value", "GET / HTTP/1.1\r\nX: \x1b[31m\r\n\r\n", kBadRequest},
      // --- 505
      {"HTTP/0.1", "GET / HTTP/0.1\r\n\r\n", kBadVersion},
      {"HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", kBadVersion},
      {"HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", kBadVersion},
      {"HTTP/2.0", "GET / HTTP/2.0\r\n" + h + "\r\n", kBadVersion},
      {"HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", kBadVersion},
      {"HTTP/9.9 decided at end of request line", "GET / HTTP/9.9\r\n", kBadVersion},
      // --- limits at their boundaries (default limits)
      {"target of exactly 8000", "GET /" + std::string(7999, 'a') + " HTTP/1.1\r\n" + h + "\r\n",
       kAll},
      {"target of 8001", "GET /" + std::string(8000, 'a') + " HTTP/1.1\r\n" + h + "\r\n",
       kUriTooLong},
      {"target over limit, line incomplete", "GET /" + std::string(8000, 'a'), kUriTooLong},
      {"target at limit, line incomplete", "GET /" + std::string(7999, 'a'), kIncomplete},
      {"header line of exactly 8192", "GET / HTTP/1.1\r\nX: " + std::string(8189, 'v') +
                                          "\r\n" + h + "\r\n",
       kAll},
      {"header line of 8193", "GET / HTTP/1.1\r\nX: " + std::string(8190, 'v') + "\r\n" + h +
                                  "\r\n",
       kHeadTooLarge},
      {"long header line, incomplete", "GET / HTTP/1.1\r\nX: " + std::string(8190, 'v'),
       kHeadTooLarge},
      {"long header name, incomplete", "GET / HTTP/1.1\r\n" + std::string(8193, 'N'),
       kHeadTooLarge},
      {"long method", std::string(8193, 'M'), kHeadTooLarge},
      {"head over 64 KiB", "GET / HTTP/1.1\r\n" + [] {
         std::string s;
         for (int i = 0; i < 9; ++i)
           s += "X" + std::to_string(i) + ": " + std::string(8000, 'x') + "\r\n";
         return s;
       }() + "\r\n",
       kHeadTooLarge},
      // --- small limits, exact boundaries
      {"tiny: head of exactly max_head", "GET / HTTP/1.1\r\nX: " + std::string(37, 'v') +
                                             "\r\n\r\n",
       kAll, tiny},
      {"tiny: head one over max_head", "GET / HTTP/1.1\r\nX: " + std::string(38, 'v') +
                                           "\r\n\r\n",
       kHeadTooLarge, tiny},
      {"tiny: leading CRLFs count toward max_head", crlfs(21) + "GET / HTTP/1.1\r\n\r\n", kAll,
       tiny},
      {"tiny: leading CRLFs over max_head", crlfs(22) + "GET / HTTP/1.1\r\n\r\n", kHeadTooLarge,
       tiny},
      {"tiny: target of exactly 32", "GET /" + std::string(31, 't') + " HTTP/1.1\r\n\r\n", kAll,
       tiny},
      {"tiny: target of 33", "GET /" + std::string(32, 't') + " HTTP/1.1\r\n\r\n", kUriTooLong,
       tiny},
      {"tiny: request line of exactly max_line",
       "GET /" + std::string(31, 't') + " HTTP/1.1\r\n\r\n", kAll,
       ParseLimits{/*max_line=*/45, /*max_target=*/32, /*max_head=*/60}},
      {"tiny: request line one over max_line",
       "GET /" + std::string(31, 't') + " HTTP/1.1\r\n\r\n", kHeadTooLarge,
       ParseLimits{/*max_line=*/44, /*max_target=*/32, /*max_head=*/60}},
      {"tiny: header line of exactly 64", "GET / HTTP/1.1\r\nX: " + std::string(61, 'v') +
                                              "\r\n\r\n",
       kAll, ParseLimits{64, 32, 200}},
      {"tiny: header line of 65", "GET / HTTP/1.1\r\nX: " + std::string(62, 'v') + "\r\n\r\n",
       kHeadTooLarge, ParseLimits{64, 32, 200}},
      {"capacity: exactly full", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n", kAll, {}, 2},
      {"capacity: one too many", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
       kHeadTooLarge, {}, 2},
      {"capacity zero with no headers", "GET / HTTP/1.0\r\n\r\n", kAll, {}, 0},
  };
  // Every alignment of a bad byte inside long targets and values (the word-at-a-time
  // scan must hand over to the byte loop wherever the byte sits).
  static const std::string kBadValue[] = {"\x01"s, "\x7f"s, "\0"s, "\n"s, "\x1f"s};
  for (size_t k = 0; k < 18; ++k) {
    const std::string pad(k, 'v');
    const std::string at = " at " + std::to_string(k);
    for (const std::string& bad : kBadValue)
      r.push_back({"bad byte in value" + at,
                   "GET / HTTP/1.1\r\nX: " + pad + bad + pad + "\r\n" + h + "\r\n", kBadRequest});
    r.push_back({"DEL in target" + at, "GET /" + pad + "\x7f" + pad + " HTTP/1.1\r\n\r\n",
                 kBadRequest});
    r.push_back({"space ends target" + at, "GET /" + pad + " x" + pad + " HTTP/1.1\r\n\r\n",
                 kBadRequest});
    r.push_back({"tab and obs-text in value" + at,
                 "GET / HTTP/1.1\r\nX: " + pad + "\t\x80\xff" + pad + "\r\n" + h + "\r\n", kAll});
    r.push_back({"CRLF ends value" + at,
                 "GET /" + pad + " HTTP/1.1\r\nX: " + pad + "\r\n" + h + "\r\n", kAll});
  }
  return r;
}

// For each prefix: the ungated parser may only say kIncomplete or the final verdict
// (and must say kIncomplete before a complete head's last byte).
void checkPrefixes(Case& c, const Row& row, int verdict) {
  const size_t n = row.input.size();
  const size_t step = n > 3000 ? 997 : 1;
  for (size_t k = 0; k < n; k += (k + 3 >= n ? 1 : step)) {
    const int r = parseCopy(row.input, k, row.limits, row.capacity);
    if (verdict >= 0) {
      const int want = static_cast<size_t>(verdict) <= k ? verdict : kIncomplete;
      if (!c.eq(r, want, "prefix " + std::to_string(k))) return;
    } else if (r != kIncomplete && r != verdict) {
      c.eq(r, verdict, "prefix " + std::to_string(k) + " gave a different verdict");
      return;
    }
  }
}

// Feeds the row one byte at a time through the gated overload, as a connection would.
void checkGatedFeed(Case& c, const Row& row, int verdict) {
  const size_t n = row.input.size();
  size_t last = 0;
  for (size_t k = 1; k <= n; ++k) {
    const int r = parseCopy(row.input, k, row.limits, row.capacity, last, true);
    if (r == kIncomplete) {
      if (verdict >= 0 && static_cast<size_t>(verdict) == k) {
        c.eq(r, verdict, "gated feed missed the end of the head");
        return;
      }
      last = k;
      continue;
    }
    c.eq(r, parseCopy(row.input, k, row.limits, row.capacity),
         "gated verdict at " + std::to_string(k));
    if (verdict >= 0) c.eq(r, verdict, "gated verdict");
    return;
  }
  // A head containing its end, or input past max_head, must have been decided.
  if (verdict != kIncomplete && (findHeadEnd(row.input.data(), n) >= 0 || n >= row.limits.max_head))
    c.check(false, "gated feed never decided");
}

void runRows(Suite& suite) {
  for (const Row& row : rows()) {
    Case c(suite, std::string("parser: ") + row.name);
    const int want = row.expect == kAll ? static_cast<int>(row.input.size()) : row.expect;
    const int verdict = parseCopy(row.input, row.input.size(), row.limits, row.capacity);
    if (!c.eq(verdict, want, "verdict")) continue;
    checkPrefixes(c, row, verdict);
    checkGatedFeed(c, row, verdict);
  }
}

void runFieldChecks(Suite& suite) {
  {
    Case c(suite, "parser: fields of a full request");
    const std::string in =
        "\r\nPOST /cgi/login?next=%2F HTTP/1.0\r\nHost:  example.com:8080 \r\n"
        "Content-Type:application/x-www-form-urlencoded\r\nX-Empty:\t \r\n"
        "X-Inner: a  b\tc\r\n\r\nbody";
    Header headers[8];
    RequestHead req;
    req.headers = headers;
    req.num_headers = 8;
    const int n = parseRequest(in.data(), in.size(), &req, ParseLimits{});
    c.eq(n, static_cast<int>(in.size() - 4), "consumed");
    c.eq(req.method, std::string_view("POST"), "method");
    c.eq(req.target, std::string_view("/cgi/login?next=%2F"), "target");
    c.eq(req.minor_version, 0, "minor");
    if (c.eq(req.num_headers, size_t{4}, "num_headers")) {
      c.eq(headers[0].name, std::string_view("Host"), "h0 name");
      c.eq(headers[0].value, std::string_view("example.com:8080"), "h0 value trimmed");
      c.eq(headers[1].value, std::string_view("application/x-www-form-urlencoded"), "h1 no OWS");
      c.eq(headers[2].name, std::string_view("X-Empty"), "h2 name");
      c.eq(headers[2].value, std::string_view(""), "h2 all-OWS value is empty");
      c.eq(headers[3].value, std::string_view("a  b\tc"), "h3 inner whitespace kept");
    }
  }
  {
    Case c(suite, "parser: num_headers keeps capacity after kIncomplete and errors");
    Header headers[4];
    RequestHead req;
    req.headers = headers;
    req.num_headers = 4;
    const std::string part = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n";
    c.eq(parseRequest(part.data(), part.size(), &req, ParseLimits{}), int{kIncomplete}, "partial");
    c.eq(req.num_headers, size_t{4}, "capacity after kIncomplete");
    const std::string bad = "GET / HTTP/1.1\r\nA: 1\r\nB : 2\r\n\r\n";
    c.eq(parseRequest(bad.data(), bad.size(), &req, ParseLimits{}), int{kBadRequest}, "bad");
    c.eq(req.num_headers, size_t{4}, "capacity after kBadRequest");
    const std::string full = part + "C: 3\r\nD: 4\r\n\r\n";
    c.eq(parseRequest(full.data(), full.size(), &req, ParseLimits{}), static_cast<int>(full.size()),
         "full");
    c.eq(req.num_headers, size_t{4}, "count");
    c.eq(headers[3].value, std::string_view("4"), "last header");
  }
  {
    Case c(suite, "parser: HTTP/1.1 minor version");
    RequestHead req;
    const std::string in = "HEAD /x HTTP/1.1\r\n\r\n";
    c.eq(parseRequest(in.data(), in.size(), &req, ParseLimits{}), static_cast<int>(in.size()),
         "consumed");
    c.eq(req.minor_version, 1, "minor");
    c.eq(req.num_headers, size_t{0}, "no headers with capacity 0");
  }
}

void runPipelining(Suite& suite) {
  Case c(suite, "parser: five pipelined requests with bodies in between");
  std::string stream;
  std::vector<std::string> targets;
  for (int i = 0; i < 5; ++i) {
    targets.push_back("/r" + std::to_string(i));
    stream += "GET " + targets.back() + " HTTP/1.1\r\nHost: a\r\n";
    if (i == 2) stream += "Content-Length: 4\r\n\r\nbody";
    else stream += "\r\n";
  }
  size_t off = 0;
  for (int i = 0; i < 5; ++i) {
    Header headers[4];
    RequestHead req;
    req.headers = headers;
    req.num_headers = 4;
    const int n = parseRequest(stream.data() + off, stream.size() - off, &req, ParseLimits{});
    if (!c.check(n > 0, "request " + std::to_string(i) + " parsed")) return;
    c.eq(req.target, std::string_view(targets[static_cast<size_t>(i)]), "target");
    off += static_cast<size_t>(n) + (i == 2 ? 4 : 0);
  }
  c.eq(off, stream.size(), "all consumed");
}

void runFindHeadEnd(Suite& suite) {
  struct R {
    std::string in;
    long want;
  };
  const R table[] = {
      {"", -1},
      {"\r\n\r", -1},
      {"\r\n\r\n", 4},
      {"abc\r\n\r\nxyz", 7},
      {"\r\r\n\r\n", 5},
      {"a\r\nb\r\n\r\n", 8},
      {"a\n\nb\r\n\r\n", 8},
      {"a\r\n\r\n\r\n\r\n", 5},
      {std::string(70000, 'x') + "\r\n\r\n", 70004},
  };
  for (const R& r : table) {
    Case c(suite, "findHeadEnd: " + show(r.in));
    std::unique_ptr<char[]> copy(new char[r.in.size()]);
    std::copy(r.in.begin(), r.in.end(), copy.get());
    c.eq(findHeadEnd(copy.get(), r.in.size()), r.want, "offset");
  }
  {
    Case c(suite, "findHeadEnd: skips an oversized head to the next pipelined request");
    const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(9000, 'v') + "\r\n\r\n";
    const std::string stream = big + kSimple;
    RequestHead req;
    Header headers[4];
    req.headers = headers;
    req.num_headers = 4;
    c.eq(parseRequest(stream.data(), stream.size(), &req, ParseLimits{}), int{kHeadTooLarge},
         "431");
    const long skip = findHeadEnd(stream.data(), stream.size());
    c.eq(skip, static_cast<long>(big.size()), "skip");
    c.eq(parseRequest(stream.data() + skip, stream.size() - static_cast<size_t>(skip), &req,
                      ParseLimits{}),
         static_cast<int>(std::string(kSimple).size()), "next request parses");
  }
}

}  // namespace

void runParserTests(Suite& suite) {
  runRows(suite);
  runFieldChecks(suite);
  runPipelining(suite);
  runFindHeadEnd(suite);
}

}  // namespace lisod::test
