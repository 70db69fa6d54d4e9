// Mapping request targets to files under the www root, and the pure helpers for
// conditional and range requests (RFC 9110 §13, §14).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lisod {

struct ResolvedPath {
  int status = 0;      // 0 = found (regular file in path); 301 with redirect; else 400/403/404
  std::string path;    // absolute file path (after index.html for directories)
  std::string redirect;  // non-empty: a directory requested without trailing '/'; 301 to this target path
                         // (percent-encoded, safe for a Location header)
};

// The path of a request-target: origin-form as is; absolute-form ("http://host/p",
// RFC 9112 §3.2.2, scheme case-insensitive) reduced to "/p" ("/" when it has no path).
std::string_view originPath(std::string_view target);

// Where target's query or fragment begins (its first '?' or '#'), or target.size(). One
// pass: find_first_of("?#") calls memchr over the two characters for every byte.
inline size_t queryStart(std::string_view target) {
  size_t i = 0;
  while (i < target.size() && target[i] != '?' && target[i] != '#') ++i;
  return i;
}

// Resolves the path part of a request-target (query already removed by the caller,
// which passes everything before '?') against root (an absolute, realpath'd directory).
// - origin-form only ("/..."); an absolute-form "http://host/path" is reduced to its path.
// - percent-decoding; "%2F"/"%2f" (encoded slash), "%00"/NUL, "%5C" backslash, or an
//   invalid escape → 400.
// - dot segments are removed (RFC 3986 §5.2.4); a path that would climb above "/" → 400.
// - the final file is realpath'd and must stay inside root (symlinks leaving root → 403
//   would leak existence, so → 404).
// - directories → their index.html (404 if missing).
// - only regular files are served; unreadable or not regular (fifo, device) → 403.
ResolvedPath resolveStaticPath(const std::string& root, std::string_view target_path);

// A file by file-system path (e.g. a precompressed sibling "<resolved>.gz"): realpath'd
// into *real and accepted only inside root as a regular, readable file. 0, else 403/404
// as resolveStaticPath answers.
int resolveFilePath(const std::string& root, const std::string& path, std::string* real);

// Removes dot segments and empty segments (RFC 3986 §5.2.4) from an absolute, already
// percent-decoded path, as resolveStaticPath does. False when ".." would climb above "/".
bool normalizeDecodedPath(std::string_view path, std::string* out);

// Content-Type for a file name by extension (case-insensitive). At least: html/htm,
// css, js/mjs, json, png, jpg/jpeg, gif, svg, ico, txt, pdf, woff, woff2, webp, xml,
// wasm, mp4; text types carry "; charset=utf-8". Unknown → application/octet-stream.
std::string_view mimeType(std::string_view file_name);

// IMF-fixdate (RFC 9110 §5.6.7), e.g. "Sun, 06 Nov 1994 08:49:37 GMT". Writes 29
// chars + NUL into out (size >= 30). Returns 29.
size_t formatHttpDate(int64_t unix_seconds, char* out);

// Common Log Format time, e.g. "10/Oct/2000:13:55:36 -0700": unix_seconds shown in the
// zone offset_minutes east of UTC. Writes 26 chars + NUL into out (size >= 27). Returns 26.
size_t formatClfTime(int64_t unix_seconds, int offset_minutes, char* out);

// Parses IMF-fixdate, and the obsolete RFC 850 and asctime forms. Returns unix
// seconds or -1 when invalid (dates before 1970 count as invalid). Case-sensitive as
// RFC 9110 §5.6.7 says; RFC 850 two-digit years 00–69 are 20xx, 70–99 are 19xx.
int64_t parseHttpDate(std::string_view s);

enum class RangeResult { kNone, kOk, kUnsatisfiable };

// Single byte range ("bytes=a-b", "bytes=a-", "bytes=-n") against a file of size bytes.
// Multiple ranges or an unknown unit → kNone (serve the whole file, RFC 9110 §14.2
// allows ignoring). On kOk, [*first, *last] inclusive.
RangeResult parseRange(std::string_view value, uint64_t size, uint64_t* first, uint64_t* last);

}  // namespace lisod
