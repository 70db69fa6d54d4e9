#!/usr/bin/python3
# Test CGI script for test/cgi_native.test.ts, by PATH_INFO:
#   /fixed   a fixed answer (Status, repeated header, body) to compare the two CGI paths;
#   /signal  a stderr line, then SIGKILL to itself before any output;
#   /crash   exits with status 3 before any output;
#   /flood   2 MiB to stderr in one write, a last stderr line 0.1 s later (so the dropped
#            count has a line to ride on; with QUERY_STRING "no-tail" exactly 2 MiB and no
#            line after), then a 100 KiB body with its sha256 and the pid in headers;
#   /slow    head and a first line, 0.2 s asleep, then the rest;
#   /hold    waits (at most 20 s) until the file named by QUERY_STRING exists, then "held\n";
#   /die-after-head, /fail-after-head  a head without Content-Length and a first line, then
#            SIGKILL to itself, or exit status 4 (the body must not look complete);
#   else     its exact environment (/proc/self/environ, before Python's PEP 538 locale
#            coercion adds LC_CTYPE) with argv, cwd and stdin's length and sha256, as JSON
#            (in the body and, base64, in the header X-Dump).
# With NATIVE_PROBE_LOG set, each run appends "S <pid>" when it starts and "E <pid>" before
# it exits (one O_APPEND write each, so the file's line order is the order of the events).
import base64
import hashlib
import json
import os
import signal
import sys
import time

out = sys.stdout.buffer
path = os.environ.get("PATH_INFO", "")
record_to = os.environ.get("NATIVE_PROBE_LOG")


def record(what):
    if record_to:
        fd = os.open(record_to, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, ("%s %d\n" % (what, os.getpid())).encode())
        os.close(fd)


def leave(status):
    record("E")
    out.flush()
    os._exit(status)


def on_term(signum, frame):
    # lisod ends a script whose client left with SIGTERM: its end is still recorded.
    leave(128 + signum)


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
record("S")

if path == "/fixed":
    out.write(b"Status: 201 Made Here\r\nContent-Type: text/plain\r\nX-Probe: one\r\nX-Probe: two\r\n"
              b"Cache-Control: no-store\r\n\r\nfixed body\n")
    leave(0)
elif path == "/signal":
    sys.stderr.write("native-probe: about to kill myself\n")
    sys.stderr.flush()
    record("E")  # now: SIGKILL leaves no chance later
    os.kill(os.getpid(), signal.SIGKILL)
elif path == "/crash":
    sys.stderr.write("native-probe: exiting with status 3\n")
    sys.stderr.flush()
    leave(3)
elif path == "/flood":
    if os.environ.get("QUERY_STRING") == "no-tail":
        # Whole pages only: every read lisod makes is a multiple of 4 KiB, so no last small
        # piece fits the budget and carries the dropped count; the stream's end must.
        sys.stderr.buffer.write(b"x" * (2 << 20))
    else:
        sys.stderr.buffer.write(b"f" * 64 + b"\n" + b"x" * (2 << 20) + b"\n")
    sys.stderr.flush()
    if os.environ.get("QUERY_STRING") != "no-tail":
        time.sleep(0.1)
        sys.stderr.write("native-probe: flood over\n")
        sys.stderr.flush()
    body = bytes(range(256)) * 400
    out.write(b"Content-Type: application/octet-stream\r\nX-Sha256: %s\r\nX-Pid: %d\r\nContent-Length: %d\r\n\r\n"
              % (hashlib.sha256(body).hexdigest().encode(), os.getpid(), len(body)))
    out.write(body)
    leave(0)
elif path in ("/die-after-head", "/fail-after-head"):
    out.write(b"Content-Type: text/plain\r\n\r\npartial\n")
    out.flush()
    if path == "/fail-after-head":
        leave(4)
    record("E")
    os.kill(os.getpid(), signal.SIGKILL)
elif path == "/hold":
    deadline = time.monotonic() + 20
    while not os.path.exists(os.environ.get("QUERY_STRING", "")) and time.monotonic() < deadline:
        time.sleep(0.02)
    out.write(b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nheld\n")
    leave(0)
elif path == "/slow":
    out.write(b"Content-Type: text/plain\r\n\r\nfirst\n")
    out.flush()
    time.sleep(0.2)
    out.write(b"second\n")
    leave(0)

digest = hashlib.sha256()
length = 0
while True:
    chunk = sys.stdin.buffer.read(65536)
    if not chunk:
        break
    digest.update(chunk)
    length += len(chunk)
with open("/proc/self/environ", "rb") as f:
    environ = [e.decode("latin-1") for e in f.read().split(b"\0") if e]
body = json.dumps({
    "environ": environ,
    "argv": sys.argv[1:],
    "cwd": os.getcwd(),
    "body_sha256": digest.hexdigest(),
    "body_length": length,
}, sort_keys=True).encode()
# The dump also goes in a header: the answer to a HEAD request has no body.
out.write(b"Content-Type: application/json\r\nX-Dump: %s\r\nContent-Length: %d\r\n\r\n"
          % (base64.b64encode(body), len(body)))
out.write(body)
leave(0)
