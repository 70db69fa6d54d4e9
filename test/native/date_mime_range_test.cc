// Tests for HTTP dates (against libc gmtime_r as an oracle), MIME types and single
// byte ranges.
#include <ctime>
#include <string>

#include "../../native/static_file.h"
#include "test_support.h"

namespace lisod::test {
namespace {

std::string format(int64_t t) {
  char buf[30];
  const size_t n = formatHttpDate(t, buf);
  return std::string(buf, n);
}

// libc's rendering of t, as the oracle for formatHttpDate (C locale names).
std::string oracle(int64_t t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const time_t tt = static_cast<time_t>(t);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

void runDates(Suite& suite) {
  {
    Case c(suite, "date: RFC 9110 example and fixed points");
    c.eq(format(784111777), std::string("Sun, 06 Nov 1994 08:49:37 GMT"), "1994");
    c.eq(format(0), std::string("Thu, 01 Jan 1970 00:00:00 GMT"), "epoch");
    c.eq(format(-1), std::string("Wed, 31 Dec 1969 23:59:59 GMT"), "before epoch");
    c.eq(format(951782400), std::string("Tue, 29 Feb 2000 00:00:00 GMT"), "leap day 2000");
    c.eq(format(4107542400), std::string("Mon, 01 Mar 2100 00:00:00 GMT"), "2100 not leap");
    c.eq(format(253402300799), std::string("Fri, 31 Dec 9999 23:59:59 GMT"), "max");
    c.eq(format(INT64_MAX), std::string("Fri, 31 Dec 9999 23:59:59 GMT"), "clamped high");
    c.eq(format(INT64_MIN), std::string("Sat, 01 Jan 0000 00:00:00 GMT"), "clamped low");
    char buf[30];
    c.eq(formatHttpDate(1, buf), size_t{29}, "length");
    c.eq(buf[29], '\0', "NUL terminated");
  }
  {
    Case c(suite, "date: format matches gmtime_r and round-trips, 1970–2200");
    int bad = 0;
    for (int64_t t = 0; t < 7258118400 && bad < 3; t += 86400 * 7 + 3671) {
      const std::string s = format(t);
      if (!c.eq(s, oracle(t), "format " + std::to_string(t))) ++bad;
      if (!c.eq(parseHttpDate(s), t, "parse " + s)) ++bad;
    }
  }
  struct Row {
    const char* in;
    int64_t want;
  };
  const Row rows[] = {
      {"Sun, 06 Nov 1994 08:49:37 GMT", 784111777},
      {"Sunday, 06-Nov-94 08:49:37 GMT", 784111777},
      {"Sun Nov  6 08:49:37 1994", 784111777},
      {"Sun Nov 16 08:49:37 1994", 784111777 + 10 * 86400},
      {"Thursday, 01-Jan-70 00:00:00 GMT", 0},
      {"Saturday, 01-Jan-00 00:00:00 GMT", 946684800},
      {"Tue, 29 Feb 2000 00:00:00 GMT", 951782400},
      {"Wed, 31 Dec 2014 23:59:60 GMT", 1420070399},  // leap second clamps to :59
      // invalid → -1
      {"", -1},
      {"Sun, 06 Nov 1994 08:49:37 gmt", -1},
      {"Sun, 06 Nov 1994 08:49:37 UTC", -1},
      {"sun, 06 Nov 1994 08:49:37 GMT", -1},
      {"Sun, 06 nov 1994 08:49:37 GMT", -1},
      {"Sun, 6 Nov 1994 08:49:37 GMT", -1},
      {"Sun, 06 Nov 1994 08:49:37 GMT ", -1},
      {"Sun,06 Nov 1994 08:49:37 GMT", -1},
      {"Sun, 31 Feb 1994 08:49:37 GMT", -1},
      {"Mon, 29 Feb 2100 00:00:00 GMT", -1},
      {"Sun, 00 Nov 1994 08:49:37 GMT", -1},
      {"Sun, 06 Nov 1994 24:00:00 GMT", -1},
      {"Sun, 06 Nov 1994 08:60:00 GMT", -1},
      {"Sun, 06 Nov 1994 08:49:61 GMT", -1},
      {"Sun, 06 Nov 1994 8:49:37 GMT", -1},
      {"Xyz, 06 Nov 1994 08:49:37 GMT", -1},
      {"Wed, 31 Dec 1969 23:59:59 GMT", -1},
      {"Sunday, 06-Nov-1994 08:49:37 GMT", -1},
      {"Sun Nov 6 08:49:37 1994", -1},
      {"Sun Nov  6 08:49:37 94", -1},
      {"1994-11-06T08:49:37Z", -1},
      {"784111777", -1},
  };
  for (const Row& r : rows) {
    Case c(suite, std::string("date: parse ") + show(r.in));
    c.eq(parseHttpDate(r.in), r.want, "seconds");
  }
}

void runMime(Suite& suite) {
  struct Row {
    const char* name;
    const char* want;
  };
  const Row rows[] = {
      {"index.html", "text/html; charset=utf-8"},
      {"INDEX.HTM", "text/html; charset=utf-8"},
      {"style.css", "text/css; charset=utf-8"},
      {"app.js", "text/javascript; charset=utf-8"},
      {"mod.mjs", "text/javascript; charset=utf-8"},
      {"data.json", "application/json"},
      {"a.png", "image/png"},
      {"a.jpg", "image/jpeg"},
      {"a.JPEG", "image/jpeg"},
      {"a.gif", "image/gif"},
      {"a.svg", "image/svg+xml"},
      {"favicon.ico", "image/x-icon"},
      {"notes.txt", "text/plain; charset=utf-8"},
      {"doc.pdf", "application/pdf"},
      {"f.woff", "font/woff"},
      {"f.woff2", "font/woff2"},
      {"i.webp", "image/webp"},
      {"feed.xml", "application/xml"},
      {"m.wasm", "application/wasm"},
      {"v.mp4", "video/mp4"},
      {"/www/dir.html/file", "application/octet-stream"},
      {"archive.tar.gz", "application/gzip"},
      {"noext", "application/octet-stream"},
      {".hidden", "application/octet-stream"},
      {"trailing.", "application/octet-stream"},
      {"a.htmlx", "application/octet-stream"},
      {"a.exe", "application/octet-stream"},
      {"", "application/octet-stream"},
  };
  for (const Row& r : rows) {
    Case c(suite, std::string("mime: ") + show(r.name));
    c.eq(mimeType(r.name), std::string_view(r.want), "type");
  }
}

void runRanges(Suite& suite) {
  struct Row {
    const char* value;
    uint64_t size;
    RangeResult want;
    uint64_t first = 0;
    uint64_t last = 0;
  };
  const Row rows[] = {
      {"bytes=0-9", 100, RangeResult::kOk, 0, 9},
      {"bytes=10-", 100, RangeResult::kOk, 10, 99},
      {"bytes=-10", 100, RangeResult::kOk, 90, 99},
      {"bytes=0-0", 100, RangeResult::kOk, 0, 0},
      {"bytes=99-99", 100, RangeResult::kOk, 99, 99},
      {"bytes=50-1000", 100, RangeResult::kOk, 50, 99},
      {"bytes=-1000", 100, RangeResult::kOk, 0, 99},
      {"BYTES=1-2", 100, RangeResult::kOk, 1, 2},
      {"bytes= 1-2 ", 100, RangeResult::kOk, 1, 2},
      {"bytes=1-2,", 100, RangeResult::kOk, 1, 2},
      {"bytes=0-18446744073709551615", 100, RangeResult::kOk, 0, 99},
      {"bytes=0-99999999999999999999999", 100, RangeResult::kOk, 0, 99},
      // unsatisfiable → 416
      {"bytes=100-", 100, RangeResult::kUnsatisfiable},
      {"bytes=100-200", 100, RangeResult::kUnsatisfiable},
      {"bytes=-0", 100, RangeResult::kUnsatisfiable},
      {"bytes=0-", 0, RangeResult::kUnsatisfiable},
      {"bytes=-5", 0, RangeResult::kUnsatisfiable},
      {"bytes=99999999999999999999999-", 100, RangeResult::kUnsatisfiable},
      // ignored → whole file
      {"", 100, RangeResult::kNone},
      {"bytes=", 100, RangeResult::kNone},
      {"bytes=-", 100, RangeResult::kNone},
      {"bytes=5", 100, RangeResult::kNone},
      {"bytes=9-5", 100, RangeResult::kNone},
      {"bytes=0-1,5-6", 100, RangeResult::kNone},
      {"bytes=a-b", 100, RangeResult::kNone},
      {"bytes=1 - 2", 100, RangeResult::kNone},
      {"bytes=+1-2", 100, RangeResult::kNone},
      {"bytes=--5", 100, RangeResult::kNone},
      {"items=0-9", 100, RangeResult::kNone},
      {"bytes 0-9", 100, RangeResult::kNone},
  };
  for (const Row& r : rows) {
    Case c(suite, std::string("range: ") + show(r.value) + " of " + std::to_string(r.size));
    uint64_t first = 12345;
    uint64_t last = 12345;
    const RangeResult got = parseRange(r.value, r.size, &first, &last);
    if (!c.eq(static_cast<int>(got), static_cast<int>(r.want), "result")) continue;
    if (r.want == RangeResult::kOk) {
      c.eq(first, r.first, "first");
      c.eq(last, r.last, "last");
    }
  }
}

}  // namespace

void runDateMimeRangeTests(Suite& suite) {
  runDates(suite);
  runMime(suite);
  runRanges(suite);
}

}  // namespace lisod::test
