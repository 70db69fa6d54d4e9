#!/bin/sh
# Test CGI script in Liso's own style: writes the whole response, status line first
# (RFC 3875 §6.2.2 NPH).
body="nph says hello to $REQUEST_METHOD $PATH_INFO"
printf 'HTTP/1.1 299 Custom NPH\r\nServer: Liso/1.0\r\nContent-Type: text/plain\r\nX-Nph: yes\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
