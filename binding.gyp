{
  "targets": [
    {
      "target_name": "lisod",
      "sources": [
        "native/addon.cc",
        "native/server.cc",
        "native/connection.cc",
        "native/transport.cc",
        "native/tls_context.cc",
        "native/http_parser.cc",
        "native/http_request.cc",
        "native/chunked.cc",
        "native/static_file.cc",
        "native/http_date.cc",
        "native/mime.cc",
        "native/sys.cc",
        "native/response.cc",
        "native/connection_static.cc",
        "native/response_plan.cc",
        "native/connection_h2.cc",
        "native/h2_session.cc",
        "native/h2_app.cc",
        "native/static_coding.cc",
        "native/conditional.cc",
        "native/accept_encoding.cc",
        "native/compress_cache.cc",
        "native/connection_app.cc",
        "native/file_cache.cc",
        "native/spawn.cc",
        "native/script_runs.cc",
        "native/tls_identity.cc",
        "native/tls_client_verify.cc",
        "native/access_rules.cc",
        "native/identity_addon.cc",
        "native/access_log.cc",
        "native/log_writer.cc",
        "native/log_writer_addon.cc",
        "native/cgi_output.cc",
        "native/cgi_output_addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
