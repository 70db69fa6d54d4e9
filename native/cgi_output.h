// Pure parser for the head of a CGI script's output (RFC 3875 §6), like parseRequest:
// no allocation, results are string_views into the caller's buffer. It finds the head
// (lines end in LF or CRLF, RFC 3875 §6.3 "NL"; the first empty line ends it), tells an
// NPH status line (§6.2.2 … "HTTP/1.x NNN") from parsed headers, and applies the
// Status/Location/Content-Length rules. src/cgi_output.ts wraps it (decoding text,
// formatting messages) through the addon; the fuzzer calls it directly.
//
// Byte-for-byte the rules the TypeScript parser had, including where it decoded UTF-8
// first: trimming removes what JavaScript's String.prototype.trim removes (ASCII
// whitespace, CR/LF, and the UTF-8 forms of NBSP, BOM, U+1680, U+2000–U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000), and "." in the status patterns stops at CR, LF,
// U+2028 and U+2029.
#pragma once
#include <cstddef>
#include <string_view>

namespace lisod {

enum class CgiKind {
  kResponse,       // document or client redirect (§6.2.1, §6.2.3, §6.2.4)
  kLocalRedirect,  // Location: /abs-path without Status (§6.2.2): location is set
  kNph,            // the head starts with a status line; relay it byte for byte
  kInvalid,        // answer 502; error and error_text say why
};

enum class CgiError {
  kNone,
  kTooLarge,           // no blank line within max_head bytes
  kNoFields,           // the blank line comes first
  kMalformedLine,      // no ':' or an empty name; error_text: the line
  kBadName,            // error_text: the name
  kControlChar,        // in a value; error_text: the field's name
  kTwoStatus,
  kTwoLocation,
  kBadContentLength,   // error_text: the value
  kConflictingLength,
  kBadStatus,          // error_text: the Status value
  kNotFinal,           // Status outside 200–599; status holds it
  kEmptyLocation,
  kBadNphLine,         // error_text: the first line
  kTooManyFields,      // more fields than the caller's array holds
};

struct CgiField {
  std::string_view name;
  std::string_view value;  // trimmed; Content-Length without leading zeros
};

struct CgiHead {
  CgiKind kind = CgiKind::kInvalid;
  CgiError error = CgiError::kNone;
  std::string_view error_text;
  int status = 200;               // kResponse, kNph; kNotFinal: the rejected code
  bool has_status = false;        // a Status field was given
  std::string_view reason;        // Status's reason phrase, trimmed (may be empty)
  bool has_location = false;
  std::string_view location;      // kLocalRedirect, or kResponse with a Location
  CgiField* fields = nullptr;     // caller-owned; kResponse: the fields to relay, in
  size_t num_fields = 0;          // order (in: capacity; out: count), without Status,
                                  // Location, the server-owned fields and repeated
                                  // Content-Length fields
};

// Results of parseCgiHead besides the head length.
enum : long { kCgiIncomplete = -1, kCgiTooLarge = -2 };

// Looks for the end of the head in buf[0, len) and interprets it. Returns the head's
// length (through the blank line; the body starts there) with *out filled, or
// kCgiIncomplete when no blank line has come yet and len <= max_head, or kCgiTooLarge
// (out->kind kInvalid, error kTooLarge) when none has come and len > max_head. scanned:
// bytes already searched by an earlier call that returned kCgiIncomplete for this head
// (0 at first), so a head fed in pieces costs O(n). A head needs at most one field per
// line: out->num_fields = the number of LFs in buf is always enough.
long parseCgiHead(const char* buf, size_t len, size_t max_head, size_t scanned, CgiHead* out);

// The header rules alone, for lines already split (without their line ends); no NPH
// detection.
void interpretCgiLines(const std::string_view* lines, size_t n, CgiHead* out);

}  // namespace lisod
