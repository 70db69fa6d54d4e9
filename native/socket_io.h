// Socket reads and writes, and file reads, without glibc's cancellation-point wrappers. In a
// multi-threaded process (Node is one) every recv()/send()/pread() call enables and disables
// asynchronous cancellation around the system call: two atomic operations per call that
// lisod, which never cancels a thread, does not need. Same results and errno as the libc calls.
#pragma once
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace lisod {

inline ssize_t recvNoCancel(int fd, char* buf, size_t len) {
  return ::syscall(SYS_recvfrom, fd, buf, len, 0, nullptr, nullptr);
}

// pread(2) of a response body: 16 KiB per TLS record or HTTP/2 DATA frame, so a 1 MiB body
// over TLS is 64 calls.
inline ssize_t preadNoCancel(int fd, char* buf, size_t len, off_t offset) {
  return ::syscall(SYS_pread64, fd, buf, len, offset);
}

inline ssize_t sendNoCancel(int fd, const void* buf, size_t len, int flags) {
  return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
}

}  // namespace lisod
