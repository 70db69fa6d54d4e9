// Accept-Encoding (RFC 9110 §12.5.3): which content coding a static response takes.
// Pure functions, table-tested and fuzzed.
#pragma once
#include <cstdint>
#include <string_view>

namespace lisod {

enum class Coding { kIdentity, kGzip, kBr, kNone };  // kNone: nothing acceptable (406)

// The q-values (thousandths, 0–1000) the field gives br, gzip ("x-gzip" too), identity and
// "*"; -1 where the field does not name it. Elements with an invalid qvalue are ignored;
// the first mention of a coding counts. Coding names are case-insensitive.
struct AcceptEncoding {
  int br = -1, gzip = -1, identity = -1, star = -1;
};
AcceptEncoding parseAcceptEncoding(std::string_view field);

// The preferred coding among those available (identity always is):
// - a coding's weight is its own q, else "*"'s, else 0 — except identity, which without
//   a q of its own or from "*" is acceptable at the lowest weight (rule 2 of §12.5.3);
// - the highest non-zero weight wins; ties go to br, then gzip, then identity;
// - identity excluded (identity;q=0, or *;q=0 without identity) and no available coding
//   acceptable → kNone. An absent or empty field means identity (pass an empty view).
Coding chooseCoding(const AcceptEncoding& ae, bool br_available, bool gzip_available);

// "br", "gzip" or "" (identity).
std::string_view codingName(Coding c);

}  // namespace lisod
