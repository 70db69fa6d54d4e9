#include "access_log.h"

#include <time.h>

#include <array>
#include <cstring>

#include "static_file.h"

namespace lisod {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void appendHexEscape(std::string& out, unsigned char c) {
  const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
  out.append(esc, 4);
}


// Printable ASCII other than '"' and '\\': copied as it is (one table load per byte).
constexpr auto kPlainByte = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] = c != '"' && c != '\\';
  return t;
}();
// The same without the space, for the unquoted user field.
constexpr auto kPlainByteNoSpace = [] {
  std::array<bool, 256> t = kPlainByte;
  t[' '] = false;
  return t;
}();

// escape_space: for the unquoted user field.
void appendEscaped(std::string& out, std::string_view s, bool escape_space = false) {
  const bool* plain_byte = escape_space ? kPlainByteNoSpace.data() : kPlainByte.data();
  size_t plain = 0;  // start of the run of bytes copied as they are
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (plain_byte[c]) {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (size_t n = utf8Length(s, i)) {
        i += n;
        continue;
      }
    }
    out.append(s.data() + plain, i - plain);
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default: appendHexEscape(out, c);
    }
    plain = ++i;
  }
  out.append(s.data() + plain, s.size() - plain);
}

void appendField(std::string& out, std::string_view s) {
  if (s.empty()) out += '-';
  else appendEscaped(out, s);
}

// "::ffff:10.1.2.3" → "10.1.2.3"; anything else unchanged.
std::string_view plainIpv4(std::string_view host) {
  constexpr std::string_view kMapped = "::ffff:";
  if (host.size() <= kMapped.size()) return host;
  for (size_t i = 0; i < kMapped.size(); ++i) {
    if ((host[i] | 0x20) != kMapped[i]) return host;
  }
  std::string_view v4 = host.substr(kMapped.size());
  int dots = 0;
  for (char c : v4) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return host;
  }
  return dots == 3 ? v4 : host;
}

// v in decimal, written at the end of buf.
std::string_view decimal(uint64_t v, char (&buf)[24]) {
  char* p = buf + sizeof buf;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return {p, static_cast<size_t>(buf + sizeof buf - p)};
}

void appendNumber(std::string& out, uint64_t v) {
  char buf[24];
  out.append(decimal(v, buf));
}

}  // namespace

size_t utf8Length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (c == 0xe0) lo = 0xa0;
  else if (c == 0xed) hi = 0x9f;
  else if (c == 0xf0) lo = 0x90;
  else if (c == 0xf4) hi = 0x8f;
  if (b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(k) < 0x80 || b(k) > 0xbf) return 0;
  }
  return n;
}

namespace {

// A line is head + time + middle + tail; head and tail repeat on a connection.
void appendHead(std::string& out, const AccessEntry& e) {
  if (e.remote.empty()) out += '-';
  else appendEscaped(out, plainIpv4(e.remote));
  out.append(" - ");
  if (e.user.empty()) out += '-';
  else appendEscaped(out, e.user, true);
  out.append(" [");
}

void appendMiddle(std::string& out, const AccessEntry& e) {
  out.append("] \"");
  if (e.method.empty()) {
    out += '-';
  } else {
    // "METHOD target VERSION" with the empty parts (and their spaces) left out.
    bool first = true;
    for (std::string_view part : {e.method, e.target, e.version}) {
      if (part.empty()) continue;
      if (!first) out += ' ';
      appendEscaped(out, part);
      first = false;
    }
  }
  out.append("\" ");
  appendNumber(out, static_cast<uint64_t>(e.status < 0 ? 0 : e.status));
  out += ' ';
  if (e.bytes > 0) appendNumber(out, e.bytes);
  else out += '-';
}

void appendTail(std::string& out, const AccessEntry& e) {
  out.append(" \"");
  appendField(out, e.referer);
  out.append("\" \"");
  appendField(out, e.user_agent);
  out.append("\"\n");
}

}  // namespace

void appendAccessLine(std::string& out, const AccessEntry& e, std::string_view clf_time) {
  appendHead(out, e);
  out.append(clf_time);
  appendMiddle(out, e);
  appendTail(out, e);
}

// part's text, made again by append(text, e) when first or second differs from last time.
static const std::string& memoPart(AccessLineMemo::Part& part, std::string_view first, std::string_view second,
                            const AccessEntry& e, void (*append)(std::string&, const AccessEntry&)) {
  if (!part.made || first != part.first || second != part.second) {
    part.first.assign(first);
    part.second.assign(second);
    part.text.clear();
    append(part.text, e);
    part.made = true;
  }
  return part.text;
}

namespace {

bool allPlain(std::string_view s) {
  for (char c : s) {
    if (!kPlainByte[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// The common line (a method, a plain target and version, short enough) laid out in one
// buffer and appended once, as appendMiddle would write it; false when it is not one.
bool appendPlainLine(std::string& out, const AccessEntry& e, std::string_view head, std::string_view clf_time,
                     std::string_view tail) {
  constexpr size_t kMax = 1024, kNumbers = 48;  // "] \"", three separators, '"', status, bytes
  const size_t fixed = head.size() + clf_time.size() + tail.size() + kNumbers;
  if (e.method.empty() || e.target.empty() || e.version.empty() ||
      fixed + e.method.size() + e.target.size() + e.version.size() > kMax || !allPlain(e.method) ||
      !allPlain(e.target) || !allPlain(e.version)) {
    return false;
  }
  char buf[kMax];
  char* p = buf;
  const auto put = [&p](std::string_view v) {
    std::memcpy(p, v.data(), v.size());
    p += v.size();
  };
  const auto number = [&put](uint64_t v) {
    char digits[24];
    put(decimal(v, digits));
  };
  put(head);
  put(clf_time);
  put("] \"");
  put(e.method);
  *p++ = ' ';
  put(e.target);
  *p++ = ' ';
  put(e.version);
  put("\" ");
  number(static_cast<uint64_t>(e.status < 0 ? 0 : e.status));
  *p++ = ' ';
  if (e.bytes > 0) number(e.bytes);
  else *p++ = '-';
  put(tail);
  out.append(buf, p - buf);
  return true;
}

}  // namespace

void appendAccessLine(std::string& out, const AccessEntry& e, std::string_view clf_time, AccessLineMemo& memo) {
  const std::string& head = memoPart(memo.head, e.remote, e.user, e, appendHead);
  const std::string& tail = memoPart(memo.tail, e.referer, e.user_agent, e, appendTail);
  if (appendPlainLine(out, e, head, clf_time, tail)) return;
  out.append(head);
  out.append(clf_time);
  appendMiddle(out, e);
  out.append(tail);
}

std::string_view ClfClock::now() {
  const time_t t = time(nullptr);
  if (t != second_) {
    second_ = t;
    struct tm local;
    const int offset = localtime_r(&t, &local) != nullptr ? static_cast<int>(local.tm_gmtoff / 60) : 0;
    len_ = formatClfTime(t, offset, text_);
  }
  return {text_, len_};
}

}  // namespace lisod
