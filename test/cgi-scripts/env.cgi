#!/usr/bin/python3
# Test CGI script: answers with its whole environment and the sha256/length of stdin as
# JSON. QUERY_STRING "delay=N" sleeps N seconds before reading stdin (upload backpressure).
import hashlib
import json
import os
import sys
import time
from urllib.parse import parse_qs

query = parse_qs(os.environ.get("QUERY_STRING", ""))
if "delay" in query:
    time.sleep(float(query["delay"][0]))
digest = hashlib.sha256()
length = 0
stdin = sys.stdin.buffer
while True:
    chunk = stdin.read(65536)
    if not chunk:
        break
    digest.update(chunk)
    length += len(chunk)
body = json.dumps({
    "env": dict(os.environ),
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "body_sha256": digest.hexdigest(),
    "body_length": length,
}, sort_keys=True).encode()
out = sys.stdout.buffer
out.write(b"Content-Type: application/json\r\n")
out.write(b"X-Request-Method: " + os.environ.get("REQUEST_METHOD", "").encode() + b"\r\n")
out.write(b"Content-Length: %d\r\n\r\n" % len(body))
out.write(body)
