// Accept-Encoding parsing and the choice of a content coding (RFC 9110 §12.5.3, §12.4.2).
#include "accept_encoding.h"

#include "http_request.h"

namespace lisod {
namespace {

inline bool isOws(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && isOws(s.front())) s.remove_prefix(1);
  while (!s.empty() && isOws(s.back())) s.remove_suffix(1);
  return s;
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )  (§12.4.2) → 0–1000, or -1.
int parseQvalue(std::string_view v) {
  if (v.empty() || (v[0] != '0' && v[0] != '1')) return -1;
  int q = (v[0] - '0') * 1000;
  if (v.size() == 1) return q;
  if (v[1] != '.' || v.size() > 5) return -1;
  int scale = 100;
  for (size_t i = 2; i < v.size(); ++i, scale /= 10) {
    if (v[i] < '0' || v[i] > '9') return -1;
    q += (v[i] - '0') * scale;
  }
  return q > 1000 ? -1 : q;
}

}  // namespace

AcceptEncoding parseAcceptEncoding(std::string_view field) {
  AcceptEncoding ae;
  while (!field.empty()) {
    size_t comma = field.find(',');
    std::string_view element = field.substr(0, comma);
    field = comma == std::string_view::npos ? std::string_view() : field.substr(comma + 1);
    size_t semi = element.find(';');
    std::string_view name = trim(element.substr(0, semi));
    if (name.empty()) continue;
    int q = 1000;
    if (semi != std::string_view::npos) {
      // weight = OWS ";" OWS "q=" qvalue; other parameters are not defined for codings.
      std::string_view param = trim(element.substr(semi + 1));
      if (param.size() < 2 || (param[0] != 'q' && param[0] != 'Q') || param[1] != '=') continue;
      q = parseQvalue(param.substr(2));
      if (q < 0) continue;
    }
    int* slot = nullptr;
    if (equalsIgnoreCase(name, "br")) slot = &ae.br;
    else if (equalsIgnoreCase(name, "gzip") || equalsIgnoreCase(name, "x-gzip")) slot = &ae.gzip;
    else if (equalsIgnoreCase(name, "identity")) slot = &ae.identity;
    else if (name == "*") slot = &ae.star;
    if (slot != nullptr && *slot < 0) *slot = q;
  }
  return ae;
}

Coding chooseCoding(const AcceptEncoding& ae, bool br_available, bool gzip_available) {
  auto weight = [&](int own) { return own >= 0 ? own : (ae.star >= 0 ? ae.star : 0); };
  // Identity named by neither itself nor "*" is acceptable, below any named coding.
  const int identity = ae.identity >= 0 ? ae.identity * 2 : (ae.star >= 0 ? ae.star * 2 : 1);
  const int br = br_available ? weight(ae.br) * 2 : 0;
  const int gzip = gzip_available ? weight(ae.gzip) * 2 : 0;
  if (br > 0 && br >= gzip && br >= identity) return Coding::kBr;
  if (gzip > 0 && gzip >= identity) return Coding::kGzip;
  return identity > 0 ? Coding::kIdentity : Coding::kNone;
}

std::string_view codingName(Coding c) {
  switch (c) {
    case Coding::kGzip: return "gzip";
    case Coding::kBr: return "br";
    default: return "";
  }
}

}  // namespace lisod
