#!/usr/bin/python3
# Test CGI script whose answer depends on PATH_INFO: Status, Location (local and client
# redirects), 204, Content-Length, and a large streamed body for backpressure tests.
import os
import sys
from urllib.parse import parse_qs

out = sys.stdout.buffer
path = os.environ.get("PATH_INFO", "")
query = os.environ.get("QUERY_STRING", "")


def respond(head, body=b""):
    out.write(head.encode() + b"\r\n" + body)
    out.flush()


if path == "/notfound":
    respond("Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-Script: status\r\n", b"no such thing\n")
elif path == "/teapot":
    respond("Status: 418\nContent-Type: text/plain\n", b"short and stout\n")
elif path == "/client-redirect":
    respond("Location: http://example.org/elsewhere?x=1\r\n")
elif path == "/moved":
    respond("Status: 301 Moved Permanently\r\nLocation: /cgi/target\r\nContent-Type: text/html\r\n",
            b"<a href=\"/cgi/target\">moved</a>\n")
elif path == "/local":
    respond("Location: /cgi/target?from=local\r\n")
elif path == "/local-static":
    respond("Location: /index.html\r\n")
elif path == "/loop":
    respond("Location: /cgi/loop\r\n")
elif path == "/target":
    body = ("target reached by %s with query %s\n" % (os.environ["REQUEST_METHOD"], query)).encode()
    respond("Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(body), body)
elif path == "/nocontent":
    respond("Status: 204 No Content\r\n", b"this body must not be sent")
elif path == "/big":
    # mib=N MiB of a repeating pattern; writes the file marker=PATH when all is written.
    args = parse_qs(query)
    size = int(args.get("mib", ["32"])[0]) << 20
    respond("Content-Type: application/octet-stream\r\n")
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(size >> 20):
        out.write(block)
    out.flush()
    if "marker" in args:
        with open(args["marker"][0], "w") as f:
            f.write("done\n")
elif path == "/slow":
    import time
    respond("Content-Type: text/plain\r\n")
    for i in range(3):
        out.write(b"tick %d\n" % i)
        out.flush()
        time.sleep(0.5)
else:
    body = b"status.cgi: unknown path\n"
    respond("Content-Type: text/plain\r\n", body)
