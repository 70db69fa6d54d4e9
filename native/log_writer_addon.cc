// Node-API surface of the logs (see src/native.ts): the LogWriter class over log_writer.h,
// whose warnings come back to JavaScript through a uv_async on the creating thread's loop,
// and formatAccessRecord, the access-log line formatter the servers use, for tests.
#include <napi.h>
#include <uv.h>

#include "access_log.h"
#include "log_writer.h"
#include "static_file.h"

namespace lisod {
namespace {

constexpr uint64_t kFlushTimeoutMs = 1000;  // a synchronous flush never waits longer

class LogWriterWrap : public Napi::ObjectWrap<LogWriterWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "LogWriter",
                       {InstanceAccessor("id", &LogWriterWrap::id, nullptr),
                        InstanceMethod("write", &LogWriterWrap::write),
                        InstanceMethod("flush", &LogWriterWrap::flush),
                        InstanceMethod("reopen", &LogWriterWrap::reopen),
                        InstanceMethod("close", &LogWriterWrap::close)});
  }

  // new LogWriter(target, stdFd, {flushIntervalMs, highWaterBytes, maxBufferBytes}, onWarning)
  explicit LogWriterWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LogWriterWrap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsObject() || !info[3].IsFunction()) {
      throw Napi::TypeError::New(env, "new LogWriter(target, stdFd, options, onWarning)");
    }
    Napi::Object o = info[2].As<Napi::Object>();
    LogWriterOptions options;
    const auto number = [&](const char* key, auto* out) {
      Napi::Value v = o.Get(key);
      if (v.IsNumber() && v.As<Napi::Number>().DoubleValue() > 0) {
        *out = static_cast<std::remove_reference_t<decltype(*out)>>(v.As<Napi::Number>().DoubleValue());
      }
    };
    number("flushIntervalMs", &options.flush_interval_ms);
    number("highWaterBytes", &options.high_water);
    number("maxBufferBytes", &options.max_buffer);
    std::string error;
    writer_ = LogWriter::open(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Number>().Int32Value(),
                              options, &error);
    if (!writer_) throw Napi::Error::New(env, error);
    on_warning_ = Napi::Persistent(info[3].As<Napi::Function>());
    context_ = std::make_unique<Napi::AsyncContext>(env, "lisod:log");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    async_ = new uv_async_t;
    uv_async_init(loop, async_, [](uv_async_t* a) { static_cast<LogWriterWrap*>(a->data)->deliverWarnings(); });
    async_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(async_));
    uv_async_t* async = async_;
    writer_->setNotify([async] { uv_async_send(async); });
  }

  ~LogWriterWrap() override {
    finalizing_ = true;
    release();
  }

 private:
  Napi::Value id(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), id_()); }
  uint32_t id_() const { return writer_ ? writer_->id() : 0; }

  // write(text, soon = false)
  Napi::Value write(const Napi::CallbackInfo& info) {
    if (writer_ && info[0].IsString()) writer_->append(info[0].As<Napi::String>().Utf8Value(), info[1].ToBoolean());
    return info.Env().Undefined();
  }
  // flush(): true when everything was written (or dropped) within a second.
  Napi::Value flush(const Napi::CallbackInfo& info) {
    bool done = !writer_ || writer_->flush(kFlushTimeoutMs);
    deliverWarnings();
    return Napi::Boolean::New(info.Env(), done);
  }
  Napi::Value reopen(const Napi::CallbackInfo& info) {
    std::string error;
    if (writer_ && !writer_->reopen(&error)) throw Napi::Error::New(info.Env(), error);
    return info.Env().Undefined();
  }
  // close(): flush, report, and let go. Event loops still holding the writer keep it
  // (and its file) until they let go too.
  Napi::Value close(const Napi::CallbackInfo& info) {
    if (writer_) {
      writer_->flush(kFlushTimeoutMs);
      deliverWarnings();
    }
    release();
    return info.Env().Undefined();
  }

  void release() {
    if (writer_) writer_->setNotify(nullptr);  // no uv_async_send after this
    writer_.reset();
    if (async_ != nullptr) {
      uv_close(reinterpret_cast<uv_handle_t*>(async_), [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
      async_ = nullptr;
    }
  }

  void deliverWarnings() {
    if (!writer_ || finalizing_) return;
    for (const std::string& m : writer_->takeWarnings()) {
      Napi::HandleScope scope(env_);
      try {
        on_warning_.MakeCallback(Value(), {Napi::String::New(env_, m)}, *context_);
      } catch (const Napi::Error& e) {
        napi_fatal_exception(env_, e.Value());
      }
    }
  }

  Napi::Env env_;
  std::shared_ptr<LogWriter> writer_;
  Napi::FunctionReference on_warning_;
  std::unique_ptr<Napi::AsyncContext> context_;
  uv_async_t* async_ = nullptr;
  bool finalizing_ = false;
};

// formatAccessRecord([remote, ms, method, target, version, status, bytes, referer, agent, user?],
// offsetMinutes = local zone) → one Combined Log Format line, as the servers write it.
Napi::Value formatAccessRecord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "formatAccessRecord(record, offsetMinutes?)");
  Napi::Array r = info[0].As<Napi::Array>();
  const auto str = [&](uint32_t i) {
    Napi::Value v = r.Get(i);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  };
  const auto num = [&](uint32_t i) { return r.Get(i).ToNumber().DoubleValue(); };
  std::string remote = str(0), method = str(2), target = str(3), version = str(4), referer = str(7),
              agent = str(8), user = str(9);
  const double ms = num(1);
  const auto seconds = static_cast<int64_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int offset = 0;
  if (info[1].IsNumber()) {
    offset = info[1].As<Napi::Number>().Int32Value();
  } else {
    const time_t t = static_cast<time_t>(seconds);
    struct tm local;
    if (localtime_r(&t, &local) != nullptr) offset = static_cast<int>(local.tm_gmtoff / 60);
  }
  char when[32];
  const size_t n = formatClfTime(seconds, offset, when);
  AccessEntry e{remote, user, method, target, version, referer, agent, static_cast<int>(num(5)),
                static_cast<uint64_t>(num(6) > 0 ? num(6) : 0)};
  std::string line;
  appendAccessLine(line, e, std::string_view(when, n));
  return Napi::String::New(env, line);
}

}  // namespace

void initLogs(Napi::Env env, Napi::Object exports) {
  exports.Set("LogWriter", LogWriterWrap::define(env));
  exports.Set("formatAccessRecord", Napi::Function::New(env, formatAccessRecord, "formatAccessRecord"));
}

}  // namespace lisod
