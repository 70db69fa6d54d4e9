"""SQLite access for Flaskr: one connection per request, schema created on first use.

Several CGI processes may run at once, so the database runs in WAL mode (readers
never block the writer), waits on locks instead of failing (busy timeout), and
writes take the write lock up front (BEGIN IMMEDIATE) so they cannot deadlock.
"""

import os
import sqlite3
import time
from contextlib import contextmanager

from flask import current_app, g

_BUSY_TIMEOUT_S = 15


def _connect(path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o750, exist_ok=True)
    db = sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
    db.row_factory = sqlite3.Row
    has_schema = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
    ).fetchone()
    if not has_schema:
        with current_app.open_resource("schema.sql") as f:
            schema = f.read().decode("utf-8")
        db.execute("BEGIN IMMEDIATE")
        try:
            # CREATE TABLE IF NOT EXISTS: a concurrent first request may have won the race.
            for statement in schema.split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        _use_wal(db)
    return db


def _use_wal(db):
    """Switches the database to WAL mode (a no-op once it is).

    The switch takes an exclusive lock without waiting on the busy timeout, so first
    requests arriving together in several processes (resident FastCGI ones do) could
    fail with "database is locked": it is retried until the busy timeout instead.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def get_db():
    """The request's connection, opened (and the schema created) on first use."""
    if "db" not in g:
        g.db = _connect(current_app.config["DATABASE"])
    return g.db


@contextmanager
def write_transaction():
    """BEGIN IMMEDIATE … COMMIT, rolled back if the block raises."""
    db = get_db()
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def close_db(_error=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app):
    app.teardown_appcontext(close_db)
