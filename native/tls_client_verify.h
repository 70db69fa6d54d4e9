// Client-certificate verification for a server SSL_CTX: trust anchors, CA names sent to
// clients, CRLs for every level of the chain, depth and purpose (sslclient).
#pragma once
#include <string>

#include "tls_context.h"

namespace lisod {

// Contract: ctx is a fresh server context. With options.client_auth == kOff does nothing.
// On failure returns false and sets *error to one line naming the file.
bool configureClientVerify(SSL_CTX* ctx, const TlsOptions& options, std::string* error);

}  // namespace lisod
