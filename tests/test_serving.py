"""Serving with several worker processes: the same sessions, rate limits and webhooks in every worker.

``recordbase serve --workers N`` runs gunicorn; these tests start it for real
on 127.0.0.1 (a free port), on both databases, and stop it by its process id.
The helpers at the top (``start_server``, ``api``, ``writer_app``) are used by
``test_crash_safety.py`` too.
"""

from __future__ import annotations

import gc
import http.client
import http.server
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from conftest import clean_env, pg_bin, run_cli
from flask import Flask
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from page_helpers import ADMIN, SYSTEM, USER, add_admin, add_user, csrf_from, login
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase.serving import SQLiteRateLimitStorage, shared_ratelimit_storage, wsgi_app
from recordbase_web import create_app

HOST = "127.0.0.1"
RECORDS = "/api/v1/apps/ops/tables/items/records"
WRITER = ("writer@example.org", "writer-password-1")
OPS = {
    "slug": "ops",
    "label": "Ops",
    "tables": [{
        "slug": "items",
        "label": "Items",
        "fields": [
            {"slug": "name", "label": "Name", "type": "text"},
            {"slug": "count", "label": "Count", "type": "number"},
        ],
        "permissions": {"writer": {"create": True, "read": True, "update": True, "import": True, "rows": "all"}},
    }],
    "roles": [{"slug": "writer", "label": "Writer", "clearance": ["public", "internal"]}],
}


# --- helpers shared with test_crash_safety.py ---------------------------------------------------


def writer_app(rb: Recordbase) -> str:
    """Install the ``ops`` app and a user with the writer role; their API token."""
    rb.install(OPS, SYSTEM)
    rb.create_user(SYSTEM, WRITER[0], WRITER[1], display_name="Writer")
    rb.set_roles(SYSTEM, WRITER[0], "ops", ["writer"])
    return rb.create_token(SYSTEM, WRITER[0], name="tests")[1]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings, **variables: str) -> dict[str, str]:
    """The environment of a server on the test's instance and database (API limits lifted: every call is from 127.0.0.1)."""
    defaults = {"rate_limit": "1000000/minute", "rate_limit_ip": "1000000/minute"}
    return clean_env(instance_path=str(settings.instance_path), database_url=settings.database_url,
                     secret_key=settings.secret_key, pg_bin=pg_bin(), **{**defaults, **variables})


def start_server(env: dict[str, str], *args: str, workers: int = 2) -> Server:
    """``recordbase serve --workers N`` in its own process group, once ``/healthz`` answers 200."""
    port = free_port()
    log = Path(env["RECORDBASE_INSTANCE_PATH"]) / f"serve-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "recordbase.cli", "serve", "--host", HOST, "--port", str(port),
             "--workers", str(workers), "--threads", "4", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if api(server, "GET", "/healthz")[0] == 200:
                return server
        except OSError:
            time.sleep(0.1)
    stop_server(server)
    pytest.fail(f"the server did not answer within 60 s:\n{log.read_text()}")


def stop_server(server: Server, sig: signal.Signals = signal.SIGTERM) -> int:
    """Stop the server (SIGTERM: gracefully; SIGKILL: the whole process group at once); its exit status."""
    if server.process.poll() is None:
        if sig == signal.SIGKILL:
            os.killpg(server.process.pid, signal.SIGKILL)
        else:
            server.process.send_signal(sig)
        try:
            server.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait()
    return server.process.returncode


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Servers a test starts; any still running at the end is stopped."""
    started: list[Server] = []
    yield started
    for server in started:
        stop_server(server, signal.SIGKILL)


def api(server: Server, method: str, path: str, token: str | None = None, body: Any = None,
        headers: dict[str, str] | None = None, raw: bytes | None = None, timeout: float = 60,
        conn: http.client.HTTPConnection | None = None) -> tuple[int, dict[str, str], Any]:
    """One HTTP call: (status, headers, JSON body or text); on a new connection unless ``conn`` is given."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    connection = conn or http.client.HTTPConnection(HOST, server.port, timeout=timeout)
    try:
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        content = response.read()
        answer: Any = content.decode()
        if response.getheader("Content-Type", "").endswith("json"):
            answer = json.loads(content)
        return response.status, {k.lower(): v for k, v in response.getheaders()}, answer
    finally:
        if conn is None:
            connection.close()


# --- the shared rate-limit storage ----------------------------------------------------------------


def _hit(path: str, times: int) -> None:
    storage = SQLiteRateLimitStorage(f"sqlite:///{path}")
    for _ in range(times):
        storage.incr("k", 60)


def test_the_sqlite_storage_counts_once_for_every_process(tmp_path):
    path = tmp_path / "limits.db"
    context = multiprocessing.get_context("fork")  # each child opens its own connection
    workers = [context.Process(target=_hit, args=(str(path), 50)) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    assert SQLiteRateLimitStorage(f"sqlite:///{path}").get("k") == 200


def test_the_sqlite_storage_is_a_limits_storage_with_fixed_windows(tmp_path):
    one = storage_from_string(f"sqlite:///{tmp_path}/limits.db")
    other = storage_from_string(f"sqlite:///{tmp_path}/limits.db")  # another worker
    assert isinstance(one, SQLiteRateLimitStorage) and one.check()
    limiter, three = FixedWindowRateLimiter(one), parse("3/minute")
    assert [limiter.hit(three, "login", "x") for _ in range(4)] == [True, True, True, False]
    assert not FixedWindowRateLimiter(other).test(three, "login", "x")
    assert FixedWindowRateLimiter(other).test(three, "login", "y")
    assert time.time() < other.get_expiry(three.key_for("login", "x")) <= time.time() + 60
    other.clear(three.key_for("login", "x"))
    assert one.get(three.key_for("login", "x")) == 0
    assert one.incr("w", 0) == 1 and one.incr("w", 0) == 1  # a window that is over starts again
    other.incr("a", 60)
    assert one.reset() == 2 and one.get("w") == 0 and other.get("a") == 0


def test_the_sqlite_storage_needs_an_absolute_path():
    with pytest.raises(ValueError, match="absolute path"):
        SQLiteRateLimitStorage("sqlite://relative/limits.db")


def test_several_workers_get_a_shared_storage_and_memory_is_refused(tmp_path):
    assert shared_ratelimit_storage({}, tmp_path, 1) is None
    assert shared_ratelimit_storage({}, tmp_path, 4) == f"sqlite:///{tmp_path.resolve()}/ratelimits.db"
    assert shared_ratelimit_storage({"RECORDBASE_RATELIMIT_STORAGE": "redis://cache:6379"}, tmp_path, 4) is None
    with pytest.raises(ValueError, match="counts per process"):
        shared_ratelimit_storage({"RECORDBASE_RATELIMIT_STORAGE": "memory://"}, tmp_path, 2)


def test_serve_refuses_per_process_rate_limits_with_several_workers(settings, tmp_path):
    env = server_env(settings, ratelimit_storage="memory://")
    refused = run_cli(("serve", "--workers", "2", "--port", str(free_port())), env, tmp_path)
    assert refused.code == 1
    assert refused.err == ["error: RECORDBASE_RATELIMIT_STORAGE=memory:// counts per process; with --workers 2 "
                           "leave it unset (an SQLite file in the instance folder) or give redis://…"]


# --- two app instances: what one worker does, the other knows -----------------------------------


@pytest.fixture
def two_workers(rb: Recordbase, settings: Settings, tmp_path: Path) -> Iterator[tuple[Flask, Flask]]:
    """Two apps on one database and one rate-limit file, as two gunicorn workers have."""
    config = {"TESTING": True, "RECORDBASE_SETTINGS": settings,
              "RECORDBASE_RATELIMIT_STORAGE": f"sqlite:///{tmp_path}/ratelimits.db"}
    apps = (create_app(config), create_app(config))
    yield apps
    for app in apps:
        app.extensions["recordbase"].dispose()


def test_failed_sign_ins_on_one_worker_count_on_the_other(rb, two_workers):
    add_user(rb)
    first, second = (app.test_client() for app in two_workers)
    for _ in range(5):  # RECORDBASE_LOGIN_LIMIT: 5 a minute per email
        assert login(first, USER[0], "wrong password!").status_code == 422
    refused = login(second, USER[0], USER[1])
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_a_session_started_on_one_worker_is_valid_on_the_other(rb, two_workers):
    add_admin(rb)
    first, second = (app.test_client() for app in two_workers)
    assert login(first, *ADMIN).status_code == 303
    cookie = first.get_cookie("session")
    assert cookie is not None
    assert second.get("/admin/users").status_code == 303  # no session yet: to /login
    second.set_cookie("session", cookie.value)
    page = second.get("/admin/users")
    assert page.status_code == 200 and ADMIN[0] in page.text
    token = csrf_from(page.text)  # the CSRF token lives in the session too: the other worker accepts it
    assert second.post("/logout", data={"csrf_token": token}).status_code in (302, 303)
    assert second.get("/admin/users").status_code == 303


def test_behind_a_proxy_the_forwarded_client_address_is_used(rb, settings, monkeypatch):
    add_user(rb)
    for key, value in server_env(settings, proxies="1").items():
        monkeypatch.setenv(key, value)
    app = wsgi_app()
    # What start-up built is frozen out of the cyclic collector's way (released again for the tests).
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    try:
        client = app.test_client()
        page = client.get("/login")
        client.post("/login", data={"csrf_token": csrf_from(page.text), "email": USER[0], "password": "nope-nope"},
                    headers={"X-Forwarded-For": "203.0.113.9"})
    finally:
        app.extensions["recordbase"].dispose()
    failed = [e for e in rb.audit_entries(limit=100) if e["action"] == "login_failed"]
    assert len(failed) == 1 and "203.0.113.9" in json.dumps(failed[0]["changes"])


# --- the real thing: gunicorn workers ---------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    deliveries: list[str] = []

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).deliveries.append(self.headers["X-Recordbase-Delivery"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[str]]]:
    """A webhook target on 127.0.0.1: its URL and the delivery ids it received, in order."""
    handler = type("Receiver", (_Receiver,), {"deliveries": []})
    httpd = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://{HOST}:{httpd.server_port}/hook", handler.deliveries
    httpd.shutdown()
    httpd.server_close()


def sign_in(server: Server, email: str, password: str) -> int:
    """A browser's sign-in on fresh connections (requests land on any worker): the status of the POST."""
    status, headers, page = api(server, "GET", "/login")
    assert status == 200
    cookie = headers["set-cookie"].split(";", 1)[0]
    form = urllib.parse.urlencode({"csrf_token": csrf_from(page), "email": email, "password": password}).encode()
    return api(server, "POST", "/login", raw=form, headers={
        "Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})[0]


def browser_session(server: Server, email: str, password: str) -> dict[str, str]:
    """Sign in as a browser does; the headers its API calls then carry: the session cookie and the CSRF token."""
    cookie = ""

    def call(method: str, path: str, body: bytes | None = None, **headers: str) -> tuple[int, str, str | None]:
        nonlocal cookie
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers={"Cookie": cookie, **headers})
            response = conn.getresponse()
            text = response.read().decode()
            for name, value in response.getheaders():
                if name.lower() == "set-cookie" and value.startswith("session="):
                    cookie = value.split(";", 1)[0]
            return response.status, text, response.getheader("X-CSRFToken")
        finally:
            conn.close()

    status, page, _ = call("GET", "/login")
    form = urllib.parse.urlencode({"csrf_token": csrf_from(page), "email": email, "password": password}).encode()
    assert call("POST", "/login", form, **{"Content-Type": "application/x-www-form-urlencoded"})[0] == 303
    status, _, csrf = call("GET", "/api/v1/apps")
    assert status == 200 and csrf
    return {"Cookie": cookie, "X-CSRFToken": csrf}


def test_serve_with_workers_shares_limits_and_sends_each_webhook_once(rb, settings, servers, receiver):
    token = writer_app(rb)
    hook_url, received = receiver
    rb.create_webhook(SYSTEM, "ops", "items", hook_url, ["create"], allow_private=True)
    server = start_server(server_env(settings, login_limit="3/minute"), "--webhook-interval", "0.2")
    servers.append(server)

    children = psutil.Process(server.process.pid).children()
    senders = [c for c in children if "webhooks" in c.cmdline()]
    assert len(children) == 3 and len(senders) == 1  # two workers and one webhook sender

    answers: list[int] = []

    def create(i: int) -> None:
        for n in range(5):
            answers.append(api(server, "POST", RECORDS, token, {"fields": {"name": f"{i}-{n}", "count": n}})[0])

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [201] * 40
    assert rb.records(SYSTEM, "ops", "items").count() == 40

    # Three failed sign-ins use up the email's limit in every worker, not in the one that counted them.
    assert [sign_in(server, WRITER[0], "wrong-password") for _ in range(3)] == [422, 422, 422]
    assert [sign_in(server, WRITER[0], WRITER[1]) for _ in range(6)] == [429] * 6

    deadline = time.monotonic() + 30
    while len(received) < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a second sender, were there one, would have sent by now too
    assert len(received) == 40 and len(set(received)) == 40

    assert stop_server(server) == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
