#include "tls_context.h"

#include <errno.h>
#include <string.h>
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_client_verify.h"

namespace lisod {
namespace {

// TLS 1.2 suites: ECDHE only (forward secrecy), AEAD only. TLS 1.3 uses OpenSSL's
// default suites (all AEAD).
constexpr const char* kCipherList =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
// TLS 1.3 in the same order as the 1.2 list (Mozilla "intermediate"): AES-128-GCM first.
// OpenSSL's default puts AES-256-GCM first, which with server preference cost every TLS 1.3
// client 14 AES rounds per block instead of 10 (h2load -c10 -m10 of 100 KiB files: the
// cipher was 23% of lisod's CPU; nginx and lighttpd negotiated AES-128 with the same client).
constexpr const char* kCipherSuites13 = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";
constexpr unsigned char kSessionContext[] = "lisod";

std::string opensslReason() {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : "unknown error";
}

// Reports unreadable files with errno text before OpenSSL turns them into codes.
bool checkReadable(const std::string& path, const char* what, std::string* error) {
  FILE* f = fopen(path.c_str(), "r");
  if (f == nullptr) {
    *error = std::string(what) + " file '" + path + "' cannot be read: " + strerror(errno);
    return false;
  }
  fclose(f);
  return true;
}

// ALPN (RFC 7301): "h2" first when arg is non-null (http2 on), then HTTP/1.1; a client
// offering neither gets no ALPN and speaks HTTP/1.1.
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
               unsigned int inlen, void* arg) {
  static const unsigned char kH2Http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  const unsigned char* ours = arg != nullptr ? kH2Http11 : kH2Http11 + 3;
  unsigned int ours_len = arg != nullptr ? sizeof kH2Http11 : sizeof kH2Http11 - 3;
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, ours, ours_len, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::unique_ptr<TlsContext> TlsContext::create(const TlsOptions& options, std::string* error) {
  if (!checkReadable(options.cert_file, "certificate", error)) return nullptr;
  if (!checkReadable(options.key_file, "private key", error)) return nullptr;
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    *error = "cannot create TLS context: " + opensslReason();
    return nullptr;
  }
  std::unique_ptr<TlsContext> owner(new TlsContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION |
                               SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_set_cipher_list(ctx, kCipherList) != 1 || SSL_CTX_set_ciphersuites(ctx, kCipherSuites13) != 1 ||
      SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    *error = "cannot configure TLS ciphers: " + opensslReason();
    return nullptr;
  }
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  if (options.resumption) {
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  } else {
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  SSL_CTX_set_alpn_select_cb(ctx, selectAlpn, options.http2 ? ctx : nullptr);  // arg: a non-null flag

  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1) {
    *error = "certificate file '" + options.cert_file + "' holds no usable PEM certificate (" +
             opensslReason() + "); give a PEM chain, leaf first";
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string reason = opensslReason();
    if (reason.find("mismatch") != std::string::npos) {
      *error = "private key file '" + options.key_file + "' does not match certificate '" +
               options.cert_file + "'";
    } else {
      *error = "private key file '" + options.key_file + "' holds no usable unencrypted PEM key (" +
               reason + ")";
    }
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    *error = "private key file '" + options.key_file + "' does not match certificate '" +
             options.cert_file + "'";
    return nullptr;
  }
  if (!configureClientVerify(ctx, options, error)) return nullptr;
  ERR_clear_error();
  return owner;
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

}  // namespace lisod
