// libFuzzer target for the connection state machine (native/connection*.cc) as the
// network drives it: a real Connection on a real Server and libuv loop, over a fake
// Transport whose every read returns exactly the chunk the input chose, whose peer
// accepts only as many response bytes as the input allows (0: it stopped reading), and
// with the /cgi/ application played by FakeApp (fuzz_bed.h). Static files come from a
// temp docroot. Besides ASan/UBSan it checks the Transport contract (no write after
// shutdown, a blocked write is retried with the same bytes, sendFile only when offered),
// the application contract, and that every connection closes once its peer leaves.
//
// Input: byte 0 = flags (see kFlag*), then ops; each op byte is kind = op & 7 and
// param = op >> 3 (0..31):
//   0 SEND param+1 bytes     1 SEND (param+1)*32 bytes   2 TICK param+1 loop turns
//   3 WINDOW (peer accepts: 0 none, 31 all, else kWindow[param])
//   4 APP action param (FakeApp::act)   5 TIME jump kJumpMs[param & 7] then sweep
//   6 END: param&3 = 0 EOF, 1 reset, 2 hang-up (EOF + socket shut), 3 graceful stop
//   7 HANDSHAKE/WRITE quirks: the next write answers kWantRead (param & 1)
// Built by scripts/fuzz.mjs.
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <deque>

#include "fuzz_bed.h"

using namespace lisod;
using namespace lisod::fuzz;

namespace {

constexpr uint8_t kFlagSmall = 1, kFlagReject = 2, kFlagSendFile = 4, kFlagTls = 8,
                  kFlagHandshake = 16, kFlagAnswerAtEnd = 32, kFlagAnswerAtRequest = 64,
                  kFlagAccessLog = 128;
constexpr size_t kUnlimited = SIZE_MAX;

// What the peer does, kept outside the transport (the Connection owns and frees that).
struct Peer {
  std::deque<std::string> chunks;  // each arrives as one read()
  bool eof = false, reset = false;
  size_t window = kUnlimited;  // response bytes the peer takes before it stops reading
  int handshake_steps = 0;
  bool want_read_once = false;
  bool shut = false;          // Transport::shutdown() was called
  std::string blocked;        // the bytes of a write answered kWantWrite/kWantRead
  size_t received = 0;
};

class FakeTransport final : public Transport {
 public:
  FakeTransport(Peer* peer, bool send_file, bool tls) : peer_(peer), send_file_(send_file), tls_(tls) {}

  IoResult handshake() override {
    if (peer_->handshake_steps > 0) {
      --peer_->handshake_steps;
      return {peer_->handshake_steps % 2 ? IoResult::kWantRead : IoResult::kWantWrite};
    }
    if (peer_->reset) return {IoResult::kError};
    // As the TLS transport: a first byte that is an upper-case letter is plain HTTP on
    // the TLS port; handshake fails, then bytes move in clear for the 400.
    if (tls_ && !peer_->chunks.empty() && peer_->chunks.front()[0] >= 'A' && peer_->chunks.front()[0] <= 'Z') {
      plain_ = true;
      return {IoResult::kError};
    }
    return {IoResult::kOk};
  }
  IoResult read(char* buf, size_t len) override {
    FUZZ_CHECK(len > 0);
    if (!peer_->chunks.empty()) {
      std::string& front = peer_->chunks.front();
      size_t n = std::min(len, front.size());
      std::memcpy(buf, front.data(), n);
      front.erase(0, n);
      if (front.empty()) peer_->chunks.pop_front();
      return {IoResult::kOk, n};
    }
    if (peer_->reset) return {IoResult::kError};
    if (peer_->eof) return {IoResult::kClosed};
    return {IoResult::kWantRead};
  }
  IoResult write(const char* buf, size_t len) override {
    FUZZ_CHECK(!peer_->shut && len > 0);
    // After kWant*, the caller retries with the same bytes (SSL_write's rule).
    if (!peer_->blocked.empty()) {
      const size_t k = std::min(peer_->blocked.size(), len);
      FUZZ_CHECK(len >= peer_->blocked.size() && std::memcmp(buf, peer_->blocked.data(), k) == 0);
      peer_->blocked.clear();
    }
    if (peer_->reset) return {IoResult::kError};
    if (peer_->want_read_once || peer_->window == 0) {
      IoResult::Kind kind = peer_->want_read_once ? IoResult::kWantRead : IoResult::kWantWrite;
      peer_->want_read_once = false;
      if (tls_) peer_->blocked.assign(buf, std::min<size_t>(len, 64));
      return {kind};
    }
    return accept(len);
  }
  bool hasBuffered() const override { return false; }
  bool canSendFile() const override { return send_file_; }
  IoResult sendFile(int file_fd, off_t* offset, size_t len) override {
    FUZZ_CHECK(send_file_ && !peer_->shut && len > 0 && *offset >= 0);
    if (peer_->reset) return {IoResult::kError};
    if (peer_->window == 0) return {IoResult::kWantWrite};
    char buf[4096];
    size_t want = std::min({len, sizeof buf, peer_->window});
    ssize_t n = ::pread(file_fd, buf, want, *offset);
    if (n < 0) return {IoResult::kError};
    *offset += n;
    return accept(static_cast<size_t>(n));
  }
  void setCork(bool) override {}
  void shutdown() override { peer_->shut = true; }
  std::string lastError() const override { return "fake transport error"; }
  bool isTls() const override { return tls_; }
  bool plainHttpOnTls() const override { return plain_; }

 private:
  IoResult accept(size_t len) {
    size_t n = std::min(len, peer_->window);
    if (peer_->window != kUnlimited) peer_->window -= n;
    peer_->received += n;
    return {IoResult::kOk, n};
  }

  Peer* peer_;
  bool send_file_, tls_;
  bool plain_ = false;
};

size_t windowFor(uint8_t param) {
  if (param == 0) return 0;
  if (param == 31) return kUnlimited;
  return (size_t{1} << (param / 2)) * (param % 2 ? 3 : 1);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  bed();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Bed& b = bed();
  Script s(data, size);
  const uint8_t flags = s.next();
  Server* server = startInput(flags & kFlagSmall, flags & kFlagAccessLog,
                              {(flags & kFlagAnswerAtEnd) != 0, (flags & kFlagAnswerAtRequest) != 0});

  Peer peer;
  peer.handshake_steps = flags & kFlagHandshake ? 3 : 0;
  int fds[2];
  socketPair(fds);
  // The Connection's fd is always readable and writable (a byte waits in it, unread):
  // the loop calls it whenever it asks, and the fake transport decides what happens.
  FUZZ_CHECK(::write(fds[1], "!", 1) == 1);
  PeerInfo info{"192.0.2.1", "198.51.100.2", 40000, 8080};
  Connection* c = server->adopt(fds[0], std::make_unique<FakeTransport>(&peer, flags & kFlagSendFile, flags & kFlagTls),
                                info, (flags & kFlagReject) != 0);
  FUZZ_CHECK(c != nullptr);
  auto alive = [&] { return server->connectionCount() > 0; };

  while (!s.done() && alive()) {
    const uint8_t op = s.next();
    const uint8_t param = op >> 3;
    switch (op & 7) {
      case 0:
      case 1: {
        std::string_view chunk = s.take((op & 7) == 0 ? param + 1u : (param + 1u) * 32);
        if (!chunk.empty()) peer.chunks.emplace_back(chunk);
        break;
      }
      case 2: tick(param + 1); break;
      case 3: peer.window = windowFor(param); break;
      case 4: b.app.act(param, s); break;
      case 5: c->sweep(server->nowMs() + kJumpMs[param & 7]); break;
      case 6:
        switch (param & 3) {
          case 0: peer.eof = true; break;
          case 1: peer.reset = true; break;
          case 2:
            peer.eof = true;
            ::shutdown(fds[1], SHUT_WR);
            break;
          case 3: c->stopWhenIdle(); break;
        }
        break;
      case 7: peer.want_read_once = param & 1; break;
    }
    tick();
  }

  peer.window = kUnlimited;
  peer.eof = true;
  ::shutdown(fds[1], SHUT_WR);
  finishConnection(server, [] {});
  ::close(fds[1]);
  return 0;
}
