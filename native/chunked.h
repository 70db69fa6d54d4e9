// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
#pragma once
#include <cstddef>
#include <cstdint>

namespace lisod {

class ChunkedDecoder {
 public:
  enum Result : int {
    kNeedMore = -1,   // all input consumed, body not finished
    kError = -2,      // malformed chunk framing → 400
    kTooLarge = -3,   // decoded total would exceed max_body → 413
  };
  explicit ChunkedDecoder(uint64_t max_body) : max_body_(max_body) {}

  // Decodes buf[0, *len) in place: on return buf[0, *len) holds the decoded data
  // bytes found in this call. Returns kNeedMore, kError, kTooLarge, or, once the
  // last chunk and trailer section (ignored) are complete, the number of input bytes
  // that followed the end of the body (the start of the next pipelined request,
  // which the caller must move into place: they were at the tail of the original
  // input, i.e. at original_len - result). Chunk extensions are ignored; a
  // chunk-size line over 1 KiB or a size over 2^60 is kError. Trailer fields are
  // checked for shape (no obs-fold, no CTLs) and discarded; a trailer section over
  // 8 KiB is kError. kTooLarge is reported as soon as a chunk-size line announces
  // data beyond max_body. After kError/kTooLarge the decoder stays in that state.
  // Once the body has ended, further calls decode nothing (*len = 0) and return the
  // original *len (every byte belongs to what follows the body).
  long decode(char* buf, size_t* len);

  bool done() const;  // last chunk and trailer section complete

  uint64_t decodedTotal() const { return total_; }

 private:
  int state_ = 0;
  uint64_t chunk_left_ = 0;
  uint64_t total_ = 0;
  uint64_t max_body_;
  size_t line_len_ = 0;
  size_t trailer_len_ = 0;
  bool saw_digit_ = false;
};

}  // namespace lisod
