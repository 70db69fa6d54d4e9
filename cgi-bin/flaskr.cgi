#!/usr/bin/python3
"""CGI entry point: the Flaskr blog run through the WSGI→CGI bridge (wsgi_cgi.py)."""

import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from wsgi_cgi import end_process, run_with_cgi, send_error  # noqa: E402

_FLASK_PACKAGES = {"flask", "werkzeug", "jinja2", "itsdangerous", "markupsafe", "click"}


def main():
    out = sys.stdout.buffer
    try:
        from flaskr import create_app
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing not in _FLASK_PACKAGES:
            raise
        sys.stderr.write(
            "flaskr: cannot import %s: install Flask for %s (Debian: apt install python3-flask)\n"
            % (missing, sys.executable))
        send_error(out, "500 Internal Server Error", "Flask is not installed",
                   "Flaskr needs Flask. Install the Debian package python3-flask "
                   "(apt install python3-flask).")
        return 0
    try:
        app = create_app()
    except Exception:
        sys.stderr.write("flaskr: cannot start: " + traceback.format_exc())
        send_error(out, "500 Internal Server Error", "500 Internal Server Error",
                   "Flaskr could not start; see the server's error log.")
        return 0
    return run_with_cgi(app)


if __name__ == "__main__":
    end_process(main())
