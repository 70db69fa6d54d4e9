#!/usr/bin/python3
# Test CGI script for test/cgi_cpu.test.ts ([cgi] max_runnable), by PATH_INFO:
#   /spin/MS    computes (a busy loop) for MS milliseconds: runnable all along;
#   /sleep/MS   sleeps MS milliseconds: waiting, not runnable.
# Each run appends "NAME START END" (wall-clock ms, QUERY_STRING as NAME) to the file
# named by CPU_PROBE_LOG in one O_APPEND write, then answers "done NAME".
import os
import sys
import time

start = time.time()
_, kind, ms = os.environ.get("PATH_INFO", "/sleep/0").split("/")
name = os.environ.get("QUERY_STRING", "")
until = time.monotonic() + int(ms) / 1000
if kind == "spin":
    while time.monotonic() < until:
        pass
else:
    time.sleep(int(ms) / 1000)
end = time.time()
fd = os.open(os.environ["CPU_PROBE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.write(fd, ("%s %.1f %.1f\n" % (name, start * 1000, end * 1000)).encode())
os.close(fd)
body = ("done %s\n" % name).encode()
sys.stdout.buffer.write(b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
