// Node-API surface of lisod: the Server class (see src/native.ts for the contract)
// and the process helpers from sys.cc. Everything else is plain C++ behind
// ServerEvents, so the static path never enters JavaScript.
#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cgi_output_addon.h"
#include "connection.h"
#include "fastcgi_addon.h"
#include "identity_addon.h"
#include "server.h"
#include "response.h"
#include "spawn.h"
#include "sys.h"

namespace lisod {
namespace {

std::string getString(const Napi::Object& o, const char* key, const std::string& fallback = "") {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("config.") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double getNumber(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("config.") + key + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0)) throw Napi::RangeError::New(o.Env(), std::string("config.") + key + " must be >= 0");
  return d;
}

bool getBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  return v.ToBoolean().Value();
}

// config.compress (CompressSpec in src/native.ts; validated by src/config_compress.ts).
CompressSettings parseCompress(Napi::Value v) {
  CompressSettings c;
  if (!v.IsObject()) return c;
  Napi::Object o = v.As<Napi::Object>();
  c.on_the_fly = getBool(o, "onTheFly", c.on_the_fly);
  c.precompressed = getBool(o, "precompressed", c.precompressed);
  c.min_bytes = static_cast<uint64_t>(getNumber(o, "minBytes", static_cast<double>(c.min_bytes)));
  c.max_bytes = static_cast<uint64_t>(getNumber(o, "maxBytes", static_cast<double>(c.max_bytes)));
  c.cache_bytes = static_cast<uint64_t>(getNumber(o, "cacheBytes", static_cast<double>(c.cache_bytes)));
  c.gzip_level = static_cast<int>(getNumber(o, "gzipLevel", c.gzip_level));
  c.brotli_quality = static_cast<int>(getNumber(o, "brotliQuality", c.brotli_quality));
  Napi::Value types = o.Get("types");
  if (types.IsArray()) {
    Napi::Array a = types.As<Napi::Array>();
    c.types.clear();
    for (uint32_t i = 0; i < a.Length(); ++i) c.types.push_back(a.Get(i).ToString().Utf8Value());
  }
  return c;
}

ServerConfig parseConfig(const Napi::Object& o) {
  ServerConfig c;
  Napi::Value ls = o.Get("listeners");
  if (!ls.IsArray()) throw Napi::TypeError::New(o.Env(), "config.listeners must be an array");
  Napi::Array arr = ls.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Object l = arr.Get(i).As<Napi::Object>();
    ListenerConfig lc;
    lc.host = getString(l, "host", "::");
    lc.port = static_cast<int>(getNumber(l, "port", 0));
    lc.tls = getBool(l, "tls", false);
    c.listeners.push_back(lc);
  }
  c.root = getString(o, "root");
  c.tls.key_file = getString(o, "tlsKey");
  c.tls.cert_file = getString(o, "tlsCert");
  c.tls.resumption = getBool(o, "tlsResumption", true);
  c.tls.http2 = getBool(o, "http2", false);
  c.h2_max_streams = static_cast<uint32_t>(getNumber(o, "http2MaxStreams", 128));
  readTlsClientOptions(o, &c.tls);
  c.access = readAccessRules(o.Env(), o.Get("access"));
  Napi::Value prefixes = o.Get("appPrefixes");
  if (prefixes.IsArray()) {
    Napi::Array pa = prefixes.As<Napi::Array>();
    c.app_prefixes.clear();
    for (uint32_t i = 0; i < pa.Length(); ++i) c.app_prefixes.push_back(pa.Get(i).ToString().Utf8Value());
  } else {
    c.app_prefixes = {getString(o, "cgiPrefix", "/cgi")};
  }
  c.compress = parseCompress(o.Get("compress"));
  c.max_connections = static_cast<size_t>(getNumber(o, "maxConnections", 10000));
  c.max_line = static_cast<size_t>(getNumber(o, "maxLineBytes", 8192));
  c.max_head = static_cast<size_t>(getNumber(o, "maxHeaderBytes", 65536));
  c.max_target = static_cast<size_t>(getNumber(o, "maxTargetBytes", 8000));
  c.max_body = static_cast<uint64_t>(getNumber(o, "maxBodyBytes", 100.0 * 1024 * 1024));
  c.header_timeout_ms = static_cast<uint64_t>(getNumber(o, "headerTimeoutMs", 10000));
  c.body_timeout_ms = static_cast<uint64_t>(getNumber(o, "bodyTimeoutMs", 30000));
  c.body_total_timeout_ms = static_cast<uint64_t>(getNumber(o, "bodyTotalTimeoutMs", 60000));
  c.keep_alive_timeout_ms = static_cast<uint64_t>(getNumber(o, "keepAliveTimeoutMs", 15000));
  c.send_timeout_ms = static_cast<uint64_t>(getNumber(o, "sendTimeoutMs", 60000));
  c.access_log = getBool(o, "accessLog", false);
  c.access_log_writer = static_cast<uint32_t>(getNumber(o, "accessLogWriter", 0));
  c.reuse_port = getBool(o, "reusePort", false);
  char resolved[PATH_MAX];
  if (c.root.empty() || realpath(c.root.c_str(), resolved) == nullptr) {
    throw Napi::Error::New(o.Env(), "www root '" + c.root + "' does not exist or cannot be read");
  }
  c.root = resolved;
  return c;
}

class ServerWrap : public Napi::ObjectWrap<ServerWrap>, public ServerEvents {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "Server",
                       {InstanceMethod("addresses", &ServerWrap::addresses),
                        InstanceMethod("beginResponse", &ServerWrap::beginResponse),
                        InstanceMethod("beginRaw", &ServerWrap::beginRaw),
                        InstanceMethod("write", &ServerWrap::write),
                        InstanceMethod("end", &ServerWrap::end),
                        InstanceMethod("abort", &ServerWrap::abort),
                        InstanceMethod("pauseBody", &ServerWrap::pauseBody),
                        InstanceMethod("resumeBody", &ServerWrap::resumeBody),
                        InstanceMethod("reloadTls", &ServerWrap::reloadTls),
                        InstanceMethod("setAccess", &ServerWrap::setAccess),
                        InstanceMethod("accessStatus", &ServerWrap::accessStatus),
                        InstanceMethod("stopAccepting", &ServerWrap::stopAccepting),
                        InstanceMethod("stopWhenIdle", &ServerWrap::stopWhenIdle),
                        InstanceMethod("connectionCount", &ServerWrap::connectionCount),
                        InstanceMethod("setAccessLog", &ServerWrap::setAccessLog),
                        InstanceMethod("setFastcgi", &ServerWrap::setFastcgi),
                        InstanceMethod("fastcgiStats", &ServerWrap::fastcgiStats),
                        InstanceMethod("appSlot", &ServerWrap::appSlot),
                        InstanceMethod("appSlotRelease", &ServerWrap::appSlotRelease),
                        InstanceMethod("close", &ServerWrap::close)});
  }

  explicit ServerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ServerWrap>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject()) {
      throw Napi::TypeError::New(env, "new Server(config, handlers): both arguments are objects");
    }
    ServerConfig config = parseConfig(info[0].As<Napi::Object>());
    // Node runs this loop with UV_RUN_DEFAULT. LISOD_INNER_LOOP=0: libuv polls every socket.
    const char* nested = getenv("LISOD_INNER_LOOP");
    config.nested_loop = nested == nullptr || std::strcmp(nested, "0") != 0;
    Napi::Object h = info[1].As<Napi::Object>();
    const char* names[] = {"request", "body", "close", "drain", "error"};
    Napi::FunctionReference* refs[] = {&on_request_, &on_body_, &on_close_, &on_drain_, &on_error_};
    for (int i = 0; i < 5; ++i) {
      Napi::Value f = h.Get(names[i]);
      if (!f.IsFunction()) throw Napi::TypeError::New(env, std::string("handlers.") + names[i] + " must be a function");
      *refs[i] = Napi::Persistent(f.As<Napi::Function>());
    }
    if (Napi::Value f = h.Get("slot"); f.IsFunction()) on_slot_ = Napi::Persistent(f.As<Napi::Function>());
    receiver_ = Napi::Persistent(h);
    context_ = std::make_unique<Napi::AsyncContext>(env, "lisod");
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    std::string error;
    fcgi_ = std::make_unique<FcgiDispatch>(loop, this);  // native FastCGI mounts, then JavaScript
    server_ = Server::create(loop, std::move(config), fcgi_.get(), &error);
    if (!server_) throw Napi::Error::New(env, error);
    fcgi_->attach(server_.get());
  }

  // Runs from the garbage collector or at environment teardown: JavaScript may not be
  // called any more, so the events below become no-ops first.
  ~ServerWrap() override {
    finalizing_ = true;
    server_.reset();
    fcgi_.reset();
  }

  // ServerEvents: called from libuv callbacks, so each opens its own scope.
  // handlers.request gets the fields as arguments, in CgiRequest's order (src/native.ts
  // builds the object): 13 napi_set_named_property calls per request were ~5% of lisod's own
  // CPU on the trivial CGI row (perf), an object literal in JavaScript is a few nanoseconds.
  void onAppRequest(const AppRequest& r) override {
    if (finalizing_) return;
    Napi::HandleScope scope(env_);
    Napi::Array headers = Napi::Array::New(env_, r.headers.size());
    for (size_t i = 0; i < r.headers.size(); ++i) headers.Set(static_cast<uint32_t>(i), r.headers[i]);
    call(on_request_, {Napi::Number::New(env_, r.id), Napi::String::New(env_, r.method), Napi::String::New(env_, r.target),
                       Napi::String::New(env_, r.version), headers, Napi::String::New(env_, r.remote_address),
                       Napi::Number::New(env_, r.remote_port), Napi::String::New(env_, r.local_address),
                       Napi::Number::New(env_, r.local_port), Napi::Boolean::New(env_, r.tls),
                       Napi::Boolean::New(env_, r.has_body), Napi::Number::New(env_, static_cast<double>(r.content_length)),
                       r.identity != nullptr ? napi_value(identityToJs(env_, *r.identity)) : napi_value(env_.Undefined()),
                       Napi::Number::New(env_, r.mount)});
  }
  void onAppBody(uint32_t id, const char* data, size_t len, bool end) override {
    if (finalizing_) return;
    Napi::HandleScope scope(env_);
    call(on_body_, {Napi::Number::New(env_, id), end ? env_.Null() : bodyView(data, len)});
  }
  void onAppClose(uint32_t id) override {
    if (finalizing_) return;
    Napi::HandleScope scope(env_);
    call(on_close_, {Napi::Number::New(env_, id)});
  }
  void onAppDrain(uint32_t id) override {
    if (finalizing_) return;
    Napi::HandleScope scope(env_);
    call(on_drain_, {Napi::Number::New(env_, id)});
  }
  void onAppSlot(uint32_t ticket) override {
    if (finalizing_ || on_slot_.IsEmpty()) return;
    Napi::HandleScope scope(env_);
    call(on_slot_, {Napi::Number::New(env_, ticket)});
  }
  void onLog(LogLevel level, const std::string& message) override {
    if (finalizing_) return;
    Napi::HandleScope scope(env_);
    const char* name = level == LogLevel::kError ? "error" : level == LogLevel::kWarn ? "warn" : "info";
    call(on_error_, {Napi::String::New(env_, name), Napi::String::New(env_, message)});
  }

 private:
  // A body chunk as a Uint8Array over one ArrayBuffer reused for every chunk (grown when a
  // chunk is larger), valid only during the body event: a fresh Buffer per chunk left a
  // 64 MiB upload's worth of garbage backing stores (~35 MiB RSS) for V8 to collect late.
  Napi::Value bodyView(const char* data, size_t len) {
    if (body_buf_.IsEmpty() || body_buf_.Value().ByteLength() < len) {
      body_buf_ = Napi::Persistent(Napi::ArrayBuffer::New(env_, std::max<size_t>(len, 64 * 1024)));
    }
    Napi::ArrayBuffer ab = body_buf_.Value();
    std::memcpy(ab.Data(), data, len);
    return Napi::Uint8Array::New(env_, len, ab, 0);
  }

  void call(Napi::FunctionReference& fn, std::initializer_list<napi_value> args) {
    if (finalizing_) return;
    try {
      fn.MakeCallback(receiver_.Value(), args, *context_);
    } catch (const Napi::Error& e) {
      // A throwing handler is an uncaught exception in Node's terms.
      napi_fatal_exception(env_, e.Value());
    }
  }

  Napi::Value addresses(const Napi::CallbackInfo& info) {
    Napi::Array arr = Napi::Array::New(info.Env());
    if (!server_) return arr;
    uint32_t i = 0;
    for (const auto& l : server_->addresses()) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("host", l.host);
      o.Set("port", l.port);
      o.Set("tls", l.tls);
      arr.Set(i++, o);
    }
    return arr;
  }
  // The caller's head is checked here, before any byte is queued, so a bad field is a
  // TypeError in JavaScript rather than a split response (RFC 9110 §5.5).
  static void checkResponseHead(Napi::Env env, int status, const std::string& reason,
                                const std::vector<std::string>& headers) {
    if (status < 100 || status > 999) {
      throw Napi::RangeError::New(env, "beginResponse: status must be a 3-digit number, got " + std::to_string(status));
    }
    if (const char* why = checkReason(reason)) throw Napi::TypeError::New(env, std::string("beginResponse: ") + why);
    if (headers.size() % 2 != 0) throw Napi::TypeError::New(env, "beginResponse: headers must be name, value pairs");
    for (size_t i = 0; i + 1 < headers.size(); i += 2) {
      if (const char* why = checkHeaderField(headers[i], headers[i + 1])) {
        std::string name = headers[i].substr(0, 64);
        for (char& ch : name) if (ch == '\r' || ch == '\n' || ch == '\0') ch = '?';
        throw Napi::TypeError::New(env, "beginResponse: header '" + name + "': " + why);
      }
    }
  }
  static uint32_t idArg(const Napi::CallbackInfo& info) { return info[0].As<Napi::Number>().Uint32Value(); }

  Napi::Value beginResponse(const Napi::CallbackInfo& info) {
    std::vector<std::string> headers;
    if (info[3].IsArray()) {
      Napi::Array a = info[3].As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) headers.push_back(a.Get(i).ToString().Utf8Value());
    }
    std::string reason = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    int status = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    checkResponseHead(info.Env(), status, reason, headers);  // throws: nothing is sent
    if (AppSink* c = server_->app(idArg(info))) c->appBegin(status, reason, headers);
    return info.Env().Undefined();
  }
  Napi::Value beginRaw(const Napi::CallbackInfo& info) {
    bool keep_alive = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    if (AppSink* c = server_->app(idArg(info))) c->appBeginRaw(keep_alive);
    return info.Env().Undefined();
  }
  Napi::Value write(const Napi::CallbackInfo& info) {
    if (!info[1].IsBuffer()) throw Napi::TypeError::New(info.Env(), "write(id, chunk): chunk must be a Buffer");
    Napi::Buffer<char> b = info[1].As<Napi::Buffer<char>>();
    AppSink* c = server_->app(idArg(info));
    bool below = c == nullptr || c->appWrite(b.Data(), b.Length());
    return Napi::Boolean::New(info.Env(), below);
  }
  Napi::Value end(const Napi::CallbackInfo& info) {
    if (AppSink* c = server_->app(idArg(info))) c->appEnd();
    return info.Env().Undefined();
  }
  Napi::Value abort(const Napi::CallbackInfo& info) {
    if (AppSink* c = server_->app(idArg(info))) c->appAbort();
    return info.Env().Undefined();
  }
  Napi::Value pauseBody(const Napi::CallbackInfo& info) {
    if (AppSink* c = server_->app(idArg(info))) c->appPauseBody(true);
    return info.Env().Undefined();
  }
  Napi::Value resumeBody(const Napi::CallbackInfo& info) {
    if (AppSink* c = server_->app(idArg(info))) c->appPauseBody(false);
    return info.Env().Undefined();
  }
  Napi::Value reloadTls(const Napi::CallbackInfo& info) {
    TlsOptions o = server_->config().tls;
    o.key_file = info[0].ToString().Utf8Value();
    o.cert_file = info[1].ToString().Utf8Value();
    if (info.Length() > 2 && info[2].IsObject()) readTlsClientOptions(info[2].As<Napi::Object>(), &o);
    std::string error;
    if (!server_->reloadTls(o, &error)) throw Napi::Error::New(info.Env(), error);
    return info.Env().Undefined();
  }
  Napi::Value setAccess(const Napi::CallbackInfo& info) {
    server_->setAccessRules(readAccessRules(info.Env(), info[0]));
    return info.Env().Undefined();
  }
  Napi::Value accessStatus(const Napi::CallbackInfo& info) {
    AppSink* c = server_->app(idArg(info));
    // No connection (the client left): fail closed, nothing is run for nobody.
    int status = c == nullptr ? 403 : c->accessStatus(info[1].ToString().Utf8Value());
    return Napi::Number::New(info.Env(), status);
  }
  Napi::Value stopAccepting(const Napi::CallbackInfo& info) {
    server_->stopAccepting();
    return info.Env().Undefined();
  }
  Napi::Value stopWhenIdle(const Napi::CallbackInfo& info) {
    server_->stopAccepting();
    server_->stopWhenIdle();
    return info.Env().Undefined();
  }
  Napi::Value connectionCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(server_->connectionCount()));
  }
  Napi::Value setAccessLog(const Napi::CallbackInfo& info) {
    uint32_t id = info[0].ToNumber().Uint32Value();
    if (!server_->setAccessLog(id)) throw Napi::Error::New(info.Env(), "the access log (writer " + std::to_string(id) + ") is already closed");
    return info.Env().Undefined();
  }
  Napi::Value setFastcgi(const Napi::CallbackInfo& info) {
    std::string error;
    if (!fcgi_->setMounts(readFastcgiMounts(info.Env(), info[0]), &error)) throw Napi::Error::New(info.Env(), error);
    return info.Env().Undefined();
  }
  Napi::Value fastcgiStats(const Napi::CallbackInfo& info) { return fastcgiStatsToJs(info.Env(), fcgi_->stats()); }
  Napi::Value appSlot(const Napi::CallbackInfo& info) {
    const int mount = info[0].ToNumber().Int32Value();
    std::optional<int64_t> t = fcgi_->acquireSlot(mount);
    if (!t) throw Napi::Error::New(info.Env(), "appSlot: mount " + std::to_string(mount) + " is not served natively");
    return Napi::Number::New(info.Env(), static_cast<double>(*t));
  }
  Napi::Value appSlotRelease(const Napi::CallbackInfo& info) {
    fcgi_->releaseSlot(info[0].ToNumber().Uint32Value());
    return info.Env().Undefined();
  }
  Napi::Value close(const Napi::CallbackInfo& info) {
    server_->closeAll();
    fcgi_->closeAll();
    return info.Env().Undefined();
  }

  Napi::Env env_;
  bool finalizing_ = false;
  std::unique_ptr<FcgiDispatch> fcgi_;  // outlives server_ (its events go there)
  std::unique_ptr<Server> server_;
  Napi::ObjectReference receiver_;
  Napi::FunctionReference on_request_, on_body_, on_close_, on_drain_, on_error_;
  Napi::FunctionReference on_slot_;  // handlers.slot, optional (src/app_slots.ts)
  Napi::Reference<Napi::ArrayBuffer> body_buf_;  // see bodyView()
  std::unique_ptr<Napi::AsyncContext> context_;
};

}  // namespace

void initLogs(Napi::Env env, Napi::Object exports);  // log_writer_addon.cc

}  // namespace lisod

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  exports.Set("Server", lisod::ServerWrap::define(env));
  lisod::initSys(env, exports);
  lisod::initSpawn(env, exports);
  lisod::initIdentity(env, exports);
  lisod::initLogs(env, exports);
  lisod::initCgiOutput(env, exports);
  return exports;
}

NODE_API_MODULE(NODE_GYP_MODULE_NAME, InitAddon)
