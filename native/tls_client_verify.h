// Client-certificate verification for a server SSL_CTX: trust anchors, CA names sent to
// clients, CRLs for every level of the chain, depth and purpose (sslclient).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "tls_context.h"

namespace lisod {

// Contract: ctx is a fresh server context. With options.client_auth == kOff does nothing.
// On failure returns false and sets *error to one line naming the file.
bool configureClientVerify(SSL_CTX* ctx, const TlsOptions& options, std::string* error);

struct CrlInfo {
  std::string issuer;       // RFC 4514
  int64_t next_update = -1;  // unix seconds; -1 when the CRL has none
};

// Every CRL of a PEM file, as configureClientVerify loads them (for lisod -t's expiry check).
// False with *error naming the file when it is unreadable, broken, or holds no CRL.
bool readCrlInfo(const std::string& path, std::vector<CrlInfo>* out, std::string* error);

}  // namespace lisod
