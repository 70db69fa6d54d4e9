// Node-API conversions for client identity, kept out of addon.cc: the client-certificate
// keys of a JS config object, [[access]] rules, and a ClientIdentity as a JS object.
#pragma once
#include <napi.h>

#include <memory>

#include "access_rules.h"
#include "tls_context.h"
#include "tls_identity.h"

namespace lisod {

// tlsClientAuth ('off' | 'optional' | 'require'), tlsClientCa, tlsCrl, tlsVerifyDepth (see
// TlsClientSpec in src/native.ts) into *t. Throws a JS TypeError for a wrong type.
void readTlsClientOptions(const Napi::Object& o, TlsOptions* t);

// [{ path, any, allow: [[[attr, value], …], …] }] (AccessRuleSpec[]); undefined → no rules.
std::shared_ptr<const AccessRules> readAccessRules(Napi::Env env, Napi::Value v);

// The request's tlsIdentity (TlsIdentity in src/native.ts).
Napi::Object identityToJs(Napi::Env env, const ClientIdentity& id);

// Module functions: crlInfo(path) → [{ issuer, nextUpdate (ms or null) }], throws with a
// message naming the file (the config check reads CRLs the way the TLS context does).
void initIdentity(Napi::Env env, Napi::Object exports);

}  // namespace lisod
