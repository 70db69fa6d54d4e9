// Table tests for the CGI output head parser (native/cgi_output.h). The full behaviour
// is pinned by test/cgi_output*.test.ts through the addon; these cover the byte-level
// contract: head length, resume after kCgiIncomplete, views, trimming.
#include <string>
#include <vector>

#include "../../native/cgi_output.h"
#include "test_support.h"

namespace lisod::test {
namespace {

struct Parsed {
  std::string bytes;  // the views point into it
  long result;
  CgiHead head;
  std::vector<CgiField> fields = std::vector<CgiField>(16);
};

void parseInto(Parsed& p, std::string s, size_t max_head = 1024, size_t scanned = 0) {
  p.bytes = std::move(s);
  p.head.fields = p.fields.data();
  p.head.num_fields = p.fields.size();
  p.result = parseCgiHead(p.bytes.data(), p.bytes.size(), max_head, scanned, &p.head);
}

}  // namespace

void runCgiOutputTests(Suite& suite) {
  {
    Case c(suite, "cgi: document head, CRLF; body not consumed");
    const std::string s = "Content-Type: text/html\r\nX-A:  1 \r\n\r\nbody";
    Parsed p;
    parseInto(p, s);
    c.eq(p.result, static_cast<long>(s.size() - 4), "head length");
    c.eq(p.head.kind, CgiKind::kResponse, "kind");
    c.eq(p.head.status, 200, "status");
    c.eq(p.head.num_fields, size_t{2}, "fields");
    c.eq(p.head.fields[1].value, std::string_view("1"), "value trimmed");
  }
  {
    Case c(suite, "cgi: incomplete, then resumed past what was scanned");
    const std::string s = "Status: 404 Gone\r\nContent-Length: 007\r\n\r";
    Parsed p;
    parseInto(p, s);
    c.eq(p.result, static_cast<long>(kCgiIncomplete), "incomplete");
    Parsed q;
    parseInto(q, s + "\nxyz", 1024, s.size());
    c.eq(q.result, static_cast<long>(s.size() + 1), "head length");
    c.eq(q.head.status, 404, "status");
    c.eq(q.head.reason, std::string_view("Gone"), "reason");
    c.eq(q.head.fields[0].value, std::string_view("7"), "Content-Length without leading zeros");
  }
  {
    Case c(suite, "cgi: too large only without a blank line");
    Parsed p;
    parseInto(p, "X: " + std::string(40, 'a'), 32);
    c.eq(p.result, static_cast<long>(kCgiTooLarge), "too large");
    c.eq(p.head.error, CgiError::kTooLarge, "error");
    Parsed q;
    parseInto(q, "X: " + std::string(40, 'a') + "\n\n", 32);
    c.eq(q.head.kind, CgiKind::kResponse, "a complete head passes");
  }
  {
    Case c(suite, "cgi: JavaScript trim, byte for byte");
    // NBSP and U+3000 are trimmed; E2 80 36 ("\xe2\x80" then '6') is not whitespace.
    Parsed p;
    parseInto(p, "X-A: \xc2\xa0v\xe3\x80\x80\nX-B: \x0b\xe2\x80" "600\n\n");
    c.eq(p.head.fields[0].value, std::string_view("v"), "NBSP, U+3000");
    c.eq(p.head.fields[1].value, std::string_view("\xe2\x80" "600"), "not U+2000..U+200A");
  }
  {
    Case c(suite, "cgi: NPH line, local redirect, bad status");
    Parsed p;
    parseInto(p, "HTTP/1.1 201 Created\r\nServer: x\r\n\r\n");
    c.eq(p.head.kind, CgiKind::kNph, "nph");
    c.eq(p.head.status, 201, "nph status");
    Parsed q;
    parseInto(q, "Location: /next\n\n");
    c.eq(q.head.kind, CgiKind::kLocalRedirect, "local redirect");
    Parsed r;
    parseInto(r, "Status: 200 a\xe2\x80\xa8" "b\n\n");
    c.eq(r.head.error, CgiError::kBadStatus, "U+2028 in the reason");
  }
}

}  // namespace lisod::test
