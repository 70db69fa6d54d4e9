#!/usr/bin/python3
# Test CGI script: a small WSGI application run through cgi-bin/wsgi_cgi.py whose
# behaviour depends on PATH_INFO, to exercise the bridge (PEP 3333 corners).
import atexit
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "cgi-bin"))
from wsgi_cgi import end_process, run_with_cgi  # noqa: E402


class ClosingBody:
    def __init__(self, chunks):
        self._chunks = chunks

    def __iter__(self):
        return iter(self._chunks)

    def close(self):
        sys.stderr.write("wsgi_probe: close() called\n")


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    if path == "/environ":
        stream = environ["wsgi.input"]
        first = stream.read(10)
        rest = stream.read()  # unbounded: must stop at CONTENT_LENGTH
        after = stream.read(1)
        body = first + rest
        info = {
            "url_scheme": environ["wsgi.url_scheme"],
            "version": list(environ["wsgi.version"]),
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "run_once": environ["wsgi.run_once"],
            "script_name": environ["SCRIPT_NAME"],
            "path_info": environ["PATH_INFO"],
            "query": environ.get("QUERY_STRING"),
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "after_end": after.decode("latin-1"),
            "native_strings": all(isinstance(v, str) for k, v in environ.items() if k.isupper()),
        }
        out = json.dumps(info).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))])
        return [out]
    if path == "/atexit":
        # end_process: the response pipe is closed before the atexit handlers run.
        atexit.register(lambda: sys.stderr.write(
            "wsgi_probe: atexit ran, fd 1 -> %s\n" % os.readlink("/proc/self/fd/1")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"registered\n"]
    if path == "/binary":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [bytes(range(256)) * 4, b"\r\n\r\n\x00end"]
    if path == "/raise":
        raise RuntimeError("probe failure before start_response")
    if path == "/raise-after":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def gen():
            yield b"partial "
            raise RuntimeError("probe failure after the headers")
        return gen()
    if path == "/exc-info":
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise ValueError("handled")
        except ValueError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"recovered\n"]
    if path == "/write":
        write = start_response("201 Created", [("Content-Type", "text/plain")])
        write(b"via write(); ")
        return [b"then iterable\n"]
    if path == "/empty":
        start_response("404 Not Found", [("X-Probe", "empty")])
        return ClosingBody([b"", b""])
    if path == "/bad-header":
        start_response("200 OK", [("X-Bad", "a\r\nInjected: 1")])
        return [b"never"]
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ClosingBody([b"probe ", b"ok\n"])


if __name__ == "__main__":
    end_process(run_with_cgi(app))
