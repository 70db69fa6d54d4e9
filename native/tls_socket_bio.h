// The write side of a TLS connection's socket as an OpenSSL BIO that can say MSG_MORE.
//
// OpenSSL's socket BIO writes each TLS record with its own write(2); with TCP_NODELAY
// every record then leaves as its own segment (loopback: one 16 KiB skb, one delivery,
// one wake-up of the reader per record). This BIO sends a record with MSG_MORE while
// its owner says more bytes follow at once, so a batch of records leaves in full-size
// segments and the last record of the batch pushes them (as TCP_CORK would, without two
// setsockopt calls per batch). Reads stay on OpenSSL's own socket BIO.
#pragma once

#include <openssl/bio.h>

namespace lisod {

// A new write BIO on fd (not closed by the BIO). nullptr when OpenSSL cannot make one.
BIO* newSocketWriteBio(int fd);

// Whether the next records written through bio are followed at once by more (MSG_MORE).
void setSocketWriteBioMore(BIO* bio, bool more);

}  // namespace lisod
