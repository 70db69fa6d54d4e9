#include "fastcgi_env.h"

#include <string>

#include "access_log.h"
#include "fastcgi_record.h"
#include "http_request.h"
#include "server.h"

namespace lisod {
namespace {

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isDigit(char c) { return c >= '0' && c <= '9'; }
int hexValue(char c) {
  if (isDigit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool startsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// cgi_env.ts kSkippedHeaders: own variables, httpoxy (CVE-2016-5385), hop-by-hop.
bool skippedHeader(std::string_view name) {
  for (std::string_view s : {"content-type", "content-length", "proxy", "proxy-authorization", "transfer-encoding", "te",
                             "trailer", "upgrade", "keep-alive"}) {
    if (equalsIgnoreCase(name, s)) return true;
  }
  return false;
}

// [A-Za-z0-9-]+: '_' is refused so that X_Forwarded_For cannot pose as X-Forwarded-For.
bool mappableName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) if (!isAlpha(c) && !isDigit(c) && c != '-') return false;
  return true;
}

bool requestOwned(std::string_view k) {
  return startsWith(k, "HTTP_") || startsWith(k, "SSL_") || k == "HTTPS" || k == "CONTENT_LENGTH" || k == "CONTENT_TYPE" ||
         k == "REMOTE_USER" || k == "AUTH_TYPE";
}

bool serverSet(std::string_view k) {
  for (std::string_view s : {"GATEWAY_INTERFACE", "SERVER_SOFTWARE", "SERVER_PROTOCOL", "SERVER_NAME", "SERVER_ADDR",
                             "SERVER_PORT", "REMOTE_ADDR", "REMOTE_PORT", "REQUEST_METHOD", "REQUEST_URI", "SCRIPT_NAME",
                             "SCRIPT_FILENAME", "PATH_INFO", "QUERY_STRING"}) {
    if (k == s) return true;
  }
  return false;
}

// ::ffff:1.2.3.4 → 1.2.3.4
std::string_view plainAddress(std::string_view a) {
  return startsWith(a, "::ffff:") && a.find('.') != std::string_view::npos ? a.substr(7) : a;
}

bool isJsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Host name part of a Host value (RFC 9110 §7.2): ^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]*)?$
// after trimming, or "" when unusable.
std::string_view hostName(std::string_view h) {
  while (!h.empty() && isJsSpace(h.front())) h.remove_prefix(1);
  while (!h.empty() && isJsSpace(h.back())) h.remove_suffix(1);
  size_t i = 0;
  if (!h.empty() && h[0] == '[') {
    i = 1;
    while (i < h.size() && (hexValue(h[i]) >= 0 || h[i] == ':' || h[i] == '.')) ++i;
    if (i == 1 || i >= h.size() || h[i] != ']') return {};
    ++i;
  } else {
    while (i < h.size() && (isAlpha(h[i]) || isDigit(h[i]) || h[i] == '.' || h[i] == '-')) ++i;
    if (i == 0) return {};
  }
  std::string_view name = h.substr(0, i);
  if (i == h.size()) return name;
  if (h[i] != ':') return {};
  for (size_t k = i + 1; k < h.size(); ++k) if (!isDigit(h[k])) return {};
  return name;
}

void pair(std::string& out, std::string_view name, std::string_view value) { appendFcgiPair(out, name, value); }

}  // namespace

void splitCgiTarget(std::string_view target, std::string_view* path, std::string_view* query) {
  // ^[A-Za-z][A-Za-z0-9+.-]*://[^/?]*
  size_t i = 0;
  if (!target.empty() && isAlpha(target[0])) {
    i = 1;
    while (i < target.size() && (isAlpha(target[i]) || isDigit(target[i]) || target[i] == '+' || target[i] == '.' ||
                                 target[i] == '-')) {
      ++i;
    }
    if (target.substr(i, 3) == "://") {
      i += 3;
      while (i < target.size() && target[i] != '/' && target[i] != '?') ++i;
      target.remove_prefix(i);
    }
  }
  const size_t q = target.find('?');
  *path = target.substr(0, q);
  *query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
}

bool percentDecodePath(std::string_view raw, std::string* out) {
  out->clear();
  if (raw.find('%') == std::string_view::npos) {
    if (raw.find('\0') != std::string_view::npos) return false;
    out->assign(raw);
    return true;
  }
  out->reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out->push_back(raw[i]);
      continue;
    }
    if (i + 2 >= raw.size()) return false;
    const int hi = hexValue(raw[i + 1]), lo = hexValue(raw[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  const std::string& s = *out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8Length(s, i);
    if (n == 0) return false;
    i += n;
  }
  if (startsWith(s, "\xEF\xBB\xBF")) out->erase(0, 3);  // TextDecoder's ignoreBOM: false
  return true;
}

std::vector<std::pair<std::string, std::string>> filterInheritedEnv(
    const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::pair<std::string, std::string>> kept;
  for (const auto& [k, v] : env) {
    if (!requestOwned(k) && !serverSet(k)) kept.emplace_back(k, v);
  }
  return kept;
}

void appendCgiParams(std::string& out, const AppRequest& r, const CgiScript& script,
                     const std::vector<std::pair<std::string, std::string>>& inherited, std::string_view server_name) {
  // One allocation for the whole PARAMS stream rather than a regrowth every few pairs:
  // the fixed RFC 3875 variables fit in ~768 bytes beside the target, environment, headers.
  size_t want = out.size() + 768 + 2 * r.target.size() + script.path_info.size();
  for (const auto& [k, v] : inherited) want += k.size() + v.size() + 8;
  for (const std::string& h : r.headers) want += h.size() + 8;
  out.reserve(want);
  for (const auto& [k, v] : inherited) pair(out, k, v);
  // HTTP_* (RFC 3875 §4.1.18): repeated fields joined with ", " (RFC 9110 §5.3), Cookie with
  // "; " (RFC 6265 §5.4), in the order of their first appearance.
  std::vector<std::pair<std::string, std::string>> joined;
  std::string_view content_type, host;
  bool has_type = false, has_host = false, saw_length = false;
  for (size_t i = 0; i + 1 < r.headers.size(); i += 2) {
    const std::string& name = r.headers[i];
    const std::string& value = r.headers[i + 1];
    if (value.find('\0') != std::string::npos) continue;
    if (!has_type && equalsIgnoreCase(name, "content-type")) content_type = value, has_type = true;
    if (!has_host && equalsIgnoreCase(name, "host")) host = value, has_host = true;
    if (equalsIgnoreCase(name, "content-length")) saw_length = true;
    if (skippedHeader(name) || !mappableName(name)) continue;
    std::string key = "HTTP_";
    for (char c : name) key.push_back(c == '-' ? '_' : (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c);
    auto it = joined.begin();
    while (it != joined.end() && it->first != key) ++it;
    if (it == joined.end()) {
      joined.emplace_back(std::move(key), value);
    } else {
      it->second.append(equalsIgnoreCase(name, "cookie") ? "; " : ", ").append(value);
    }
  }
  for (const auto& [k, v] : joined) pair(out, k, v);

  pair(out, "GATEWAY_INTERFACE", "CGI/1.1");
  pair(out, "SERVER_SOFTWARE", "Liso/1.0");
  pair(out, "SERVER_PROTOCOL", r.version);
  std::string_view sn = has_host ? hostName(host) : std::string_view();
  pair(out, "SERVER_NAME", sn.empty() ? server_name : sn);
  pair(out, "SERVER_ADDR", plainAddress(r.local_address));
  pair(out, "SERVER_PORT", std::to_string(r.local_port));
  pair(out, "REMOTE_ADDR", plainAddress(r.remote_address));
  pair(out, "REMOTE_PORT", std::to_string(r.remote_port));
  pair(out, "REQUEST_METHOD", r.method);
  pair(out, "REQUEST_URI", r.target);
  pair(out, "SCRIPT_NAME", script.script_name);
  pair(out, "SCRIPT_FILENAME", script.script_filename);
  pair(out, "PATH_INFO", script.path_info);
  pair(out, "QUERY_STRING", script.query);
  // RFC 3875 §4.1.2: set when a body is attached; `Content-Length: 0` is reported as 0.
  if (r.has_body && r.content_length >= 0) pair(out, "CONTENT_LENGTH", std::to_string(r.content_length));
  else if (!r.has_body && saw_length) pair(out, "CONTENT_LENGTH", "0");
  if (has_type) pair(out, "CONTENT_TYPE", content_type);
  if (r.tls) pair(out, "HTTPS", "on");
}

void appendIdentityParams(std::string& out, const ClientIdentity& id) {
  // mod_ssl's StdEnvVars names, as cgi_env.ts identityEnv.
  pair(out, "SSL_PROTOCOL", id.protocol);
  pair(out, "SSL_CIPHER", id.cipher);
  pair(out, "SSL_CLIENT_VERIFY", id.verify_text);
  if (id.cert_pem.empty()) return;  // no certificate presented
  const std::pair<const char*, const std::string*> optional[] = {
      {"SSL_CLIENT_S_DN", &id.subject_dn}, {"SSL_CLIENT_S_DN_CN", &id.subject_cn}, {"SSL_CLIENT_I_DN", &id.issuer_dn},
      {"SSL_CLIENT_M_SERIAL", &id.serial_hex}, {"SSL_CLIENT_V_START", &id.not_before},
      {"SSL_CLIENT_V_END", &id.not_after}, {"SSL_CLIENT_CERT", &id.cert_pem}};
  for (const auto& [name, value] : optional) if (!value->empty()) pair(out, name, *value);
  if (id.verify_text == "SUCCESS" && !id.subject_cn.empty()) {
    pair(out, "REMOTE_USER", id.subject_cn);
    pair(out, "AUTH_TYPE", "Cert");
  }
}

}  // namespace lisod
