// Process start for CGI scripts via posix_spawn and exit watching via pidfd.
#pragma once
#include <napi.h>

namespace lisod {

// Sets spawnProcess and watchExit on exports (contracts in src/native.ts).
void initSpawn(Napi::Env env, Napi::Object exports);

}  // namespace lisod
