"""REST benchmark, workload W: one keep-alive HTTP client against ``recordbase serve`` on loopback.

What it measures. A throwaway instance (a temporary folder with an SQLite file,
or ``--database-url`` for an existing empty database) gets an app ``restbench``
with one table ``deals`` — name, company, email and phone (personal: sealed
with the instance's data keys and found through blind indexes, the engine's
default for personal fields), amount (number, 2 decimals), stage (single
select), close_date, notes — plus a user whose role may create, read and
update with personal fields in clear, and a token. That is done through the
engine in this process (as ``bench/load.py`` does); the data keys are created
in ``<instance>/keys.json`` on the way, and the server reads the same file.
Then the server is started on 127.0.0.1 under gunicorn (production mode;
``--workers``, default 1, ``--threads``, default 1, no webhook sender) and ONE
``http.client.HTTPConnection`` (keep-alive, sequential requests, JSON bodies,
``Authorization: Bearer``) runs every phase; every answer's status is checked:

a. bulk insert of ``--rows`` deals, ``POST …/records`` with
   ``{"records": [{"fields": {...}}, ...]}`` in batches of ``--batch`` — rows/s.
   Baseline: stdlib ``sqlite3`` ``executemany`` of the same rows into a plain
   table (same columns, plaintext, amount as integer cents, the same indexes
   as the engine's: stage and amount) in a separate temporary file, one transaction per batch, the
   engine's durability PRAGMAs (WAL, synchronous=FULL) — rows/s.
b. ``--singles`` single creates — median ms. Baseline: the HTTP floor.
c. ``--lists`` requests of one page: filter ``stage = won AND amount >= 50000``,
   sort ``-amount``, page size 50, the deepest full page (the API pages by
   keyset cursor: the pages are walked once to find that page's cursor) —
   median ms. Baseline: the same page from the plain table (keyset ``LIMIT 51``
   plus the ``count(*)`` the API answers as ``total``; the ids must match the
   API's) median + the HTTP floor median; ratio = engine / (raw + floor).
d. ``--gets`` reads of random created ids — median ms. Baseline: the HTTP floor.
e. peak RSS (``VmHWM``) of every gunicorn worker at the end, and the start-up
   time from ``Popen`` of the server to its first 200 on ``/healthz``.
   Baseline: the same figures for the HTTP floor server's process.

The framework floor, printed beside the table: the same record from a bare
Flask route under gunicorn (one worker, one thread) — what the stack costs per
request before Recordbase does anything.

The last column, "floor under the stack", is what a figure would be if
Recordbase's own Python cost nothing beyond the token check every request
makes. After the timed phases, with the server
stopped, the engine in this process writes 4 × ``--batch`` more deals with
``create_many`` and 100 with ``create``, reads the deepest page ``--lists``
times and checks the token 100 times, as the bench's seller. Of the writes and
reads only the time inside the driver counts (between SQLAlchemy's
``before_cursor_execute`` and ``after_cursor_execute``; commits excluded); the
token check counts whole, since every request makes it and commits its
``token_use`` audit entry. For a the floor is the rows/s of that SQL alone;
for b and c the median SQL time plus the framework floor plus the token check;
for d the framework floor plus the token check (a get's two indexed lookups
are microseconds). A floor outside its target means no tuning of Recordbase's
own code can meet that target while the engine writes, reads and audits what
it does.

The HTTP floor: the same client against a stdlib ``ThreadingHTTPServer``
(``HTTP/1.1``, keep-alive, ``Content-Length``) in a subprocess on 127.0.0.1
answering a fixed JSON record — the median of 300 GETs: what any Python HTTP
service costs per request on this machine before it does any work.

Each request's time includes encoding its JSON body and decoding the answer.
Ratios are engine / baseline of the figure in the row (for phase a a fraction:
rows/s over raw rows/s). Absolute times move a lot on a shared machine;
compare ratios. Targets: a ≥ 50,000 rows/s; b median ≤ 2.5 ms; c ratio ≤ 1.2;
d ratio ≤ 1.5; e ≤ 150 MB per worker and start-up ≤ 2 s. Missed targets are
reported, not failed: the exit status is 0 when the run completed, 1 on any
error (a non-2xx answer, a dropped connection, engine and raw disagreeing),
3 when ``--timeout`` ran out (the server is stopped either way).

The server is ``recordbase serve --workers N --threads T --no-webhooks``
(gunicorn at every size); rate limits are lifted for the run
(``RECORDBASE_RATE_LIMIT``). With ``--profile`` this script starts gunicorn
itself with exactly the options ``serve`` uses
(``recordbase.serving.gunicorn_options``), wrapping the app in a profiler.

Run::

    .venv/bin/python bench/rest.py                              # 20,000 rows
    .venv/bin/python bench/rest.py --rows 2000 --out results.json
    .venv/bin/python bench/rest.py --workers 2 --threads 4      # through `recordbase serve`

Profiling the server. ``--profile DIR`` runs the workers with a pyinstrument
profiler around every request (pyinstrument must be importable; it is not a
project dependency) and writes one HTML profile per phase and worker to DIR
when the server stops (``DIR/c-list-<pid>.html`` …, and ``.pyisession`` files
for ``pyinstrument --load FILE``). Timings of a profiled run
are inflated; do not compare them. A sampling profiler disturbs less: with
py-spy installed (``pip install py-spy``; not in ``.venv`` by default), run
the benchmark with ``--keep``, note the worker pid in the log (or ``pgrep -P
<server pid>``) and, in another shell during the phase of interest::

    py-spy record -o prof.svg --pid <worker pid>          # flame graph; add --subprocesses for all
    py-spy top --pid <worker pid>                         # live view

Everything stays on 127.0.0.1 and every phase is bounded in requests;
``--timeout`` (default 900 s) bounds the whole run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import random
import select
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from processes import HOST, free_port, serve_command, stop_process

ROOT = Path(__file__).resolve().parent.parent
APP_SLUG = "restbench"
RECORDS = f"/api/v1/apps/{APP_SLUG}/tables/deals/records"
USER_EMAIL = "bench@example.org"
SEED = 20_260_501
PAGE_SIZE = 50
PAGE_FILTER = {
    "and": [
        {"field": "stage", "op": "eq", "value": "won"},
        {"field": "amount", "op": "gte", "value": 50000},
    ]
}
PAGE_SORT = "-amount"
FLOOR_REQUESTS = 300
FLOOR_BATCHES, FLOOR_SINGLES = 4, 100  # the engine-SQL floor's extra writes (see engine_sql_floors)
IDLE_RECONNECT_S = (
    2.0  # gunicorn closes keep-alive connections idle for 5 s: reconnect (untimed) before that
)
MB = 1024 * 1024
STAGES = ["lead", "qualified", "proposal", "won", "lost"]

DEFINITION: dict[str, Any] = {
    "slug": APP_SLUG,
    "label": "REST benchmark",
    "version": 1,
    "roles": [
        {"slug": "seller", "label": "Seller", "clearance": ["public", "internal", "personal"]},
    ],
    "tables": [
        {
            "slug": "deals",
            "label": "Deals",
            "primary_field": "name",
            "fields": [
                {"slug": "name", "label": "Name", "type": "text", "required": True},
                {"slug": "company", "label": "Company", "type": "text"},
                # Personal fields are encrypted with a blind index unless declared "encrypted": false.
                {
                    "slug": "email",
                    "label": "Email",
                    "type": "email",
                    "sensitivity": "personal",
                    "purpose": "Write to the buyer about this deal.",
                },
                {
                    "slug": "phone",
                    "label": "Phone",
                    "type": "phone",
                    "sensitivity": "personal",
                    "purpose": "Call the buyer about this deal.",
                },
                {
                    "slug": "amount",
                    "label": "Amount",
                    "type": "number",
                    "options": {"precision": 12, "scale": 2},
                    "indexed": True,
                },
                {
                    "slug": "stage",
                    "label": "Stage",
                    "type": "single_select",
                    "indexed": True,
                    "options": {"choices": [{"id": s, "label": s.title()} for s in STAGES]},
                },
                {"slug": "close_date", "label": "Close date", "type": "date"},
                {"slug": "notes", "label": "Notes", "type": "long_text"},
            ],
            "permissions": {
                "seller": {"create": True, "read": True, "update": True, "rows": "all"}
            },
        }
    ],
}

TARGETS = {
    "a": "≥ 50,000 rows/s",
    "b": "≤ 2.5 ms",
    "c": "≤ 1.2×",
    "d": "≤ 1.5×",
    "e_rss": "≤ 150 MB",
    "e_startup": "≤ 2 s",
}


class BenchError(Exception):
    """The run cannot be trusted: a non-2xx answer, a dropped connection, disagreeing results."""


class BenchTimeout(BaseException):
    """``--timeout`` ran out (a BaseException, so that no ``except Exception`` swallows it)."""


# --- deterministic data --------------------------------------------------------------------

FIRST = "Wei Fang Jing Lei Min Yan Jun Hui Xin Tao Na Qiang Ping Hao Anna James Maria David Sofia Lucas Emma Noah".split()
LAST = "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Smith Garcia Rossi Novak Silva Kim Berg".split()
CO_A = "Blue Golden Red Silver Bright Eastern Northern Great Green Swift Harmony Summit Pacific Jade Lotus".split()
CO_B = "River Mountain Bridge Harbor Forest Valley Sky Stone Field Gate Lake Peak Cloud Tower Garden".split()
CO_C = "Technologies Trading Logistics Foods Manufacturing Pharma Retail Energy Consulting Media".split()
CO_SUFFIX = ["Co., Ltd.", "Group", "Inc.", "Holdings", "Ltd."]
PRODUCTS = "ERP rollout|CRM licences|cloud migration|annual support|hardware refresh|training|data platform|security audit".split(
    "|"
)
MOBILE = [
    "130",
    "131",
    "132",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "158",
    "186",
    "187",
    "188",
    "189",
]
NOTE_WORDS = (
    "met procurement sent quote budget approved waiting legal review follow up next week pilot "
    "renewal discount requested demo scheduled signed contract 跟进 报价 合同 续约 预算 客户 "
    "decision maker on holiday asked for references competitor cheaper integration needs "
    "invoice payment terms thirty days onsite visit Shanghai Shenzhen Beijing call back"
).split()
EPOCH = dt.date(2025, 1, 1)


def generate_deals(rng: random.Random, count: int) -> list[dict[str, str]]:
    """``count`` deals as a client sends them: amounts 0–100,000 with 2 decimals (text), E.164 phones."""
    deals = []
    choice, randrange = rng.choice, rng.randrange
    for _ in range(count):
        a, b = choice(CO_A), choice(CO_B)
        first, last = choice(FIRST), choice(LAST)
        cents = randrange(10_000_001)
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < 100:
            words.append(choice(NOTE_WORDS))
        deals.append(
            {
                "name": f"{a} {b} {choice(PRODUCTS)}",
                "company": f"{a} {b} {choice(CO_C)} {choice(CO_SUFFIX)}",
                "email": f"{first}.{last}{randrange(10_000)}@{a}{b}.example.cn".lower(),
                "phone": f"+86{choice(MOBILE)}{randrange(10**8):08d}",
                "amount": f"{cents // 100}.{cents % 100:02d}",
                "stage": choice(STAGES),
                "close_date": (EPOCH + dt.timedelta(days=randrange(3 * 365))).isoformat(),
                "notes": " ".join(words)[:100].strip(),
            }
        )
    return deals


def cents(amount: Any) -> int:
    whole, _, frac = str(amount).partition(".")
    return int(whole) * 100 + int((frac + "00")[:2]) * (-1 if whole.startswith("-") else 1)


# --- the raw baseline: a plain table in a separate SQLite file --------------------------------

RAW_COLUMNS = ("id", "name", "company", "email", "phone", "amount", "stage", "close_date", "notes")


class RawTable:
    """The deals as plaintext rows in their own SQLite file, through the stdlib ``sqlite3``."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            self.db.execute(f"PRAGMA {pragma}")  # the engine's PRAGMAs: durability costs the same
        self.db.execute(
            "CREATE TABLE deals (id INTEGER PRIMARY KEY, name TEXT NOT NULL, company TEXT, email TEXT, "
            "phone TEXT, amount INTEGER, stage TEXT, close_date TEXT, notes TEXT)"
        )
        # The indexes the engine builds for the definition's "indexed" fields (stage, amount): the
        # same query on the same table shape. (A composite index on (stage, amount DESC, id) would
        # make the count in phase c ten times cheaper; definitions declare indexes per field.)
        self.db.execute("CREATE INDEX ix_deals_stage ON deals (stage)")
        self.db.execute("CREATE INDEX ix_deals_amount ON deals (amount)")
        self.insert_sql = f"INSERT INTO deals ({', '.join(RAW_COLUMNS)}) VALUES ({', '.join('?' * len(RAW_COLUMNS))})"

    @staticmethod
    def row(record_id: int, deal: dict[str, str]) -> tuple[Any, ...]:
        return (
            record_id,
            deal["name"],
            deal["company"],
            deal["email"],
            deal["phone"],
            cents(deal["amount"]),
            deal["stage"],
            deal["close_date"],
            deal["notes"],
        )

    def insert(self, rows: Sequence[tuple[Any, ...]]) -> float:
        """One ``executemany`` in its own transaction; the seconds it took."""
        start = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany(self.insert_sql, rows)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        return time.perf_counter() - start

    def analyze(self) -> None:
        self.db.execute("ANALYZE")

    def page(self, after: tuple[int, int] | None) -> tuple[list[Any], int]:
        """The page after ``(amount cents, id)`` (keyset, as the API pages) and the count the API reports."""
        where, params = "stage = ? AND amount >= ?", ["won", 50000 * 100]
        if after is not None:
            where += " AND (amount < ? OR (amount = ? AND id > ?))"
            params += [after[0], after[0], after[1]]
        rows = self.db.execute(
            f"SELECT * FROM deals WHERE {where} ORDER BY amount DESC, id ASC LIMIT {PAGE_SIZE + 1}",
            params,
        ).fetchall()
        total = self.db.execute(
            "SELECT count(*) FROM deals WHERE stage = ? AND amount >= ?", params[:2]
        ).fetchone()[0]
        return rows[:PAGE_SIZE], int(total)

    def close(self) -> None:
        self.db.close()


# --- the HTTP client -------------------------------------------------------------------------


class Client:
    """One keep-alive ``http.client`` connection; every call timed (JSON in and out included) and checked."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=120)
        self.headers = {"Accept": "application/json", **(headers or {})}
        self.last = 0.0
        self.connects = 0
        self.requests = 0
        self.error_count = 0
        self.errors: list[str] = []

    def _fresh(self) -> None:
        """(Re)connect outside the timed part when the connection is closed or idled near the server's keep-alive."""
        if self.conn.sock is None or time.monotonic() - self.last > IDLE_RECONNECT_S:
            self.conn.close()
            self.conn.connect()
            self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connects += 1

    def fail(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < 10:
            self.errors.append(message)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        expect: int = 200,
        headers: dict[str, str] | None = None,
    ) -> tuple[Any, float]:
        """(decoded JSON answer, seconds); (None, seconds) after counting an error."""
        self._fresh()
        start = time.perf_counter()
        sent = {**self.headers, **(headers or {})}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            sent["Content-Type"] = "application/json"
        try:
            self.conn.request(method, path, body=data, headers=sent)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            self.fail(f"{method} {path[:80]}: {type(exc).__name__}: {exc}")
            return None, time.perf_counter() - start
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        elapsed = time.perf_counter() - start
        self.last = time.monotonic()
        self.requests += 1
        if response.status != expect:
            self.fail(f"{method} {path[:80]}: {response.status} (expected {expect}): {raw[:300]!r}")
            return None, elapsed
        return payload, elapsed

    def check(self, phase: str) -> None:
        if self.error_count:
            raise BenchError(
                f"{phase}: {self.error_count} failed request(s); first: "
                + " | ".join(self.errors[:3])
            )

    def close(self) -> None:
        self.conn.close()


# --- the HTTP floor: a stdlib server in a subprocess ----------------------------------------------


def floor_record() -> bytes:
    """A fixed JSON record shaped like the API's answer for one deal."""
    deal = generate_deals(random.Random(0), 1)[0]
    stamp = "2026-05-01T08:00:00.123456+00:00"
    return json.dumps(
        {"id": 12345, "fields": deal, "version": 1, "created_at": stamp, "updated_at": stamp},
        ensure_ascii=False,
    ).encode()


def run_floor_server() -> int:
    """``--internal-floor``: serve the fixed record on a free loopback port (printed on stdout) until killed."""
    body = floor_record()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive
        disable_nagle_algorithm = True
        wbufsize = -1  # buffered: headers and body leave in one send (flushed after each request)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


def run_bare_flask(port: int) -> int:
    """``--internal-bare-flask``: the fixed record from a bare Flask route under gunicorn (1 worker, 1 thread).

    The framework floor: what Flask and gunicorn cost per request before any
    authentication, permission check or database work.
    """
    from flask import Flask, Response
    from gunicorn.app.base import BaseApplication

    body = floor_record()
    app = Flask("framework-floor")

    @app.get("/<path:_anything>")
    def record(_anything: str) -> Response:
        return Response(body, mimetype="application/json")

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {
                "bind": f"{HOST}:{port}",
                "workers": 1,
                "threads": 1,
                "worker_class": "gthread",
                "accesslog": None,
                "loglevel": "warning",
            }.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    Application().run()
    return 0


# --- the Recordbase server ----------------------------------------------------------------------


def run_gunicorn(port: int, workers: int, threads: int, profile_dir: str) -> int:
    """``--internal-gunicorn``: what ``recordbase serve --workers N`` does, with a profiler around the app."""
    if str(ROOT / "platform") not in sys.path:
        sys.path.insert(0, str(ROOT / "platform"))
    from recordbase import serving
    from recordbase.config import Settings
    from recordbase.core import Recordbase

    settings = Settings.from_env()
    storage = serving.shared_ratelimit_storage(os.environ, settings.instance_path, workers)
    if storage:
        os.environ[serving.RATELIMIT_VARIABLE] = storage
    rb = Recordbase(settings)
    rb.init_db()
    rb.dispose()  # no connection may cross gunicorn's fork
    options = serving.gunicorn_options(HOST, port, workers, threads)
    if not profile_dir:
        serving.serve_with_gunicorn(options)
        return 0

    from gunicorn.app.base import BaseApplication

    profiler = RequestProfiler(Path(profile_dir))

    class Application(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)
            self.cfg.set("worker_exit", lambda server, worker: profiler.write())

        def load(self) -> Any:
            return profiler.wrap(serving.wsgi_app())

    Application().run()
    return 0


class RequestProfiler:
    """pyinstrument around every request of a worker, one combined session per ``X-Bench-Phase``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.sessions: dict[str, Any] = {}
        self.lock = threading.Lock()

    def wrap(self, app: Callable[..., Any]) -> Callable[..., Any]:
        from pyinstrument import Profiler
        from pyinstrument.session import Session

        def profiled(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            phase = "".join(
                c for c in environ.get("HTTP_X_BENCH_PHASE", "other") if c.isalnum() or c in "-_"
            )
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            try:
                result = app(environ, start_response)
                try:
                    body = b"".join(result)
                finally:
                    if hasattr(result, "close"):
                        result.close()
            finally:
                session = profiler.stop()
                with self.lock:
                    before = self.sessions.get(phase)
                    self.sessions[phase] = (
                        session if before is None else Session.combine(before, session)
                    )
            return [body]

        return profiled

    def write(self) -> None:
        from pyinstrument.renderers import HTMLRenderer

        self.directory.mkdir(parents=True, exist_ok=True)
        with self.lock:
            for phase, session in self.sessions.items():
                stem = self.directory / f"{phase or 'other'}-{os.getpid()}"
                stem.with_suffix(".html").write_text(
                    HTMLRenderer().render(session), encoding="utf-8"
                )
                # `pyinstrument --load FILE` renders it as text.
                session.save(stem.with_suffix(".pyisession"))


def prepare(env: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """Install the app, a seller and its token through the engine, in this process; (token, facts)."""
    if str(ROOT / "platform") not in sys.path:
        sys.path.insert(0, str(ROOT / "platform"))
    from recordbase import Actor, Recordbase
    from recordbase.config import Settings

    system = Actor.system("rest-bench")
    rb = Recordbase(Settings.from_env(environ=env))
    try:
        rb.init_db()
        if any(app["slug"] == APP_SLUG for app in rb.list_apps()):
            raise BenchError(f"the database already has a {APP_SLUG!r} app; give an empty database")
        rb.install(DEFINITION, system)
        ts = rb.records(system, APP_SLUG, "deals").ts
        sealed = {slug: bool(ts.fields[slug].type.encrypted) for slug in ("email", "phone")}
        if not all(sealed.values()):
            raise BenchError(f"the personal fields are not encrypted: {sealed}")
        rb.create_user(system, USER_EMAIL, "rest-bench-password", display_name="Bench seller")
        rb.set_roles(system, USER_EMAIL, APP_SLUG, ["seller"])
        token = rb.create_token(system, USER_EMAIL, name="rest bench")[1]
        keys = (
            "environment"
            if env.get("RECORDBASE_DATA_KEYS")
            else str(Path(env["RECORDBASE_INSTANCE_PATH"]) / "keys.json")
        )
        return token, {"encrypted_fields": sorted(sealed), "keys": keys, "dialect": rb.dialect}
    finally:
        rb.dispose()


def check_sealed(env: dict[str, str], record_id: int, deal: dict[str, str]) -> bool:
    """Whether ``record_id``'s email and phone are stored sealed, each with a blind index, not in clear."""
    import sqlalchemy as sa
    from recordbase import Actor, Recordbase
    from recordbase.config import Settings

    rb = Recordbase(Settings.from_env(environ=env))
    try:
        ts = rb.records(Actor.system("rest-bench"), APP_SLUG, "deals").ts
        with rb.engine.connect() as conn:
            row = (
                conn.execute(sa.text(f"SELECT * FROM {ts.name} WHERE id = :id"), {"id": record_id})
                .mappings()
                .one()
            )
        for slug in ("email", "phone"):
            f = ts.fields[slug]
            stored, blind = row[f.column_name], row[f.type.index_column(f)]
            if not stored or not blind or deal[slug] in str(stored) or deal[slug] in str(blind):
                return False
        return True
    finally:
        rb.dispose()


def engine_sql_floors(
    env: dict[str, str], token: str, batches: Sequence[Sequence[dict[str, str]]],
    singles: Sequence[dict[str, str]], cursor: str | None, lists: int,
) -> dict[str, Any]:
    """What the engine's own SQL costs in each phase: time inside the driver, in this process.

    The same engine, database and seller as the server's, with the server
    stopped: ``create_many`` of each batch, ``create`` of each single, and the
    deepest page with its total, ``lists`` times. Only the time between
    SQLAlchemy's ``before_cursor_execute`` and ``after_cursor_execute`` counts
    (the statements the engine sends, as the driver runs them); commits and the
    reads that bypass those events (the token check) do not. Beside them, the
    whole of what every request does once before its own work: checking the
    token and committing its ``token_use`` audit entry (``actor_for_token``,
    timed in full, ``token_audit``).
    """
    import sqlalchemy as sa
    from recordbase import Recordbase
    from recordbase.config import Settings
    from recordbase.query import RecordQuery

    rb = Recordbase(Settings.from_env(environ=env))
    spent = [0.0]

    def before(conn: Any, *_: Any) -> None:
        conn.info["rest_bench_t0"] = time.perf_counter()

    def after(conn: Any, *_: Any) -> None:
        spent[0] += time.perf_counter() - conn.info.pop("rest_bench_t0")

    def sql_seconds(call: Callable[[], Any]) -> float:
        spent[0] = 0.0
        call()
        return spent[0]

    try:
        actor = rb.actor_for_token(token)
        if actor is None:
            raise BenchError("the bench token does not work in-process")
        sa.event.listen(rb.engine, "before_cursor_execute", before)
        sa.event.listen(rb.engine, "after_cursor_execute", after)

        def store() -> Any:
            return rb.records(actor, APP_SLUG, "deals")

        bulk = [sql_seconds(lambda b=batch: store().create_many(b)) for batch in batches]
        single = [sql_seconds(lambda d=deal: store().create(d)) for deal in singles]
        page = RecordQuery(filter=PAGE_FILTER, sort=PAGE_SORT, page_size=PAGE_SIZE, cursor=cursor)
        store().query(page)  # warm-up
        listing = [sql_seconds(lambda: store().query(page)) for _ in range(lists)]
        token_audit = []
        for _ in range(FLOOR_SINGLES):
            started = time.perf_counter()
            rb.actor_for_token(token)
            token_audit.append(time.perf_counter() - started)
    finally:
        rb.dispose()
    rows = sum(len(b) for b in batches)
    return {
        "bulk_rows_per_s": rows / sum(bulk),
        "create": ms(single),
        "list": ms(listing),
        "token_audit": ms(token_audit),
    }


def wait_for_200(port: int, path: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    """Poll ``path`` every 10 ms until it answers 200; BenchError when ``process`` exits or time runs out."""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited ({process.returncode}) before answering")
        conn = http.client.HTTPConnection(HOST, port, timeout=2)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        time.sleep(0.01)
    raise BenchError(f"no 200 from {path} within the time allowed")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory (``VmHWM``) of ``pid`` in MB; 0.0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


# --- figures and the report ----------------------------------------------------------------------


def ms(times: Sequence[float]) -> dict[str, float]:
    """median and p95 of ``times`` (seconds) in ms."""
    ordered = sorted(times)
    p95 = (
        statistics.quantiles(ordered, n=20, method="inclusive")[18]
        if len(ordered) > 1
        else ordered[0]
    )
    return {"median_ms": statistics.median(ordered) * 1000, "p95_ms": p95 * 1000, "n": len(ordered)}


@dataclass
class Row:
    key: str
    phase: str
    measure: str
    recordbase: float
    baseline: float
    baseline_label: str
    met: bool
    unit: str
    details: dict[str, Any] = field(default_factory=dict)
    # The engine's SQL alone plus the bare framework (see ``engine_sql_floors``): what this
    # figure would be if Recordbase's Python cost nothing. None where it does not apply.
    stack_floor: float | None = None
    stack_floor_met: bool | None = None

    @property
    def ratio(self) -> float:
        return round(self.recordbase / self.baseline, 3) if self.baseline else float("inf")

    def as_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "measure": self.measure,
            "unit": self.unit,
            "recordbase": self.recordbase,
            "baseline": self.baseline,
            "baseline_is": self.baseline_label,
            "ratio": self.ratio,
            "target": TARGETS[self.key],
            "met": self.met,
            **self.details,
            **(
                {"stack_floor": self.stack_floor, "stack_floor_meets_target": self.stack_floor_met}
                if self.stack_floor is not None
                else {}
            ),
        }


def number(value: float, unit: str) -> str:
    if unit == "rows/s":
        return f"{value:,.0f} rows/s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:.2f} s"


def markdown(rows: Sequence[Row]) -> str:
    lines = [
        "| phase | measure | recordbase | baseline | ratio | target | floor under the stack |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        floor = (
            ""
            if r.stack_floor is None
            else f"{number(r.stack_floor, r.unit)} ({'within' if r.stack_floor_met else 'outside'} the target)"
        )
        lines.append(
            f"| {r.phase} | {r.measure} | {number(r.recordbase, r.unit)} | "
            f"{number(r.baseline, r.unit)} ({r.baseline_label}) | {r.ratio:.3f}× | {TARGETS[r.key]} | {floor} |"
        )
    return "\n".join(lines)


# --- the run --------------------------------------------------------------------------------------


class Run:
    def __init__(self, args: argparse.Namespace, scratch: Path, log: Callable[[str], None]) -> None:
        self.args, self.scratch, self.log = args, scratch, log
        self.rng = random.Random(SEED)
        self.server: subprocess.Popen[bytes] | None = None
        self.floor: subprocess.Popen[bytes] | None = None
        self.raw: RawTable | None = None
        self.results: dict[str, Any] = {}

    def env(self) -> dict[str, str]:
        instance = self.scratch / "instance"
        instance.mkdir(exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBASE_")}
        env.update(
            {
                "RECORDBASE_INSTANCE_PATH": str(instance),
                "RECORDBASE_DATABASE_URL": self.args.database_url
                or f"sqlite:///{instance / 'recordbase.db'}",
                "RECORDBASE_SECRET_KEY": "rest-bench",
                # One client on 127.0.0.1 sends thousands of requests a minute: lift the API limits for the run.
                "RECORDBASE_RATE_LIMIT": "100000000/minute",
                "RECORDBASE_RATE_LIMIT_IP": "100000000/minute",
            }
        )
        paths = [str(ROOT / "platform"), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        return env

    def start_floor(self) -> tuple[int, float]:
        start = time.perf_counter()
        self.floor = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--internal-floor"],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.floor.stdout is not None
        ready, _, _ = select.select([self.floor.stdout], [], [], 30)
        line = self.floor.stdout.readline().decode() if ready else ""
        if not line.startswith("port "):
            raise BenchError("the HTTP floor server did not start")
        port = int(line.split()[1])
        wait_for_200(port, "/", self.floor, time.monotonic() + 30)
        return port, time.perf_counter() - start

    def framework_floor(self, path: str) -> dict[str, float]:
        """The fixed record from a bare Flask route under gunicorn, same client: Flask's and gunicorn's share."""
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--internal-bare-flask", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_200(port, path, bare, time.monotonic() + 60)
            client = Client(port, {})
            for _ in range(10):
                client.call("GET", path)
            times = [client.call("GET", path)[1] for _ in range(FLOOR_REQUESTS)]
            client.check("framework floor")
            client.close()
        finally:
            stop_process(bare)
        return ms(times)

    def start_server(self, env: dict[str, str], port: int) -> float:
        args = self.args
        if args.profile:
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--internal-gunicorn",
                str(port),
                str(args.workers),
                str(args.threads),
                str(args.profile or ""),
            ]
        else:
            command = serve_command(port, args.workers, args.threads)
        log = open(self.scratch / "server.log", "wb")  # noqa: SIM115 - the server writes it until it stops
        start = time.perf_counter()
        self.server = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        try:
            wait_for_200(port, "/healthz", self.server, time.monotonic() + 120)
        except BenchError as exc:
            tail = (self.scratch / "server.log").read_text(errors="replace")[-2000:]
            raise BenchError(f"{exc}; server log:\n{tail}") from None
        return time.perf_counter() - start

    def execute(self) -> list[Row]:
        args, log = self.args, self.log
        env = self.env()
        token, facts = prepare(env)
        self.results.update(facts)
        log(
            f"app installed; personal fields {', '.join(facts['encrypted_fields'])} encrypted (keys: {facts['keys']})"
        )

        floor_port, floor_startup = self.start_floor()
        port = free_port()
        startup = self.start_server(env, port)
        workers = children(self.server.pid) if self.server else []
        log(
            f"server pid {self.server.pid if self.server else '?'} (workers {workers}) on http://{HOST}:{port}, "
            f"first 200 after {startup:.2f} s"
        )

        profiling = bool(args.profile)
        client = Client(port, {"Authorization": f"Bearer {token}"})
        phase_header: Callable[[str], dict[str, str] | None] = (
            (lambda name: {"X-Bench-Phase": name}) if profiling else (lambda name: None)
        )

        # The HTTP floor.
        floor_client = Client(floor_port, {"Authorization": f"Bearer {token}"})
        floor_path = f"{RECORDS}/12345"
        for _ in range(10):
            floor_client.call("GET", floor_path)
        floor_times = [floor_client.call("GET", floor_path)[1] for _ in range(FLOOR_REQUESTS)]
        floor_client.check("HTTP floor")
        floor_client.close()
        floor = ms(floor_times)
        log(f"HTTP floor: median {floor['median_ms']:.3f} ms over {FLOOR_REQUESTS} GETs")
        self.results["floor"] = {**floor, "requests": FLOOR_REQUESTS, "startup_s": floor_startup}
        self.results["framework_floor"] = framework = self.framework_floor(floor_path)
        log(
            f"framework floor (bare Flask route under gunicorn): median {framework['median_ms']:.3f} ms"
        )

        # a. bulk insert.
        deals = generate_deals(self.rng, args.rows)
        ids: list[int] = []
        batch_times: list[float] = []
        headers = phase_header("a-bulk")
        for start in range(0, len(deals), args.batch):
            batch = deals[start : start + args.batch]
            answer, seconds = client.call(
                "POST", RECORDS, {"records": [{"fields": d} for d in batch]}, 201, headers
            )
            if answer is None:
                break
            created = [r["id"] for r in answer.get("records", [])]
            if len(created) != len(batch):
                client.fail(f"bulk create answered {len(created)} records for {len(batch)}")
                break
            ids += created
            batch_times.append(seconds)
        client.check("a. bulk insert")
        rate = len(deals) / sum(batch_times)
        self.raw = RawTable(self.scratch / "raw.db")
        raw_rows = [RawTable.row(i, d) for i, d in zip(ids, deals, strict=True)]
        raw_times = [
            self.raw.insert(raw_rows[s : s + args.batch])
            for s in range(0, len(raw_rows), args.batch)
        ]
        raw_rate = len(raw_rows) / sum(raw_times)
        log(f"a. bulk insert: {rate:,.0f} rows/s (raw {raw_rate:,.0f} rows/s)")
        bulk = Row(
            "a",
            f"a. bulk insert ({args.rows:,} rows, batches of {args.batch})",
            "rows/s",
            rate,
            raw_rate,
            "raw sqlite3 executemany",
            rate >= 50_000,
            "rows/s",
            {
                "seconds": sum(batch_times),
                "raw_seconds": sum(raw_times),
                "batch": {**ms(batch_times)},
                "raw_batch": {**ms(raw_times)},
            },
        )

        # b. single creates.
        singles = generate_deals(self.rng, args.singles)
        single_times: list[float] = []
        headers = phase_header("b-create")
        for deal in singles:
            answer, seconds = client.call("POST", RECORDS, {"fields": deal}, 201, headers)
            if answer is None:
                continue
            ids.append(answer["id"])
            self.raw.insert([RawTable.row(answer["id"], deal)])  # the same rows on both sides for c
            single_times.append(seconds)
        client.check("b. single create")
        self.raw.analyze()
        create = ms(single_times)
        log(f"b. single create: median {create['median_ms']:.2f} ms")
        one = Row(
            "b",
            f"b. single create (×{args.singles})",
            "median ms",
            create["median_ms"],
            floor["median_ms"],
            "HTTP floor",
            create["median_ms"] <= 2.5,
            "ms",
            {**create},
        )

        # c. the deepest full page of a filtered, sorted list.
        query = urllib.parse.urlencode(
            {"filter": json.dumps(PAGE_FILTER), "sort": PAGE_SORT, "page_size": PAGE_SIZE}
        )

        def list_path(cursor: str | None) -> str:
            return f"{RECORDS}?{query}" + (
                f"&{urllib.parse.urlencode({'cursor': cursor})}" if cursor else ""
            )

        headers = phase_header("c-walk")
        cursor: str | None = None
        before: dict[str, Any] | None = None  # the last record of the page before the current one
        deepest: tuple[str | None, dict[str, Any] | None, list[int], int] | None = None
        total, pages = None, 0
        for _ in range(len(ids) // PAGE_SIZE + 2):
            page, _ = client.call("GET", list_path(cursor), headers=headers)
            if page is None:
                break
            records, total, pages = page["records"], page["total"], pages + 1
            if deepest is None or len(records) == PAGE_SIZE:
                deepest = (cursor, before, [r["id"] for r in records], pages)
            if not page["next_cursor"] or not records:
                break
            before, cursor = records[-1], page["next_cursor"]
        client.check("c. walking the pages")
        assert deepest is not None
        deep_cursor, deep_before, deep_ids, deep_number = deepest
        raw_after = (
            None
            if deep_before is None
            else (cents(deep_before["fields"]["amount"]), int(deep_before["id"]))
        )
        raw_page, raw_total = self.raw.page(raw_after)
        if [r[0] for r in raw_page] != deep_ids or raw_total != total:
            raise BenchError(
                f"c: the API's page {deep_number} ({len(deep_ids)} ids, total {total}) differs from "
                f"the raw query's ({len(raw_page)} ids, total {raw_total})"
            )
        path = list_path(deep_cursor)
        headers = phase_header("c-list")
        client.call("GET", path, headers=headers)  # warm-up
        list_times = []
        for _ in range(args.lists):
            page, seconds = client.call("GET", path, headers=headers)
            if page is not None and [r["id"] for r in page["records"]] != deep_ids:
                client.fail("c: the page changed between requests")
            list_times.append(seconds)
        client.check("c. list")
        self.raw.page(raw_after)  # warm-up
        raw_list_times = []
        for _ in range(args.lists):
            start_t = time.perf_counter()
            self.raw.page(raw_after)
            raw_list_times.append(time.perf_counter() - start_t)
        listing, raw_listing = ms(list_times), ms(raw_list_times)
        list_base = raw_listing["median_ms"] + floor["median_ms"]
        log(
            f"c. list page {deep_number} of {pages}: median {listing['median_ms']:.2f} ms "
            f"(raw {raw_listing['median_ms']:.3f} ms + floor {floor['median_ms']:.3f} ms)"
        )
        lst = Row(
            "c",
            f"c. list, page {deep_number} of {pages} ({len(deep_ids)} rows of {total}) (×{args.lists})",
            "median ms",
            listing["median_ms"],
            list_base,
            "raw page + count + HTTP floor",
            False,
            "ms",
            {
                **listing,
                "raw": raw_listing,
                "floor_median_ms": floor["median_ms"],
                "page": deep_number,
                "pages": pages,
                "matching_rows": total,
                "page_rows": len(deep_ids),
                "cursor": deep_cursor is not None,
            },
        )
        lst.met = lst.ratio <= 1.2

        # d. gets by id.
        headers = phase_header("d-get")
        get_times = []
        for _ in range(args.gets):
            rid = self.rng.choice(ids)
            answer, seconds = client.call("GET", f"{RECORDS}/{rid}", headers=headers)
            if answer is not None and answer.get("id") != rid:
                client.fail(f"GET {rid} answered record {answer.get('id')}")
            get_times.append(seconds)
        client.check("d. get by id")
        get = ms(get_times)
        log(f"d. get by id: median {get['median_ms']:.2f} ms")
        one_get = Row(
            "d",
            f"d. get by id (×{args.gets})",
            "median ms",
            get["median_ms"],
            floor["median_ms"],
            "HTTP floor",
            False,
            "ms",
            {**get},
        )
        one_get.met = one_get.ratio <= 1.5

        # e. memory and start-up.
        assert self.server is not None and self.floor is not None
        workers = children(self.server.pid)
        worker_mb = {pid: vm_hwm_mb(pid) for pid in workers}
        if not worker_mb or not all(worker_mb.values()):
            raise BenchError(f"e: cannot read the workers' VmHWM (workers: {workers})")
        floor_mb = vm_hwm_mb(self.floor.pid)
        peak = max(worker_mb.values())
        rss = Row(
            "e_rss",
            f"e. peak RSS per worker ({len(workers)} worker{'s' if len(workers) > 1 else ''})",
            "VmHWM MB",
            peak,
            floor_mb,
            "floor server",
            peak <= 150,
            "MB",
            {
                "workers": {str(k): v for k, v in worker_mb.items()},
                "master_mb": vm_hwm_mb(self.server.pid),
            },
        )
        boot = Row(
            "e_startup",
            "e. start-up to first answer",
            "s",
            startup,
            floor_startup,
            "floor server",
            startup <= 2.0,
            "s",
        )
        self.results.update(
            {
                "requests": client.requests,
                "connections": client.connects,
                "errors": client.error_count,
            }
        )
        client.close()

        stop_process(self.server)
        self.server = None
        self.results["encrypted_at_rest"] = check_sealed(env, ids[0], deals[0])
        if not self.results["encrypted_at_rest"]:
            raise BenchError("the personal fields are stored in clear")

        # The floor under this stack: the engine's own SQL, timed in this process with the server
        # stopped, plus the bare framework's answer and the token check with its committed audit
        # entry, which every request makes. Extra rows, written after every timed phase.
        extra = generate_deals(random.Random(SEED + 1), FLOOR_BATCHES * args.batch + FLOOR_SINGLES)
        sql = engine_sql_floors(
            env,
            token,
            [extra[i * args.batch : (i + 1) * args.batch] for i in range(FLOOR_BATCHES)],
            extra[FLOOR_BATCHES * args.batch :],
            deep_cursor,
            args.lists,
        )
        self.results["engine_sql"] = sql
        # Each request's fixed share: the bare framework, the token check and its audit commit.
        fixed_ms = framework["median_ms"] + sql["token_audit"]["median_ms"]
        log(
            f"engine SQL alone: bulk {sql['bulk_rows_per_s']:,.0f} rows/s, create {sql['create']['median_ms']:.2f} ms, "
            f"list {sql['list']['median_ms']:.2f} ms; token check and audit commit {sql['token_audit']['median_ms']:.2f} ms"
        )
        bulk.stack_floor = sql["bulk_rows_per_s"]
        bulk.stack_floor_met = bulk.stack_floor >= 50_000
        one.stack_floor = sql["create"]["median_ms"] + fixed_ms
        one.stack_floor_met = one.stack_floor <= 2.5
        lst.stack_floor = sql["list"]["median_ms"] + fixed_ms
        lst.stack_floor_met = lst.stack_floor <= 1.2 * list_base
        one_get.stack_floor = fixed_ms  # a get's two indexed lookups are a few µs of SQL
        one_get.stack_floor_met = one_get.stack_floor <= 1.5 * floor["median_ms"]
        return [bulk, one, lst, one_get, rss, boot]

    def close(self) -> None:
        stop_process(self.server)
        stop_process(self.floor)
        if self.raw is not None:
            self.raw.close()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=20_000, help="rows of the bulk insert (default 20,000)"
    )
    parser.add_argument(
        "--batch", type=int, default=500, help="records per bulk request (≤ 1,000; default 500)"
    )
    parser.add_argument("--singles", type=int, default=300, help="single creates (default 300)")
    parser.add_argument("--lists", type=int, default=100, help="timed list requests (default 100)")
    parser.add_argument("--gets", type=int, default=300, help="gets by id (default 300)")
    parser.add_argument(
        "--workers", type=int, default=1, help="gunicorn worker processes (default 1)"
    )
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (default 1)")
    parser.add_argument("--out", type=Path, help="also write every figure as JSON to this file")
    parser.add_argument(
        "--database-url",
        help="an existing EMPTY database (e.g. PostgreSQL) instead of a temporary SQLite file",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary folder (instance, databases, server log)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="stop everything after this many seconds (default 900)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="profile every request with pyinstrument; HTML per phase and worker in DIR",
    )
    args = parser.parse_args(argv)
    for name in ("rows", "singles", "lists", "gets", "workers", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if not 1 <= args.batch <= 1000:
        parser.error("--batch must be from 1 to 1,000 (the API's limit)")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.profile:
        args.profile = str(Path(args.profile).resolve())
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--internal-floor"]:
        return run_floor_server()
    if argv[:1] == ["--internal-bare-flask"]:
        return run_bare_flask(int(argv[1]))
    if argv[:1] == ["--internal-gunicorn"]:
        port, workers, threads, profile = argv[1:5]
        return run_gunicorn(int(port), int(workers), int(threads), profile)
    args = parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def out_of_time(*_: Any) -> None:
        raise BenchTimeout()

    signal.signal(signal.SIGALRM, out_of_time)
    # Stopped from outside: unwind through the finally blocks, which stop the servers.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.setitimer(signal.ITIMER_REAL, args.timeout)
    began = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="recordbase-rest-"))
    run = Run(args, scratch, log)
    code = 0
    try:
        try:
            rows = run.execute()
        finally:
            # Stopping is bounded on its own (SIGKILL after 30 s).
            signal.setitimer(signal.ITIMER_REAL, 0)
            run.close()
    except BenchTimeout:
        log(f"error: --timeout of {args.timeout:g} s ran out; the servers were stopped")
        code = 3
    except BenchError as exc:
        log(f"error: {exc}")
        code = 1
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    if code:
        return code
    elapsed = time.perf_counter() - began
    database = run.results.get("dialect", "sqlite")
    print(
        f"\nWorkload W on {database}, {args.workers} worker(s) × {args.threads} thread(s), "
        f"{args.rows:,} rows, {elapsed:.0f} s; personal fields encrypted at rest: "
        f"{'yes' if run.results.get('encrypted_at_rest') else 'NO'}\n"
    )
    print(markdown(rows))
    framework = run.results.get("framework_floor")
    floor_ms = run.results.get("floor", {}).get("median_ms")
    if framework and floor_ms:
        print(
            f"\nFramework floor: a bare Flask route under gunicorn (1 worker × 1 thread) answers the same "
            f"record in {framework['median_ms']:.2f} ms, {framework['median_ms'] / floor_ms:.2f}× the HTTP floor."
        )
    print("\nTargets:")
    for r in rows:
        print(
            f"- {r.phase}: {TARGETS[r.key]} — {'met' if r.met else 'MISSED'} ({number(r.recordbase, r.unit)}; "
            f"ratio {r.ratio:.3f}×)"
        )
    if args.out:
        report = {
            "workload": "W",
            "rows": args.rows,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "database": database,
            "phases": {r.key: r.as_json() for r in rows},
            "targets_met": {r.key: r.met for r in rows},
            **run.results,
            "total_s": elapsed,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
