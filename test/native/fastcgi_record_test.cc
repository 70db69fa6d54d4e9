// Table tests for the native FastCGI record codec (native/fastcgi_record.h): framing,
// padding, the 65,535-byte split, PARAMS lengths, fragmented and bad input.
#include <string>

#include "../../native/fastcgi_record.h"
#include "test_support.h"

namespace lisod::test {

void runFastcgiRecordTests(Suite& suite) {
  {
    Case c(suite, "fastcgi: BEGIN_REQUEST responder with keep-conn");
    std::string out;
    appendFcgiBegin(out, 0x0102, true);
    c.eq(out, std::string("\x01\x01\x01\x02\x00\x08\x00\x00\x00\x01\x01\x00\x00\x00\x00\x00", 16), "bytes");
  }
  {
    Case c(suite, "fastcgi: empty STDIN is one empty record");
    std::string out;
    appendFcgiRecords(out, kFcgiStdin, 7, "");
    c.eq(out, std::string("\x01\x05\x00\x07\x00\x00\x00\x00", 8), "bytes");
  }
  {
    Case c(suite, "fastcgi: content padded to 8, split at 65535");
    std::string out;
    appendFcgiRecords(out, kFcgiParams, 1, "abc");
    c.eq(out.size(), size_t{16}, "3 bytes + 5 padding");
    c.eq(static_cast<int>(out[6]), 5, "padding length");
    out.clear();
    const std::string big(70000, 'x');
    appendFcgiRecords(out, kFcgiStdin, 1, big);
    FcgiRecord r;
    long n = parseFcgiRecord(out.data(), out.size(), &r);
    c.eq(r.content.size(), kFcgiMaxContent, "first piece");
    c.eq(n, static_cast<long>(8 + 65535 + 1), "with 1 byte padding");
    long m = parseFcgiRecord(out.data() + n, out.size() - n, &r);
    c.eq(r.content.size(), size_t{70000 - 65535}, "second piece");
    c.eq(static_cast<size_t>(n + m), out.size(), "nothing else");
  }
  {
    Case c(suite, "fastcgi: PARAMS pair lengths (1 and 4 bytes)");
    std::string out;
    appendFcgiPair(out, "A", std::string(200, 'v'));
    c.eq(static_cast<unsigned char>(out[0]), 1u, "name length");
    c.eq(std::string(out.data() + 1, 4), std::string("\x80\x00\x00\xc8", 4), "value length");
    c.eq(out.size(), size_t{1 + 4 + 1 + 200}, "size");
  }
  {
    Case c(suite, "fastcgi: decoder waits for header, content and padding");
    std::string rec("\x01\x06\x00\x01\x00\x02\x03\x00hi\0\0\0", 13);
    FcgiRecord r;
    for (size_t len = 0; len < rec.size(); ++len) c.eq(parseFcgiRecord(rec.data(), len, &r), long{kFcgiIncomplete}, "partial");
    c.eq(parseFcgiRecord(rec.data(), rec.size(), &r), 13L, "whole");
    c.eq(r.type, uint8_t{kFcgiStdout}, "type");
    c.eq(r.id, uint16_t{1}, "id");
    c.eq(r.content, std::string_view("hi"), "content");
    rec[0] = 2;
    c.eq(parseFcgiRecord(rec.data(), rec.size(), &r), long{kFcgiBadVersion}, "version 2");
  }
  {
    Case c(suite, "fastcgi: END_REQUEST body");
    FcgiEnd e;
    c.eq(parseFcgiEnd(std::string_view("\x00\x00\x01\x02\x02\x00\x00\x00", 8), &e), true, "parsed");
    c.eq(e.app_status, 258u, "appStatus");
    c.eq(e.protocol_status, uint8_t{kFcgiOverloaded}, "protocolStatus");
    c.eq(parseFcgiEnd(std::string_view("\x00\x00", 2), &e), false, "short");
  }
}

}  // namespace lisod::test
