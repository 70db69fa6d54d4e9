#!/usr/bin/python3
# Test CGI script for applications over HTTP/2, by PATH_INFO: /env (environment and the
# sha256/length of stdin as JSON), /echo (stdin streamed back, Content-Length from
# CONTENT_LENGTH), /big?mib=N&marker=FILE (N MiB, then FILE is written), /sleep?s=N,
# /nph and /nph-chunked (the whole response, status line first), /short (fewer bytes than
# its Content-Length), /local (local redirect).
import hashlib
import json
import os
import sys
import time
from urllib.parse import parse_qs

out = sys.stdout.buffer
stdin = sys.stdin.buffer
path = os.environ.get("PATH_INFO", "")
query = {k: v[0] for k, v in parse_qs(os.environ.get("QUERY_STRING", "")).items()}

if path == "/echo":
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    out.write(b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % length)
    while True:
        chunk = stdin.read1(65536)
        if not chunk:
            break
        out.write(chunk)
        out.flush()
elif path == "/big":
    out.write(b"Content-Type: application/octet-stream\r\nConnection: keep-alive\r\nX-Upper: Yes\r\n\r\n")
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(int(query.get("mib", "1"))):
        out.write(block)
    out.flush()
    if "marker" in query:
        with open(query["marker"], "w") as f:
            f.write("done\n")
elif path == "/sleep":
    time.sleep(float(query.get("s", "1")))
    out.write(b"Content-Type: text/plain\r\n\r\nslept\n")
elif path == "/nph":
    body = b"nph over h2"
    out.write(b"HTTP/1.1 299 Custom\r\nConnection: close\r\nServer: nph\r\nX-Nph: yes\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
elif path == "/nph-chunked":
    out.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n")
elif path == "/short":
    out.write(b"Content-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly this")
elif path == "/local":
    out.write(b"Location: /cgi/env?from=local\r\n\r\n")
else:
    digest = hashlib.sha256()
    length = 0
    while True:
        chunk = stdin.read(65536)
        if not chunk:
            break
        digest.update(chunk)
        length += len(chunk)
    body = json.dumps({"env": dict(os.environ), "body_sha256": digest.hexdigest(), "body_length": length}).encode()
    out.write(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    out.write(body)
