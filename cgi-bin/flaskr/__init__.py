"""Flaskr: the Flask tutorial micro-blog (show entries, log in, add entry, log out).

Configuration comes from the environment, so lisod's [cgi.env] can set it:
FLASKR_DATABASE (SQLite file), FLASKR_USERNAME / FLASKR_PASSWORD (admin/default),
FLASKR_SECRET_KEY, or FLASKR_SECRET_FILE (generated on first use when missing),
FLASKR_CERT_USERS (comma-separated client certificate CNs that are logged in without a
password: decided per request from SSL_CLIENT_VERIFY / SSL_CLIENT_S_DN_CN, which only the
server sets, and never stored in the session cookie).
"""

import hmac
import os
import secrets

from flask import (Flask, abort, flash, g, redirect, render_template, request, session,
                   url_for)
from flask.sessions import SecureCookieSessionInterface

from . import db as database


class _SchemeAwareSessions(SecureCookieSessionInterface):
    """Marks the session cookie Secure when the request itself came over HTTPS."""

    def get_cookie_secure(self, app):
        return request.is_secure


def _load_secret(path):
    """Reads the secret key file, creating it (mode 0600, atomically) if missing."""
    try:
        with open(path, "r", encoding="ascii") as f:
            key = f.read().strip()
        if key:
            return key
    except FileNotFoundError:
        pass
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)
    temp = "%s.%d.%s.tmp" % (path, os.getpid(), secrets.token_hex(4))
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(temp, path)  # atomic; loses cleanly to a concurrent first request
        except FileExistsError:
            pass
    finally:
        os.unlink(temp)
    with open(path, "r", encoding="ascii") as f:
        return f.read().strip()


def certificate_user(environ, allowed):
    """The verified client certificate's CN when it is on the allow-list, else None.

    CGI hands environ values over as latin-1 text (PEP 3333); the CN is UTF-8.
    """
    if environ.get("SSL_CLIENT_VERIFY") != "SUCCESS":
        return None
    raw = environ.get("SSL_CLIENT_S_DN_CN", "")
    try:
        cn = raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        cn = raw
    return cn if cn and cn in allowed else None


def create_app(test_config=None):
    app = Flask(__name__)
    env = os.environ
    database_path = env.get("FLASKR_DATABASE") or os.path.join(app.instance_path, "flaskr.sqlite")
    app.config.update(
        DATABASE=os.path.abspath(database_path),
        USERNAME=env.get("FLASKR_USERNAME", "admin"),
        PASSWORD=env.get("FLASKR_PASSWORD", "default"),
        SECRET_KEY=env.get("FLASKR_SECRET_KEY") or None,
        SECRET_FILE=env.get("FLASKR_SECRET_FILE")
        or os.path.join(os.path.dirname(os.path.abspath(database_path)), "flaskr-secret"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=1 << 20,
        CERT_USERS=[u.strip() for u in env.get("FLASKR_CERT_USERS", "").split(",") if u.strip()],
    )
    if test_config:
        app.config.update(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _load_secret(app.config["SECRET_FILE"])
    app.session_interface = _SchemeAwareSessions()
    database.init_app(app)

    @app.before_request
    def identify():
        # A password login lives in the session; a certificate login is per request only.
        g.cert_user = certificate_user(request.environ, app.config["CERT_USERS"])
        g.user = app.config["USERNAME"] if session.get("logged_in") else g.cert_user

    @app.route("/")
    def show_entries():
        entries = database.get_db().execute(
            "SELECT id, title, text, created FROM entries ORDER BY id DESC"
        ).fetchall()
        return render_template("show_entries.html", entries=entries)

    @app.route("/add", methods=["POST"])
    def add_entry():
        if not g.user:
            abort(401)
        title = request.form.get("title", "").strip()
        text = request.form.get("text", "")
        if not title:
            flash("An entry needs a title.", "error")
            return redirect(url_for("show_entries"))
        with database.write_transaction() as db:
            db.execute("INSERT INTO entries (title, text) VALUES (?, ?)", (title, text))
        flash("New entry was successfully posted")
        return redirect(url_for("show_entries"))

    @app.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        if request.method == "POST":
            username = request.form.get("username", "")
            password = request.form.get("password", "")
            if not hmac.compare_digest(username.encode(), app.config["USERNAME"].encode()):
                error = "Invalid username"
            elif not hmac.compare_digest(password.encode(), app.config["PASSWORD"].encode()):
                error = "Invalid password"
            else:
                session.clear()
                session["logged_in"] = True
                flash("You were logged in")
                return redirect(url_for("show_entries"))
        return render_template("login.html", error=error)

    @app.route("/logout")
    def logout():
        session.pop("logged_in", None)
        flash("You were logged out")
        return redirect(url_for("show_entries"))

    return app
