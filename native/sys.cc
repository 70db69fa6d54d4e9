// Daemon system calls for lisod: lock file (flock), sd_notify, RLIMIT_NOFILE, privilege
// drop. See sys.h for the JS-facing contracts.
#include "sys.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace lisod {
namespace {

constexpr mode_t kLockFileMode = 0640;
constexpr size_t kPidPeekBytes = 32;
constexpr int kLockAttempts = 3;
constexpr useconds_t kLockRetryMicros = 2000;
constexpr rlim_t kFallbackNrOpen = 1048576;  // kernel default of fs.nr_open

// Owns one file descriptor; closes it unless released.
class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// An Error shaped like Node's system errors: message "<what>[ <path>]: <strerror>",
// code 'EACCES'…, errno (negative, as in Node), syscall, and path when given.
Napi::Error errnoError(Napi::Env env, int err, const char* syscall, const std::string& what,
                       const std::string& path = {}) {
  std::string message = what;
  if (!path.empty()) message += " " + path;
  message += ": ";
  message += std::strerror(err);
  Napi::Error error = Napi::Error::New(env, message);
  const char* name = strerrorname_np(err);
  error.Set("code", Napi::String::New(env, name != nullptr ? name : "EUNKNOWN"));
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  return error;
}

std::string stringArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info.Length() <= index || !info[index].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  }
  std::string value = info[index].As<Napi::String>().Utf8Value();
  if (value.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must not contain NUL");
  }
  return value;
}

// Opens path read-write, creating it with exactly kLockFileMode when it does not exist.
// Returns the fd or -errno. The create-exclusive step tells "we created it" apart from
// "it existed", so an operator's chmod of an existing lock file is left alone.
int openLockFile(const std::string& path) {
  constexpr int kFlags = O_RDWR | O_CLOEXEC | O_NOCTTY;
  for (int attempt = 0; attempt < 8; ++attempt) {
    int fd = ::open(path.c_str(), kFlags);
    if (fd >= 0) return fd;
    if (errno != ENOENT) return -errno;
    fd = ::open(path.c_str(), kFlags | O_CREAT | O_EXCL, kLockFileMode);
    if (fd >= 0) {
      if (::fchmod(fd, kLockFileMode) != 0) {  // the umask may have removed bits
        int err = errno;
        ::close(fd);
        return -err;
      }
      return fd;
    }
    if (errno != EEXIST) return -errno;  // EEXIST: another process created it meanwhile
  }
  return -EAGAIN;
}

// The PID on the first line of an open lock file, or 0 when there is none.
long peekPid(int fd) {
  char buf[kPidPeekBytes + 1] = {};
  ssize_t n = ::pread(fd, buf, kPidPeekBytes, 0);
  if (n <= 0) return 0;
  buf[n] = '\0';
  char* end = nullptr;
  long pid = std::strtol(buf, &end, 10);
  if (end == buf || pid <= 0 || (*end != '\0' && *end != '\n')) return 0;
  return pid;
}

int flockRetry(int fd, int operation) {
  int rc;
  do {
    rc = ::flock(fd, operation);
  } while (rc != 0 && errno == EINTR);
  return rc;
}

bool writeAll(int fd, std::string_view data) {
  off_t offset = 0;
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += n;
  }
  return true;
}

Napi::Value lockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = stringArg(info, 0, "path");
  std::string content = stringArg(info, 1, "content");

  int opened = openLockFile(path);
  if (opened < 0) throw errnoError(env, -opened, "open", "cannot open lock file", path);
  UniqueFd fd(opened);

  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw errnoError(env, errno, "fstat", "cannot stat lock file", path);
  if (!S_ISREG(st.st_mode)) {
    throw Napi::Error::New(env, "lock file " + path + " is not a regular file");
  }

  // isLocked() in `lisod status` holds LOCK_SH for one syscall; a few short retries keep
  // such a probe from refusing a daemon that starts at that instant.
  int locked = -1;
  for (int attempt = 0; attempt < kLockAttempts && locked != 0; ++attempt) {
    if (attempt > 0) ::usleep(kLockRetryMicros);
    locked = flockRetry(fd.get(), LOCK_EX | LOCK_NB);
    if (locked != 0 && errno != EWOULDBLOCK) break;
  }
  if (locked != 0) {
    if (errno != EWOULDBLOCK) throw errnoError(env, errno, "flock", "cannot lock", path);
    long pid = peekPid(fd.get());
    std::string message = "lock file " + path + " is held by another process";
    if (pid > 0) message += " (pid " + std::to_string(pid) + ")";
    message += ": is lisod already running?";
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", Napi::String::New(env, "ELOCKED"));
    error.Set("path", Napi::String::New(env, path));
    if (pid > 0) error.Set("pid", Napi::Number::New(env, static_cast<double>(pid)));
    throw error;
  }

  if (::ftruncate(fd.get(), 0) != 0) throw errnoError(env, errno, "ftruncate", "cannot truncate lock file", path);
  if (!writeAll(fd.get(), content)) throw errnoError(env, errno, "write", "cannot write lock file", path);
  return Napi::Number::New(env, fd.release());
}

int fdArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), "fd must be a number");
  }
  double value = info[0].As<Napi::Number>().DoubleValue();
  if (value < 0 || value > 0x7fffffff || value != static_cast<double>(static_cast<int>(value))) {
    throw Napi::TypeError::New(info.Env(), "fd must be a non-negative integer");
  }
  return static_cast<int>(value);
}

Napi::Value unlockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = fdArg(info);
  if (flockRetry(fd, LOCK_UN) != 0) throw errnoError(env, errno, "flock", "cannot unlock lock file fd " + std::to_string(fd));
  ::close(fd);  // Linux releases the fd even when close reports EINTR/EIO; nothing to retry
  return env.Undefined();
}

Napi::Value isLocked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = stringArg(info, 0, "path");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    throw errnoError(env, errno, "open", "cannot open lock file", path);
  }
  if (flockRetry(fd.get(), LOCK_SH | LOCK_NB) == 0) return Napi::Boolean::New(env, false);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, true);
  throw errnoError(env, errno, "flock", "cannot probe lock", path);
}

// sd_notify(3): the address is an absolute socket path or, with a leading '@', a name in
// the Linux abstract namespace ('@' stands for the leading NUL byte).
Napi::Value sdNotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string message = stringArg(info, 0, "message");
  const char* address = std::getenv("NOTIFY_SOCKET");
  if (address == nullptr || address[0] == '\0') return Napi::Boolean::New(env, false);
  std::string_view name(address);

  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  socklen_t length = 0;
  if (name.size() >= sizeof(sa.sun_path)) {
    throw Napi::Error::New(env, "NOTIFY_SOCKET " + std::string(name) + " is too long for a unix socket address");
  }
  if (name[0] == '@') {
    sa.sun_path[0] = '\0';
    std::memcpy(sa.sun_path + 1, name.data() + 1, name.size() - 1);
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  } else if (name[0] == '/') {
    std::memcpy(sa.sun_path, name.data(), name.size());
    length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + 1);
  } else {
    throw Napi::Error::New(env, "NOTIFY_SOCKET " + std::string(name) +
                                    " is neither an absolute path nor an @abstract name");
  }

  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw errnoError(env, errno, "socket", "cannot create a socket for NOTIFY_SOCKET " + std::string(name));
  ssize_t sent;
  do {
    sent = ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
                    reinterpret_cast<const sockaddr*>(&sa), length);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) throw errnoError(env, errno, "sendto", "cannot send to NOTIFY_SOCKET " + std::string(name));
  if (static_cast<size_t>(sent) != message.size()) {
    throw Napi::Error::New(env, "short datagram to NOTIFY_SOCKET " + std::string(name));
  }
  return Napi::Boolean::New(env, true);
}

rlim_t nrOpen() {
  UniqueFd fd(::open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return kFallbackNrOpen;
  char buf[32] = {};
  ssize_t n = ::read(fd.get(), buf, sizeof(buf) - 1);
  if (n <= 0) return kFallbackNrOpen;
  unsigned long long value = std::strtoull(buf, nullptr, 10);
  return value > 0 ? static_cast<rlim_t>(value) : kFallbackNrOpen;
}

Napi::Value raiseFdLimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) throw errnoError(env, errno, "getrlimit", "cannot read RLIMIT_NOFILE");
  // RLIMIT_NOFILE above fs.nr_open fails with EPERM, so "infinite" means nr_open.
  rlim_t target = limit.rlim_max == RLIM_INFINITY ? nrOpen() : limit.rlim_max;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= target) {
    return Napi::Number::New(env, static_cast<double>(limit.rlim_cur));
  }
  limit.rlim_cur = target;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) throw errnoError(env, errno, "setrlimit", "cannot raise RLIMIT_NOFILE");
  return Napi::Number::New(env, static_cast<double>(target));
}

Napi::Value dropPrivileges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string user = stringArg(info, 0, "user");
  if (user.empty()) throw Napi::TypeError::New(env, "user must not be empty");
  std::vector<std::string> owned;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "paths must be an array of strings");
    Napi::Array list = info[1].As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); ++i) {
      Napi::Value item = list.Get(i);
      if (!item.IsString()) throw Napi::TypeError::New(env, "paths must be an array of strings");
      owned.push_back(item.As<Napi::String>().Utf8Value());
    }
  }

  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 4096);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE) {
    buf.resize(buf.size() * 2);
  }
  // getpwnam_r(3): "not found" may be reported as 0, ENOENT, ESRCH, EBADF or EPERM.
  bool notFound = found == nullptr && (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM);
  if (notFound) throw Napi::Error::New(env, "user " + user + " does not exist (config key 'user')");
  if (rc != 0) throw errnoError(env, rc, "getpwnam_r", "cannot look up user " + user);
  uid_t uid = pw.pw_uid;
  gid_t gid = pw.pw_gid;

  Napi::Object result = Napi::Object::New(env);
  result.Set("uid", Napi::Number::New(env, uid));
  result.Set("gid", Napi::Number::New(env, gid));
  if (::geteuid() != 0) {
    if (::getuid() == uid && ::geteuid() == uid) return result;
    Napi::Error error = Napi::Error::New(env, "cannot switch to user " + user + ": lisod is not running as root");
    error.Set("code", Napi::String::New(env, "EPERM"));
    throw error;
  }
  // Files the daemon reopens later (logs on SIGHUP) must belong to the new user.
  for (const std::string& path : owned) {
    if (::chown(path.c_str(), uid, gid) != 0 && errno != ENOENT) {
      throw errnoError(env, errno, "chown", "cannot hand over to user " + user + " the file", path);
    }
  }
  // Order matters: supplementary groups and gid need root, so they go before setuid.
  if (::initgroups(user.c_str(), gid) != 0) throw errnoError(env, errno, "initgroups", "cannot set the groups of user " + user);
  if (::setgid(gid) != 0) throw errnoError(env, errno, "setgid", "cannot set the group of user " + user);
  if (::setuid(uid) != 0) throw errnoError(env, errno, "setuid", "cannot switch to user " + user);
  if (::getuid() != uid || ::geteuid() != uid || ::getgid() != gid || ::getegid() != gid) {
    throw Napi::Error::New(env, "privilege drop to " + user + " left a different uid/gid in place");
  }
  if (uid != 0 && ::setuid(0) == 0) {
    throw Napi::Error::New(env, "privilege drop to " + user + " is reversible; refusing to run");
  }
  return result;
}

}  // namespace

void initSys(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, lockFile, "lockFile"));
  exports.Set("unlockFile", Napi::Function::New(env, unlockFile, "unlockFile"));
  exports.Set("isLocked", Napi::Function::New(env, isLocked, "isLocked"));
  exports.Set("sdNotify", Napi::Function::New(env, sdNotify, "sdNotify"));
  exports.Set("raiseFdLimit", Napi::Function::New(env, raiseFdLimit, "raiseFdLimit"));
  exports.Set("dropPrivileges", Napi::Function::New(env, dropPrivileges, "dropPrivileges"));
}

}  // namespace lisod
