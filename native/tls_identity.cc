#include "tls_identity.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>

namespace lisod {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

std::string drain(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}


std::string entryText(const X509_NAME_ENTRY* e) {
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
  if (n < 0) return {};
  std::string s(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return s;
}

std::string formatTime(const ASN1_TIME* t) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || t == nullptr) return {};
  ASN1_TIME_print(bio.get(), t);
  return drain(bio.get());
}

std::string serialHex(const X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  if (bn == nullptr) return {};
  char* hex = BN_bn2hex(bn);
  std::string s = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  BN_free(bn);
  return s;
}

std::string pem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  PEM_write_bio_X509(bio.get(), cert);
  return drain(bio.get());
}

}  // namespace

// RFC 2253/4514 order and escaping (most specific first), UTF-8 kept as is rather than
// \XX-escaped (mod_ssl prints the same form with LegacyDNStringFormat off).
std::string formatDn(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || name == nullptr) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return drain(bio.get());
}

ClientIdentity readClientIdentity(SSL* ssl) {
  ERR_clear_error();
  ClientIdentity id;
  id.protocol = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) id.cipher = SSL_CIPHER_get_name(c);
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) {
    id.verify_text = "NONE";
    ERR_clear_error();
    return id;
  }
  long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) {
    id.verify = ClientIdentity::Verify::kSuccess;
    id.verify_text = "SUCCESS";
  } else {
    id.verify = ClientIdentity::Verify::kFailed;
    id.verify_text = std::string("FAILED:") + X509_verify_cert_error_string(result);
  }
  const X509_NAME* subject = X509_get_subject_name(cert);
  id.subject_dn = formatDn(subject);
  id.issuer_dn = formatDn(X509_get_issuer_name(cert));
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    const X509_NAME_ENTRY* e = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
    const char* sn = nid != NID_undef ? OBJ_nid2sn(nid) : nullptr;
    std::string value = entryText(e);
    if (nid == NID_commonName) id.subject_cn = value;
    if (sn != nullptr) id.subject_attrs.emplace_back(sn, std::move(value));
  }
  id.serial_hex = serialHex(cert);
  id.not_before = formatTime(X509_get0_notBefore(cert));
  id.not_after = formatTime(X509_get0_notAfter(cert));
  id.cert_pem = pem(cert);
  ERR_clear_error();
  return id;
}

}  // namespace lisod
