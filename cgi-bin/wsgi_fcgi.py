"""Run a WSGI (PEP 3333) application as a FastCGI 1.0 responder.

One process, one request at a time, request after request: the application is
imported once. The listening socket is fd 0 (FCGI_LISTENSOCK_FILENO, the
convention of lighttpd's ``bin-path`` and spawn-fcgi), or ``--bind unix:PATH`` /
``--bind HOST:PORT`` for a server started on its own (nginx's ``fastcgi_pass``).

Protocol (https://fastcgi-archives.github.io/FastCGI_Specification.html):
BEGIN_REQUEST (responder role; FCGI_KEEP_CONN keeps the connection for the next
request), PARAMS until the empty record, STDIN until the empty record (spooled:
memory, then a temporary file), then the application runs and its response goes
out as STDOUT records, ``wsgi.errors`` as STDERR records, and END_REQUEST with
the application status. FCGI_GET_VALUES is answered (one connection, one
request, no multiplexing); a second BEGIN_REQUEST while one is still being read
gets FCGI_CANT_MPX_CONN, one that comes after the active request's last STDIN
record waits, unread, until that request has ended (a web server may send the next
request early so that this process finds it waiting; they are served in order);
FCGI_ABORT_REQUEST ends the request (checked between output writes).
SIGTERM/SIGINT/SIGHUP: exit now when idle, else after the current request (a
request waiting behind it is left unanswered: the web server sends it again).
"""

import os
import select
import signal
import socket
import stat
import struct
import sys
import tempfile

from wsgi_common import run_wsgi

__all__ = ["run_with_fastcgi", "main"]

FCGI_BEGIN_REQUEST, FCGI_ABORT_REQUEST, FCGI_END_REQUEST = 1, 2, 3
FCGI_PARAMS, FCGI_STDIN, FCGI_STDOUT, FCGI_STDERR = 4, 5, 6, 7
FCGI_GET_VALUES, FCGI_GET_VALUES_RESULT, FCGI_UNKNOWN_TYPE = 9, 10, 11
FCGI_RESPONDER = 1
FCGI_KEEP_CONN = 1
FCGI_REQUEST_COMPLETE, FCGI_CANT_MPX_CONN, FCGI_UNKNOWN_ROLE = 0, 1, 3

_MAX_CONTENT = 0xFFFF
_SPOOL_MEMORY = 1 << 20
_READ_AHEAD = 1 << 20  # bytes of requests sent behind the active one that poll() buffers
_PADDING = bytes(8)
_VALUES = {"FCGI_MAX_CONNS": b"1", "FCGI_MAX_REQS": b"1", "FCGI_MPXS_CONNS": b"0"}


class ProtocolError(Exception):
    """The web server broke the protocol; the connection is dropped."""


class RequestAborted(ConnectionError):
    """FCGI_ABORT_REQUEST arrived for the request being served."""


def encode_records(rtype, request_id, content):
    """``content`` as records of at most 65,535 bytes, padded to 8; empty → one empty record."""
    out = []
    offset = 0
    while True:
        piece = content[offset:offset + _MAX_CONTENT]
        padding = -len(piece) % 8
        out.append(struct.pack(">BBHHBx", 1, rtype, request_id, len(piece), padding))
        out.append(piece)
        out.append(_PADDING[:padding])
        offset += len(piece)
        if offset >= len(content):
            return b"".join(out)


def end_request_record(rid, app_status, protocol_status):
    body = struct.pack(">IB3x", app_status & 0xFFFFFFFF, protocol_status)
    return encode_records(FCGI_END_REQUEST, rid, body)


def _nv_length(n):
    return bytes((n,)) if n < 0x80 else struct.pack(">I", n | 0x80000000)


def encode_pairs(pairs):
    return b"".join(_nv_length(len(n)) + _nv_length(len(v)) + n + v for n, v in pairs)


def decode_pairs(data):
    """Name-value pairs (spec §3.4) as a list of (bytes, bytes)."""
    out, i, end = [], 0, len(data)

    def length():
        nonlocal i
        if i >= end:
            raise ProtocolError("truncated name-value length")
        if data[i] < 0x80:
            i += 1
            return data[i - 1]
        if i + 4 > end:
            raise ProtocolError("truncated name-value length")
        (n,) = struct.unpack_from(">I", data, i)
        i += 4
        return n & 0x7FFFFFFF

    while i < end:
        nl, vl = length(), length()
        if i + nl + vl > end:
            raise ProtocolError("name-value pair runs past its stream")
        out.append((bytes(data[i:i + nl]), bytes(data[i + nl:i + nl + vl])))
        i += nl + vl
    return out


class Connection:
    """One web-server connection: buffered record reading, record writing, abort polling."""

    def __init__(self, sock):
        self.sock = sock
        self._buf = bytearray()
        self.active = None  # the request id being served
        self.aborted = False
        self._refused = set()  # ids answered with CANT_MPX_CONN whose records are skipped

    def _take(self):
        if len(self._buf) < 8:
            return None
        version, rtype, rid, clen, plen = struct.unpack_from(">BBHHB", self._buf)
        if version != 1:
            raise ProtocolError("record version %d" % version)
        total = 8 + clen + plen
        if len(self._buf) < total:
            return None
        content = bytes(self._buf[8:8 + clen])
        del self._buf[:total]
        return rtype, rid, content

    def _fill(self, block):
        try:
            data = self.sock.recv(1 << 16, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        if not data:
            if self._buf:
                raise ProtocolError("connection closed mid-record")
            return False
        self._buf += data
        return True

    def next_record(self):
        """The next record meant for the active request (or a new one); None at end of stream.

        Management records and records of refused requests are answered here.
        """
        while True:
            rec = self._take()
            if rec is None:
                if not self._fill(True):
                    return None
                continue
            rec = self._screen(rec)
            if rec is not None:
                return rec

    def _screen(self, rec):
        rtype, rid, content = rec
        if rid == 0:
            if rtype == FCGI_GET_VALUES:
                asked = [name.decode("latin-1") for name, _ in decode_pairs(content)]
                answer = [(n.encode(), _VALUES[n]) for n in asked if n in _VALUES]
                self.send(FCGI_GET_VALUES_RESULT, 0, encode_pairs(answer))
            else:
                self.send(FCGI_UNKNOWN_TYPE, 0, bytes((rtype,)) + bytes(7))
            return None
        if self.active is not None and rid != self.active:
            if rtype == FCGI_BEGIN_REQUEST:
                self._refused.add(rid)
                self.end_request(rid, 0, FCGI_CANT_MPX_CONN)
            return None
        if rid in self._refused:
            if rtype == FCGI_BEGIN_REQUEST:
                self._refused.discard(rid)
                return rec
            return None
        if self.active is not None and rtype == FCGI_ABORT_REQUEST:
            self.aborted = True
            raise RequestAborted()
        return rec

    def _ours_next(self):
        """Whether the buffer starts with a record of the active request or a management one."""
        if len(self._buf) < 8:
            return False
        rid = struct.unpack_from(">H", self._buf, 2)[0]
        return rid == 0 or rid == self.active

    def poll(self):
        """Reads whatever arrived without blocking; raises RequestAborted for our request.

        Records of a request sent behind the active one stay in the buffer for
        next_record(), and so does everything after them.
        """
        while len(self._buf) < _READ_AHEAD and select.select([self.sock], [], [], 0)[0]:
            if not self._fill(False):
                raise ConnectionResetError("web server closed the connection")
            while self._ours_next():
                rec = self._take()
                if rec is None:
                    break
                if self._screen(rec) is not None:
                    raise ProtocolError("record type %d during the response" % rec[0])
            if not self._buf:
                continue
            break

    def send(self, rtype, rid, content):
        self.sock.sendall(encode_records(rtype, rid, content))

    def end_request(self, rid, app_status, protocol_status):
        self.sock.sendall(end_request_record(rid, app_status, protocol_status))


class _Stdout:
    """Binary stream of STDOUT records: write() buffers, flush() sends (after an abort check)."""

    def __init__(self, conn, rid):
        self._conn, self._rid, self._parts = conn, rid, []

    def write(self, data):
        self._parts.append(bytes(data))
        return len(data)

    def take(self):
        """The buffered bytes as STDOUT records (b"" when none), after an abort check."""
        if not self._parts:
            return b""
        data = b"".join(self._parts)
        self._parts = []
        self._conn.poll()
        return encode_records(FCGI_STDOUT, self._rid, data) if data else b""

    def flush(self):
        records = self.take()
        if records:
            self._conn.sock.sendall(records)


class _Stderr:
    """Text stream of STDERR records (``wsgi.errors``)."""

    def __init__(self, conn, rid):
        self._conn, self._rid, self.used = conn, rid, False

    def write(self, text):
        data = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
        if data:
            self.used = True
            self._conn.send(FCGI_STDERR, self._rid, data)
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass


class _State:
    busy = False
    stopping = False


def _read_stream(conn, rid, rtype, sink):
    """Feeds ``rtype`` records of request ``rid`` to ``sink`` until the empty one."""
    while True:
        rec = conn.next_record()
        if rec is None:
            raise ConnectionResetError("web server closed the connection")
        got, got_rid, content = rec
        if got_rid != rid or got != rtype:
            raise ProtocolError("record type %d while reading stream type %d" % (got, rtype))
        if not content:
            return
        sink(content)


def serve_request(conn, rid, application):
    """Reads PARAMS and STDIN of request ``rid`` and runs the application on them."""
    conn.active, conn.aborted = rid, False
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_MEMORY)
    try:
        params = bytearray()
        _read_stream(conn, rid, FCGI_PARAMS, params.extend)
        environ = {n.decode("latin-1"): v.decode("latin-1") for n, v in decode_pairs(params)}
        _read_stream(conn, rid, FCGI_STDIN, spool.write)
        spool.seek(0)
        stdout, stderr = _Stdout(conn, rid), _Stderr(conn, rid)
        status = run_wsgi(application, environ, spool, stdout, stderr, run_once=False, flush_last=False)
        # The response's last bytes, the stream ends and END_REQUEST in one send: one
        # wake-up of the web server per response, not two or three.
        tail = stdout.take() + encode_records(FCGI_STDOUT, rid, b"")
        if stderr.used:
            tail += encode_records(FCGI_STDERR, rid, b"")
        conn.sock.sendall(tail + end_request_record(rid, status, FCGI_REQUEST_COMPLETE))
    except RequestAborted:
        conn.end_request(rid, 1, FCGI_REQUEST_COMPLETE)
    finally:
        conn.active = None
        spool.close()


def serve_connection(sock, application, state):
    conn = Connection(sock)
    while not state.stopping:
        rec = conn.next_record()
        if rec is None:
            return
        rtype, rid, content = rec
        if rtype == FCGI_BEGIN_REQUEST:
            if len(content) != 8:
                raise ProtocolError("BEGIN_REQUEST body of %d bytes" % len(content))
            role, flags = struct.unpack_from(">HB", content)
            if role != FCGI_RESPONDER:
                conn.end_request(rid, 0, FCGI_UNKNOWN_ROLE)
                continue
            state.busy = True
            try:
                serve_request(conn, rid, application)
            finally:
                state.busy = False
            if not flags & FCGI_KEEP_CONN:
                return
        # Anything else for a request that is not active (a late ABORT, leftovers) is dropped.


def _listener_from_fd0():
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        mode = 0
    if not stat.S_ISSOCK(mode):
        return None
    sock = socket.socket(fileno=0)
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        return None
    return sock


def bind(address):
    """A listening socket for "unix:PATH" or "HOST:PORT" (a stale socket file is replaced)."""
    if address.startswith("unix:"):
        path = address[5:]
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
    else:
        host, _, port = address.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
    sock.listen(128)
    return sock


def run_with_fastcgi(application, listener):
    """Serves connections from ``listener`` one at a time until a stop signal."""
    state = _State()

    def stop(signum, frame):
        state.stopping = True
        if not state.busy:
            raise SystemExit(0)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    while not state.stopping:
        try:
            sock, _ = listener.accept()
        except InterruptedError:
            continue
        with sock:
            try:
                serve_connection(sock, application, state)
            except ProtocolError as e:
                sys.stderr.write("fastcgi: dropping the connection: %s\n" % e)
            except (ConnectionError, BrokenPipeError):
                pass  # the web server went away mid-request (its client disconnected)
    return 0


def main(load_application, argv=None):
    """Entry point of a ``.fcgi`` script: ``load_application()`` runs once, before serving.

    Returns the exit status. Without fd 0 as a listening socket or ``--bind ADDRESS``
    it says how to start it.
    """
    argv = sys.argv[1:] if argv is None else argv
    name = os.path.basename(sys.argv[0]) or "fcgi"
    if len(argv) == 2 and argv[0] == "--bind":
        listener = bind(argv[1])
    elif not argv:
        listener = _listener_from_fd0()
        if listener is None:
            sys.stderr.write(
                "%s: a FastCGI responder: start it with a listening socket as fd 0 "
                "(lisod [[fastcgi]] command, lighttpd bin-path, spawn-fcgi) or with "
                "--bind unix:PATH | --bind HOST:PORT\n" % name)
            return 2
    else:
        sys.stderr.write("usage: %s [--bind unix:PATH | --bind HOST:PORT]\n" % name)
        return 2
    application = load_application()
    return run_with_fastcgi(application, listener)

