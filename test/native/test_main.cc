// Runs every native unit-test suite; exit status 1 if any case failed.
#include <cstdio>

#include "test_support.h"

int main() {
  using namespace lisod::test;
  struct Entry {
    const char* name;
    void (*run)(Suite&);
  };
  const Entry suites[] = {
      {"http_parser", runParserTests},
      {"http_request", runRequestTests},
      {"chunked", runChunkedTests},
      {"static_file", runStaticFileTests},
      {"date/mime/range", runDateMimeRangeTests},
      {"access_rules", runAccessRulesTests},
      {"access_log", runAccessLogTests},
      {"cgi_output", runCgiOutputTests},
      {"nph_framing", runNphFramingTests},
      {"fastcgi_record", runFastcgiRecordTests},
      {"encoding", runEncodingTests},
  };
  int passed = 0;
  int failed = 0;
  for (const Entry& e : suites) {
    Suite s;
    e.run(s);
    std::printf("  %-16s %4d passed, %d failed\n", e.name, s.passed(), s.failed());
    passed += s.passed();
    failed += s.failed();
  }
  std::printf("native: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
