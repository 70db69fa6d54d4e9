#!/usr/bin/python3
# Test CGI script that fails before any output: a traceback on stderr, exit status 1.
import sys

sys.stderr.write("crash.cgi: about to fail on purpose\n")
raise RuntimeError("deliberate crash for the test")
