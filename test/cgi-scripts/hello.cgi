#!/usr/bin/python3
# Trivial test CGI script (also the CGI benchmark baseline).
import sys

sys.stdout.write("Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nHello\n")
