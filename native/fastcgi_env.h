// The CGI/1.1 environment (RFC 3875 §4.1) of a request as FastCGI PARAMS bytes, built
// natively for the FastCGI data plane (fastcgi_client.cc). It must equal what
// src/cgi_env.ts buildCgiEnv builds for the same request (test/fastcgi_native_env.test.ts
// compares the two through a recording backend); when a target cannot be mapped the
// functions return false and the caller leaves the request to the TypeScript runner, which
// answers it (400) with its own words.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lisod {

struct AppRequest;
struct ClientIdentity;

// A request-target's raw path and query (absolute-form's scheme and authority dropped).
void splitCgiTarget(std::string_view target, std::string_view* path, std::string_view* query);

// RFC 3986 §2.1 percent-decoding of a path into UTF-8 text, as cgi_env.ts percentDecode
// (a leading BOM dropped, as its TextDecoder does); false on a bad escape, bytes that are
// not UTF-8, or a NUL.
bool percentDecodePath(std::string_view raw, std::string* out);

// Inherited variables ([[fastcgi]] env, pass_env, PATH, REDIRECT_STATUS) without the
// ones the request owns (HTTP_*, HTTPS, CONTENT_*, SSL_*, REMOTE_USER, AUTH_TYPE) and the
// ones the server sets itself for every request (cgi_env.ts overwrites those).
std::vector<std::pair<std::string, std::string>> filterInheritedEnv(
    const std::vector<std::pair<std::string, std::string>>& env);

struct CgiScript {
  std::string_view script_name, script_filename, path_info, query;
};

// Appends the request's environment as PARAMS name-value pairs (unframed) to out, without
// the TLS identity variables (appendIdentityParams: the connection's, kept apart so a
// local redirect can reuse them).
// inherited: filterInheritedEnv's result; server_name: SERVER_NAME without a usable Host.
void appendCgiParams(std::string& out, const AppRequest& request, const CgiScript& script,
                     const std::vector<std::pair<std::string, std::string>>& inherited, std::string_view server_name);

// SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_* and, for a verified certificate with a CN,
// REMOTE_USER and AUTH_TYPE=Cert (cgi_env.ts identityEnv).
void appendIdentityParams(std::string& out, const ClientIdentity& identity);

}  // namespace lisod
