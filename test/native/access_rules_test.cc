// AccessRules from a table: prefix matching on segment boundaries, longest prefix wins,
// percent-decoding and dot segments before matching, entries as exact attribute sets,
// "*" for any verified certificate, unverified and absent identities.
#include <string>
#include <vector>

#include "../../native/access_rules.h"
#include "test_support.h"

namespace lisod::test {
namespace {

ClientIdentity who(std::vector<std::pair<std::string, std::string>> attrs, bool verified = true) {
  ClientIdentity id;
  id.verify = verified ? ClientIdentity::Verify::kSuccess : ClientIdentity::Verify::kFailed;
  id.subject_attrs = std::move(attrs);
  return id;
}

}  // namespace

void runAccessRulesTests(Suite& suite) {
  AccessRules rules({
      {"/private/", false, {{{"O", "Ops"}}, {{"CN", "bob"}, {"O", "Dev"}}}},
      {"/private/dev", false, {{{"CN", "bob"}, {"O", "Dev"}}}},
      {"/any", true, {}},
  });
  const ClientIdentity alice = who({{"CN", "alice"}, {"O", "Ops"}});
  const ClientIdentity bob = who({{"CN", "bob"}, {"O", "Dev"}});
  const ClientIdentity bobOtherOrg = who({{"CN", "bob"}, {"O", "Ops2"}});
  const ClientIdentity multiOu = who({{"CN", "carl"}, {"OU", "x"}, {"O", "Ops"}, {"OU", "y"}});
  const ClientIdentity lower = who({{"CN", "dan"}, {"O", "ops"}});
  const ClientIdentity failed = who({{"CN", "alice"}, {"O", "Ops"}}, false);

  struct Row {
    const char* path;
    const ClientIdentity* id;
    int want;
  };
  const Row rows[] = {
      {"/index.html", nullptr, 0},
      {"/private", nullptr, 403},
      {"/private/", nullptr, 403},
      {"/private/x", &alice, 0},
      {"/private/x", &bob, 0},
      {"/private/x", &bobOtherOrg, 403},
      {"/private/x", &multiOu, 0},
      {"/private/x", &lower, 403},  // values are case-sensitive
      {"/private/x", &failed, 403},
      {"/privatefoo", nullptr, 0},  // segment boundary
      {"/Private/x", nullptr, 0},   // case-sensitive prefix
      {"/private/dev", &alice, 403},  // longest prefix decides
      {"/private/dev/y", &bob, 0},
      {"/private/devil", &alice, 0},  // /private/ covers it, /private/dev does not
      {"/any/z", &lower, 0},
      {"/any/z", &failed, 403},
      {"/any/z", nullptr, 403},
      {"/%70rivate/x", nullptr, 403},
      {"/priv%61te/x", &alice, 0},
      {"//private//x", nullptr, 403},
      {"/./private/./x", nullptr, 403},
      {"/a/b/../../private/x", nullptr, 403},
      {"/%2fprivate/x", nullptr, 403},  // %2F decodes to '/': PATH_INFO sees it that way
      {"/any/%2e%2e/private/x", nullptr, 403},
      {"/../private", nullptr, 400},  // climbs above the root
      {"/bad%zz", nullptr, 400},
      {"/bad%2", nullptr, 400},
      {"/nul%00", nullptr, 400},
  };
  for (const Row& r : rows) {
    Case c(suite, std::string("check ") + r.path);
    c.eq(rules.check(r.path, r.id), r.want, "status");
  }
  {
    Case c(suite, "resolved paths skip decoding");
    c.eq(rules.checkNormalized("/private/x.html", nullptr), 403, "protected");
    c.eq(rules.checkNormalized("/pub/x.html", nullptr), 0, "public");
  }
  {
    Case c(suite, "no rules: everything allowed, even unparsable paths");
    AccessRules none;
    c.check(none.empty(), "empty");
    c.eq(none.check("/bad%zz", nullptr), 0, "status");
  }
  {
    Case c(suite, "root rule covers everything");
    AccessRules root({{"/", true, {}}});
    c.eq(root.check("/", nullptr), 403, "root");
    c.eq(root.check("/x/y", &alice), 0, "verified");
  }
  {
    Case c(suite, "an entry with no pairs allows nobody");
    AccessRules empty({{"/e", false, {{}}}});
    c.eq(empty.check("/e", &alice), 403, "status");
  }
}

}  // namespace lisod::test
