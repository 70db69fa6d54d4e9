#include "transport.h"

#include "socket_io.h"
#include "tls_socket_bio.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace lisod {
namespace {

IoResult fromErrno(ssize_t n) {
  if (n > 0) return {IoResult::kOk, static_cast<size_t>(n)};
  if (n == 0) return {IoResult::kClosed};
  if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoResult::kWantRead};
  if (errno == EINTR) return {IoResult::kWantRead};
  if (errno == ECONNRESET || errno == EPIPE) return {IoResult::kClosed};
  return {IoResult::kError};
}

IoResult writeResult(ssize_t n) {
  if (n >= 0) return {IoResult::kOk, static_cast<size_t>(n)};
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return {IoResult::kWantWrite};
  if (errno == ECONNRESET || errno == EPIPE) return {IoResult::kClosed};
  return {IoResult::kError};
}

void setTcpCork(int fd, bool on) {
  int v = on ? 1 : 0;
  setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof v);
}

class PlainTransport final : public Transport {
 public:
  explicit PlainTransport(int fd) : fd_(fd) {}
  IoResult handshake() override { return {IoResult::kOk}; }
  IoResult read(char* buf, size_t len) override { return fromErrno(recvNoCancel(fd_, buf, len)); }
  IoResult write(const char* buf, size_t len) override {
    return writeResult(sendNoCancel(fd_, buf, len, MSG_NOSIGNAL | (more_ ? MSG_MORE : 0)));
  }
  bool hasBuffered() const override { return false; }
  bool canSendFile() const override { return true; }
  IoResult sendFile(int file_fd, off_t* offset, size_t len) override {
    return writeResult(::sendfile(fd_, file_fd, offset, len));
  }
  // MSG_MORE on the head instead of two TCP_CORK setsockopt calls per response: the head
  // waits for the file's first pages, and sendfile pushes the last partial segment itself
  // when it completes the length it was given.
  void setCork(bool on) override { more_ = on; }
  bool shortCountMeansWouldBlock() const override { return true; }
  void shutdown() override {}
  bool isTls() const override { return false; }

 private:
  int fd_;
  bool more_ = false;
};

class TlsTransport final : public Transport {
 public:
  TlsTransport(int fd, SSL* ssl) : ssl_(ssl), fd_(fd) {
    BIO* rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    wbio_ = newSocketWriteBio(fd);
    if (rbio != nullptr && wbio_ != nullptr) {
      SSL_set_bio(ssl_, rbio, wbio_);
    } else {  // out of memory: OpenSSL's own socket BIO for both ways, no MSG_MORE
      BIO_free(rbio);
      BIO_free(wbio_);
      wbio_ = nullptr;
      SSL_set_fd(ssl_, fd);
    }
    SSL_set_accept_state(ssl_);
    // Watches the socket reads OpenSSL makes, for readDrained().
    rbio = SSL_get_rbio(ssl_);
    BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
    BIO_set_callback_ex(rbio, onSocketRead);
  }
  // Over a BIO instead of a socket (fd_ = -1): the SSL owns bio; plain-mode bytes and the
  // first-byte peek go through it too, so no syscall touches the connection's bytes.
  // readDrained() stays false there (no read callback), so the caller always tries a read.
  TlsTransport(BIO* bio, SSL* ssl) : ssl_(ssl) { SSL_set_bio(ssl_, bio, bio); SSL_set_accept_state(ssl_); }
  ~TlsTransport() override { SSL_free(ssl_); }

  IoResult handshake() override {
    if (!first_byte_seen_) {
      // A TLS connection opens with a handshake record (0x16); an upper-case letter is
      // the method of a plain HTTP request sent to this port.
      char first;
      IoResult peeked = peekFirst(&first);
      if (peeked.kind != IoResult::kOk) return peeked;
      first_byte_seen_ = true;
      if (first >= 'A' && first <= 'Z') {
        plain_ = true;
        last_error_ = "plain HTTP request was sent to HTTPS port";
        return {IoResult::kError};
      }
    }
    ERR_clear_error();
    int r = SSL_do_handshake(ssl_);
    if (r != 1) return classify(r);
    // Read ahead on every connection: an HTTP/1.1 request costs one recv, not a read of the
    // record header and another of its body (RELEASE_BUFFERS still frees an empty buffer).
    SSL_set_read_ahead(ssl_, 1);
    if (negotiatedH2()) {
      // An h2 connection carries many streams and stays busy: keep its record buffers
      // (no free/malloc of ~34 KiB per read/write cycle) and read ahead (one recv for
      // many records, not a header read and a body read per record). HTTP/1.1 keeps
      // RELEASE_BUFFERS, which idle keep-alive connections need.
      SSL_clear_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);
    }
    return {IoResult::kOk};
  }
  IoResult read(char* buf, size_t len) override {
    if (plain_) return rawRead(buf, len);
    ERR_clear_error();
    size_t n = 0;
    socket_read_short_ = false;
    int r = SSL_read_ex(ssl_, buf, len, &n);
    if (r == 1) return {IoResult::kOk, n};
    return classify(r);
  }
  IoResult write(const char* buf, size_t len) override {
    if (plain_) return rawWrite(buf, len);
    ERR_clear_error();
    size_t n = 0;
    // SSL_MODE_ENABLE_PARTIAL_WRITE: one call writes one record. While the caller's bytes
    // go on past it, the record leaves with MSG_MORE; the batch's last record pushes all.
    if (wbio_ != nullptr) setSocketWriteBioMore(wbio_, len > kMaxRecordPlaintext);
    int r = SSL_write_ex(ssl_, buf, len, &n);
    if (wbio_ != nullptr) setSocketWriteBioMore(wbio_, false);  // alerts, tickets: at once
    if (r == 1) return {IoResult::kOk, n};
    return classify(r);
  }
  bool hasBuffered() const override { return SSL_has_pending(ssl_) == 1; }  // read-ahead bytes too
  // The last socket read of this SSL_read came back short (the socket was emptied) and
  // OpenSSL holds no byte, raw or decrypted: the next read would only reach EAGAIN.
  bool readDrained(size_t, size_t) const override {
    return !plain_ && socket_read_short_ && SSL_has_pending(ssl_) != 1;
  }
  bool canSendFile() const override { return false; }
  IoResult sendFile(int, off_t*, size_t) override { return {IoResult::kError}; }
  // TLS records of 16 KiB leave in full segments: on loopback one wake-up of the reader
  // per ~64 KiB instead of per record.
  void setCork(bool on) override {
    if (fd_ >= 0) setTcpCork(fd_, on);
  }
  void shutdown() override {
    if (plain_) return;
    ERR_clear_error();
    if (SSL_is_init_finished(ssl_)) SSL_shutdown(ssl_);
    ERR_clear_error();
  }
  std::string lastError() const override { return last_error_; }
  bool isTls() const override { return true; }
  bool plainHttpOnTls() const override { return plain_; }
  bool negotiatedH2() const override {
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return n == 2 && p[0] == 'h' && p[1] == '2';
  }
  const ClientIdentity* identity() override {
    if (!identity_) identity_ = std::make_unique<ClientIdentity>(readClientIdentity(ssl_));
    return identity_.get();
  }

 private:
  // The transport's own bytes, below TLS (the first-byte check and plain-HTTP mode).
  IoResult peekFirst(char* c) {
    if (fd_ >= 0) {
      ssize_t n = ::recv(fd_, c, 1, MSG_PEEK);
      return n == 1 ? IoResult{IoResult::kOk, 1} : fromErrno(n);
    }
    char* p = nullptr;  // BIO_nread0: the readable bytes in place, none consumed
    long n = BIO_nread0(SSL_get_rbio(ssl_), &p);
    if (n > 0) {
      *c = p[0];
      return {IoResult::kOk, 1};
    }
    return bioResult(SSL_get_rbio(ssl_), n, IoResult::kWantRead);
  }
  IoResult rawRead(char* buf, size_t len) {
    if (fd_ >= 0) return fromErrno(::recv(fd_, buf, len, 0));
    BIO* b = SSL_get_rbio(ssl_);
    return bioResult(b, BIO_read(b, buf, static_cast<int>(std::min<size_t>(len, INT_MAX))), IoResult::kWantRead);
  }
  IoResult rawWrite(const char* buf, size_t len) {
    if (fd_ >= 0) return writeResult(::send(fd_, buf, len, MSG_NOSIGNAL));
    BIO* b = SSL_get_wbio(ssl_);
    return bioResult(b, BIO_write(b, buf, static_cast<int>(std::min<size_t>(len, INT_MAX))), IoResult::kWantWrite);
  }
  // A BIO call's return: bytes, 0 = the peer closed, < 0 retry (want) or closed.
  static IoResult bioResult(BIO* b, long n, IoResult::Kind want) {
    if (n > 0) return {IoResult::kOk, static_cast<size_t>(n)};
    if (n < 0 && BIO_should_retry(b)) return {want};
    return {IoResult::kClosed};
  }

  // SSL_get_error(3): WANT_* can come from either direction (renegotiation-free TLS
  // 1.3 still sends tickets/key updates), so both are reported to the caller.
  IoResult classify(int r) {
    int e = SSL_get_error(ssl_, r);
    switch (e) {
      case SSL_ERROR_WANT_READ: return {IoResult::kWantRead};
      case SSL_ERROR_WANT_WRITE: return {IoResult::kWantWrite};
      case SSL_ERROR_ZERO_RETURN: return {IoResult::kClosed};
      case SSL_ERROR_SYSCALL:
        if (fd_ >= 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {IoResult::kWantRead};
        ERR_clear_error();
        return {IoResult::kClosed};  // peer vanished (EOF or reset)
      default: {
        unsigned long code = ERR_get_error();
        char buf[256];
        if (code != 0) {
          ERR_error_string_n(code, buf, sizeof buf);
          last_error_ = buf;
        } else {
          last_error_ = "TLS error " + std::to_string(e);
        }
        ERR_clear_error();
        return {IoResult::kError};
      }
    }
  }

  static long onSocketRead(BIO* b, int oper, const char*, size_t len, int, long, int ret, size_t* processed) {
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
      auto* t = reinterpret_cast<TlsTransport*>(BIO_get_callback_arg(b));
      t->socket_read_short_ = ret > 0 && processed != nullptr && *processed < len;
    }
    return ret;
  }

  static constexpr size_t kMaxRecordPlaintext = 16384;  // SSL3_RT_MAX_PLAIN_LENGTH

  SSL* ssl_;
  BIO* wbio_ = nullptr;  // owned by ssl_; null over a BIO (makeTlsTransportOnBio)
  int fd_ = -1;  // -1: over a BIO (makeTlsTransportOnBio)
  bool socket_read_short_ = false;  // see readDrained()
  std::string last_error_;
  std::unique_ptr<ClientIdentity> identity_;
  bool first_byte_seen_ = false;
  bool plain_ = false;  // the client spoke plain HTTP: see plainHttpOnTls()
};

}  // namespace

std::unique_ptr<Transport> makePlainTransport(int fd) { return std::make_unique<PlainTransport>(fd); }

std::unique_ptr<Transport> makeTlsTransport(int fd, SSL_CTX* ctx) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) {
    ERR_clear_error();
    return nullptr;
  }
  return std::make_unique<TlsTransport>(fd, ssl);
}

std::unique_ptr<Transport> makeTlsTransportOnBio(BIO* bio, SSL_CTX* ctx) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) {
    ERR_clear_error();
    BIO_free(bio);
    return nullptr;
  }
  return std::make_unique<TlsTransport>(bio, ssl);
}

}  // namespace lisod
