#!/usr/bin/python3
"""CGI entry point: the Flaskr blog run through the WSGI→CGI bridge (wsgi_cgi.py)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

import flaskr_app  # noqa: E402
from wsgi_cgi import end_process, run_with_cgi  # noqa: E402

if __name__ == "__main__":
    end_process(run_with_cgi(flaskr_app.load()))
