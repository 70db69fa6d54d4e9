// Minimal table-test harness for the native unit tests: a Case collects failed
// expectations; the Suite counts cases. No registration magic, no globals.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace lisod::test {

// Printable form of a value for failure messages; strings are quoted and escaped.
inline std::string show(std::string_view s) {
  std::string out = "\"";
  size_t shown = 0;
  for (unsigned char c : s) {
    if (++shown > 200) {
      out += "...(" + std::to_string(s.size()) + " bytes)";
      break;
    }
    if (c == '\r') out += "\\r";
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '"' || c == '\\') (out += '\\') += static_cast<char>(c);
    else if (c < 0x20 || c >= 0x7f) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (shown <= 200) out += '"';
  return out;
}
inline std::string show(const std::string& s) { return show(std::string_view(s)); }
inline std::string show(const char* s) { return show(std::string_view(s)); }
inline std::string show(bool b) { return b ? "true" : "false"; }
template <typename T>
  requires(std::is_integral_v<T> || std::is_enum_v<T>)
std::string show(T v) {
  if constexpr (std::is_enum_v<T>) {
    return std::to_string(static_cast<long long>(v));
  } else if constexpr (std::is_signed_v<T>) {
    return std::to_string(static_cast<long long>(v));
  } else {
    return std::to_string(static_cast<unsigned long long>(v));
  }
}

class Suite {
 public:
  void record(bool ok) { ok ? ++passed_ : ++failed_; }
  int passed() const { return passed_; }
  int failed() const { return failed_; }

 private:
  int passed_ = 0;
  int failed_ = 0;
};

// One table row or scenario. Passes if every expectation held.
class Case {
 public:
  Case(Suite& suite, std::string name) : suite_(suite), name_(std::move(name)) {}
  Case(const Case&) = delete;
  Case& operator=(const Case&) = delete;
  ~Case() { suite_.record(ok_); }

  bool check(bool cond, std::string_view what) {
    if (!cond) fail(std::string(what));
    return cond;
  }

  template <typename A, typename B>
  bool eq(const A& actual, const B& expected, std::string_view what) {
    if (actual == expected) return true;
    fail(std::string(what) + ": got " + show(actual) + ", want " + show(expected));
    return false;
  }

  bool ok() const { return ok_; }

 private:
  void fail(const std::string& msg) {
    ok_ = false;
    if (++reported_ <= 5) std::printf("FAIL %s: %s\n", name_.c_str(), msg.c_str());
  }

  Suite& suite_;
  std::string name_;
  bool ok_ = true;
  int reported_ = 0;
};

void runParserTests(Suite& suite);
void runRequestTests(Suite& suite);
void runChunkedTests(Suite& suite);
void runStaticFileTests(Suite& suite);
void runDateMimeRangeTests(Suite& suite);
void runAccessRulesTests(Suite& suite);
void runAccessLogTests(Suite& suite);
void runCgiOutputTests(Suite& suite);
void runNphFramingTests(Suite& suite);
void runFastcgiRecordTests(Suite& suite);
void runEncodingTests(Suite& suite);

}  // namespace lisod::test
