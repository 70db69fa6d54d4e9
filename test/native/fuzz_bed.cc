#include "fuzz_bed.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstring>

namespace lisod::fuzz {
namespace {

void writeFile(const std::string& path, size_t size, char fill) {
  std::string bytes(size, fill);
  if (FILE* f = std::fopen(path.c_str(), "w")) {
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
}

// www/: small and large (> FileCache::kSmallFileBytes: served from the fd) files, an
// empty one, a directory with and one without index.html, a symlink out of the root, a
// fifo. Removed at exit.
void makeDocroot(Bed& b) {
  char tmpl[] = "/tmp/lisod-fuzzbed-XXXXXX";
  FUZZ_CHECK(::mkdtemp(tmpl) != nullptr);
  char real[PATH_MAX];
  FUZZ_CHECK(::realpath(tmpl, real) != nullptr);
  b.dir = real;
  const std::string www = b.dir + "/www";
  ::mkdir(www.c_str(), 0755);
  ::mkdir((www + "/d").c_str(), 0755);
  ::mkdir((www + "/e").c_str(), 0755);
  ::mkdir((b.dir + "/out").c_str(), 0755);
  writeFile(www + "/index.html", 120, 'i');
  writeFile(www + "/d/index.html", 7, 'd');
  writeFile(www + "/big.bin", FileCache::kSmallFileBytes + 9000, 'b');
  writeFile(www + "/empty.txt", 0, 'e');
  writeFile(b.dir + "/out/secret", 5, 's');
  [[maybe_unused]] int rc = ::symlink("../out/secret", (www + "/s").c_str());
  ::mkfifo((www + "/fifo").c_str(), 0644);
  char root[PATH_MAX];
  FUZZ_CHECK(::realpath(www.c_str(), root) != nullptr);
  b.root = root;
  std::atexit([] {
    std::string cmd = "rm -rf '" + bed().dir + "'";
    [[maybe_unused]] int rc = std::system(cmd.c_str());
  });
}

ServerConfig configFor(const Bed& b, bool small, bool access_log) {
  ServerConfig c;
  c.root = b.root;
  c.access_log = access_log;
  if (small) {
    c.max_line = 96;
    c.max_target = 48;
    c.max_head = 320;
    c.max_body = 300;
    c.max_connections = 1;
  }
  return c;
}

}  // namespace

Bed& bed() {
  static Bed* b = [] {
    auto* b = new Bed;
    ::signal(SIGPIPE, SIG_IGN);  // as Node does: writes to a closed peer fail with EPIPE
    FUZZ_CHECK(uv_loop_init(&b->loop) == 0);
    makeDocroot(*b);
    for (int small = 0; small < 2; ++small) {
      for (int log = 0; log < 2; ++log) {
        std::string error;
        b->servers[small][log] = Server::create(&b->loop, configFor(*b, small, log), &b->app, &error);
        if (!b->servers[small][log]) {
          std::fprintf(stderr, "fuzz bed: %s\n", error.c_str());
          std::abort();
        }
      }
    }
    return b;
  }();
  return *b;
}

Server* startInput(bool small, bool access_log, FakeApp::Modes modes) {
  Bed& b = bed();
  Server* server = b.servers[small ? 1 : 0][access_log ? 1 : 0].get();
  FUZZ_CHECK(server->connectionCount() == 0);
  b.app.reset(server, modes);
  return server;
}

void tick(int n) {
  for (int i = 0; i < n; ++i) uv_run(&bed().loop, UV_RUN_NOWAIT);
}

void socketPair(int fds[2], int sndbuf) {
  FUZZ_CHECK(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
  if (sndbuf > 0) {
    for (int i = 0; i < 2; ++i) {
      ::setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      ::setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    }
  }
}

void finishConnection(Server* server, const std::function<void()>& pump) {
  Bed& b = bed();
  b.app.endAll();
  int turns = 0;
  for (; turns < 400 && server->connectionCount() > 0; ++turns) {
    pump();
    tick();
    if (turns % 8 == 7) b.app.endAll();  // requests that arrived meanwhile
  }
  if (server->connectionCount() > 0) {
    std::fprintf(stderr, "fuzz: the connection did not close after the peer's EOF\n");
    std::abort();
  }
  tick();  // the poll handle's close callback frees the Connection
  b.app.finish();
}

// ---- FakeApp ----

void FakeApp::reset(Server* server, Modes modes) {
  server_ = server;
  modes_ = modes;
  ex_.clear();
}

FakeApp::Exchange* FakeApp::find(uint32_t id) {
  for (auto& e : ex_) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

FakeApp::Exchange* FakeApp::current() {
  for (auto it = ex_.rbegin(); it != ex_.rend(); ++it) {
    if (!it->ended && !it->closed) return &*it;
  }
  return nullptr;
}

void FakeApp::onAppRequest(const AppRequest& r) {
  FUZZ_CHECK(find(r.id) == nullptr);
  FUZZ_CHECK(server_->app(r.id) != nullptr);
  FUZZ_CHECK(!r.method.empty() && !r.target.empty() && r.headers.size() % 2 == 0);
  FUZZ_CHECK(r.version == "HTTP/1.1" || r.version == "HTTP/1.0");
  FUZZ_CHECK(r.content_length >= -1);
  FUZZ_CHECK(!r.has_body || r.content_length != 0);
  for (const Exchange& e : ex_) FUZZ_CHECK(e.ended || e.closed);  // one at a time
  Exchange e;
  e.id = r.id;
  e.has_body = r.has_body;
  e.content_length = r.content_length;
  ex_.push_back(e);
  if (modes_.answer_at_request) {
    begin(ex_.back(), 503, "", {"Content-Type", "text/plain", "Content-Length", "4"});
    if (AppSink* c = server_->app(r.id)) c->appWrite("busy", 4);
    end(ex_.back(), false);
  }
}

void FakeApp::onAppBody(uint32_t id, const char* data, size_t len, bool end_of_body) {
  Exchange* e = find(id);
  FUZZ_CHECK(e != nullptr && !e->closed && !e->body_end);
  if (!end_of_body) {
    FUZZ_CHECK(e->has_body && len > 0 && data != nullptr);
    e->body_bytes += len;
    if (e->content_length >= 0) FUZZ_CHECK(e->body_bytes <= static_cast<uint64_t>(e->content_length));
    return;
  }
  e->body_end = true;
  if (e->content_length > 0) FUZZ_CHECK(e->body_bytes == static_cast<uint64_t>(e->content_length));
  if (modes_.answer_at_body_end && !e->ended) {
    begin(*e, 200, "", {"Content-Type", "text/plain", "Content-Length", "2"});
    if (AppSink* c = server_->app(id)) c->appWrite("ok", 2);
    end(*find(id), false);
  }
}

void FakeApp::onAppClose(uint32_t id) {
  Exchange* e = find(id);
  FUZZ_CHECK(e != nullptr && !e->closed && !e->ended);
  FUZZ_CHECK(server_->app(id) == nullptr);
  e->closed = true;
}

void FakeApp::onAppDrain(uint32_t id) {
  Exchange* e = find(id);
  FUZZ_CHECK(e != nullptr && !e->closed);
}

void FakeApp::begin(Exchange& e, int status, std::string_view reason, std::vector<std::string> headers) {
  const uint32_t id = e.id;
  e.begun = true;
  if (AppSink* c = server_->app(id)) c->appBegin(status, std::string(reason), headers);
}

void FakeApp::end(Exchange& e, bool abort) {
  AppSink* c = server_->app(e.id);
  if (c == nullptr) return;  // gone: the server has sent (or is sending) the close event
  e.ended = true;
  if (abort) c->appAbort();
  else c->appEnd();
}

void FakeApp::act(uint8_t action, Script& s) {
  Exchange* e = nullptr;
  if (action >= 24 && !ex_.empty()) {
    e = &ex_[s.next() % ex_.size()];  // possibly finished: the id must be harmless
  } else {
    e = current();
  }
  if (e == nullptr) return;
  Exchange& x = *e;
  AppSink* c = server_->app(x.id);
  switch (action % 12) {
    case 0:
      begin(x, 200, "", {"Content-Type", "text/plain", "Content-Length", std::to_string(s.next())});
      break;
    case 1: begin(x, 200, "", {"Content-Type", "text/html", "Set-Cookie", "a=1"}); break;
    case 2: begin(x, action & 16 ? 304 : 204, "", {"X-A", "b"}); break;
    case 3: {
      static const int kStatus[] = {201, 302, 404, 500, 599, 299, 206, 418};
      begin(x, kStatus[s.next() % 8], "Custom Reason",
            {"Location", "http://a/b", "Content-Length", "0", "Connection", "x", "Date", "y"});
      break;
    }
    case 4:
      x.begun = true;
      if (c) c->appBeginRaw((action & 16) != 0);  // NPH framed by its own head, or close-delimited
      break;
    case 5: {
      std::string_view bytes = s.take(s.next() % 96);
      if (c) c->appWrite(bytes.data(), bytes.size());
      break;
    }
    case 6: {
      std::string big((s.next() + 1) * 1024u, 'x');
      if (c) c->appWrite(big.data(), big.size());
      break;
    }
    case 7: end(x, false); break;
    case 8: end(x, true); break;
    case 9:
      if (c) c->appPauseBody(true);
      break;
    case 10:
      if (c) c->appPauseBody(false);
      break;
    case 11:
      if (c) c->appWrite("", 0);
      break;
  }
}

void FakeApp::endAll() {
  for (size_t i = 0; i < ex_.size(); ++i) {
    Exchange& x = ex_[i];
    if (x.ended || x.closed) continue;
    AppSink* c = server_->app(x.id);
    if (c == nullptr) continue;
    c->appPauseBody(false);
    if (!x.begun) begin(ex_[i], 200, "", {"Content-Length", "0"});
    end(ex_[i], false);
  }
}

void FakeApp::finish() {
  for (const Exchange& e : ex_) {
    if (e.ended == e.closed) {
      std::fprintf(stderr, "fuzz: application request %u was %s\n", e.id,
                   e.ended ? "both ended and closed" : "neither ended nor closed");
      std::abort();
    }
    FUZZ_CHECK(server_->app(e.id) == nullptr);
  }
}

}  // namespace lisod::fuzz
