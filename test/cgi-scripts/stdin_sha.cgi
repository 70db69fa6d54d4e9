#!/usr/bin/python3
# Reads all of stdin before it writes a byte, then answers its length and SHA-256: an
# unbuffered upload (request_buffering = false) then waits on the pipe to this script only.
import hashlib
import sys

h = hashlib.sha256()
n = 0
while True:
    b = sys.stdin.buffer.read(65536)
    if not b:
        break
    h.update(b)
    n += len(b)
sys.stdout.write("Content-Type: text/plain\r\n\r\n%d %s\n" % (n, h.hexdigest()))
