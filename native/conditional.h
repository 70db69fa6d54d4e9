// Validators and conditional requests for static representations (RFC 9110 §8.8, §13):
// the ETag lisod gives a file, entity-tag list matching, and the order in which the
// preconditions are evaluated (§13.2.2). Pure functions, table-tested.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lisod {

// Strong ETag of a file as nginx forms it: "<mtime hex>-<size hex>" in quotes, so two
// machines serving the same files (same mtimes) agree. suffix (e.g. "-gz6") is appended
// inside the quotes for another representation of the same resource (a content coding).
std::string makeEtag(int64_t mtime, uint64_t size, std::string_view suffix = {});

// Whether a list-valued If-Match / If-None-Match field matches etag (a quoted strong tag
// as makeEtag gives). "*" matches any current representation. Elements that are not
// entity-tags (RFC 9110 §8.8.3: [W/] DQUOTE *etagc DQUOTE) match nothing.
// Strong comparison (If-Match, If-Range): neither tag may be weak. Weak comparison
// (If-None-Match): the opaque parts are equal, W/ ignored.
bool etagListMatches(std::string_view field, std::string_view etag, bool strong);

struct Preconditions {
  std::string_view if_match, if_none_match, if_modified_since, if_unmodified_since, if_range;
  bool get_or_head = true;  // a POST (served like GET) gets 412, not 304, from If-None-Match
};

enum class Precondition { kProceed, kNotModified, kFailed };

// RFC 9110 §13.2.2 for a representation with this etag and mtime (seconds):
// 1. If-Match present: false → 412 (strong comparison).
// 2. else If-Unmodified-Since (a valid date): mtime after it → 412.
// 3. If-None-Match present: true → 304 for GET/HEAD, else 412 (weak comparison).
// 4. else If-Modified-Since on GET/HEAD (a valid date): mtime not after it → 304.
// Invalid dates are ignored (§13.1.3, §13.1.4).
Precondition evaluatePreconditions(const Preconditions& p, std::string_view etag, int64_t mtime);

// RFC 9110 §13.1.5: whether a Range request's If-Range lets the range apply. An entity-tag
// must match etag strongly (a weak one never does); a date must equal the Last-Modified
// date exactly. Empty if_range → true; anything else (invalid) → false (send it all).
bool ifRangeAllows(std::string_view if_range, std::string_view etag, int64_t mtime);

}  // namespace lisod
