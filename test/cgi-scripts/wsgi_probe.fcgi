#!/usr/bin/python3
# Test FastCGI responder: the probe WSGI application of wsgi_probe.cgi served by
# cgi-bin/wsgi_fcgi.py, plus /pid (which process answered), /slow (sleeps
# PROBE_SLEEP seconds first) and /crash (the process exits at once).
import importlib.machinery
import os
import sys
import time

here = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "cgi-bin"))
from wsgi_fcgi import main  # noqa: E402

probe = importlib.machinery.SourceFileLoader("wsgi_probe", os.path.join(here, "wsgi_probe.cgi")).load_module()


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    if path == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or os.environ.get("PROBE_SLEEP", "1")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept\n"]
    if path == "/crash":
        os._exit(3)
    if path == "/big":
        n = int(environ.get("QUERY_STRING") or "1000000")
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(n))])
        # Chunk k is 64 KiB of the byte k & 0xff: any lost or reordered chunk shows.
        return (bytes([(o >> 16) & 0xFF]) * min(65536, n - o) for o in range(0, n, 65536))
    if path == "/env":
        start_response("200 OK", [("Content-Type", "text/plain")])
        keys = sorted(k for k in environ if k.isupper())
        return ["".join("%s=%s\n" % (k, environ[k]) for k in keys).encode("latin-1")]
    return probe.app(environ, start_response)


if __name__ == "__main__":
    sys.exit(main(lambda: app))
