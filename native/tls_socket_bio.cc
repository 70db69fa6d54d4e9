#include "tls_socket_bio.h"

#include <errno.h>
#include <sys/socket.h>

#include "socket_io.h"

namespace lisod {
namespace {

struct SocketWrite {
  int fd;
  bool more = false;
};

int writeEx(BIO* b, const char* data, size_t len, size_t* written) {
  auto* s = static_cast<SocketWrite*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  *written = 0;
  ssize_t n = sendNoCancel(s->fd, data, len, MSG_NOSIGNAL | (s->more ? MSG_MORE : 0));
  if (n >= 0) {
    *written = static_cast<size_t>(n);
    return 1;
  }
  // As OpenSSL's socket BIO: a full socket buffer (or a signal) is a retry, anything else
  // an error whose errno SSL_get_error's SSL_ERROR_SYSCALL leaves for the caller.
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(b);
  return 0;
}

long ctrl(BIO* b, int cmd, long, void* ptr) {
  auto* s = static_cast<SocketWrite*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_C_GET_FD:
      if (ptr != nullptr) *static_cast<int*>(ptr) = s->fd;
      return s->fd;
    default:
      return 0;  // no kTLS, no pending bytes, nothing else to say
  }
}

int destroy(BIO* b) {
  delete static_cast<SocketWrite*>(BIO_get_data(b));
  BIO_set_data(b, nullptr);
  return 1;
}

const BIO_METHOD* method() {
  static BIO_METHOD* m = [] {
    BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lisod socket write");
    if (meth == nullptr) return meth;
    BIO_meth_set_write_ex(meth, writeEx);
    BIO_meth_set_ctrl(meth, ctrl);
    BIO_meth_set_destroy(meth, destroy);
    return meth;
  }();
  return m;
}

}  // namespace

BIO* newSocketWriteBio(int fd) {
  const BIO_METHOD* m = method();
  if (m == nullptr) return nullptr;
  BIO* b = BIO_new(m);
  if (b == nullptr) return nullptr;
  BIO_set_data(b, new SocketWrite{fd});
  BIO_set_init(b, 1);
  return b;
}

void setSocketWriteBioMore(BIO* bio, bool more) { static_cast<SocketWrite*>(BIO_get_data(bio))->more = more; }

}  // namespace lisod
