// Where the application (JavaScript's app runner) writes one response: an HTTP/1.1
// connection (connection_app.cc) or an HTTP/2 stream (h2_app.cc). Server::app(id) finds
// the sink of an AppRequest id; the addon forwards beginResponse/write/end/… to it.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "access_rules.h"
#include "tls_identity.h"

namespace lisod {

class AppSink {
 public:
  virtual ~AppSink() = default;
  // Parsed-header response: headers are flat name, value pairs (checked by the addon).
  // The sink adds Server, Date and its own framing; it drops hop-by-hop fields.
  virtual void appBegin(int status, const std::string& reason, const std::vector<std::string>& headers) = 0;
  // NPH: the bytes written next start with the script's own status line and head.
  // keep_alive: that head frames the body (HTTP/1.1 only; HTTP/2 frames it itself).
  virtual void appBeginRaw(bool keep_alive) = 0;
  virtual bool appWrite(const char* data, size_t len) = 0;  // false: above high water, wait for drain
  virtual void appEnd() = 0;
  // Cut short: what was written still goes out, then the response ends without its
  // framing (HTTP/1.1 closes the connection, HTTP/2 resets the stream).
  virtual void appAbort() = 0;
  virtual void appPauseBody(bool paused) = 0;
  // [[access]] verdict for a request-target on this request's connection (0 = allowed):
  // the check a CGI local redirect repeats before re-dispatching.
  virtual int accessStatus(std::string_view target) = 0;
};

// The [[access]] verdict for a request-target (origin-form, any query ignored).
int accessStatusFor(const AccessRules& rules, std::string_view target, const ClientIdentity* identity);

}  // namespace lisod
