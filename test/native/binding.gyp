# Native unit tests (not the addon): one executable built from the pure sources in
# ../../native with ASan + UBSan. Built and run by scripts/native-test.mjs.
{
  "targets": [
    {
      "target_name": "native_tests",
      "type": "executable",
      "sources": [
        "../../native/http_parser.cc",
        "../../native/http_request.cc",
        "../../native/chunked.cc",
        "../../native/static_file.cc",
        "../../native/file_cache.cc",
        "../../native/http_date.cc",
        "../../native/mime.cc",
        "../../native/access_rules.cc",
        "../../native/access_log.cc",
        "../../native/log_writer.cc",
        "../../native/cgi_output.cc",
        "../../native/nph_framing.cc",
        "../../native/fastcgi_record.cc",
        "../../native/accept_encoding.cc",
        "../../native/conditional.cc",
        "test_main.cc",
        "http_parser_test.cc",
        "http_request_test.cc",
        "chunked_test.cc",
        "static_file_test.cc",
        "date_mime_range_test.cc",
        "access_rules_test.cc",
        "access_log_test.cc",
        "cgi_output_test.cc",
        "nph_framing_test.cc",
        "fastcgi_record_test.cc",
        "encoding_test.cc"
      ],
      "cflags!": ["-fno-exceptions", "-O3", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-O3", "-O2"],
      "cflags": [
        "-O1", "-g", "-fno-omit-frame-pointer",
        "-fsanitize=address,undefined", "-fno-sanitize-recover=all"
      ],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-Wall", "-Wextra", "-Werror"],
      "ldflags": ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    }
  ]
}
