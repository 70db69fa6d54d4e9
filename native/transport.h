// One byte-stream interface over a connected socket, chosen once at accept:
// PlainTransport (read/write/sendfile) or TlsTransport (SSL_accept/SSL_read/SSL_write,
// non-blocking). Nothing outside transport.cc knows which one a connection has.
#pragma once
#include <sys/types.h>
#include <cstddef>
#include <memory>
#include <string>

#include "tls_identity.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct bio_st BIO;

namespace lisod {

struct IoResult {
  enum Kind { kOk, kWantRead, kWantWrite, kClosed, kError };
  Kind kind;
  size_t n = 0;  // bytes moved when kind == kOk
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Completes the protocol handshake. Plain: always kOk.
  virtual IoResult handshake() = 0;
  virtual IoResult read(char* buf, size_t len) = 0;
  // Partial writes are kOk with n < len. After kWantRead/kWantWrite the caller must
  // retry with the same bytes (they may have moved in memory).
  virtual IoResult write(const char* buf, size_t len) = 0;
  // Bytes already received and decrypted but not yet returned by read(): poll() will
  // not announce them, so the caller must read again while this is true.
  virtual bool hasBuffered() const = 0;
  // True when file bytes can go straight from the page cache to the socket
  // (sendFile); otherwise the caller reads the file into a bounded buffer and write()s.
  virtual bool canSendFile() const = 0;
  virtual IoResult sendFile(int file_fd, off_t* offset, size_t len) = 0;
  // Holds back partial segments while a response head and its file body are queued
  // (TCP_CORK, nginx's tcp_nopush): the head rides in the first full segment, and TLS
  // records leave in full segments rather than one send each.
  virtual void setCork(bool on) = 0;
  // True when a read() or write()/sendFile() that moved fewer bytes than asked proves the
  // socket is now empty (read) or full (write), so the caller can wait for poll instead
  // of spending a syscall on the EAGAIN (plain sockets; not TLS, whose record layer reads
  // and writes in pieces of its own).
  virtual bool shortCountMeansWouldBlock() const { return false; }
  // After a read() that returned `got` of `asked` bytes: true when the socket is known to
  // be empty now, so the next read() would only say kWantRead.
  virtual bool readDrained(size_t asked, size_t got) const {
    return got < asked && shortCountMeansWouldBlock();
  }
  // Best-effort protocol-level close (TLS close_notify); never blocks. The caller
  // shuts down the socket itself.
  virtual void shutdown() = 0;
  // A short description of the last error for the error log ("" if none).
  virtual std::string lastError() const { return {}; }
  virtual bool isTls() const = 0;
  // TLS facts (client certificate, protocol, cipher), computed on first call after the
  // handshake and kept for the connection; nullptr for plain connections.
  virtual const ClientIdentity* identity() { return nullptr; }
  // TLS only: handshake() returned kError because the client's first bytes were plain
  // HTTP, not a TLS record. From then on read/write/shutdown move plain bytes, so the
  // caller can answer 400 in clear text (as nginx does) before closing.
  virtual bool plainHttpOnTls() const { return false; }
  // TLS only, after the handshake: ALPN chose "h2" (RFC 9113 §3.2).
  virtual bool negotiatedH2() const { return false; }
};

std::unique_ptr<Transport> makePlainTransport(int fd);
// Returns nullptr when SSL_new fails (out of memory).
std::unique_ptr<Transport> makeTlsTransport(int fd, SSL_CTX* ctx);
// The same TLS transport over a BIO (it takes one reference to bio) instead of the
// connection's socket: the bytes never meet a syscall, setCork does nothing. Used by the
// tls fuzz target over a memory BIO pair; the Connection still polls its own fd.
std::unique_ptr<Transport> makeTlsTransportOnBio(BIO* bio, SSL_CTX* ctx);

}  // namespace lisod
