// Where an application's response body ends: from Content-Length, from the chunked framing of a
// relayed NPH response, or only at EOF (RFC 9112 §6.3, §9.3). The native CGI/FastCGI path uses it
// to end a response (and free its slot) as soon as its framing is complete, and to keep an NPH
// connection alive when the script's own head frames the body.
//
// A port of src/app_framing.ts (BodyFraming, ChunkedEnd, nphFraming) with the same decisions,
// so that both runners keep or close the same connections: the chunked scanner is as lenient as
// ChunkedEnd (malformed framing is no error, it just never reports an end, and the connection
// closes at EOF), and the head is read the way the TypeScript reads its latin1 string.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace lisod {

// Where a relayed application response body ends (src/app_framing.ts BodyFraming).
class BodyEnd {
 public:
  static BodyEnd length(uint64_t n);  // Content-Length n (complete at once when n == 0)
  static BodyEnd chunked();           // the chunked framing's end (ChunkedEnd's lenient scanner)
  static BodyEnd untilEof();          // only EOF ends it
  bool delimited() const;             // false for untilEof
  bool complete() const;              // every byte of the body went through take()
  // How many leading bytes of data still belong to the body (the rest is excess); 0 once complete.
  size_t take(std::string_view data);

 private:
  enum class Kind : uint8_t { kLength, kChunked, kEof };

  // ChunkedEnd: finds last-chunk and the end of the trailer section (RFC 9112 §7.1).
  class ChunkedScan {
   public:
    static constexpr size_t kNoEnd = SIZE_MAX;
    // Feeds bytes; returns the offset just past the end of the body, or kNoEnd.
    size_t push(std::string_view b);

   private:
    enum class State : uint8_t { kSize, kExt, kSizeLf, kData, kDataCr, kDataLf, kTrailer, kTrailerLine,
                                 kTrailerLf, kEndLf, kBad };
    State state_ = State::kSize;
    uint64_t size_ = 0;  // at most 12 hex digits: below 2^48, as exact as the JS number
    int digits_ = 0;
    uint64_t left_ = 0;
  };

  BodyEnd(Kind kind, uint64_t remaining) : kind_(kind), remaining_(remaining) {
    complete_ = kind == Kind::kLength && remaining == 0;
  }

  Kind kind_;
  uint64_t remaining_;  // kLength only
  bool complete_;
  ChunkedScan scan_;    // kChunked only
};

struct NphFraming {
  BodyEnd body;
  bool keep_alive;  // the connection may serve another request after this response
};

// Framing of an NPH response from its own head. The connection is kept only when the head frames
// the body, does not say `Connection: close`, and both the request and the response are HTTP/1.1;
// anything else ends at EOF and closes.
// head: the NPH status line and header fields as relayed (through the blank line);
// method/version: the request's ("HEAD", "HTTP/1.1").
NphFraming nphFraming(std::string_view head, std::string_view method, std::string_view version);

}  // namespace lisod
