// Incremental, in-place decoder for the chunked transfer coding (RFC 9112 §7.1):
//   chunked-body = *chunk last-chunk trailer-section CRLF
//   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
#include "chunked.h"

#include <cstring>

namespace lisod {
namespace {

enum State : int {
  kSize,          // chunk-size digits
  kSizeWs,        // BWS after the size, before ";"
  kExt,           // chunk-ext, ignored up to CR
  kSizeLf,        // LF ending the chunk-size line
  kData,          // chunk-data
  kDataCr,        // CR after chunk-data
  kDataLf,        // LF after chunk-data
  kTrailerStart,  // start of a trailer field line, or the final CRLF
  kTrailerName,
  kTrailerValue,
  kTrailerLf,
  kFinalLf,
  kDone,
  kFailed,
  kFailedTooLarge,
};

constexpr size_t kMaxSizeLine = 1024;
constexpr size_t kMaxTrailer = 8192;
constexpr uint64_t kMaxChunk = uint64_t{1} << 60;

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// tchar (RFC 9110 §5.6.2).
inline bool isTokenChar(char c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

// Bytes allowed in chunk-ext and trailer field values: no CTL except HTAB.
inline bool isTextChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

}  // namespace

bool ChunkedDecoder::done() const { return state_ == kDone; }

long ChunkedDecoder::decode(char* buf, size_t* len) {
  const size_t original_len = *len;
  const char* in = buf;
  const char* const end = buf + original_len;
  char* out = buf;

  auto finish = [&](long result) {
    *len = static_cast<size_t>(out - buf);
    return result;
  };
  auto fail = [&](State failed) {
    state_ = failed;
    return finish(failed == kFailedTooLarge ? kTooLarge : kError);
  };

  if (state_ == kDone) {
    *len = 0;
    return static_cast<long>(original_len);
  }
  if (state_ == kFailed) return fail(kFailed);
  if (state_ == kFailedTooLarge) return fail(kFailedTooLarge);

  while (in < end) {
    const char c = *in;
    switch (state_) {
      case kSize: {
        const int d = hexValue(c);
        if (d >= 0) {
          if (chunk_left_ > (kMaxChunk - static_cast<uint64_t>(d)) / 16) return fail(kFailed);
          chunk_left_ = chunk_left_ * 16 + static_cast<uint64_t>(d);
          saw_digit_ = true;
        } else if (!saw_digit_) {
          return fail(kFailed);
        } else if (c == '\r') {
          state_ = kSizeLf;
        } else if (c == ';') {
          state_ = kExt;
        } else if (c == ' ' || c == '\t') {
          state_ = kSizeWs;
        } else {
          return fail(kFailed);
        }
        if (c != '\r' && ++line_len_ > kMaxSizeLine) return fail(kFailed);
        ++in;
        break;
      }
      case kSizeWs:
        if (c == ';') state_ = kExt;
        else if (c != ' ' && c != '\t') return fail(kFailed);
        if (++line_len_ > kMaxSizeLine) return fail(kFailed);
        ++in;
        break;
      case kExt:
        if (c == '\r') {
          state_ = kSizeLf;
        } else {
          if (!isTextChar(c)) return fail(kFailed);
          if (++line_len_ > kMaxSizeLine) return fail(kFailed);
        }
        ++in;
        break;
      case kSizeLf:
        if (c != '\n') return fail(kFailed);
        ++in;
        line_len_ = 0;
        saw_digit_ = false;
        if (chunk_left_ == 0) {
          state_ = kTrailerStart;  // last-chunk
        } else {
          if (chunk_left_ > max_body_ - total_) return fail(kFailedTooLarge);
          state_ = kData;
        }
        break;
      case kData: {
        const size_t avail = static_cast<size_t>(end - in);
        const size_t n = chunk_left_ < avail ? static_cast<size_t>(chunk_left_) : avail;
        if (out != in) std::memmove(out, in, n);
        out += n;
        in += n;
        total_ += n;
        chunk_left_ -= n;
        if (chunk_left_ == 0) state_ = kDataCr;
        break;
      }
      case kDataCr:
        if (c != '\r') return fail(kFailed);
        state_ = kDataLf;
        ++in;
        break;
      case kDataLf:
        if (c != '\n') return fail(kFailed);
        state_ = kSize;
        ++in;
        break;
      case kTrailerStart:
      case kTrailerName:
      case kTrailerValue:
      case kTrailerLf:
        // Trailer fields (RFC 9112 §7.1.2) are discarded; only their shape is checked.
        if (++trailer_len_ > kMaxTrailer) return fail(kFailed);
        if (state_ == kTrailerStart) {
          if (c == '\r') state_ = kFinalLf;
          else if (isTokenChar(c)) state_ = kTrailerName;
          else return fail(kFailed);  // obs-fold, bare LF, junk
        } else if (state_ == kTrailerName) {
          if (c == ':') state_ = kTrailerValue;
          else if (!isTokenChar(c)) return fail(kFailed);
        } else if (state_ == kTrailerValue) {
          if (c == '\r') state_ = kTrailerLf;
          else if (!isTextChar(c)) return fail(kFailed);
        } else {
          if (c != '\n') return fail(kFailed);
          state_ = kTrailerStart;
        }
        ++in;
        break;
      case kFinalLf:
        if (c != '\n') return fail(kFailed);
        ++in;
        state_ = kDone;
        return finish(static_cast<long>(end - in));
      default:
        return fail(kFailed);
    }
  }
  return finish(kNeedMore);
}

}  // namespace lisod
