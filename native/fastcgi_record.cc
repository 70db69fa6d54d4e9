#include "fastcgi_record.h"

namespace lisod {
namespace {

void appendHeader(std::string& out, uint8_t type, uint16_t id, size_t length, size_t padding) {
  const char h[kFcgiHeaderBytes] = {1, static_cast<char>(type), static_cast<char>(id >> 8), static_cast<char>(id & 0xff),
                                    static_cast<char>(length >> 8), static_cast<char>(length & 0xff),
                                    static_cast<char>(padding), 0};
  out.append(h, sizeof h);
}

void appendLength(std::string& out, size_t n) {
  if (n < 128) {
    out.push_back(static_cast<char>(n));
    return;
  }
  const char b[4] = {static_cast<char>(0x80 | ((n >> 24) & 0x7f)), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                     static_cast<char>(n)};
  out.append(b, 4);
}

}  // namespace

void appendFcgiBegin(std::string& out, uint16_t id, bool keep_conn) {
  appendHeader(out, kFcgiBeginRequest, id, 8, 0);
  const char body[8] = {0, 1, static_cast<char>(keep_conn ? 1 : 0), 0, 0, 0, 0, 0};  // role 1: responder
  out.append(body, sizeof body);
}

void appendFcgiRecords(std::string& out, uint8_t type, uint16_t id, std::string_view data) {
  size_t offset = 0;
  do {
    const std::string_view piece = data.substr(offset, kFcgiMaxContent);
    const size_t padding = (8 - piece.size() % 8) % 8;
    appendHeader(out, type, id, piece.size(), padding);
    out.append(piece);
    out.append(padding, '\0');
    offset += piece.size();
  } while (offset < data.size());
}

void appendFcgiPair(std::string& out, std::string_view name, std::string_view value) {
  appendLength(out, name.size());
  appendLength(out, value.size());
  out.append(name);
  out.append(value);
}

long parseFcgiRecord(const char* buf, size_t len, FcgiRecord* out) {
  if (len < kFcgiHeaderBytes) return kFcgiIncomplete;
  const auto* b = reinterpret_cast<const unsigned char*>(buf);
  if (b[0] != 1) return kFcgiBadVersion;
  const size_t content = (static_cast<size_t>(b[4]) << 8) | b[5];
  const size_t total = kFcgiHeaderBytes + content + b[6];
  if (len < total) return kFcgiIncomplete;
  out->type = b[1];
  out->id = static_cast<uint16_t>((b[2] << 8) | b[3]);
  out->content = std::string_view(buf + kFcgiHeaderBytes, content);
  return static_cast<long>(total);
}

bool parseFcgiEnd(std::string_view content, FcgiEnd* out) {
  if (content.size() < 8) return false;
  const auto* b = reinterpret_cast<const unsigned char*>(content.data());
  out->app_status = (static_cast<uint32_t>(b[0]) << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
  out->protocol_status = b[4];
  return true;
}

}  // namespace lisod
