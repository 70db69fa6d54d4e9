// The TLS facts about a connection that applications, access rules and the access log
// read: the verified client certificate (subject, issuer, serial, validity, PEM), the
// verify result, protocol and cipher. Read from the session (so a resumed session keeps
// them), computed once per connection by the TLS transport.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

typedef struct ssl_st SSL;
typedef struct X509_name_st X509_NAME;

namespace lisod {

struct ClientIdentity {
  enum class Verify { kNone, kSuccess, kFailed };
  Verify verify = Verify::kNone;
  std::string verify_text;  // SSL_CLIENT_VERIFY: "NONE", "SUCCESS", "FAILED:<reason>"
  // Set when a client certificate was presented (verified or not):
  std::string subject_dn;   // RFC 4514 ("CN=alice,O=Ops"), UTF-8
  std::string subject_cn;   // last CN of the subject, UTF-8 ("" when none)
  std::string issuer_dn;
  std::string serial_hex;   // upper-case hex, no separators
  std::string not_before, not_after;  // "Nov 29 08:49:41 2026 GMT" (mod_ssl's form)
  std::string cert_pem;     // the leaf only
  std::vector<std::pair<std::string, std::string>> subject_attrs;  // short name → value, in order
  std::string protocol;     // "TLSv1.3"
  std::string cipher;       // OpenSSL name, "TLS_AES_128_GCM_SHA256"

  bool verified() const { return verify == Verify::kSuccess; }
  // REMOTE_USER / access-log user: the CN when verified, else "".
  std::string_view user() const { return verified() ? std::string_view(subject_cn) : std::string_view(); }
};

// A distinguished name in RFC 4514 form, "CN=alice,O=Ops" (UTF-8 unescaped).
std::string formatDn(const X509_NAME* name);

// Contract: ssl has completed its handshake. Clears the OpenSSL error queue.
ClientIdentity readClientIdentity(SSL* ssl);

}  // namespace lisod
