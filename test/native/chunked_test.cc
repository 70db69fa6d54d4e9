// Table tests for ChunkedDecoder: each row is decoded whole, split in two at every byte
// position, and fed one byte at a time; all three must agree on result and data.
#include <memory>
#include <string>
#include <vector>

#include "../../native/chunked.h"
#include "test_support.h"

namespace lisod::test {
namespace {

using namespace std::string_literals;

constexpr long kNeedMore = ChunkedDecoder::kNeedMore;
constexpr long kError = ChunkedDecoder::kError;
constexpr long kTooLarge = ChunkedDecoder::kTooLarge;

struct Row {
  const char* name;
  std::string input;
  long want;          // >= 0: done, with that many bytes following the body
  std::string data;   // decoded bytes (checked when want >= 0 or kNeedMore)
  uint64_t max_body = 1 << 20;
};

struct Outcome {
  long result = kNeedMore;
  std::string data;
};

// Decodes pieces in order as a connection would: each piece in its own exact-size heap
// buffer; stops at the first non-kNeedMore result. The "rest" of a done result is
// re-expressed relative to the whole input.
Outcome decodePieces(const std::string& in, const std::vector<size_t>& cuts, uint64_t max_body) {
  ChunkedDecoder d(max_body);
  Outcome out;
  size_t start = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : in.size();
    const size_t n = end - start;
    std::unique_ptr<char[]> buf(new char[n]);
    std::copy(in.data() + start, in.data() + end, buf.get());
    size_t len = n;
    const long r = d.decode(buf.get(), &len);
    out.data.append(buf.get(), len);
    if (r != kNeedMore) {
      out.result = r >= 0 ? r + static_cast<long>(in.size() - end) : r;
      return out;
    }
    start = end;
  }
  return out;
}

std::vector<Row> rows() {
  const std::string next = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  return {
      {"one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, "hello"},
      {"several chunks, hex both cases",
       "a\r\n0123456789\r\nA\r\nabcdefghij\r\n1\r\n!\r\n0\r\n\r\n", 0,
       "0123456789abcdefghij!"},
      {"empty body", "0\r\n\r\n", 0, ""},
      {"next request follows", "3\r\nabc\r\n0\r\n\r\n" + next, static_cast<long>(next.size()),
       "abc"},
      {"leading zeros in size", "0005\r\nhello\r\n000\r\n\r\n", 0, "hello"},
      {"data containing CRLF and NUL", "5\r\n\r\n\0\r\n\r\n0\r\n\r\n"s, 0, "\r\n\0\r\n"s},
      {"extensions ignored", "5;name=value\r\nhello\r\n0;last\r\n\r\n", 0, "hello"},
      {"extension with quoted string", "5;a=\"q s\";b\r\nhello\r\n0\r\n\r\n", 0, "hello"},
      {"BWS before extension", "5 \t;a=b\r\nhello\r\n0\r\n\r\n", 0, "hello"},
      {"trailers discarded", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nY:\r\n\r\nrest", 4, "hello"},
      {"size line of exactly 1 KiB", "5;" + std::string(1022, 'x') + "\r\nhello\r\n0\r\n\r\n", 0,
       "hello"},
      {"body of exactly max_body", "6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n", 0, "abcdefghij", 10},
      {"size 2^60 is not a framing error", "1000000000000000\r\n", kTooLarge, ""},
      // incomplete
      {"nothing yet", "", kNeedMore, ""},
      {"inside data", "5\r\nhel", kNeedMore, "hel"},
      {"after data", "5\r\nhello\r\n", kNeedMore, "hello"},
      {"after last chunk", "5\r\nhello\r\n0\r\n", kNeedMore, "hello"},
      {"before final LF", "0\r\n\r", kNeedMore, ""},
      {"inside a trailer", "0\r\nX: y", kNeedMore, ""},
      // framing errors → 400
      {"no size digits", "x\r\n", kError, ""},
      {"empty size line", "\r\n", kError, ""},
      {"negative size", "-5\r\nhello\r\n0\r\n\r\n", kError, ""},
      {"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", kError, ""},
      {"bare LF after size", "5\nhello\r\n0\r\n\r\n", kError, ""},
      {"bare CR after size", "5\rhello\r\n0\r\n\r\n", kError, ""},
      {"whitespace without extension", "5 \r\nhello\r\n0\r\n\r\n", kError, ""},
      {"CTL in extension", "5;a\x01\r\nhello\r\n0\r\n\r\n", kError, ""},
      {"data longer than size", "5\r\nhelloX\r\n0\r\n\r\n", kError, "hello"},
      {"bare LF after data", "5\r\nhello\n0\r\n\r\n", kError, "hello"},
      {"bare CR after data", "5\r\nhello\rX0\r\n\r\n", kError, "hello"},
      {"bare CR ending the size line", "5\r5\r\nhello\r\n0\r\n\r\n", kError, ""},
      {"bare CR ending a trailer", "0\r\nX: y\rZ\r\n\r\n", kError, ""},
      {"bare CR ending the trailers", "0\r\n\rX", kError, ""},
      {"size over 2^60", "1000000000000001\r\n", kError, ""},
      {"size with 17 digits", "10000000000000000\r\n", kError, ""},
      {"size line over 1 KiB", "5;" + std::string(1023, 'x') + "\r\nhello\r\n0\r\n\r\n", kError,
       ""},
      {"1025 leading zeros", std::string(1025, '0') + "5\r\nhello\r\n0\r\n\r\n", kError, ""},
      {"obs-fold in trailer", "0\r\nX: a\r\n folded\r\n\r\n", kError, ""},
      {"space in trailer name", "0\r\nbad name: x\r\n\r\n", kError, ""},
      {"CTL in trailer value", "0\r\nX: a\x01\r\n\r\n", kError, ""},
      {"bare LF ending trailers", "0\r\n\n", kError, ""},
      {"bare LF after trailer", "0\r\nX: y\n\r\n", kError, ""},
      {"trailer section over 8 KiB", "0\r\nX: " + std::string(8200, 'v') + "\r\n\r\n", kError, ""},
      // size limit → 413
      {"one chunk over max_body", "b\r\nhello world\r\n0\r\n\r\n", kTooLarge, "", 10},
      {"second chunk over max_body", "6\r\nabcdef\r\n5\r\nghijk\r\n0\r\n\r\n", kTooLarge, "abcdef",
       10},
      {"max_body 0 with data", "1\r\nx\r\n0\r\n\r\n", kTooLarge, "", 0},
      {"max_body 0, empty body", "0\r\n\r\n", 0, "", 0},
  };
}

void checkOutcome(Case& c, const Row& row, const Outcome& o, const std::string& how) {
  if (!c.eq(o.result, row.want, how + ": result")) return;
  if (row.want >= 0 || row.want == kNeedMore) c.eq(o.data, row.data, how + ": data");
  else if (row.want == kTooLarge) c.eq(o.data, row.data, how + ": data before the limit");
}

}  // namespace

void runChunkedTests(Suite& suite) {
  for (const Row& row : rows()) {
    Case c(suite, std::string("chunked: ") + row.name);
    checkOutcome(c, row, decodePieces(row.input, {}, row.max_body), "whole");
    if (!c.ok()) continue;
    for (size_t s = 0; s <= row.input.size() && c.ok(); ++s)
      checkOutcome(c, row, decodePieces(row.input, {s}, row.max_body),
                   "split at " + std::to_string(s));
    std::vector<size_t> every;
    for (size_t s = 1; s < row.input.size(); ++s) every.push_back(s);
    if (c.ok()) checkOutcome(c, row, decodePieces(row.input, every, row.max_body), "byte by byte");
  }

  {
    Case c(suite, "chunked: decodedTotal, done(), calls after the end");
    ChunkedDecoder d(100);
    std::string in = "4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\nNEXT";
    size_t len = in.size();
    c.eq(d.decode(in.data(), &len), 4L, "rest");
    c.eq(std::string(in.data(), len), std::string("abcdefg"), "data");
    c.eq(in.substr(in.size() - 4), std::string("NEXT"), "rest stays at the tail");
    c.eq(d.decodedTotal(), uint64_t{7}, "decodedTotal");
    c.check(d.done(), "done");
    std::string more = "GET";
    len = more.size();
    c.eq(d.decode(more.data(), &len), 3L, "after done: everything is rest");
    c.eq(len, size_t{0}, "after done: nothing decoded");
  }
  {
    Case c(suite, "chunked: error is sticky");
    ChunkedDecoder d(100);
    std::string bad = "z";
    size_t len = bad.size();
    c.eq(d.decode(bad.data(), &len), kError, "first");
    std::string good = "0\r\n\r\n";
    len = good.size();
    c.eq(d.decode(good.data(), &len), kError, "second");
    c.check(!d.done(), "not done");
  }
  {
    Case c(suite, "chunked: 1 MiB in 64 KiB chunks, fed in 1000-byte pieces");
    std::string in;
    std::string want;
    for (int i = 0; i < 16; ++i) {
      std::string chunk(65536, static_cast<char>('a' + i));
      in += "10000\r\n" + chunk + "\r\n";
      want += chunk;
    }
    in += "0\r\n\r\n";
    std::vector<size_t> cuts;
    for (size_t s = 1000; s < in.size(); s += 1000) cuts.push_back(s);
    const Outcome o = decodePieces(in, cuts, 1 << 20);
    c.eq(o.result, 0L, "result");
    c.check(o.data == want, "data matches");
  }
}

}  // namespace lisod::test
