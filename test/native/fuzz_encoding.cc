// libFuzzer target for the request fields static negotiation reads: Accept-Encoding
// (native/accept_encoding.cc), entity-tag lists, If-Range and the precondition order
// (native/conditional.cc). Besides ASan/UBSan it checks: q-values stay in 0–1000 or -1,
// the chosen coding was available and acceptable, kNone only when identity was refused,
// a strong entity-tag match is also a weak one, and the verdicts are pure.
// Input: byte 0 picks availability and method; the rest, split at the first NUL, is the
// field value and a second value (the tag list or date).
#include <cstdint>
#include <string>
#include <string_view>

#include "../../native/accept_encoding.h"
#include "../../native/conditional.h"
#include "fuzz_check.h"

using namespace lisod;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nul = rest.find('\0');
  std::string_view a = rest.substr(0, nul);
  std::string_view b = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);

  AcceptEncoding ae = parseAcceptEncoding(a);
  for (int q : {ae.br, ae.gzip, ae.identity, ae.star}) FUZZ_CHECK(q >= -1 && q <= 1000);
  const bool br = flags & 1, gz = flags & 2;
  Coding c = chooseCoding(ae, br, gz);
  FUZZ_CHECK(c != Coding::kBr || br);
  FUZZ_CHECK(c != Coding::kGzip || gz);
  const Coding plain = chooseCoding(ae, false, false);
  FUZZ_CHECK(plain == Coding::kIdentity || plain == Coding::kNone);
  FUZZ_CHECK(c != Coding::kNone || plain == Coding::kNone);  // kNone only when identity is refused
  FUZZ_CHECK(c == chooseCoding(parseAcceptEncoding(a), br, gz));

  const std::string tag = makeEtag(static_cast<int64_t>(flags) * 977, b.size(), (flags & 4) ? "-gz6" : "");
  for (std::string_view list : {a, b}) {
    if (etagListMatches(list, tag, true)) FUZZ_CHECK(etagListMatches(list, tag, false));
  }
  Preconditions p{a, b, b, a, a, (flags & 8) != 0};
  Precondition v = evaluatePreconditions(p, tag, flags);
  FUZZ_CHECK(v == evaluatePreconditions(p, tag, flags));
  if (v == Precondition::kNotModified) FUZZ_CHECK(p.get_or_head);
  (void)ifRangeAllows(a, tag, flags);
  (void)ifRangeAllows(b, tag, flags);
  return 0;
}
