// Tests for the access-log line formatter (a table, including the Apache documentation's
// example byte for byte) and the log writer thread: whole lines of at most PIPE_BUF per
// write on a packet socket (which shows each write() as one message), ENOSPC reported
// once, reopen after a rename, and a flush that cannot complete on a pipe nobody reads.
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "../../native/access_log.h"
#include "../../native/log_writer.h"
#include "../../native/static_file.h"
#include "test_support.h"

namespace lisod::test {
namespace {

constexpr int64_t kApache = 971211336;  // 10/Oct/2000:20:55:36 UTC

std::string clf(int64_t t, int offset) {
  char buf[32];
  return std::string(buf, formatClfTime(t, offset, buf));
}

std::string line(const AccessEntry& e) {
  std::string out;
  appendAccessLine(out, e, clf(kApache, -420));
  return out;
}

AccessEntry apache() {
  return AccessEntry{"127.0.0.1", "", "GET", "/apache_pb.gif", "HTTP/1.0", "http://www.example.com/start.html",
                     "Mozilla/4.08 [en] (Win98; I ;Nav)", 200, 2326};
}

void runFormatTests(Suite& suite) {
  {
    Case c(suite, "clf time: offsets");
    c.eq(clf(kApache, -420), std::string("10/Oct/2000:13:55:36 -0700"), "-0700");
    c.eq(clf(kApache, 0), std::string("10/Oct/2000:20:55:36 +0000"), "UTC");
    c.eq(clf(kApache, 330), std::string("11/Oct/2000:02:25:36 +0530"), "+0530 next day");
    c.eq(clf(1704067205, -30), std::string("31/Dec/2023:23:30:05 -0030"), "-0030 previous year");
  }
  {
    Case c(suite, "access line: the Apache documentation example");
    c.eq(line(apache()), std::string("127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 "
                                     "\"http://www.example.com/start.html\" \"Mozilla/4.08 [en] (Win98; I ;Nav)\"\n"),
         "line");
  }
  struct Row {
    const char* name;
    AccessEntry entry;
    const char* want;  // the line without the time and the newline: [T] stands for it
  };
  const Row rows[] = {
      {"empty fields and 0 bytes are -", {"::ffff:10.1.2.3", "", "GET", "/", "HTTP/1.1", "", "", 304, 0},
       "10.1.2.3 - - [T] \"GET / HTTP/1.1\" 304 - \"-\" \"-\""},
      {"IPv6 stays", {"::1", "", "HEAD", "/", "HTTP/1.1", "", "", 200, 5}, "::1 - - [T] \"HEAD / HTTP/1.1\" 200 5 \"-\" \"-\""},
      {"not a mapped address", {"::ffff:abc", "", "GET", "/", "HTTP/1.1", "", "", 200, 1}, "::ffff:abc - - [T] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""},
      {"unparsed request", {"1.2.3.4", "", "", "", "", "", "", 400, 10}, "1.2.3.4 - - [T] \"-\" 400 10 \"-\" \"-\""},
      {"no version", {"1.2.3.4", "", "GET", "/x", "", "", "", 200, 1}, "1.2.3.4 - - [T] \"GET /x\" 200 1 \"-\" \"-\""},
      {"user", {"1.2.3.4", "alice", "GET", "/", "HTTP/1.1", "", "", 200, 1}, "1.2.3.4 - alice [T] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""},
      {"user with space and quote", {"1.2.3.4", "A \"B\"", "GET", "/", "HTTP/1.1", "", "", 200, 1},
       "1.2.3.4 - A\\x20\\\"B\\\" [T] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\""},
      {"escapes", {"1.2.3.4", "", "GET", "/x\"y\\z\r\n", "HTTP/1.0", "ref\"\n", "evil\" 200 1 \"-\" \"x", 200, 1},
       "1.2.3.4 - - [T] \"GET /x\\\"y\\\\z\\r\\n HTTP/1.0\" 200 1 \"ref\\\"\\n\" \"evil\\\" 200 1 \\\"-\\\" \\\"x\""},
      {"control bytes", {"1.2.3.4", "", "GET", "/", "HTTP/1.1", std::string_view("\t\x00\x1b\x7f", 4), "", 200, 1},
       "1.2.3.4 - - [T] \"GET / HTTP/1.1\" 200 1 \"\\t\\x00\\x1b\\x7f\" \"-\""},
      {"UTF-8 kept, other bytes escaped", {"1.2.3.4", "", "GET", "/\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80", "HTTP/1.1",
       "\xff\xc3(\xe0\x80\x80\xed\xa0\x80\xf4\x90\x80\x80", "\xc3", 200, 1},
       "1.2.3.4 - - [T] \"GET /\xc3\xbc\xe2\x82\xac\xf0\x9f\x98\x80 HTTP/1.1\" 200 1 "
       "\"\\xff\\xc3(\\xe0\\x80\\x80\\xed\\xa0\\x80\\xf4\\x90\\x80\\x80\" \"\\xc3\""},
  };
  for (const Row& r : rows) {
    Case c(suite, std::string("access line: ") + r.name);
    std::string want = r.want;
    want.replace(want.find("[T]"), 3, "[" + clf(kApache, -420) + "]");
    c.eq(line(r.entry), want + "\n", "line");
  }
  {
    // One memo through every row twice over (each field changes, then repeats, then
    // changes back): every line byte for byte as the formatter without a memo writes it.
    Case c(suite, "access line: a connection's memo writes the same bytes");
    AccessLineMemo memo;
    const std::string time = clf(kApache, -420);
    for (int round = 0; round < 2; ++round) {
      for (const Row& r : rows) {
        for (int again = 0; again < 2; ++again) {
          std::string got;
          appendAccessLine(got, r.entry, time, memo);
          c.eq(got, line(r.entry), std::string(r.name) + (again ? " (repeated)" : ""));
        }
      }
    }
    AccessEntry e = apache();
    std::string got;
    appendAccessLine(got, e, time, memo);
    e.user_agent = "other agent";  // only the tail changes
    appendAccessLine(got, e, time, memo);
    e.remote = "10.0.0.9";  // only the head changes
    appendAccessLine(got, e, time, memo);
    c.eq(got, line(apache()) + line(AccessEntry{"127.0.0.1", "", "GET", "/apache_pb.gif", "HTTP/1.0",
                                                "http://www.example.com/start.html", "other agent", 200, 2326}) +
                  line(e),
         "head and tail change apart");
    // Past the one-buffer layout (a long target), and without bytes or a version.
    for (size_t n : {size_t{900}, size_t{1000}, size_t{1100}}) {
      AccessEntry big = apache();
      const std::string target = "/" + std::string(n, 'x');
      big.target = target;
      big.bytes = 0;
      std::string got_big;
      appendAccessLine(got_big, big, time, memo);
      c.eq(got_big, line(big), "a " + std::to_string(n) + "-byte target");
    }
    AccessEntry bare = apache();
    bare.version = "";
    std::string got_bare;
    appendAccessLine(got_bare, bare, time, memo);
    c.eq(got_bare, line(bare), "no version");
  }
}

std::string readFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::string tempPath(const char* name) {
  char dir[] = "/tmp/lisod-native-log-XXXXXX";
  return std::string(mkdtemp(dir)) + "/" + name;
}

void runWriterTests(Suite& suite) {
  {
    Case c(suite, "writer: packet socket gets whole lines, at most PIPE_BUF per write");
    int sv[2];
    if (!c.check(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair")) return;
    int big = 1 << 20;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    std::string all;
    for (int i = 0; i < 400; ++i) all += std::string(static_cast<size_t>(1 + (i * 97) % 700), 'a' + i % 26) + "\n";
    all += std::string(PIPE_BUF + 500, 'L') + "\n";  // longer than PIPE_BUF: alone in one write
    all += "tail\n";
    std::string error;
    auto w = LogWriter::open("-", sv[0], LogWriterOptions{60000, 1 << 20, 4 << 20}, &error);
    w->append(all.substr(0, all.size() / 2));
    w->append(all.substr(all.size() / 2));
    c.check(w->flush(5000), "flush");
    w.reset();
    ::close(sv[0]);
    std::string got;
    char buf[16384];
    int messages = 0;
    bool whole = true, small = true;
    for (ssize_t n; (n = recv(sv[1], buf, sizeof buf, 0)) > 0;) {
      ++messages;
      whole = whole && buf[n - 1] == '\n';
      std::string_view m(buf, static_cast<size_t>(n));
      small = small && (n <= PIPE_BUF || m.find('\n') == m.size() - 1);
      got.append(buf, static_cast<size_t>(n));
    }
    ::close(sv[1]);
    c.eq(got, all, "every byte, in order");
    c.check(messages > 1, "split into several writes");
    c.check(whole, "each write ends a line");
    c.check(small, "each write <= PIPE_BUF unless it is one long line");
  }
  {
    Case c(suite, "writer: /dev/full warns once per failure episode");
    std::string error;
    auto w = LogWriter::open("/dev/full", 1, LogWriterOptions{}, &error);
    if (!c.check(w != nullptr, error)) return;
    for (int i = 0; i < 3; ++i) {
      w->append("line\n");
      w->flush(5000);
    }
    auto warnings = w->takeWarnings();
    c.eq(warnings.size(), size_t{1}, "one warning");
    if (!warnings.empty()) {
      c.eq(warnings[0], std::string("log /dev/full: no space left on device; dropping log lines until writes succeed again"), "text");
    }
  }
  {
    Case c(suite, "writer: a write cut short (file size limit) is ended with a newline; later lines stay whole");
    const std::string file = tempPath("cut.log");
    std::string error;
    auto w = LogWriter::open(file, 1, LogWriterOptions{60000, 1 << 20, 4 << 20}, &error);
    if (!c.check(w != nullptr, error)) return;
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct sigaction ignore {}, saved {};
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGXFSZ, &ignore, &saved);
    struct rlimit small = old;
    small.rlim_cur = 100;
    setrlimit(RLIMIT_FSIZE, &small);
    const std::string line(39, 'a');
    w->append(line + "\n" + line + "\n" + line + "\n");  // 120 bytes: the third line is cut at 100
    w->flush(5000);
    w->append("lost\n");
    w->flush(5000);
    setrlimit(RLIMIT_FSIZE, &old);
    sigaction(SIGXFSZ, &saved, nullptr);
    w->append("next\n");
    w->flush(5000);
    c.eq(readFile(file), line + "\n" + line + "\n" + std::string(20, 'a') + "\nnext\n", "file");
    auto warnings = w->takeWarnings();
    c.eq(warnings.size(), size_t{2}, "two warnings");
    if (warnings.size() == 2) {
      c.eq(warnings[0], "log " + file + ": file too large; dropping log lines until writes succeed again", "first");
      c.eq(warnings[1], "log " + file + ": writing again (2 line(s) dropped)", "second");
    }
  }
  {
    Case c(suite, "writer: reopen after rename; lines before go to the old file");
    const std::string file = tempPath("a.log");
    std::string error;
    auto w = LogWriter::open(file, 1, LogWriterOptions{60000, 1 << 20, 4 << 20}, &error);
    if (!c.check(w != nullptr, error)) return;
    w->append("one\n");
    w->flush(5000);
    ::rename(file.c_str(), (file + ".1").c_str());
    w->append("two\n");
    c.check(w->reopen(&error), error);
    w->append("three\n");
    w.reset();  // the destructor writes what is left
    c.eq(readFile(file + ".1"), std::string("one\ntwo\n"), "old file");
    c.eq(readFile(file), std::string("three\n"), "new file");
    c.check(LogWriter::open("/nonexistent-dir/x.log", 1, LogWriterOptions{}, &error) == nullptr, "no such dir");
    c.eq(error, std::string("cannot open log file '/nonexistent-dir/x.log': ENOENT: no such file or directory"), "error");
  }
  {
    Case c(suite, "writer: a pipe nobody reads: flush times out, lines are dropped, the end is bounded");
    int p[2];
    if (!c.check(pipe2(p, O_CLOEXEC | O_NONBLOCK) == 0, "pipe")) return;
    std::string error;
    auto w = LogWriter::open("-", p[1], LogWriterOptions{10, 1 << 16, 1 << 18}, &error);
    const std::string chunk(1023, 'x');
    for (int i = 0; i < 2000; ++i) w->append(chunk + "\n");  // 2 MB into a 64 KiB pipe, 256 KiB buffer
    c.check(!w->flush(300), "flush reports the timeout");
    const auto start = std::chrono::steady_clock::now();
    w.reset();
    const auto took = std::chrono::steady_clock::now() - start;
    c.check(took < std::chrono::seconds(3), "the destructor gives up after about a second");
    ::close(p[0]);
    ::close(p[1]);
  }
  {
    Case c(suite, "writer: find() by id until the last owner lets go");
    std::string error;
    auto w = LogWriter::open("/dev/null", 1, LogWriterOptions{}, &error);
    const uint32_t id = w->id();
    c.check(LogWriter::find(id) == w, "found");
    w.reset();
    c.check(LogWriter::find(id) == nullptr, "gone");
  }
}

}  // namespace

void runAccessLogTests(Suite& suite) {
  runFormatTests(suite);
  runWriterTests(suite);
}

}  // namespace lisod::test
