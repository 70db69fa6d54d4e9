// Table tests for classifyRequest: methods, Host, Content-Length, Transfer-Encoding,
// persistence, Expect; each row is parsed by parseRequest first, as the server does.
#include <string>
#include <vector>

#include "../../native/http_request.h"
#include "test_support.h"

namespace lisod::test {
namespace {

constexpr int kAny = -1;

struct Row {
  const char* name;
  std::string head;  // request line + field lines, each ending in CRLF (blank line added)
  int status;
  int keep_alive = kAny;
  int chunked = kAny;
  int64_t content_length = kAny;  // kAny: don't care; -2: has_length must be false
  int expect_continue = kAny;
  uint64_t max_body = 1000;
};

constexpr int64_t kNoLength = -2;

std::vector<Row> rows() {
  const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n";
  const std::string post = "POST /cgi/x HTTP/1.1\r\nHost: a\r\n";
  return {
      // methods
      {"GET", get, 0, 1, 0, kNoLength},
      {"HEAD", "HEAD / HTTP/1.1\r\nHost: a\r\n", 0},
      {"POST with length", post + "Content-Length: 5\r\n", 0, 1, 0, 5},
      // every valid token passes classify; methodStatus decides per path
      {"PUT passes", "PUT / HTTP/1.1\r\nHost: a\r\n", 0},
      {"PUT with a body", "PUT /cgi/x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n", 0, 1, 0, 3},
      {"PATCH chunked", "PATCH /cgi/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n", 0, 1, 1},
      {"DELETE without length has no body (no 411)", "DELETE / HTTP/1.1\r\nHost: a\r\n", 0, 1, 0,
       kNoLength},
      {"lower-case token passes", "get / HTTP/1.1\r\nHost: a\r\n", 0},
      {"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: a\r\n", 0},
      {"CONNECT authority-form", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n", 0},
      {"CONNECT with a path → 400", "CONNECT a/b HTTP/1.1\r\nHost: a\r\n", 400},
      {"PUT * → 400", "PUT * HTTP/1.1\r\nHost: a\r\n", 400},
      // Host (RFC 9112 §3.2)
      {"1.1 without Host → 400", "GET / HTTP/1.1\r\n", 400, 0},
      {"1.1 with two Host → 400", get + "Host: b\r\n", 400, 0},
      {"1.0 without Host is fine", "GET / HTTP/1.0\r\n", 0, 0},
      {"1.0 with two Host → 400", "GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n", 400},
      {"Host name is case-insensitive", "GET / HTTP/1.1\r\nhOsT: a\r\n", 0},
      {"empty Host → 400", "GET / HTTP/1.1\r\nHost:\r\n", 400, 0},
      {"blank Host → 400", "GET / HTTP/1.1\r\nHost:   \r\n", 400, 0},
      {"empty Host on 1.0 → 400", "GET / HTTP/1.0\r\nHost:\r\n", 400, 0},
      {"Host with port and IPv6", "GET / HTTP/1.1\r\nHost: [::1]:8443\r\n", 0},
      {"Host with space → 400", "GET / HTTP/1.1\r\nHost: a b\r\n", 400},
      {"Host with slash → 400", "GET / HTTP/1.1\r\nHost: a/b\r\n", 400},
      {"Host with @ → 400", "GET / HTTP/1.1\r\nHost: u@a\r\n", 400},
      {"Host with every sub-delim and unreserved mark", "GET / HTTP/1.1\r\nHost: A-z.0_9~%41!$&'()*+,;=:1\r\n", 0},
      {"Host with a byte above 0x7f → 400", "GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n", 400},
      {"Host with a quote → 400", "GET / HTTP/1.1\r\nHost: a\"b\r\n", 400},
      // request-target form
      {"absolute-form target", "GET http://a/b HTTP/1.1\r\nHost: a\r\n", 0},
      {"HTTPS absolute-form target", "GET HTTPS://a/ HTTP/1.1\r\nHost: a\r\n", 0},
      {"absolute-form without authority → 400", "GET http:///b HTTP/1.1\r\nHost: a\r\n", 400},
      {"absolute-form with userinfo → 400", "GET http://u@a/b HTTP/1.1\r\nHost: a\r\n", 400},
      {"absolute-form 1.0 without Host", "GET http://a:8080?q HTTP/1.0\r\n", 0},
      {"asterisk target with GET → 400", "GET * HTTP/1.1\r\nHost: a\r\n", 400},
      {"authority-form with GET → 400", "GET a:80 HTTP/1.1\r\nHost: a\r\n", 400},
      // Content-Length (RFC 9112 §6.3)
      {"CL 0", post + "Content-Length: 0\r\n", 0, 1, 0, 0},
      {"CL leading zeros", post + "Content-Length: 007\r\n", 0, 1, 0, 7},
      {"CL equal duplicates", post + "Content-Length: 5\r\ncontent-length: 5\r\n", 0, 1, 0, 5},
      {"CL equal list", post + "Content-Length: 5, 5\r\n", 0, 1, 0, 5},
      {"CL differing duplicates → 400", post + "Content-Length: 5\r\nContent-Length: 6\r\n", 400,
       0},
      {"CL differing list → 400", post + "Content-Length: 5, 6\r\n", 400, 0},
      {"CL negative → 400", post + "Content-Length: -1\r\n", 400, 0},
      {"CL plus sign → 400", post + "Content-Length: +5\r\n", 400},
      {"CL with inner space → 400", post + "Content-Length: 1 2\r\n", 400},
      {"CL hex → 400", post + "Content-Length: 0x10\r\n", 400},
      {"CL empty → 400", post + "Content-Length:\r\n", 400},
      {"CL fraction → 400", post + "Content-Length: 1.5\r\n", 400},
      {"CL on GET is honoured", get + "Content-Length: 3\r\n", 0, 1, 0, 3},
      {"CL at max_body", post + "Content-Length: 1000\r\n", 0, 1, 0, 1000},
      {"CL over max_body → 413", post + "Content-Length: 1001\r\n", 413},
      {"CL overflowing uint64 → 413", post + "Content-Length: 99999999999999999999999\r\n", 413},
      {"POST without length → 411", post, 411},
      {"POST 1.0 without length → 411", "POST / HTTP/1.0\r\n", 411},
      // Transfer-Encoding (RFC 9112 §6.1)
      {"chunked", post + "Transfer-Encoding: chunked\r\n", 0, 1, 1, kNoLength},
      {"chunked is case-insensitive", post + "Transfer-Encoding: Chunked\r\n", 0, 1, 1},
      {"TE with CL → 400", post + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400, 0},
      {"CL with TE → 400", post + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", 400, 0},
      {"TE final not chunked → 400", post + "Transfer-Encoding: chunked, gzip\r\n", 400, 0},
      {"TE gzip only → 400", post + "Transfer-Encoding: gzip\r\n", 400},
      {"TE gzip then chunked → 501", post + "Transfer-Encoding: gzip, chunked\r\n", 501},
      {"TE over two lines, chunked last → 501",
       post + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
      {"TE chunked twice → 400", post + "Transfer-Encoding: chunked, chunked\r\n", 400},
      {"TE empty → 400", post + "Transfer-Encoding:\r\n", 400},
      {"TE empty list elements ignored", post + "Transfer-Encoding: , chunked ,\r\n", 0, 1, 1},
      {"TE in HTTP/1.0 → 400", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n", 400, 0},
      {"TE identity → 400", post + "Transfer-Encoding: identity\r\n", 400},
      // persistence (RFC 9112 §9.3)
      {"1.1 default keep-alive", get, 0, 1},
      {"1.1 Connection: close", get + "Connection: close\r\n", 0, 0},
      {"1.1 Connection: CLOSE", get + "Connection: CLOSE\r\n", 0, 0},
      {"1.1 close among tokens", get + "Connection: Upgrade, close\r\n", 0, 0},
      {"1.1 close on a second line", get + "Connection: foo\r\nConnection: close\r\n", 0, 0},
      {"1.0 default close", "GET / HTTP/1.0\r\n", 0, 0},
      {"1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n", 0, 1},
      {"1.0 Keep-Alive mixed case", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n", 0, 1},
      {"keep-alive and close → close", get + "Connection: keep-alive, close\r\n", 0, 0},
      {"close-ish token is not close", get + "Connection: closed\r\n", 0, 1},
      // Expect (RFC 9110 §10.1.1)
      {"Expect: 100-continue", post + "Content-Length: 5\r\nExpect: 100-continue\r\n", 0, 1, 0, 5,
       1},
      {"Expect case-insensitive", post + "Content-Length: 5\r\nexpect: 100-Continue\r\n", 0, 1,
       0, 5, 1},
      {"no Expect", post + "Content-Length: 5\r\n", 0, 1, 0, 5, 0},
      {"Expect ignored in 1.0", "POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n",
       0, 0, 0, 5, 0},
      {"other expectation ignored", post + "Content-Length: 5\r\nExpect: foo\r\n", 0, 1, 0, 5, 0},
      // precedence
      {"bad framing on PUT", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n", 400},
      {"413 on PUT", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5000\r\n", 413},
      {"missing Host before 411", "POST / HTTP/1.1\r\n", 400},
  };
}

}  // namespace

void runRequestTests(Suite& suite) {
  for (const Row& row : rows()) {
    Case c(suite, std::string("classify: ") + row.name);
    const std::string in = row.head + "\r\n";
    Header headers[16];
    RequestHead head;
    head.headers = headers;
    head.num_headers = 16;
    const int n = parseRequest(in.data(), in.size(), &head, ParseLimits{});
    if (!c.eq(n, static_cast<int>(in.size()), "parsed")) continue;
    const RequestInfo info = classifyRequest(head, row.max_body);
    c.eq(info.status, row.status, "status");
    if (row.keep_alive != kAny) c.eq(info.keep_alive, row.keep_alive == 1, "keep_alive");
    if (row.chunked != kAny) c.eq(info.chunked, row.chunked == 1, "chunked");
    if (row.content_length == kNoLength) {
      c.eq(info.has_length, false, "has_length");
    } else if (row.content_length != kAny) {
      c.eq(info.has_length, true, "has_length");
      c.eq(info.content_length, static_cast<uint64_t>(row.content_length), "content_length");
    }
    if (row.expect_continue != kAny)
      c.eq(info.expect_continue, row.expect_continue == 1, "expect_continue");
  }

  {
    Case c(suite, "classify: method, host, conditional and range fields");
    const std::string in =
        "HEAD /a HTTP/1.1\r\nHost: example.com\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 "
        "GMT\r\nRange: bytes=0-9\r\nRange: bytes=5-\r\n\r\n";
    Header headers[8];
    RequestHead head;
    head.headers = headers;
    head.num_headers = 8;
    c.eq(parseRequest(in.data(), in.size(), &head, ParseLimits{}), static_cast<int>(in.size()),
         "parsed");
    const RequestInfo info = classifyRequest(head, 0);
    c.eq(info.status, 0, "status");
    c.check(info.method == Method::kHead, "method HEAD");
    c.eq(info.host, std::string_view("example.com"), "host");
    c.eq(info.if_modified_since, std::string_view("Sun, 06 Nov 1994 08:49:37 GMT"), "ims");
    c.eq(info.range, std::string_view("bytes=0-9"), "first Range wins");
  }
  {
    Case c(suite, "classify: method enum");
    const char* names[] = {"GET", "HEAD", "POST", "PATCH", "OPTIONS", "BREW", "get"};
    const Method want[] = {Method::kGet,      Method::kHead,  Method::kPost, Method::kStandard,
                           Method::kStandard, Method::kOther, Method::kOther};
    for (int i = 0; i < 7; ++i) {
      const std::string in = std::string(names[i]) + " / HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
      Header headers[2];
      RequestHead head;
      head.headers = headers;
      head.num_headers = 2;
      parseRequest(in.data(), in.size(), &head, ParseLimits{});
      c.check(classifyRequest(head, 10).method == want[i], std::string("method ") + names[i]);
    }
  }
  {
    Case c(suite, "classify: absolute-form authority is the host (RFC 9112 §3.2.2)");
    const std::string in = "GET http://Target.example:81/x?y HTTP/1.1\r\nHost: header.example\r\n\r\n";
    Header headers[4];
    RequestHead head;
    head.headers = headers;
    head.num_headers = 4;
    c.eq(parseRequest(in.data(), in.size(), &head, ParseLimits{}), static_cast<int>(in.size()), "parsed");
    c.eq(classifyRequest(head, 0).host, std::string_view("Target.example:81"), "host");
    c.eq(targetAuthority("https://h?q"), std::string_view("h"), "authority before ?");
    c.eq(targetAuthority("/p"), std::string_view(""), "origin-form has none");
  }
  {
    Case c(suite, "methodStatus: static 405/501, applications take every token");
    c.eq(methodStatus(Method::kGet, false), 0, "GET static");
    c.eq(methodStatus(Method::kHead, false), 0, "HEAD static");
    c.eq(methodStatus(Method::kPost, false), 0, "POST static");
    c.eq(methodStatus(Method::kStandard, false), 405, "PUT static");
    c.eq(methodStatus(Method::kOther, false), 501, "BREW static");
    c.eq(methodStatus(Method::kStandard, true), 0, "PUT app");
    c.eq(methodStatus(Method::kOther, true), 0, "BREW app");
  }
  {
    Case c(suite, "matchAppPrefix: segment boundary, longest prefix wins");
    const std::vector<std::string> mounts = {"/cgi", "/php", "/php/admin", ""};
    const std::pair<const char*, int> rows[] = {
        {"/cgi", 0}, {"/cgi/", 0}, {"/cgi/x/y", 0}, {"/cgi?q=1", 0}, {"/cgix", -1}, {"/cg", -1},
        {"/php/index.php", 1}, {"/php/admin", 2}, {"/php/admin/x.php", 2}, {"/php/administrator", 1},
        {"/", -1}, {"", -1}, {"/static/cgi", -1}, {"/CGI", -1},
    };
    for (const auto& [path, want] : rows) c.eq(matchAppPrefix(path, mounts), want, path);
    c.eq(matchAppPrefix("/cgi", {}), -1, "no mounts");
  }
  {
    Case c(suite, "equalsIgnoreCase");
    c.check(equalsIgnoreCase("Content-Length", "content-LENGTH"), "mixed case");
    c.check(!equalsIgnoreCase("close", "closed"), "length differs");
    c.check(!equalsIgnoreCase("a[", "A{"), "only letters fold");
    c.check(equalsIgnoreCase("", ""), "empty");
  }
}

}  // namespace lisod::test
