// libFuzzer target for the TLS path: lisod's own TlsContext (its real settings, a P-256
// certificate made at start-up) and TLS transport under a real Connection, Server and
// libuv loop. The transport runs over a memory BIO pair (makeTlsTransportOnBio): no
// syscall touches the bytes; the Connection's poll handle sits on a socket that is always
// ready, so the loop calls it each turn and the BIOs decide what happens. The fuzzer owns
// the wire between the pair and a real OpenSSL client (itself behind a second BIO pair):
// raw fuzz bytes (handshake records, plain HTTP sent to the TLS port, garbage) and the
// client's records mix freely, delivered whole or split at a fuzzer-chosen size, so
// fuzzed requests reach SSL_read after a handshake. Checks ASan/UBSan, the application
// contract (fuzz_bed.h) and that the connection closes once the client leaves.
// FUZZ_TLS_VERBOSE=1 prints per input whether the handshake completed and what came back.
//
// Input: byte 0 = flags (kFlag*), then ops; kind = op & 7, param = op >> 3 (0..31):
//   0 RAW param+1 bytes to the wire        7 RAW (param+1)*32 bytes
//   1 HANDSHAKE up to param+1 client steps (each: client step, forward, loop turn)
//   2 WRITE param+1 bytes as client application data
//   3 TICK param+1 loop turns
//   4 READ/SPLIT: param 0 client stops reading, 1 reads all; 2..31 the wire delivers at
//     most kSplit[param] bytes to the server per loop turn (31: no limit)
//   5 CLIENT param%5: 0 close_notify, 1 key update, 2 renegotiate, 3 half-close, 4 app act
//   6 TIME jump kJumpMs[param & 7] then sweep
// Built by scripts/fuzz.mjs (links the system OpenSSL 3; the addon uses Node's 3.x).
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <algorithm>
#include <cstdlib>
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

// Split sizes for op 4 (bytes per loop turn the wire delivers to the server).
constexpr size_t kSplit[32] = {0, 0, 1, 2, 3, 4, 5, 7, 8, 11, 13, 16, 21, 29, 32, 47, 64, 100, 127, 128,
                               200, 255, 256, 300, 512, 1000, 1024, 1500, 4096, 5000, 16384, SIZE_MAX};

// The wire: the server's end of its BIO pair, and a real client behind a second pair.
class Client {
 public:
  // server_bio receives the server's half of a new pair (for makeTlsTransportOnBio).
  Client(uint8_t flags, BIO** server_bio) {
    Tls& t = tls();
    const size_t buffer = flags & kFlagSmallBuffers ? 4096 : 0;  // 0: OpenSSL's 17 KiB
    FUZZ_CHECK(BIO_new_bio_pair(server_bio, buffer, &server_, buffer) == 1);
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
    BIO_free(server_);
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
  // The server reads EOF once it has taken what the wire holds.
  void halfClose() {
    pump();
    out_.clear();
    BIO_shutdown_wr(server_);
    closed_ = true;
  }
  void readOrSplit(uint8_t param) {
    if (param < 2) reading_ = param != 0;
    else split_ = kSplit[param];
  }
  void noSplit() { split_ = SIZE_MAX; }
  // For FUZZ_TLS_VERBOSE: whether a handshake completed, and response bytes decrypted.
  bool handshaken() const { return SSL_is_init_finished(ssl_); }
  size_t received() const { return received_; }

  // Moves records both ways: what the client SSL produced (and raw bytes) to the server
  // while its BIO has room (at most split_ bytes a turn); what the server wrote into the
  // client (or the bin).
  void pump() {
    char buf[16384];
    for (int n; (n = BIO_read(net_, buf, sizeof buf)) > 0;) out_.append(buf, static_cast<size_t>(n));
    size_t budget = split_;
    while (!out_.empty() && !closed_ && budget > 0) {
      const size_t room = BIO_ctrl_get_write_guarantee(server_);
      const size_t k = std::min({out_.size(), room, budget, sizeof buf});
      if (k == 0) break;
      FUZZ_CHECK(BIO_write(server_, out_.data(), static_cast<int>(k)) == static_cast<int>(k));
      out_.erase(0, k);
      if (budget != SIZE_MAX) budget -= k;
    }
    while (true) {
      const size_t pending = BIO_ctrl_pending(server_);
      if (pending == 0) break;
      if (!reading_) break;
      size_t room = BIO_ctrl_get_write_guarantee(net_);
      if (room == 0) {  // the client SSL's inbox is full: let it consume
        drainApplicationData();
        room = BIO_ctrl_get_write_guarantee(net_);
        if (room == 0) break;
      }
      const int n = BIO_read(server_, buf, static_cast<int>(std::min({room, pending, sizeof buf})));
      if (n <= 0) break;
      FUZZ_CHECK(BIO_write(net_, buf, n) == n);
    }
    drainApplicationData();
  }
  void discardAll() {
    char buf[16384];
    while (BIO_read(server_, buf, sizeof buf) > 0) {
    }
  }

 private:
  void drainApplicationData() {
    char buf[16384];
    size_t n = 0;
    while (SSL_read_ex(ssl_, buf, sizeof buf, &n) == 1) received_ += n;
    ERR_clear_error();
  }

  SSL* ssl_ = nullptr;
  BIO* net_ = nullptr;     // the client's network end
  BIO* server_ = nullptr;  // the wire's end of the server's pair
  std::string out_;        // bytes on the wire towards the server
  size_t split_ = SIZE_MAX;
  size_t received_ = 0;
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

  // The Connection polls fds[0], kept always readable (a byte waits in it, unread) and
  // writable; its transport moves bytes only through the BIO pair.
  int fds[2];
  socketPair(fds);
  FUZZ_CHECK(::write(fds[1], "!", 1) == 1);
  BIO* server_bio = nullptr;
  Client client(flags, &server_bio);
  std::unique_ptr<Transport> transport = makeTlsTransportOnBio(server_bio, tls().server->get());
  FUZZ_CHECK(transport != nullptr);
  PeerInfo info{"192.0.2.1", "198.51.100.2", 40000, 8443};
  Connection* c = server->adopt(fds[0], std::move(transport), info, false);
  FUZZ_CHECK(c != nullptr);
  {
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
        case 4: client.readOrSplit(param); break;
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
      client.readOrSplit(1);
      client.noSplit();
      client.pump();
      client.discardAll();
    });
    static const bool verbose = std::getenv("FUZZ_TLS_VERBOSE") != nullptr;
    if (verbose) {
      std::fprintf(stderr, "fuzz tls: handshake %s, %zu application requests, %zu response bytes decrypted\n",
                   client.handshaken() ? "done" : "not done", b.app.requests(), client.received());
    }
  }
  ::close(fds[1]);
  ERR_clear_error();
  return 0;
}
