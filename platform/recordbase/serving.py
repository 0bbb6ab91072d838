"""Serving the web app with several worker processes: gunicorn, shared rate limits, one webhook sender.

``recordbase serve --workers N`` (N ≥ 2) runs :func:`serve_with_gunicorn`:
gunicorn's threaded workers (``gthread``), each building its own app, engine
and connection pool *after* the fork (no connection is ever shared between
processes). What must behave the same in every worker does not live in a
worker:

- **sessions** are signed cookies under the one secret key of the instance
  (``RECORDBASE_SECRET_KEY`` or ``<instance>/secret_key``), so any worker
  accepts a session another started;
- **rate-limit counters** live in ``RECORDBASE_RATELIMIT_STORAGE``; with
  several workers and no storage given, :func:`shared_ratelimit_storage`
  picks an SQLite file beside the instance (``sqlite:///…/ratelimits.db``,
  the :class:`SQLiteRateLimitStorage` below), which every process on the
  machine shares; several machines share ``redis://…`` instead. ``memory://``
  is refused with several workers: each would count on its own;
- **webhook delivery** runs in one separate process (``recordbase webhooks
  deliver --loop``) next to the workers, never in them, so a delivery is sent
  by one sender; claims are leased in the database besides (see
  ``webhooks._claim``), so a second sender on another machine is safe too.

:func:`wsgi_app` is the same application for a hand-written gunicorn command
(``gunicorn 'recordbase.serving:wsgi_app()'``): it trusts ``X-Forwarded-*``
headers from ``RECORDBASE_PROXIES`` reverse proxies (default 0: none), so the
client address that rate limits and the audit trail record is the real one.

The engine never imports Flask; this module only reaches the web package
inside the functions that build the app.

:func:`wsgi_app` freezes what start-up built (``gc.freeze``), so the cyclic
garbage collector's full passes no longer walk the whole application.
"""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from limits.storage import Storage

RATELIMIT_VARIABLE = "RECORDBASE_RATELIMIT_STORAGE"


# --- rate-limit counters shared by the processes of one machine -----------------------------


class SQLiteRateLimitStorage(Storage):
    """Fixed-window rate-limit counters in an SQLite file, shared by every process that opens it.

    ``sqlite:///<absolute path>`` (``RECORDBASE_RATELIMIT_STORAGE``). Each
    increment is one upsert statement, atomic across processes (SQLite's
    write lock; WAL so readers never wait). The counters are not worth an
    fsync each: ``synchronous=NORMAL`` may lose the last increments on a power
    cut, never the file. Only flask-limiter's default fixed-window strategy
    is supported.
    """

    STORAGE_SCHEME = ["sqlite"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        path = (uri or "").partition("://")[2]
        if not path.startswith("/"):
            raise ValueError(f"{RATELIMIT_VARIABLE}: give an absolute path, as sqlite:////srv/recordbase/ratelimits.db")
        self.path = Path(path)
        self._local = threading.local()
        self._writes = 0
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._connection()  # creates the file and its table now, so a bad path fails at start

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sqlite3.Error

    def _connection(self) -> sqlite3.Connection:
        # One connection per thread and per process: a connection must not cross a fork.
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ratelimit (key TEXT PRIMARY KEY, hits INTEGER NOT NULL, expires REAL NOT NULL)"
            )
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        conn = self._connection()
        hits = conn.execute(
            "INSERT INTO ratelimit (key, hits, expires) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET"
            " hits = CASE WHEN expires <= ? THEN excluded.hits ELSE hits + excluded.hits END,"
            " expires = CASE WHEN expires <= ? THEN excluded.expires ELSE expires END RETURNING hits",
            (key, amount, now + expiry, now, now),
        ).fetchone()[0]
        self._writes += 1
        if self._writes % 1000 == 0:  # forget windows that are over, now and then
            conn.execute("DELETE FROM ratelimit WHERE expires <= ?", (now,))
        return int(hits)

    def get(self, key: str) -> int:
        row = self._connection().execute(
            "SELECT hits FROM ratelimit WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return int(row[0]) if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._connection().execute(
            "SELECT expires FROM ratelimit WHERE key = ? AND expires > ?", (key, time.time())
        ).fetchone()
        return float(row[0]) if row else time.time()

    def check(self) -> bool:
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def reset(self) -> int | None:
        return int(self._connection().execute("DELETE FROM ratelimit").rowcount)

    def clear(self, key: str) -> None:
        self._connection().execute("DELETE FROM ratelimit WHERE key = ?", (key,))


def shared_ratelimit_storage(environ: Mapping[str, str], instance_path: Path, workers: int) -> str | None:
    """The rate-limit storage URI several workers must use, or ``None`` to keep the configured one.

    Raises ``ValueError`` for ``memory://`` with several workers: every worker
    would count on its own, multiplying each limit by the number of workers.
    """
    configured = (environ.get(RATELIMIT_VARIABLE) or "").strip()
    if workers < 2:
        return None
    if configured.startswith("memory://"):
        raise ValueError(
            f"{RATELIMIT_VARIABLE}=memory:// counts per process; with --workers {workers} leave it unset "
            "(an SQLite file in the instance folder) or give redis://…"
        )
    if configured:
        return None
    return f"sqlite:///{instance_path.resolve() / 'ratelimits.db'}"


# --- the application and the server ----------------------------------------------------------


def wsgi_app(proxies: int | None = None) -> Any:
    """The web app for a WSGI server; trusts ``X-Forwarded-For/-Proto/-Host`` from ``proxies`` hops.

    ``proxies`` defaults to ``RECORDBASE_PROXIES`` (0). Give the number of
    reverse proxies in front of the app (usually 1): trusting more would let
    a client choose the address its rate limits are counted under.
    """
    from recordbase_web import create_app

    # create_app applies RECORDBASE_PROXIES itself (so `gunicorn 'recordbase_web:create_app()'` is right too).
    app = create_app(None if proxies is None else {"RECORDBASE_PROXIES": str(proxies)})
    # A server process keeps what it built at start-up (modules, the app, mappings: some 90,000
    # objects) until it exits. Left to the cyclic collector, every full collection walks them all —
    # about 70 ms, every few bulk requests. Frozen, they are out of its way (reference counting still
    # frees them; only cycles among them would stay, and these live as long as the process anyway).
    # No collection first: at this point it finds a few dozen objects and costs 30 ms of start-up.
    gc.freeze()
    return app


def gunicorn_options(host: str, port: int, workers: int, threads: int, *, access_log: bool = False) -> dict[str, Any]:
    """gunicorn settings for ``serve``: threaded workers, the app loaded in each worker after the fork."""
    return {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": False,  # each worker opens its own connections
        # A gthread worker keeps answering its heartbeat while a request runs, so this only
        # catches a stuck worker; a long import is not cut short by it.
        "timeout": 120,
        "graceful_timeout": 30,
        "keepalive": 5,
        "accesslog": "-" if access_log else None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "recordbase",
        "control_socket_disable": True,  # several servers may run on one machine; none uses gunicornc
    }


def serve_with_gunicorn(options: Mapping[str, Any]) -> None:
    """Run gunicorn in this process until it is stopped (SIGTERM or SIGINT)."""
    from gunicorn.app.base import BaseApplication

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return wsgi_app()

    Application().run()


def start_webhook_sender(interval: float) -> subprocess.Popen[bytes]:
    """``recordbase webhooks deliver --loop`` as a child process, the one webhook sender of this server."""
    return subprocess.Popen(
        [sys.executable, "-m", "recordbase.cli", "webhooks", "deliver", "--loop", f"--interval={interval}"],
        env=dict(os.environ),
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGINT (the sender finishes the delivery in hand and exits), then SIGKILL after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
