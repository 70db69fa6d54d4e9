// Node-API face of the CGI output head parser (cgi_output.h) for src/cgi_output.ts.
#pragma once
#include <napi.h>

namespace lisod {

// Sets on exports (types in src/native.ts):
//   parseCgiHead(buf, maxHead, scanned) -> Int32Array | null
//       parseCgiHead over the Buffer; null while incomplete, else the layout below with
//       layout[0] = the head's length, or -2 when it grew past maxHead.
//   interpretCgiLines(buf, lineEnds) -> Int32Array
//       interpretCgiLines over the lines buf[lineEnds[i-1], lineEnds[i]) (from 0 for the
//       first); layout[0] = 0.
// Layout (byte offsets into buf; -1 when absent): [head, kind, error, errorStart,
// errorEnd, status, hasStatus, reasonStart, reasonEnd, hasLocation, locationStart,
// locationEnd, fieldCount, then nameStart, nameEnd, valueStart, valueEnd per field].
// kind and error are CgiKind and CgiError in declaration order.
void initCgiOutput(Napi::Env env, Napi::Object exports);

}  // namespace lisod
