#include "tls_client_verify.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <time.h>

#include <memory>

#include "tls_identity.h"

namespace lisod {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};

std::string reason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  const char* r = code != 0 ? ERR_reason_error_string(code) : nullptr;
  return r != nullptr ? r : "unknown error";
}

// Calls fn for every CRL of a PEM file. Returns the count, or -1 (with *error).
template <typename Fn>
int forEachCrl(const std::string& path, std::string* error, Fn fn) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) {
    ERR_clear_error();
    *error = "tls_crl file '" + path + "' cannot be read: " + strerror(errno);
    return -1;
  }
  int count = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr)) {
    bool ok = fn(crl);
    X509_CRL_free(crl);
    if (!ok) {
      *error = "tls_crl file '" + path + "': " + reason();
      return -1;
    }
    ++count;
  }
  // The loop ends with "no start line" at end of file; anything else is a broken PEM.
  unsigned long last = ERR_peek_last_error();
  ERR_clear_error();
  if (count == 0 || (last != 0 && ERR_GET_REASON(last) != PEM_R_NO_START_LINE)) {
    *error = "tls_crl file '" + path + "' holds no usable PEM CRL (X509 CRL); make one with `lisod pki crl DIR`";
    return -1;
  }
  return count;
}

}  // namespace

bool configureClientVerify(SSL_CTX* ctx, const TlsOptions& o, std::string* error) {
  if (o.client_auth == TlsOptions::ClientAuth::kOff) return true;
  ERR_clear_error();
  FILE* f = fopen(o.client_ca.c_str(), "r");
  if (f == nullptr) {
    *error = "tls_client_ca file '" + o.client_ca + "' cannot be read: " + strerror(errno);
    return false;
  }
  fclose(f);
  if (SSL_CTX_load_verify_locations(ctx, o.client_ca.c_str(), nullptr) != 1) {
    *error = "tls_client_ca file '" + o.client_ca + "' holds no usable PEM certificate (" + reason() + ")";
    return false;
  }
  // The names of the CAs go into CertificateRequest so browsers offer a matching certificate.
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca.c_str());
  if (names == nullptr) {
    *error = "tls_client_ca file '" + o.client_ca + "' holds no usable PEM certificate (" + reason() + ")";
    return false;
  }
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership

  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  unsigned long flags = 0;  // never X509_V_FLAG_PARTIAL_CHAIN: the root must be a trust anchor
  if (!o.crl.empty()) {
    if (forEachCrl(o.crl, error, [store](X509_CRL* crl) { return X509_STORE_add_crl(store, crl) == 1; }) < 0) return false;
    // Every level of the chain needs a valid CRL from its issuer (else "unable to get CRL").
    flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
  }
  X509_VERIFY_PARAM* param = SSL_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_flags(param, flags);
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_trust(param, X509_TRUST_SSL_CLIENT);
  SSL_CTX_set_verify_depth(ctx, o.verify_depth);
  int mode = SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE;
  if (o.client_auth == TlsOptions::ClientAuth::kRequire) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  // No callback: OpenSSL's default refuses the handshake when a presented chain fails.
  SSL_CTX_set_verify(ctx, mode, nullptr);
  ERR_clear_error();
  return true;
}

bool readCrlInfo(const std::string& path, std::vector<CrlInfo>* out, std::string* error) {
  ERR_clear_error();
  int n = forEachCrl(path, error, [out](X509_CRL* crl) {
    CrlInfo info;
    info.issuer = formatDn(X509_CRL_get_issuer(crl));
    struct tm tm {};
    if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl); next != nullptr && ASN1_TIME_to_tm(next, &tm) == 1) {
      info.next_update = static_cast<int64_t>(timegm(&tm));
    }
    out->push_back(std::move(info));
    return true;
  });
  ERR_clear_error();
  return n >= 0;
}

}  // namespace lisod
