"""The WSGI (PEP 3333) side shared by the CGI bridge and the FastCGI responder.

``run_wsgi`` calls an application once for one request and writes its response
as CGI parsed headers (``Status:`` first, RFC 3875 §6.3) followed by the body,
flushed as the application yields it. Where the bytes go (a CGI script's stdout
or FastCGI STDOUT records) is the caller's ``stdout``; nothing here knows.
"""

import traceback

__all__ = ["LimitedInput", "error_app", "error_page", "run_wsgi", "send_error"]


class LimitedInput:
    """A read-only byte stream that yields at most ``limit`` bytes of ``raw``.

    PEP 3333 lets applications read past CONTENT_LENGTH only at their peril;
    this makes over-reading return b"" instead of blocking on the socket.
    """

    def __init__(self, raw, limit):
        self._raw = raw
        self._left = max(0, limit)

    def read(self, size=-1):
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        data = self._raw.read(size)
        self._left -= len(data)
        if not data:
            self._left = 0
        return data

    def readline(self, size=-1):
        if self._left <= 0:
            return b""
        if size is None or size < 0 or size > self._left:
            size = self._left
        line = self._raw.readline(size)
        self._left -= len(line)
        if not line:
            self._left = 0
        return line

    def readlines(self, hint=-1):
        lines, total = [], 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                return lines

    def __iter__(self):
        return iter(self.readline, b"")


def content_length(environ):
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _check_header(name, value):
    for text in (name, value):
        if not isinstance(text, str):
            raise TypeError("header names and values must be str, got %r" % (text,))
        if "\r" in text or "\n" in text or "\0" in text:
            raise ValueError("control character in header %r" % (name,))
    if not name or ":" in name or " " in name:
        raise ValueError("bad header name %r" % (name,))


def error_page(status, title, message):
    """A complete CGI error response (parsed headers + HTML page) as bytes."""
    from html import escape

    body = (
        "<!DOCTYPE html>\n<html><head><title>%s</title></head>\n"
        "<body><h1>%s</h1>\n<p>%s</p></body></html>\n"
        % (escape(title), escape(title), escape(message))
    ).encode("utf-8")
    head = (
        "Status: %s\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Length: %d\r\n\r\n" % (status, len(body))
    ).encode("latin-1")
    return head + body


def error_app(status, title, message):
    """A WSGI application answering every request with the same error page."""
    head, _, body = error_page(status, title, message).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]

    def app(environ, start_response):
        start_response(status, headers)
        return [body]
    return app


def send_error(out, status, title, message):
    """Writes a complete CGI error response (HTML page) to the binary stream ``out``."""
    out.write(error_page(status, title, message))
    out.flush()


def _declared_length(headers):
    """The Content-Length an application declared (a non-negative int), or None."""
    for name, value in headers:
        if name.lower() == "content-length":
            value = value.strip()
            return int(value) if value.isdigit() else None
    return None


def run_wsgi(application, environ, stdin, stdout, stderr, run_once, flush_last=True):
    """Calls ``application`` once for ``environ`` (CGI variables) and writes its response.

    ``stdin`` is the request body (read at most CONTENT_LENGTH bytes), ``stdout`` a
    binary stream with write/flush, ``stderr`` a text stream (``wsgi.errors``).
    Every chunk is flushed as the application yields it, except, with
    ``flush_last=False``, the one that completes the response (its Content-Length
    reached, or the end of the iterable): the caller sends that with whatever ends
    the response (FastCGI: in one send with END_REQUEST, one wake-up of the server).
    Returns 0 when a response was written (including a 500 page for an exception
    raised before any output), 1 when the application failed after the headers
    were sent. Errors writing ``stdout`` (the client went away) propagate.
    """
    environ = dict(environ)
    environ["wsgi.input"] = LimitedInput(stdin, content_length(environ))
    environ["wsgi.errors"] = stderr
    environ["wsgi.version"] = (1, 0)
    environ["wsgi.multithread"] = False
    environ["wsgi.multiprocess"] = True
    environ["wsgi.run_once"] = run_once
    environ["wsgi.url_scheme"] = (
        "https" if environ.get("HTTPS", "off").lower() in ("on", "1", "yes") else "http"
    )
    environ.setdefault("SCRIPT_NAME", "")
    environ.setdefault("PATH_INFO", "")

    headers_set = []  # [status, headers] once start_response was called
    headers_sent = []  # the same, once they went out
    body = {"sent": 0, "length": None}  # body bytes written; the response's Content-Length

    def write(data, last=False):
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("WSGI body chunks must be bytes, got %s" % type(data).__name__)
        if not headers_set:
            raise AssertionError("write() before start_response()")
        if not headers_sent:
            status, response_headers = headers_sent[:] = headers_set
            lines = ["Status: %s" % status]
            lines.extend("%s: %s" % (name, value) for name, value in response_headers)
            stdout.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            body["length"] = _declared_length(response_headers)
        if data:
            stdout.write(data)
            body["sent"] += len(data)
        if flush_last or not (last or body["sent"] == body["length"]):
            stdout.flush()

    def start_response(status, response_headers, exc_info=None):
        if exc_info:
            try:
                if headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # avoid a reference cycle
        elif headers_set:
            raise AssertionError("start_response() called twice without exc_info")
        if not isinstance(status, str) or len(status) < 4 or not status[:3].isdigit() or status[3] != " ":
            raise ValueError("bad WSGI status %r" % (status,))
        if "\r" in status or "\n" in status:
            raise ValueError("control character in status %r" % (status,))
        for name, value in response_headers:
            _check_header(name, value)
        headers_set[:] = [status, list(response_headers)]
        return write

    try:
        result = application(environ, start_response)
        try:
            # A list's last non-empty chunk is known to end the body (the common case of
            # an application without Content-Length).
            last_at = -1
            if isinstance(result, (list, tuple)):
                last_at = max((i for i, data in enumerate(result) if data), default=-1)
            for i, data in enumerate(result):
                if data:  # PEP 3333: don't send headers until there is a body byte
                    write(data, last=i == last_at)
            if not headers_sent:
                write(b"", last=True)  # empty body
        finally:
            if hasattr(result, "close"):
                result.close()
    except (BrokenPipeError, ConnectionError):
        raise
    except Exception:
        stderr.write(traceback.format_exc())
        stderr.flush()
        if headers_sent:
            return 1
        send_error(stdout, "500 Internal Server Error", "500 Internal Server Error",
                   "The application failed while handling this request.")
    return 0
