#include "identity_addon.h"

#include "tls_client_verify.h"

#include <string>
#include <utility>
#include <vector>

namespace lisod {
namespace {

// The string at o[key], or fallback when absent.
std::string text(const Napi::Object& o, const char* key, const char* fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

}  // namespace

void readTlsClientOptions(const Napi::Object& o, TlsOptions* t) {
  std::string auth = text(o, "tlsClientAuth", "off");
  t->client_auth = auth == "require"    ? TlsOptions::ClientAuth::kRequire
                   : auth == "optional" ? TlsOptions::ClientAuth::kOptional
                                        : TlsOptions::ClientAuth::kOff;
  t->client_ca = text(o, "tlsClientCa", "");
  t->crl = text(o, "tlsCrl", "");
  Napi::Value depth = o.Get("tlsVerifyDepth");
  t->verify_depth = depth.IsNumber() ? depth.As<Napi::Number>().Int32Value() : 4;
}

std::shared_ptr<const AccessRules> readAccessRules(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return std::make_shared<AccessRules>();
  if (!v.IsArray()) throw Napi::TypeError::New(env, "access rules must be an array");
  std::vector<AccessRule> rules;
  Napi::Array arr = v.As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Object r = arr.Get(i).ToObject();
    AccessRule rule;
    rule.prefix = text(r, "path", "/");
    rule.any_verified = r.Get("any").ToBoolean().Value();
    Napi::Value allow = r.Get("allow");
    Napi::Array entries = allow.IsArray() ? allow.As<Napi::Array>() : Napi::Array::New(env);
    for (uint32_t e = 0; e < entries.Length(); ++e) {
      Napi::Array pairs = entries.Get(e).As<Napi::Array>();
      std::vector<std::pair<std::string, std::string>> entry;
      for (uint32_t p = 0; p < pairs.Length(); ++p) {
        Napi::Array pair = pairs.Get(p).As<Napi::Array>();
        entry.emplace_back(pair.Get(0u).ToString().Utf8Value(), pair.Get(1u).ToString().Utf8Value());
      }
      rule.allow.push_back(std::move(entry));
    }
    rules.push_back(std::move(rule));
  }
  return std::make_shared<AccessRules>(std::move(rules));
}

Napi::Object identityToJs(Napi::Env env, const ClientIdentity& id) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("verify", id.verify_text);
  t.Set("protocol", id.protocol);
  t.Set("cipher", id.cipher);
  if (!id.cert_pem.empty()) {  // a certificate was presented
    t.Set("subjectDn", id.subject_dn);
    t.Set("subjectCn", id.subject_cn);
    t.Set("issuerDn", id.issuer_dn);
    t.Set("serial", id.serial_hex);
    t.Set("notBefore", id.not_before);
    t.Set("notAfter", id.not_after);
    t.Set("certPem", id.cert_pem);
  }
  return t;
}

void initIdentity(Napi::Env env, Napi::Object exports) {
  exports.Set("crlInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    std::vector<CrlInfo> crls;
    std::string error;
    if (!readCrlInfo(info[0].ToString().Utf8Value(), &crls, &error)) throw Napi::Error::New(info.Env(), error);
    Napi::Array out = Napi::Array::New(info.Env(), crls.size());
    for (size_t i = 0; i < crls.size(); ++i) {
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("issuer", crls[i].issuer);
      o.Set("nextUpdate", crls[i].next_update < 0 ? info.Env().Null()
                                                   : Napi::Number::New(info.Env(), static_cast<double>(crls[i].next_update) * 1000));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }, "crlInfo"));
}

}  // namespace lisod
