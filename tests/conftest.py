"""Shared fixtures: every database test runs on SQLite and on a real PostgreSQL.

``database_url`` is parametrised with ids ``sqlite`` and ``postgresql``; a test
that asks for it (directly or through ``settings``, ``rb``, ``app``, ``client``)
runs once per backend. The PostgreSQL server is started with ``pgserver`` the
first time a test needs it and stopped at the end of the session; each test
gets a fresh database on it.

Narrow the backends with ``--databases=sqlite`` or
``RECORDBASE_TEST_DATABASES=sqlite`` (comma-separated; default both).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase_web import create_app

BACKENDS = ("sqlite", "postgresql")
_database_numbers = itertools.count(1)

# pgserver (through platformdirs) warns when XDG_RUNTIME_DIR is unset, as on CI.
XDG_WARNING = "ignore:XDG_RUNTIME_DIR is not set"


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashes() -> Iterator[None]:
    """Passwords hashed in the test process use argon2-cffi's CHEAPEST profile.

    The product's argon2 parameters take 64 MiB and about 0.1 s a hash on
    purpose; the suite creates thousands of users and signs them in, which cost
    a third of its time. The same code hashes and verifies, only with
    parameters argon2-cffi publishes for tests. The commands and servers the
    tests start as subprocesses keep the product's parameters, and
    ``test_cli`` checks that the admin ``init`` creates carries them.
    """
    from argon2 import PasswordHasher, profiles
    from recordbase import users

    product = users._hasher
    users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    users._hasher = product


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--databases",
        default=os.environ.get("RECORDBASE_TEST_DATABASES", ",".join(BACKENDS)),
        help="comma-separated backends to run database tests on "
        "(default: $RECORDBASE_TEST_DATABASES or 'sqlite,postgresql')",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", XDG_WARNING)
    config.addinivalue_line(
        "markers",
        "sqlite_only: page, browser and command-line tests, run on SQLite only — pages and commands never "
        "build SQL, and everything they call is tested on both databases by the engine and API tests "
        "(backup, restore and serve, which do differ, run on both)",
    )
    selected_backends(config)  # fail early on a typo


def selected_backends(config: pytest.Config) -> set[str]:
    chosen = {name.strip() for name in config.getoption("--databases").split(",") if name.strip()}
    unknown = chosen - set(BACKENDS)
    if unknown or not chosen:
        raise pytest.UsageError(
            f"--databases / RECORDBASE_TEST_DATABASES: expected some of {', '.join(BACKENDS)}, "
            f"got {', '.join(sorted(unknown)) or 'nothing'}"
        )
    return chosen


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the parametrisations of ``database_url`` on backends not chosen."""
    chosen = selected_backends(config)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        backend = callspec.params.get("database_url") if callspec else None
        off = backend is not None and (backend not in chosen or (backend != "sqlite" and item.get_closest_marker("sqlite_only")))
        (dropped if off else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A throwaway PostgreSQL server (pgserver), started on first use."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

        server = pgserver.get_server(
            tmp_path_factory.mktemp("postgres") / "pgdata", cleanup_mode="stop"
        )
    try:
        yield server
    finally:
        server.cleanup()


def _psycopg_url(uri: str, database: str) -> str:
    """pgserver's ``postgresql://user:@/postgres?host=<socket dir>`` for another database."""
    base, _, query = uri.partition("?")
    base = base.rsplit("/", 1)[0]
    url = f"{base}/{database}".replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}?{query}" if query else url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a database of the parametrised backend, empty unless the test uses ``rb``.

    ``rb`` migrates its database (``init_db``) before anything else: for its
    tests the database starts as a copy of one migrated once per session, and
    ``init_db`` finds it at the head revision. That saves the migrations' 0.05 s
    (SQLite) to 0.2 s (PostgreSQL) per test. Every other test — the command
    line's ``init`` among them — gets an empty database.
    """
    migrated = "rb" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "recordbase.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        yield f"sqlite:///{path}"
        return

    server = request.getfixturevalue("postgres_server")
    template = request.getfixturevalue("migrated_postgres") if migrated else None
    with postgres_database(server, f"rb_test_{next(_database_numbers)}", template=template) as url:
        yield url


def _migrate(database_url: str, instance: Path) -> None:
    engine = Recordbase(
        Settings.from_env(environ={"RECORDBASE_PG_BIN": pg_bin()}, instance_path=instance, database_url=database_url)
    )
    try:
        engine.init_db()
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database with the system tables at the head revision, to copy (its connections closed)."""
    folder = tmp_path_factory.mktemp("migrated-sqlite")
    _migrate(f"sqlite:///{folder}/recordbase.db", folder / "instance")
    return folder / "recordbase.db"


@pytest.fixture(scope="session")
def migrated_postgres(postgres_server: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a PostgreSQL database at the head revision, a template for ``CREATE DATABASE``."""
    import psycopg
    from psycopg import sql

    name = "rb_migrated_template"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    _migrate(_psycopg_url(postgres_server.get_uri(), name), tmp_path_factory.mktemp("migrated-postgres"))
    return name


@contextmanager
def postgres_database(server: Any, name: str, *, template: str | None = None) -> Iterator[str]:
    """A fresh database ``name`` on the test server (a copy of ``template``), dropped (connections and all) afterwards."""
    import psycopg
    from psycopg import sql

    def drop(admin: Any) -> None:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        drop(admin)
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        admin.execute(create)
    try:
        yield _psycopg_url(server.get_uri(), name)
    finally:
        with psycopg.connect(server.get_uri(), autocommit=True) as admin:
            drop(admin)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings.from_env(
        environ={"RECORDBASE_PG_BIN": pg_bin()},
        instance_path=tmp_path / "instance",
        database_url=database_url,
        secret_key="test-secret",
    )


@pytest.fixture
def rb(settings: Settings) -> Iterator[Recordbase]:
    """An engine on an initialised database."""
    engine = Recordbase(settings)
    engine.init_db()
    yield engine
    engine.dispose()


@pytest.fixture
def app(rb: Recordbase, settings: Settings) -> Iterator[Flask]:
    """The web app on the same (initialised) database as ``rb``."""
    app = create_app({"TESTING": True, "RECORDBASE_SETTINGS": settings})
    yield app
    app.extensions["recordbase"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


# --- the command line, as subprocesses ---------------------------------------------------


@dataclass
class Result:
    code: int
    out: list[str]  # stdout lines
    err: list[str]  # stderr lines


Cli = Callable[..., Result]


def run_cli(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> Result:
    done = subprocess.run(
        [sys.executable, "-m", "recordbase.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Bad input never shows a traceback, whatever the command.
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return Result(done.returncode, done.stdout.splitlines(), done.stderr.splitlines())


def clean_env(**recordbase: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBASE_")}
    env.update({f"RECORDBASE_{k.upper()}": v for k, v in recordbase.items()})
    return env


def pg_bin() -> str:
    """The folder of pgserver's PostgreSQL tools (pg_dump, pg_restore), matching the test server."""
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def cli(tmp_path: Path, instance: Path, database_url: str) -> Cli:
    """Run ``recordbase ARGS...`` on the test instance and database, from a scratch directory."""
    env = clean_env(instance_path=str(instance), database_url=database_url, pg_bin=pg_bin())
    return lambda *args: run_cli(args, env, tmp_path)


@pytest.fixture
def engine(cli: Cli, instance: Path, database_url: str) -> Iterator[Recordbase]:
    """An engine on the same instance as the CLI, after ``recordbase init``."""
    assert cli("init", "--admin-password", "s3cret-pass").code == 0
    rb = Recordbase(
        Settings.from_env(environ={"RECORDBASE_PG_BIN": pg_bin()}, instance_path=instance, database_url=database_url)
    )
    yield rb
    rb.dispose()


# --- a real server and a real browser, for the journeys ----------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own browser download is not used
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The web app served by a threaded werkzeug server on 127.0.0.1 (a free port): its base URL.

    Same database as ``rb`` and ``app``; stopped when the test ends.
    """
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)  # port 0: the system picks a free one
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by Playwright, one per test module."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Debian's chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<pytest basetemp>/artifacts``: screenshots of the journeys (shared by the xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # each worker's basetemp is <basetemp>/popen-gwN
    folder = base / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
