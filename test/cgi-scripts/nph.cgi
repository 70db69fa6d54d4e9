#!/bin/sh
# Test CGI script in Liso's own style: writes the whole response, status line first
# (RFC 3875 §6.2.2 NPH). PATH_INFO picks the framing of its own head: /eof (none: the body
# ends at EOF), /close (Content-Length and Connection: close), /chunked, /long (more bytes
# than its Content-Length), /short (fewer); anything else: Content-Length.
body="nph says hello to $REQUEST_METHOD $PATH_INFO"
case "$PATH_INFO" in
  /eof) printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n%s' "$body" ;;
  /close) printf 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body" ;;
  /chunked) printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n' ;;
  /short) printf 'HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n%s' "$body" ;;
  /long) printf 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXCESS' ;;
  *) printf 'HTTP/1.1 299 Custom NPH\r\nServer: Liso/1.0\r\nContent-Type: text/plain\r\nX-Nph: yes\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body" ;;
esac
