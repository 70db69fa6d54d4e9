// libFuzzer target for the HTTP/2 session: an H2Session over the fuzz bed's Server and
// docroot (static answers, access rules, the access log), fed the client connection
// preface and then arbitrary bytes in fuzzer-chosen pieces, with time jumps for the
// slow-stream and stall checks and graceful shutdowns in between. Checks ASan/UBSan,
// that every produce() ends, and that the session stays usable or finishes cleanly.
//
// Application streams (/cgi) reach the fuzz bed's FakeApp through H2App (pumpApps before
// each drain), which answers, writes, pauses, ends or aborts as the input says.
// Input: byte 0 = flags (1 small limits, 2 access log, 4 no preface, 8 the app answers at
// the request, 16 at the body's end), then ops:
//   n in 1..252: the next n bytes go to receive(), then produce() drains the output
//   0: a time jump kJumpMs[next & 7] then the sweeps     254: shutdown() (GOAWAY)
//   253: an application step (FakeApp::act(next, …))      255: drain only
// Built by scripts/fuzz.mjs against the system libnghttp2 (the addon uses Node's copy).
#include "../../native/h2_session.h"
#include "fuzz_bed.h"

using namespace lisod;
using namespace lisod::fuzz;

namespace {
constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Script s(data, size);
  uint8_t flags = s.next();
  FakeApp::Modes modes;
  modes.multiplexed = true;
  modes.answer_at_request = flags & 8;
  modes.answer_at_body_end = flags & 16;
  Server* server = startInput(flags & 1, flags & 2, modes);
  std::unique_ptr<H2Session> h2 = H2Session::create(server, "127.0.0.1", nullptr);
  FUZZ_CHECK(h2 != nullptr);
  std::string out;
  auto drain = [&] {
    h2->pumpApps();
    // Each round either appends or ends; a window of 64 KiB bounds how much can be due.
    for (int i = 0; i < 1000 && h2->produce(out, 1 << 16); ++i) out.clear();
    out.clear();
  };
  drain();
  if (!(flags & 4)) h2->receive(kPreface, sizeof kPreface - 1);
  while (!s.done() && !h2->finished()) {
    uint8_t op = s.next();
    if (op == 0) {
      uint64_t now = server->nowMs() + kJumpMs[s.next() & 7];
      h2->resetSlowStreams(now, 10000);
      (void)h2->responseStalled(now, 60000);
    } else if (op == 254) {
      h2->shutdown();
    } else if (op == 253) {
      bed().app.act(s.next(), s);
    } else if (op != 255) {
      std::string_view bytes = s.take(op);
      h2->receive(bytes.data(), bytes.size());
    }
    drain();
  }
  h2->logUnfinished();  // as Connection::die() does: every application still answering is closed
  bed().app.finish();
  h2.reset();
  return 0;
}
