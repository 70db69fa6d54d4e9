// Reading a CGI script's output pipes on the loop without a net.Socket per pipe.
#pragma once
#include <napi.h>

namespace lisod {

// Sets the PipeReader class on exports (contract in src/native.ts).
void initPipeReader(Napi::Env env, Napi::Object exports);

}  // namespace lisod
