"""Loads the Flaskr WSGI application for flaskr.cgi and flaskr.fcgi alike.

``load()`` returns the application, or one that answers every request with a
500 page saying what is wrong (Flask missing, Flaskr failing to start), after
writing the operator's version of the message to stderr (the error log).
"""

import sys
import traceback

from wsgi_common import error_app

_FLASK_PACKAGES = {"flask", "werkzeug", "jinja2", "itsdangerous", "markupsafe", "click"}


def load():
    try:
        from flaskr import create_app
    except ImportError as e:
        missing = (e.name or "").split(".")[0]
        if missing not in _FLASK_PACKAGES:
            raise
        sys.stderr.write(
            "flaskr: cannot import %s: install Flask for %s (Debian: apt install python3-flask)\n"
            % (missing, sys.executable))
        return error_app("500 Internal Server Error", "Flask is not installed",
                         "Flaskr needs Flask. Install the Debian package python3-flask "
                         "(apt install python3-flask).")
    try:
        return create_app()
    except Exception:
        sys.stderr.write("flaskr: cannot start: " + traceback.format_exc())
        return error_app("500 Internal Server Error", "500 Internal Server Error",
                         "Flaskr could not start; see the server's error log.")

