#!/usr/bin/python3
"""FastCGI entry point: the Flaskr blog, imported once, serving request after request.

Started by lisod's [[fastcgi]] `command` (or lighttpd's bin-path, spawn-fcgi) with a
listening socket as fd 0, or on its own with --bind unix:PATH | --bind HOST:PORT.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import flaskr_app  # noqa: E402
from wsgi_fcgi import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(flaskr_app.load))
