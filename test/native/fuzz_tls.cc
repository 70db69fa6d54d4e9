// libFuzzer target for the TLS path: lisod's own TlsContext (its real settings, a P-256
// certificate made at start-up) and TLS transport under a real Connection, Server and
// libuv loop, fed client bytes over a socketpair. The client side is either raw fuzz
// bytes (handshake records, plain HTTP sent to the TLS port, garbage) or a real OpenSSL
// client over a memory BIO pair whose records the fuzzer forwards, so fuzzed requests
// reach SSL_read after a handshake; the two mix freely (raw bytes after the handshake
// corrupt the record stream). Checks ASan/UBSan, the application contract (fuzz_bed.h)
// and that the connection closes once the client leaves.
//
// Input: byte 0 = flags (kFlag*), then ops; kind = op & 7, param = op >> 3 (0..31):
//   0 RAW param+1 bytes to the socket      7 RAW (param+1)*32 bytes
//   1 HANDSHAKE up to param+1 client steps (each: client step, forward, loop turn)
//   2 WRITE param+1 bytes as client application data
//   3 TICK param+1 loop turns               4 READ: param 0 stop reading, else read all
//   5 CLIENT param%5: 0 close_notify, 1 key update, 2 renegotiate, 3 half-close, 4 app act
//   6 TIME jump kJumpMs[param & 7] then sweep
// Built by scripts/fuzz.mjs (links the system OpenSSL 3; the addon uses Node's 3.x).
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>

#include "../../native/tls_context.h"
#include "../../native/transport.h"
#include "fuzz_bed.h"

using namespace lisod;
using namespace lisod::fuzz;

namespace {

constexpr uint8_t kFlagTls12 = 1, kFlagAlpnH2 = 2, kFlagNoSni = 4, kFlagResume = 8, kFlagSmallBuffers = 16,
                  kFlagSmall = 32, kFlagAnswerAtEnd = 64;

struct Tls {
  std::unique_ptr<TlsContext> server;
  SSL_CTX* client = nullptr;
  SSL_SESSION* session = nullptr;  // the last one a handshake gave, for resumption
};

// A self-signed P-256 certificate for "localhost", written as PEM beside the docroot.
void makeCertificate(const std::string& key_file, const std::string& cert_file) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* x = X509_new();
  FUZZ_CHECK(key != nullptr && x != nullptr);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509_set_pubkey(x, key);
  FUZZ_CHECK(X509_sign(x, key, EVP_sha256()) > 0);
  FILE* f = std::fopen(key_file.c_str(), "w");
  FUZZ_CHECK(f != nullptr && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1);
  std::fclose(f);
  f = std::fopen(cert_file.c_str(), "w");
  FUZZ_CHECK(f != nullptr && PEM_write_X509(f, x) == 1);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

Tls& tls() {
  static Tls* t = [] {
    auto* t = new Tls;
    Bed& b = bed();
    TlsOptions o;
    o.key_file = b.dir + "/key.pem";
    o.cert_file = b.dir + "/cert.pem";
    makeCertificate(o.key_file, o.cert_file);
    std::string error;
    t->server = TlsContext::create(o, &error);
    if (!t->server) {
      std::fprintf(stderr, "fuzz tls: %s\n", error.c_str());
      std::abort();
    }
    t->client = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(t->client, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_session_cache_mode(t->client, SSL_SESS_CACHE_CLIENT);
    return t;
  }();
  return *t;
}

// The fuzzer's end of the socketpair, with a real client behind a memory BIO pair.
class Client {
 public:
  Client(int fd, uint8_t flags) : fd_(fd) {
    Tls& t = tls();
    ssl_ = SSL_new(t.client);
    BIO* internal = nullptr;
    FUZZ_CHECK(BIO_new_bio_pair(&internal, 0, &net_, 0) == 1);
    SSL_set_bio(ssl_, internal, internal);
    SSL_set_connect_state(ssl_);
    if (flags & kFlagTls12) SSL_set_max_proto_version(ssl_, TLS1_2_VERSION);
    static const unsigned char kH2[] = {2, 'h', '2'};
    static const unsigned char kBoth[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    if (flags & kFlagAlpnH2) SSL_set_alpn_protos(ssl_, kH2, sizeof kH2);
    else SSL_set_alpn_protos(ssl_, kBoth, sizeof kBoth);
    if (!(flags & kFlagNoSni)) SSL_set_tlsext_host_name(ssl_, "localhost");
    if ((flags & kFlagResume) && t.session) SSL_set_session(ssl_, t.session);
  }
  ~Client() {
    if (SSL_is_init_finished(ssl_) && SSL_session_reused(ssl_) == 0) {
      Tls& t = tls();
      if (SSL_SESSION* s = SSL_get1_session(ssl_)) {
        if (t.session) SSL_SESSION_free(t.session);
        t.session = s;
      }
    }
    SSL_free(ssl_);
    BIO_free(net_);
    ERR_clear_error();
  }

  void raw(std::string_view bytes) { out_.append(bytes); }
  void handshakeStep() {
    if (!SSL_is_init_finished(ssl_)) SSL_do_handshake(ssl_);
    ERR_clear_error();
  }
  void write(std::string_view bytes) {
    size_t n = 0;
    if (!bytes.empty()) SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n);
    ERR_clear_error();
  }
  void closeNotify() { SSL_shutdown(ssl_), ERR_clear_error(); }
  void keyUpdate() {
    if (SSL_version(ssl_) == TLS1_3_VERSION && SSL_is_init_finished(ssl_)) SSL_key_update(ssl_, SSL_KEY_UPDATE_REQUESTED);
    SSL_do_handshake(ssl_);
    ERR_clear_error();
  }
  void renegotiate() {
    if (SSL_version(ssl_) <= TLS1_2_VERSION && SSL_is_init_finished(ssl_)) SSL_renegotiate(ssl_);
    SSL_do_handshake(ssl_);
    ERR_clear_error();
  }
  void halfClose() {
    pump();
    ::shutdown(fd_, SHUT_WR);
    closed_ = true;
  }
  void setReading(bool on) { reading_ = on; }

  // Moves records both ways: what the client SSL produced (and raw bytes) to the socket
  // while it has room; what arrived from the server into the client (or the bin).
  void pump() {
    char buf[16384];
    for (int n; (n = BIO_read(net_, buf, sizeof buf)) > 0;) out_.append(buf, static_cast<size_t>(n));
    while (!out_.empty() && !closed_) {
      ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      out_.erase(0, static_cast<size_t>(n));
    }
    if (closed_) out_.clear();
    while (reading_) {
      size_t room = BIO_ctrl_get_write_guarantee(net_);
      if (room == 0) {  // the client SSL's inbox is full: let it consume
        drainApplicationData();
        room = BIO_ctrl_get_write_guarantee(net_);
        if (room == 0) break;
      }
      ssize_t n = ::recv(fd_, buf, std::min(room, sizeof buf), 0);
      if (n <= 0) break;
      BIO_write(net_, buf, static_cast<int>(n));
    }
    drainApplicationData();
  }
  void discardAll() {
    char buf[16384];
    while (::recv(fd_, buf, sizeof buf, 0) > 0) {
    }
  }

 private:
  void drainApplicationData() {
    char buf[16384];
    size_t n = 0;
    while (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) {
    }
    ERR_clear_error();
  }

  int fd_;
  SSL* ssl_ = nullptr;
  BIO* net_ = nullptr;
  std::string out_;
  bool reading_ = true, closed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tls();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bed& b = bed();
  Script s(data, size);
  const uint8_t flags = s.next();
  Server* server = startInput(flags & kFlagSmall, false, {(flags & kFlagAnswerAtEnd) != 0, false});

  int fds[2];
  socketPair(fds, flags & kFlagSmallBuffers ? 4096 : 0);
  std::unique_ptr<Transport> transport = makeTlsTransport(fds[0], tls().server->get());
  FUZZ_CHECK(transport != nullptr);
  PeerInfo info{"192.0.2.1", "198.51.100.2", 40000, 8443};
  Connection* c = server->adopt(fds[0], std::move(transport), info, false);
  FUZZ_CHECK(c != nullptr);
  {
    Client client(fds[1], flags);
    auto alive = [&] { return server->connectionCount() > 0; };
    while (!s.done() && alive()) {
      const uint8_t op = s.next();
      const uint8_t param = op >> 3;
      switch (op & 7) {
        case 0: client.raw(s.take(param + 1u)); break;
        case 7: client.raw(s.take((param + 1u) * 32)); break;
        case 1:
          for (int i = 0; i <= param && alive(); ++i) {
            client.handshakeStep();
            client.pump();
            tick();
          }
          break;
        case 2: client.write(s.take(param + 1u)); break;
        case 3: tick(param + 1); break;
        case 4: client.setReading(param != 0); break;
        case 5:
          switch (param % 5) {
            case 0: client.closeNotify(); break;
            case 1: client.keyUpdate(); break;
            case 2: client.renegotiate(); break;
            case 3: client.halfClose(); break;
            case 4: b.app.act(s.next(), s); break;
          }
          break;
        case 6: c->sweep(server->nowMs() + kJumpMs[param & 7]); break;
      }
      client.pump();
      tick();
    }
    client.halfClose();
    finishConnection(server, [&] {
      client.setReading(true);
      client.pump();
      client.discardAll();
    });
  }
  ::close(fds[1]);
  ERR_clear_error();
  return 0;
}
