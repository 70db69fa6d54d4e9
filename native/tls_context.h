// Owns an SSL_CTX configured for lisod: TLS 1.2 minimum, modern ciphers with
// ECDHE, server preference, session resumption, ALPN http/1.1.
#pragma once
#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace lisod {

struct TlsOptions {
  std::string key_file;   // PEM private key (RSA or EC)
  std::string cert_file;  // PEM chain: leaf first, then intermediates
  bool resumption = true; // session tickets + server session cache
  // Client certificates (see tls_client_verify.cc). kOff: none requested.
  enum class ClientAuth { kOff, kOptional, kRequire };
  ClientAuth client_auth = ClientAuth::kOff;
  std::string client_ca;  // PEM bundle of trust anchors (+ intermediates); required unless kOff
  std::string crl;        // PEM file with one or more CRLs; "" = no revocation check
  int verify_depth = 4;   // most intermediate CAs between a client certificate and its root
};

class TlsContext {
 public:
  // Loads and checks key and certificate. On failure returns nullptr and sets *error
  // to one line naming the file and what to do.
  static std::unique_ptr<TlsContext> create(const TlsOptions& options, std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

}  // namespace lisod
