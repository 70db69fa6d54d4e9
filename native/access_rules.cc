#include "access_rules.h"

#include <algorithm>

#include "static_file.h"

namespace lisod {
namespace {

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string trimSlash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

bool covers(std::string_view prefix, std::string_view path) {
  if (prefix == "/") return true;
  return path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/');
}

}  // namespace

AccessRules::AccessRules(std::vector<AccessRule> rules) : rules_(std::move(rules)) {
  for (auto& r : rules_) {
    std::string normalized;
    r.prefix = normalizeAccessPath(r.prefix, &normalized) ? trimSlash(normalized) : trimSlash(r.prefix);
  }
  std::stable_sort(rules_.begin(), rules_.end(),
                   [](const AccessRule& a, const AccessRule& b) { return a.prefix.size() > b.prefix.size(); });
}

const AccessRule* AccessRules::match(std::string_view path) const {
  for (const auto& r : rules_) {
    if (covers(r.prefix, path)) return &r;
  }
  return nullptr;
}

bool AccessRules::allows(const AccessRule& rule, const ClientIdentity* id) {
  if (id == nullptr || !id->verified()) return false;
  if (rule.any_verified) return true;
  for (const auto& entry : rule.allow) {
    bool all = !entry.empty();
    for (const auto& want : entry) {
      all = all && std::find(id->subject_attrs.begin(), id->subject_attrs.end(), want) != id->subject_attrs.end();
    }
    if (all) return true;
  }
  return false;
}

int AccessRules::checkNormalized(std::string_view path, const ClientIdentity* id) const {
  const AccessRule* rule = match(path);
  return rule == nullptr || allows(*rule, id) ? 0 : 403;
}

int AccessRules::check(std::string_view raw_path, const ClientIdentity* id) const {
  if (rules_.empty()) return 0;
  std::string path;
  if (!normalizeAccessPath(raw_path, &path)) return 400;
  return checkNormalized(path, id);
}

bool normalizeAccessPath(std::string_view raw, std::string* out) {
  std::string decoded = "/";
  decoded.reserve(raw.size() + 1);
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      int hi = i + 2 < raw.size() ? hexValue(raw[i + 1]) : -1;
      int lo = hi >= 0 ? hexValue(raw[i + 2]) : -1;
      if (lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return false;
    decoded.push_back(c);
  }
  return normalizeDecodedPath(decoded, out);
}

}  // namespace lisod
