// Socket reads and writes without glibc's cancellation-point wrappers. In a multi-threaded
// process (Node is one) every recv()/send() call enables and disables asynchronous
// cancellation around the system call: two atomic operations per call that lisod, which
// never cancels a thread, does not need. Same results and errno as recv(2)/send(2).
#pragma once
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

namespace lisod {

inline ssize_t recvNoCancel(int fd, char* buf, size_t len) {
  return ::syscall(SYS_recvfrom, fd, buf, len, 0, nullptr, nullptr);
}

inline ssize_t sendNoCancel(int fd, const void* buf, size_t len, int flags) {
  return ::syscall(SYS_sendto, fd, buf, len, flags, nullptr, 0);
}

}  // namespace lisod
