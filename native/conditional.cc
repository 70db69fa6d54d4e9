// ETags, entity-tag list matching and RFC 9110 §13.2.2 precondition order.
#include "conditional.h"

#include <charconv>
#include <cstdio>

#include "static_file.h"

namespace lisod {
namespace {

inline bool isOws(char c) { return c == ' ' || c == '\t'; }

// One entity-tag at the front of s (after OWS): sets *opaque (with quotes) and *weak and
// returns the bytes consumed, or 0 when s does not start with an entity-tag.
size_t readEntityTag(std::string_view s, std::string_view* opaque, bool* weak) {
  size_t i = 0;
  *weak = false;
  if (s.size() >= 2 && s[0] == 'W' && s[1] == '/') *weak = true, i = 2;
  if (i >= s.size() || s[i] != '"') return 0;
  size_t end = i + 1;
  for (; end < s.size() && s[end] != '"'; ++end) {
    const auto c = static_cast<unsigned char>(s[end]);
    if (c < 0x21 || c == 0x7f) return 0;  // etagc = %x21 / %x23-7E / obs-text
  }
  if (end >= s.size()) return 0;
  *opaque = s.substr(i, end + 1 - i);
  return end + 1;
}

}  // namespace

std::string makeEtag(int64_t mtime, uint64_t size, std::string_view suffix) {
  char buf[48];  // '"' + 16 + '-' + 16 hex digits; to_chars: no printf per request
  char* p = buf;
  *p++ = '"';
  p = std::to_chars(p, buf + sizeof buf, static_cast<uint64_t>(mtime < 0 ? 0 : mtime), 16).ptr;
  *p++ = '-';
  p = std::to_chars(p, buf + sizeof buf, size, 16).ptr;
  std::string out;
  out.reserve(static_cast<size_t>(p - buf) + suffix.size() + 1);
  out.append(buf, static_cast<size_t>(p - buf));
  out.append(suffix);
  out.push_back('"');
  return out;
}

bool etagListMatches(std::string_view field, std::string_view etag, bool strong) {
  std::string_view s = field;
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  if (s == "*") return true;
  while (!s.empty()) {
    while (!s.empty() && (isOws(s.front()) || s.front() == ',')) s.remove_prefix(1);
    if (s.empty()) break;
    std::string_view opaque;
    bool weak = false;
    size_t used = readEntityTag(s, &opaque, &weak);
    size_t end = used;
    while (end < s.size() && isOws(s[end])) ++end;
    if (used == 0 || (end < s.size() && s[end] != ',')) {
      size_t comma = s.find(',', used);  // not an entity-tag: the element matches nothing
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma);
      continue;
    }
    if (opaque == etag && !(strong && weak)) return true;
    s.remove_prefix(end);
  }
  return false;
}

Precondition evaluatePreconditions(const Preconditions& p, std::string_view etag, int64_t mtime) {
  if (!p.if_match.empty()) {
    if (!etagListMatches(p.if_match, etag, true)) return Precondition::kFailed;
  } else if (!p.if_unmodified_since.empty()) {
    int64_t date = parseHttpDate(p.if_unmodified_since);
    if (date >= 0 && mtime > date) return Precondition::kFailed;
  }
  if (!p.if_none_match.empty()) {
    if (etagListMatches(p.if_none_match, etag, false))
      return p.get_or_head ? Precondition::kNotModified : Precondition::kFailed;
  } else if (p.get_or_head && !p.if_modified_since.empty()) {
    int64_t date = parseHttpDate(p.if_modified_since);
    if (date >= 0 && mtime <= date) return Precondition::kNotModified;
  }
  return Precondition::kProceed;
}

bool ifRangeAllows(std::string_view if_range, std::string_view etag, int64_t mtime) {
  std::string_view s = if_range;
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  if (s.empty()) return true;
  if (s.front() == '"' || (s.size() > 1 && s[0] == 'W' && s[1] == '/')) {
    std::string_view opaque;
    bool weak = false;
    size_t used = readEntityTag(s, &opaque, &weak);
    return used == s.size() && !weak && opaque == etag;
  }
  int64_t date = parseHttpDate(s);
  return date >= 0 && date == mtime;
}

}  // namespace lisod
