// JavaScript's side of the native FastCGI client: the mount table src/app_mounts.ts hands
// over (FastCgiNativeMount in src/native.ts) and the counters tests read.
#pragma once
#include <napi.h>

#include <vector>

#include "fastcgi_client.h"

namespace lisod {

// Throws a TypeError naming the field when the table is malformed.
std::vector<FcgiMountConfig> readFastcgiMounts(Napi::Env env, Napi::Value table);
Napi::Object fastcgiStatsToJs(Napi::Env env, const FcgiStats& stats);

}  // namespace lisod
