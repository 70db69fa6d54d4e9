// Per-path access rules ([[access]]): the longest matching path prefix decides which
// verified client certificates may see a path. Pure: no I/O, unit-tested from a table.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tls_identity.h"

namespace lisod {

struct AccessRule {
  std::string prefix;  // normalised path; "/private/" and "/private" are the same rule
  bool any_verified = false;  // allow = ["*"]
  // Each entry allows a subject that has every one of its (attribute, value) pairs.
  std::vector<std::vector<std::pair<std::string, std::string>>> allow;
};

class AccessRules {
 public:
  AccessRules() = default;
  explicit AccessRules(std::vector<AccessRule> rules);
  bool empty() const { return rules_.empty(); }

  // The rule whose prefix covers path on a segment boundary ("/a" covers "/a" and "/a/…",
  // not "/ab"), the longest one when several do; nullptr when none. Case-sensitive.
  const AccessRule* match(std::string_view normalized_path) const;

  // 0 = allowed; 403 = a rule covers the path and id does not satisfy it; 400 = the path
  // cannot be normalised (bad escape, NUL, climbs above "/"). raw_path is the request
  // target's path (no query), still percent-encoded. id may be nullptr (plain HTTP).
  int check(std::string_view raw_path, const ClientIdentity* id) const;
  // Same for an already normalised path (a static file's resolved path under the root).
  int checkNormalized(std::string_view path, const ClientIdentity* id) const;

  static bool allows(const AccessRule& rule, const ClientIdentity* id);

 private:
  std::vector<AccessRule> rules_;  // longest prefix first
};

// Percent-decodes every escape (%2F included: a CGI script's PATH_INFO sees it decoded)
// and removes dot and empty segments. False on a bad escape, NUL, or ".." above "/".
bool normalizeAccessPath(std::string_view raw_path, std::string* out);

}  // namespace lisod
