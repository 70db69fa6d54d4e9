// Tables for content negotiation and validators: Accept-Encoding q-values and the coding
// chosen (RFC 9110 §12.5.3), ETag form and list matching (§8.8.3), precondition order
// (§13.2.2) and If-Range (§13.1.5).
#include <string>

#include "../../native/accept_encoding.h"
#include "../../native/conditional.h"
#include "test_support.h"

namespace lisod::test {

void runEncodingTests(Suite& suite) {
  {
    struct Row {
      const char* field;
      int br, gzip, identity, star;
    };
    const Row rows[] = {
        {"", -1, -1, -1, -1},
        {"gzip", -1, 1000, -1, -1},
        {"gzip, deflate, br, zstd", 1000, 1000, -1, -1},
        {"br;q=0.5, gzip;q=1", 500, 1000, -1, -1},
        {"BR ; Q=0.25 ,GZip", 250, 1000, -1, -1},
        {"x-gzip;q=0.3", -1, 300, -1, -1},
        {"identity;q=0, *;q=0", -1, -1, 0, 0},
        {"*", -1, -1, -1, 1000},
        {"gzip;q=1.000, br;q=0.001", 1, 1000, -1, -1},
        {"gzip;q=1.5, br;q=0.0001, identity;q=-1", -1, -1, -1, -1},  // invalid qvalues: ignored
        {"gzip;q=, br;level=3, identity;q=0.", -1, -1, 0, -1},
        {"gzip;q=0.8, gzip;q=0.1", -1, 800, -1, -1},  // first mention counts
        {",,, ,gzip,,", -1, 1000, -1, -1},
        {"gzip;q=0", -1, 0, -1, -1},
    };
    for (const Row& r : rows) {
      Case c(suite, std::string("parseAcceptEncoding ") + show(r.field));
      AcceptEncoding ae = parseAcceptEncoding(r.field);
      c.eq(ae.br, r.br, "br");
      c.eq(ae.gzip, r.gzip, "gzip");
      c.eq(ae.identity, r.identity, "identity");
      c.eq(ae.star, r.star, "*");
    }
  }
  {
    struct Row {
      const char* field;
      bool br, gzip;
      Coding want;
    };
    const Row rows[] = {
        {"", true, true, Coding::kIdentity},  // absent or empty: no coding wanted
        {"gzip, br", true, true, Coding::kBr},  // tie: br first
        {"gzip, br", false, true, Coding::kGzip},
        {"gzip, br", false, false, Coding::kIdentity},
        {"br;q=0.5, gzip;q=1", true, true, Coding::kGzip},
        {"br;q=0.5, gzip;q=1", true, false, Coding::kBr},
        {"gzip;q=0.001", false, true, Coding::kGzip},  // named beats the implicit identity
        {"gzip;q=0.5, identity;q=1", false, true, Coding::kIdentity},
        {"gzip;q=1, identity;q=1", false, true, Coding::kGzip},  // tie: coding first
        {"gzip;q=0, br;q=0", true, true, Coding::kIdentity},
        {"identity;q=0", false, false, Coding::kNone},
        {"identity;q=0", true, true, Coding::kNone},  // no coding named: only identity was possible
        {"identity;q=0, gzip", true, true, Coding::kGzip},
        {"*;q=0", true, true, Coding::kNone},
        {"*;q=0, identity", true, true, Coding::kIdentity},
        {"*;q=0, br", true, true, Coding::kBr},
        {"*", true, true, Coding::kBr},
        {"*;q=0.5, identity;q=0.4", false, true, Coding::kGzip},
        {"identity;q=0, *;q=0.1", false, true, Coding::kGzip},
        {"zstd, deflate", true, true, Coding::kIdentity},
    };
    for (const Row& r : rows) {
      Case c(suite, std::string("chooseCoding ") + show(r.field) + (r.br ? " br" : "") + (r.gzip ? " gz" : ""));
      c.eq(chooseCoding(parseAcceptEncoding(r.field), r.br, r.gzip), r.want, "coding");
    }
  }
  {
    Case c(suite, "makeEtag");
    c.eq(makeEtag(1700000000, 3072), std::string("\"6553f100-c00\""), "nginx form");
    c.eq(makeEtag(1700000000, 0, "-gz6"), std::string("\"6553f100-0-gz6\""), "suffix inside the quotes");
  }
  {
    const std::string tag = "\"6553f100-c00\"";
    struct Row {
      const char* field;
      bool strong, want;
    };
    const Row rows[] = {
        {"\"6553f100-c00\"", true, true},
        {"\"6553f100-c00\"", false, true},
        {"W/\"6553f100-c00\"", false, true},  // weak comparison ignores W/
        {"W/\"6553f100-c00\"", true, false},  // strong never matches a weak tag
        {"*", true, true},
        {" * ", false, true},
        {"\"a\", \"6553f100-c00\"", true, true},
        {"\"a\",W/\"b\" ,  \"6553f100-c00\"", false, true},
        {"\"6553f100-C00\"", false, false},  // opaque tags are case-sensitive
        {"6553f100-c00", false, false},      // unquoted: not an entity-tag
        {"garbage, \"6553f100-c00\"", false, true},
        {"\"6553f100-c00", false, false},    // unterminated
        {"\"a\" \"6553f100-c00\"", false, false},  // no comma: the second is not an element
        {"", false, false},
        {"*, \"x\"", false, false},  // "*" only alone
    };
    for (const Row& r : rows) {
      Case c(suite, std::string("etagListMatches ") + show(r.field) + (r.strong ? " strong" : " weak"));
      c.eq(etagListMatches(r.field, tag, r.strong), r.want, "match");
    }
  }
  {
    const std::string tag = "\"6553f100-c00\"";
    const int64_t mtime = 1700000000;  // Tue, 14 Nov 2023 22:13:20 GMT
    const char* kAt = "Tue, 14 Nov 2023 22:13:20 GMT";
    const char* kBefore = "Tue, 14 Nov 2023 22:13:19 GMT";
    const char* kAfter = "Wed, 15 Nov 2023 00:00:00 GMT";
    struct Row {
      const char* name;
      Preconditions p;
      Precondition want;
    };
    const Row rows[] = {
        {"none", {}, Precondition::kProceed},
        {"If-Match hit", {tag, "", "", "", ""}, Precondition::kProceed},
        {"If-Match miss → 412", {"\"x\"", "", "", "", ""}, Precondition::kFailed},
        {"If-Match weak → 412", {"W/\"6553f100-c00\"", "", "", "", ""}, Precondition::kFailed},
        {"If-Match * → proceed", {"*", "", "", "", ""}, Precondition::kProceed},
        {"If-Unmodified-Since before mtime → 412", {"", "", "", kBefore, ""}, Precondition::kFailed},
        {"If-Unmodified-Since at mtime", {"", "", "", kAt, ""}, Precondition::kProceed},
        {"If-Unmodified-Since invalid: ignored", {"", "", "", "yesterday", ""}, Precondition::kProceed},
        {"If-Match hit overrides If-Unmodified-Since", {tag, "", "", kBefore, ""}, Precondition::kProceed},
        {"If-None-Match hit → 304", {"", tag, "", "", ""}, Precondition::kNotModified},
        {"If-None-Match weak hit → 304", {"", "W/\"6553f100-c00\"", "", "", ""}, Precondition::kNotModified},
        {"If-None-Match * → 304", {"", "*", "", "", ""}, Precondition::kNotModified},
        {"If-None-Match miss", {"", "\"x\"", "", "", ""}, Precondition::kProceed},
        {"If-None-Match miss overrides a true If-Modified-Since", {"", "\"x\"", kAfter, "", ""}, Precondition::kProceed},
        {"If-None-Match hit, If-Modified-Since false: 304", {"", tag, kBefore, "", ""}, Precondition::kNotModified},
        {"If-Modified-Since at mtime → 304", {"", "", kAt, "", ""}, Precondition::kNotModified},
        {"If-Modified-Since before mtime", {"", "", kBefore, "", ""}, Precondition::kProceed},
        {"If-Match miss beats If-None-Match hit", {"\"x\"", tag, "", "", ""}, Precondition::kFailed},
        {"POST: If-None-Match hit → 412", {"", tag, "", "", "", false}, Precondition::kFailed},
        {"POST: If-Modified-Since ignored", {"", "", kAt, "", "", false}, Precondition::kProceed},
    };
    for (const Row& r : rows) {
      Case c(suite, std::string("evaluatePreconditions ") + r.name);
      c.eq(evaluatePreconditions(r.p, tag, mtime), r.want, "verdict");
    }
    struct RangeRow {
      const char* if_range;
      bool want;
    };
    const RangeRow ranges[] = {
        {"", true},
        {"\"6553f100-c00\"", true},
        {"W/\"6553f100-c00\"", false},
        {"\"x\"", false},
        {kAt, true},
        {kAfter, false},  // only an exact Last-Modified match counts
        {kBefore, false},
        {"junk", false},
        {"\"6553f100-c00\", \"x\"", false},  // one entity-tag, not a list
    };
    for (const RangeRow& r : ranges) {
      Case c(suite, std::string("ifRangeAllows ") + show(r.if_range));
      c.eq(ifRangeAllows(r.if_range, tag, mtime), r.want, "range applies");
    }
  }
}

}  // namespace lisod::test
