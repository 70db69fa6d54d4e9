// Response head formatting shared by static files, errors and application
// responses: status line, the headers every response carries, small error pages.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace lisod {

// The Server field of every response.
inline constexpr std::string_view kServerSoftware = "Liso/1.0";

// Reason phrase for a status code (RFC 9110 §15); "Unknown" for codes we never send.
std::string_view reasonPhrase(int status);

// Appends "HTTP/1.1 <status> <reason>\r\nServer: Liso/1.0\r\nDate: <date>\r\n
// Connection: keep-alive|close\r\n" to out.
void appendResponseStart(std::string& out, int status, std::string_view reason, const char* date,
                         bool keep_alive);

// Why a field cannot go on the wire as given, or nullptr when it can: the name must be a
// token (RFC 9110 §5.1) and the value free of CR, LF and NUL (§5.5), or a caller could
// split the response. A reason phrase (checkReason) may not hold CR, LF or NUL either.
const char* checkHeaderField(std::string_view name, std::string_view value);
// The value half of checkHeaderField, for a name known to be a token.
const char* checkHeaderValue(std::string_view value);
const char* checkReason(std::string_view reason);

// Appends "name: value\r\n". Returns false and appends nothing when checkHeaderField
// refuses the field: the contract is enforced here, not trusted to the caller.
bool appendHeader(std::string& out, std::string_view name, std::string_view value);
void appendHeader(std::string& out, std::string_view name, uint64_t value);

// A small HTML page for an error status; detail is HTML-escaped.
std::string errorPage(int status, std::string_view detail);

}  // namespace lisod
