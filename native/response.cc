#include "response.h"

#include <array>
#include <charconv>

namespace lisod {

std::string_view reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

void appendResponseStart(std::string& out, int status, std::string_view reason, const char* date,
                         bool keep_alive) {
  char code[8];
  auto res = std::to_chars(code, code + sizeof code, status);
  out.append("HTTP/1.1 ");
  out.append(code, res.ptr);
  out.push_back(' ');
  out.append(reason);
  out.append("\r\nServer: Liso/1.0\r\nDate: ");
  out.append(date);
  out.append(keep_alive ? "\r\nConnection: keep-alive\r\n" : "\r\nConnection: close\r\n");
}

namespace {

// RFC 9110 §5.6.2 tchar, one table load per byte (every response header name is checked).
constexpr auto kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = t[c - 'a' + 'A'] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool isTokenChar(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }

// A plain loop: find_first_of with a 3-byte set calls memchr once per byte of s.
bool hasLineBreakOrNul(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

}  // namespace

const char* checkHeaderField(std::string_view name, std::string_view value) {
  if (name.empty()) return "empty header name";
  for (char c : name) {
    if (!isTokenChar(c)) return "header name is not a token";
  }
  if (hasLineBreakOrNul(value)) return "header value contains CR, LF or NUL";
  return nullptr;
}

const char* checkHeaderValue(std::string_view value) {
  return hasLineBreakOrNul(value) ? "header value contains CR, LF or NUL" : nullptr;
}

const char* checkReason(std::string_view reason) {
  return hasLineBreakOrNul(reason) ? "reason phrase contains CR, LF or NUL" : nullptr;
}

bool appendHeader(std::string& out, std::string_view name, std::string_view value) {
  if (checkHeaderField(name, value) != nullptr) return false;
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
  return true;
}

void appendHeader(std::string& out, std::string_view name, uint64_t value) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, value);
  appendHeader(out, name, std::string_view(buf, res.ptr - buf));
}

std::string errorPage(int status, std::string_view detail) {
  std::string title = std::to_string(status) + " " + std::string(reasonPhrase(status));
  std::string page = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
                     "</title></head>\n<body><h1>" + title + "</h1>\n";
  if (!detail.empty()) page += "<p>";
  for (char c : detail) {
    switch (c) {
      case '<': page += "&lt;"; break;
      case '>': page += "&gt;"; break;
      case '&': page += "&amp;"; break;
      case '"': page += "&quot;"; break;
      default: page += c;
    }
  }
  if (!detail.empty()) page += "</p>\n";
  page += "<hr><address>Liso/1.0 (lisod)</address></body></html>\n";
  return page;
}

}  // namespace lisod
