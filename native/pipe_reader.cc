// The read end of a CGI script's stdout/stderr pipe, read on the libuv loop by the addon.
// It replaces a net.Socket per pipe: a Socket is a full Duplex stream (read and write
// state, handle wrap, stream listeners) and made up ~40% of lisod's own CPU per CGI
// request (perf record of `wrk -c10` against a trivial script); this is one uv_poll.
#include "pipe_reader.h"

#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>

namespace lisod {
namespace {

constexpr size_t kReadSize = 65536;  // as a libuv stream's read buffer

class PipeReader : public Napi::ObjectWrap<PipeReader> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "PipeReader",
                       {InstanceMethod("pause", &PipeReader::pause), InstanceMethod("resume", &PipeReader::resume)});
  }

  // new PipeReader(fd, onChunk(chunk: Buffer | null, errno: number)): takes the fd over.
  explicit PipeReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PipeReader>(info) {
    Napi::Env env = info.Env();
    int fd = info[0].As<Napi::Number>().Int32Value();
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "lisod:cgi-pipe");
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      ::close(fd);
      throw Napi::Error::New(env, "cannot read a CGI pipe: bad file descriptor");
    }
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new Poll{{}, fd, this};
    poll_->handle.data = poll_;
    if (uv_poll_init(loop, &poll_->handle, fd) != 0) {
      ::close(fd);
      delete poll_;
      poll_ = nullptr;
      throw Napi::Error::New(env, "cannot read a CGI pipe: poll failed");
    }
    Ref();  // alive while the pipe is open, whatever JS holds
    start();
  }

  ~PipeReader() override { stopPolling(); }  // only at environment teardown: open readers hold a reference

 private:
  struct Poll {
    uv_poll_t handle;
    int fd;
    PipeReader* owner;  // null once released; the Poll lives until libuv's close callback
  };

  void start() {
    if (poll_ && !paused_) uv_poll_start(&poll_->handle, UV_READABLE, onReadable);
  }

  static void onReadable(uv_poll_t* handle, int status, int) {
    auto* p = static_cast<Poll*>(handle->data);
    if (p->owner) p->owner->readOnce(status);
  }

  // One read per wake-up: a chatty script cannot starve the connections on the loop.
  void readOnce(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) return finish(env, -status);
    // Per thread, not on the stack: the JS callback runs on top of this frame. Not
    // re-entered: only the loop calls readOnce, and the bytes are copied before the call.
    static thread_local char buf[kReadSize];
    ssize_t n;
    do n = ::read(poll_->fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) return finish(env, n == 0 ? 0 : errno);
    call(env, {Napi::Buffer<char>::Copy(env, buf, static_cast<size_t>(n)), Napi::Number::New(env, 0)});
  }

  // End of file (err 0) or a read error: the pipe closes and the callback gets (null, err)
  // once; the reference is dropped only after it, so the object outlives its own call.
  void finish(Napi::Env env, int err) {
    stopPolling();
    call(env, {env.Null(), Napi::Number::New(env, err)});
    release();
  }

  void call(Napi::Env env, std::initializer_list<napi_value> args) {
    try {
      callback_.MakeCallback(env.Global(), args, *context_);
    } catch (const Napi::Error& e) {
      napi_fatal_exception(env, e.Value());
    }
  }

  // Stops polling and closes the fd, then drops the self reference so JS may collect it.
  // The callback goes too: its closure usually holds this reader's JS object, and a
  // strong persistent reference is a GC root, so keeping it would leak the reader and
  // everything its owner holds (≈3 KiB per CGI request; seen in heap snapshots).
  void release() {
    stopPolling();
    callback_.Reset();
    if (referenced_) {
      referenced_ = false;
      Unref();
    }
  }

  // The fd is closed only once libuv has let go of it.
  void stopPolling() {
    if (!poll_) return;
    poll_->owner = nullptr;
    uv_poll_stop(&poll_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), [](uv_handle_t* h) {
      auto* p = static_cast<Poll*>(h->data);
      ::close(p->fd);
      delete p;
    });
    poll_ = nullptr;
  }

  Napi::Value pause(const Napi::CallbackInfo& info) {
    paused_ = true;
    if (poll_) uv_poll_stop(&poll_->handle);
    return info.Env().Undefined();
  }

  Napi::Value resume(const Napi::CallbackInfo& info) {
    paused_ = false;
    start();
    return info.Env().Undefined();
  }

  Poll* poll_ = nullptr;
  bool paused_ = false;
  bool referenced_ = true;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void initPipeReader(Napi::Env env, Napi::Object exports) {
  exports.Set("PipeReader", PipeReader::define(env));
}

}  // namespace lisod
