// SCRIPT_NAME / PATH_INFO / SCRIPT_FILENAME for a [[fastcgi]] mount with `root`, natively:
// the rules and the one-second cache of src/fastcgi/route.ts RootRouter (nginx's `root`
// without the cgi.fix_pathinfo hole): the longest prefix of the decoded path that names a
// regular file whose real path is inside root's, never a directory; "." and ".." never match.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace lisod {

struct ScriptRoute {
  std::string script_name, script_filename, path_info;
};

class RootRouter {
 public:
  RootRouter(std::string prefix, std::string root, std::optional<std::string> index)
      : prefix_(std::move(prefix)), root_(std::move(root)), index_(std::move(index)) {}
  // decoded: the percent-decoded request path. nullopt → 404. now_ms: the loop's clock.
  std::optional<ScriptRoute> route(const std::string& decoded, uint64_t now_ms);

 private:
  std::optional<ScriptRoute> lookUp(const std::string& decoded) const;
  bool isScript(const std::string& script_name) const;

  std::string prefix_, root_;
  std::optional<std::string> index_;
  std::string real_root_;  // with a trailing '/'; "" when root does not resolve
  uint64_t at_ms_ = 0;
  bool fresh_ = false;
  std::unordered_map<std::string, std::optional<ScriptRoute>> routes_;
};

}  // namespace lisod
