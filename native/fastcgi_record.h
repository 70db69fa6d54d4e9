// FastCGI 1.0 records (https://fastcgi-archives.github.io/FastCGI_Specification.html) for
// the native responder client (fastcgi_client.cc): encoders that append what a web server
// sends to a caller's buffer, and a pure decoder for what comes back (no allocation; the
// content is a view into the caller's buffer). The TypeScript twin is src/fastcgi/record.ts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lisod {

enum FcgiType : uint8_t {
  kFcgiBeginRequest = 1, kFcgiAbortRequest = 2, kFcgiEndRequest = 3, kFcgiParams = 4, kFcgiStdin = 5,
  kFcgiStdout = 6, kFcgiStderr = 7, kFcgiData = 8, kFcgiGetValues = 9, kFcgiGetValuesResult = 10,
  kFcgiUnknownType = 11,
};
// END_REQUEST protocolStatus (spec §5.5).
enum FcgiProtocolStatus : uint8_t { kFcgiComplete = 0, kFcgiCantMpx = 1, kFcgiOverloaded = 2, kFcgiUnknownRole = 3 };

constexpr size_t kFcgiHeaderBytes = 8;
constexpr size_t kFcgiMaxContent = 0xffff;  // contentLength is 16 bits (spec §3.3)

// BEGIN_REQUEST, responder role, FCGI_KEEP_CONN when keep_conn.
void appendFcgiBegin(std::string& out, uint16_t id, bool keep_conn);
// Frames data as records of type, pieces of at most 65,535 bytes padded to a multiple
// of 8. Empty data gives one empty record: the end of a PARAMS or STDIN stream.
void appendFcgiRecords(std::string& out, uint8_t type, uint16_t id, std::string_view data);
// One name-value pair in PARAMS encoding (spec §3.4: 1- or 4-byte lengths), unframed.
void appendFcgiPair(std::string& out, std::string_view name, std::string_view value);

struct FcgiRecord {
  uint8_t type = 0;
  uint16_t id = 0;
  std::string_view content;  // without padding
};

enum : long { kFcgiIncomplete = -1, kFcgiBadVersion = -2 };

// Decodes the first record of buf[0, len): returns the bytes it spans (header, content
// and padding) with *out set, kFcgiIncomplete when more bytes are needed, or
// kFcgiBadVersion when the header's version is not 1 (the stream cannot be trusted).
long parseFcgiRecord(const char* buf, size_t len, FcgiRecord* out);

struct FcgiEnd {
  uint32_t app_status = 0;
  uint8_t protocol_status = 0;
};
// END_REQUEST's body (8 bytes, spec §5.5); false when it is shorter.
bool parseFcgiEnd(std::string_view content, FcgiEnd* out);

}  // namespace lisod
