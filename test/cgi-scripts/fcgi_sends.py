#!/usr/bin/python3
# Counts the sends cgi-bin/wsgi_fcgi.py makes per request: serves one request of each
# test application over a socketpair whose responder end records every sendall(), and
# prints, per application, the number of sends and the record types of each as JSON.
import json
import os
import socket
import struct
import sys
import threading

here = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, os.path.join(here, "..", "..", "cgi-bin"))
import wsgi_fcgi  # noqa: E402


class Recorder:
    def __init__(self, sock):
        self.sock, self.sends = sock, []

    def recv(self, n, flags=0):
        return self.sock.recv(n, flags)

    def fileno(self):
        return self.sock.fileno()

    def sendall(self, data):
        self.sends.append(bytes(data))
        self.sock.sendall(data)


def record_types(data):
    types, at = [], 0
    while at < len(data):
        _, rtype, _, clen, plen = struct.unpack_from(">BBHHB", data, at)
        types.append(rtype)
        at += 8 + clen + plen
    return types


def gen(chunks):
    yield from chunks


APPS = {
    "length": ([("Content-Length", "5")], lambda: [b"hello"]),
    "length-generator": ([("Content-Length", "10")], lambda: gen([b"hello", b"world"])),
    "head": ([("Content-Length", "5")], lambda: []),
    "list": ([], lambda: [b"a", b"b", b""]),
    "stream": ([], lambda: gen([b"one", b"two"])),
}


def serve(name):
    headers, body = APPS[name]

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")] + headers)
        return body()

    ours, theirs = socket.socketpair()
    rec = Recorder(ours)
    params = wsgi_fcgi.encode_pairs([(b"REQUEST_METHOD", b"GET"), (b"SCRIPT_NAME", b""), (b"PATH_INFO", b"/")])
    request = (wsgi_fcgi.encode_records(wsgi_fcgi.FCGI_BEGIN_REQUEST, 1, struct.pack(">HB5x", 1, 0))
               + wsgi_fcgi.encode_records(wsgi_fcgi.FCGI_PARAMS, 1, params)
               + wsgi_fcgi.encode_records(wsgi_fcgi.FCGI_PARAMS, 1, b"")
               + wsgi_fcgi.encode_records(wsgi_fcgi.FCGI_STDIN, 1, b""))
    theirs.sendall(request)
    worker = threading.Thread(target=wsgi_fcgi.serve_connection, args=(rec, app, wsgi_fcgi._State()))
    worker.start()
    worker.join(10)
    ours.close()
    got = b""
    while True:
        part = theirs.recv(1 << 16)
        if not part:
            break
        got += part
    stdout = b"".join(c for c in _contents(got, wsgi_fcgi.FCGI_STDOUT))
    return {"sends": [record_types(s) for s in rec.sends], "body": stdout.split(b"\r\n\r\n", 1)[1].decode()}


def _contents(data, want):
    at = 0
    while at < len(data):
        _, rtype, _, clen, plen = struct.unpack_from(">BBHHB", data, at)
        if rtype == want:
            yield data[at + 8:at + 8 + clen]
        at += 8 + clen + plen


print(json.dumps({name: serve(name) for name in APPS}))
