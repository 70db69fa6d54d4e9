#!/usr/bin/python3
# Test CGI script for client identity: /go answers with a local redirect to /cgi/admin;
# /admin* appends a line to $MARKER (so a test can tell whether it ran); everything else
# answers the identity variables as JSON.
import json
import os
import sys

path = os.environ.get("PATH_INFO", "")
if path == "/go":
    sys.stdout.write("Location: /cgi/admin/from-redirect\r\n\r\n")
    sys.exit(0)
if path.startswith("/admin") and os.environ.get("MARKER"):
    with open(os.environ["MARKER"], "a") as f:
        f.write(path + "\n")
names = [k for k in os.environ if k.startswith("SSL_") or k in ("REMOTE_USER", "AUTH_TYPE", "HTTPS")]
body = json.dumps({k: os.environ[k] for k in names}, sort_keys=True).encode()
sys.stdout.write("Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
sys.stdout.flush()
sys.stdout.buffer.write(body)
