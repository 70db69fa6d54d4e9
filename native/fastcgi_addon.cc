#include "fastcgi_addon.h"

namespace lisod {
namespace {

std::string str(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string("setFastcgi: mount.") + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double num(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() >= 0)) {
    throw Napi::TypeError::New(o.Env(), std::string("setFastcgi: mount.") + key + " must be a number >= 0");
  }
  return v.As<Napi::Number>().DoubleValue();
}

std::optional<std::string> optionalStr(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsNull() || v.IsUndefined()) return std::nullopt;
  return str(o, key);
}

}  // namespace

std::vector<FcgiMountConfig> readFastcgiMounts(Napi::Env env, Napi::Value table) {
  if (!table.IsArray()) throw Napi::TypeError::New(env, "setFastcgi(mounts): an array");
  Napi::Array a = table.As<Napi::Array>();
  std::vector<FcgiMountConfig> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    if (!a.Get(i).IsObject()) throw Napi::TypeError::New(env, "setFastcgi: each mount is an object");
    Napi::Object o = a.Get(i).As<Napi::Object>();
    FcgiMountConfig c;
    c.mount = static_cast<int>(num(o, "mount"));
    c.prefix = str(o, "prefix");
    c.address = str(o, "address");
    c.root = optionalStr(o, "root");
    c.index = optionalStr(o, "index");
    c.script_filename = str(o, "scriptFilename");
    c.server_name = str(o, "serverName");
    c.timeout_ms = static_cast<uint64_t>(num(o, "timeoutMs"));
    c.connect_timeout_ms = static_cast<uint64_t>(num(o, "connectTimeoutMs"));
    c.max_conns = static_cast<size_t>(num(o, "maxConns"));
    c.max_queue = static_cast<size_t>(num(o, "maxQueue"));
    c.request_buffering = o.Get("requestBuffering").ToBoolean().Value();
    c.pipeline = o.Get("pipeline").ToBoolean().Value();
    c.cgi = o.Get("cgi").ToBoolean().Value();
    c.end_after_response = o.Get("endAfterResponse").ToBoolean().Value();
    if (Napi::Value v = o.Get("maxRunnable"); v.IsNumber()) c.max_runnable = static_cast<size_t>(num(o, "maxRunnable"));
    Napi::Value inherited = o.Get("inherited");
    if (!inherited.IsObject()) throw Napi::TypeError::New(env, "setFastcgi: mount.inherited must be an object");
    Napi::Object env_vars = inherited.As<Napi::Object>();
    Napi::Array names = env_vars.GetPropertyNames();
    for (uint32_t k = 0; k < names.Length(); ++k) {
      std::string name = names.Get(k).ToString().Utf8Value();
      c.inherited.emplace_back(name, env_vars.Get(name).ToString().Utf8Value());
    }
    out.push_back(std::move(c));
  }
  return out;
}

Napi::Object fastcgiStatsToJs(Napi::Env env, const FcgiStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("requests", static_cast<double>(s.requests));
  o.Set("connects", static_cast<double>(s.connects));
  o.Set("reused", static_cast<double>(s.reused));
  o.Set("pipelined", static_cast<double>(s.pipelined));
  o.Set("cpuWaits", static_cast<double>(s.cpu_waits));
  o.Set("spawned", static_cast<double>(s.spawned));
  return o;
}

}  // namespace lisod
