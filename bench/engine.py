"""Engine benchmark: each record operation timed beside hand-written SQL on the same table.

Run ``python bench/engine.py --rows 200000 [--out results.json]`` (or ``make bench``).
It builds a CRM-like ``deals`` table of ``--rows`` records through the engine's
``create_many`` in a temporary directory, then times every operation twice in
the same run and on the same data: once through ``RecordStore`` (validation,
audit, search index, serialisation included) and once as the natural SQL a
programmer would write against the physical table (``raw``). The ratio
engine/raw is the engine's overhead; ``bench/README.md`` explains how to read it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "platform") not in sys.path:
    sys.path.insert(0, str(ROOT / "platform"))  # `make bench` runs without PYTHONPATH

import sqlalchemy as sa  # noqa: E402
from recordbase import Actor, Recordbase, RecordQuery, RecordStore, Settings  # noqa: E402

BATCH = 10_000  # create_many's limit
SEARCH_WORD = "zephyr"  # planted in ~1% of notes; no other generated text contains it
DEEP_OFFSET = 100_000
PAGE_FILTER = {
    "and": [
        {"field": "stage", "op": "eq", "value": "won"},
        {"field": "amount", "op": "gte", "value": 50000},
    ]
}
PAGE_SORT = ["-amount"]
MB = 1024 * 1024

# --- the app -------------------------------------------------------------------------

STAGES = ["lead", "qualified", "proposal", "won", "lost"]
STAGE_WEIGHTS = [30, 25, 20, 15, 10]

DEFINITION: dict[str, Any] = {
    "slug": "bench",
    "label": "Benchmark",
    "version": 1,
    "tables": [
        {
            "slug": "deals",
            "label": "Deals",
            "primary_field": "name",
            "fields": [
                {"slug": "name", "label": "Name", "type": "text", "required": True},
                {"slug": "company", "label": "Company", "type": "text"},
                {
                    "slug": "email",
                    "label": "Email",
                    "type": "email",
                    "purpose": "Write to the buyer about this deal.",
                    # The raw baseline writes plaintext rows into the same table, which the
                    # engine must read back; the REST benchmark measures encryption.
                    "encrypted": False,
                },
                {
                    "slug": "phone",
                    "label": "Phone",
                    "type": "phone",
                    "purpose": "Call the buyer about this deal.",
                    "encrypted": False,
                },
                {
                    "slug": "amount",
                    "label": "Amount",
                    "type": "currency",
                    "options": {"currency": "CNY"},
                    "indexed": True,
                },
                {
                    "slug": "stage",
                    "label": "Stage",
                    "type": "single_select",
                    "indexed": True,
                    "options": {"choices": [{"id": s, "label": s.title()} for s in STAGES]},
                },
                {"slug": "close_date", "label": "Close date", "type": "date", "indexed": True},
                {"slug": "notes", "label": "Notes", "type": "long_text"},
            ],
        }
    ],
}

# --- deterministic, realistic-looking data (no Faker: it costs ~100 µs a row) -----------

FIRST = "Wei Fang Jing Lei Min Yan Jun Hui Xin Tao Na Qiang Ping Hao Yu Ling Bo Mei Anna James Maria David Sofia Lucas Emma Noah".split()
LAST = "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Lin Gao Luo Smith Garcia Rossi Novak Silva Kim".split()
CO_A = "Blue Golden Red Silver Bright Eastern Northern Great Green Swift Harmony Summit Pacific Jade Lotus Dragon Phoenix Crystal Star Ocean".split()
CO_B = "River Mountain Bridge Harbor Forest Valley Sky Stone Field Gate Lake Peak Cloud Tower Garden".split()
CO_C = "Technologies Trading Logistics Foods Manufacturing Pharma Retail Energy Consulting Media Robotics Textiles Motors Capital Software".split()
CO_SUFFIX = ["Co., Ltd.", "Group", "Inc.", "Holdings", "Ltd."]
PRODUCTS = [
    "ERP rollout",
    "CRM licences",
    "cloud migration",
    "annual support",
    "hardware refresh",
    "training package",
    "data platform",
    "security audit",
    "mobile app",
    "consulting retainer",
    "warehouse system",
    "POS terminals",
]
NOTE_WORDS = (
    "met procurement sent quote budget approved waiting legal review follow up next week pilot "
    "renewal discount requested demo scheduled signed contract 跟进 报价 合同 续约 预算 客户 "
    "decision maker on holiday asked for references competitor cheaper integration needs "
    "invoice payment terms thirty days onsite visit Shanghai Shenzhen Beijing call back"
).split()
EPOCH = dt.date(2023, 1, 1)


def generate_deals(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` deals as a caller would send them (amounts and dates as text)."""
    deals = []
    choice, randrange, random_ = rng.choice, rng.randrange, rng.random
    for _ in range(count):
        a, b = choice(CO_A), choice(CO_B)
        company = f"{a} {b} {choice(CO_C)} {choice(CO_SUFFIX)}"
        first, last = choice(FIRST), choice(LAST)
        words = rng.choices(NOTE_WORDS, k=3 + randrange(10))
        if random_() < 0.01:
            words.insert(randrange(len(words)), SEARCH_WORD)
        # Log-normal amounts around ¥60,000; a few deals have none yet.
        cents = None if random_() < 0.02 else min(int(rng.lognormvariate(11.0, 1.0) * 100), 10**10)
        deals.append(
            {
                "name": f"{a} {b} {choice(PRODUCTS)}",
                "company": company,
                "email": f"{first}.{last}{randrange(1000)}@{a}{b}.cn".lower(),
                "phone": f"+86138{randrange(10**8):08d}",
                "amount": None if cents is None else f"{cents // 100}.{cents % 100:02d}",
                "stage": rng.choices(STAGES, STAGE_WEIGHTS)[0],
                "close_date": (EPOCH + dt.timedelta(days=randrange(4 * 365))).isoformat(),
                "notes": " ".join(words),
            }
        )
    return deals


# --- the raw baseline ------------------------------------------------------------------


class RawSQL:
    """Hand-written SQL through the thinnest client: stdlib sqlite3, or SQLAlchemy Core ``text()``.

    Statements use ``:name`` parameters, which both clients accept.
    """

    def __init__(self, url: str, sqlite_path: Path | None) -> None:
        self.dialect = "sqlite" if sqlite_path is not None else "postgresql"
        if sqlite_path is not None:
            self.db = sqlite3.connect(sqlite_path, isolation_level=None, check_same_thread=False)
            # The engine's PRAGMAs, so durability costs the same on both sides.
            for pragma in (
                "journal_mode=WAL",
                "synchronous=FULL",
                "foreign_keys=ON",
                "busy_timeout=30000",
            ):
                self.db.execute(f"PRAGMA {pragma}")
        else:
            self.engine = sa.create_engine(url)
            self.conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        if self.dialect == "sqlite":
            return self.db.execute(sql, params or {}).fetchall()
        return list(self.conn.execute(sa.text(sql), params or {}).all())

    def write(self, sql: str, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> None:
        """One statement (or executemany over a list) in its own committed transaction."""
        many = isinstance(params, list)
        if self.dialect == "sqlite":
            self.db.execute("BEGIN IMMEDIATE")
            try:
                (self.db.executemany if many else self.db.execute)(sql, params)
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            return
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def count_all(self, sql: str) -> int:
        """Iterate every row of ``sql`` without holding them all."""
        n = 0
        if self.dialect == "sqlite":
            for _ in self.db.execute(sql):
                n += 1
            return n
        with self.engine.connect() as conn:
            for _ in conn.execution_options(yield_per=2_000).execute(sa.text(sql)):
                n += 1
        return n

    def close(self) -> None:
        if self.dialect == "sqlite":
            self.db.close()
        else:
            self.conn.close()
            self.engine.dispose()


def physical_row(
    store: RecordStore, deal: Mapping[str, Any], now: dt.datetime, dialect: str
) -> dict[str, Any]:
    """The row the engine would store for ``deal``, built by hand (the generator emits canonical values)."""
    col = {slug: f.column_name for slug, f in store.ts.fields.items()}
    amount = deal["amount"]
    cents = None if amount is None else int(amount.replace(".", ""))
    stamp: Any = (
        now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else now
    )
    close: Any = (
        deal["close_date"] if dialect == "sqlite" else dt.date.fromisoformat(deal["close_date"])
    )
    return {
        "version": 1,
        "created_at": stamp,
        "updated_at": stamp,
        "created_by": None,
        "updated_by": None,
        col["name"]: deal["name"],
        col["company"]: deal["company"],
        col["email"]: deal["email"],
        col["phone"]: deal["phone"],
        col["amount"]: cents,
        col["stage"]: deal["stage"],
        col["close_date"]: close,
        col["notes"]: deal["notes"],
    }


def insert_sql(table: str, row: Mapping[str, Any]) -> str:
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})"


# --- timing ----------------------------------------------------------------------------


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median_time(fn: Callable[[], Any], *, repeats: int = 50, budget_s: float = 5.0) -> float:
    """Median of up to ``repeats`` timed runs after one warm-up, stopping after ``budget_s``."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < repeats and (len(times) < 5 or time.perf_counter() < deadline):
        times.append(timed(fn))
    return statistics.median(times)


def current_rss_mb() -> float:
    """This process's resident memory now (Linux /proc); the lifetime peak elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / MB
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MB if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


@dataclass
class Result:
    operation: str
    engine_s: float
    raw_s: float
    target: str
    met: bool
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.engine_s / self.raw_s if self.raw_s > 0 else float("inf")

    def as_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "engine_s": self.engine_s,
            "raw_s": self.raw_s,
            "ratio": round(self.ratio, 3),
            "target": self.target,
            "met": self.met,
            "note": self.note,
        }


# --- the benchmark -----------------------------------------------------------------------


STANDALONE = {
    "rollup_children"
}  # operations with their own data: --only them skips loading the deals


class Bench:
    """One run: a loaded table, an engine store on it, and a raw connection to the same data."""

    def __init__(self, rb: Recordbase, raw: RawSQL, rows: int, log: Callable[[str], None]) -> None:
        self.rb = rb
        self.raw = raw
        self.rows = rows
        self.log = log
        self.actor = Actor.system("bench")
        self.rng = random.Random(42)
        self.results: list[Result] = []
        self.extra: dict[str, Any] = {}

    # --- setup -------------------------------------------------------------------

    def load(self) -> None:
        self.rb.install(DEFINITION, self.actor)
        self.store = self.rb.records(self.actor, "bench", "deals")
        self.table = self.store.ts.name
        self.col = {slug: f.column_name for slug, f in self.store.ts.fields.items()}
        start = time.perf_counter()
        done = 0
        while done < self.rows:
            n = min(BATCH, self.rows - done)
            self.store.create_many(generate_deals(self.rng, n))
            done += n
            if done % 100_000 == 0 or done == self.rows:
                elapsed = time.perf_counter() - start
                self.log(
                    f"  loaded {done:,} rows in {elapsed:.1f} s ({done / elapsed:,.0f} rows/s)"
                )
        elapsed = time.perf_counter() - start
        self.extra["load_s"] = elapsed
        self.extra["load_rows_per_s"] = self.rows / elapsed if elapsed else None

    def add(self, result: Result) -> None:
        self.results.append(result)
        self.log(
            f"  {result.operation}: engine {fmt(result.engine_s)}, raw {fmt(result.raw_s)}, ratio {result.ratio:.2f}"
        )

    # --- reads -------------------------------------------------------------------

    def page_sql(self, keyset: bool) -> str:
        amount, stage = self.col["amount"], self.col["stage"]
        after = (
            f" AND (({amount} < :after_amount OR {amount} IS NULL) OR ({amount} = :after_amount AND id > :after_id))"
            if keyset
            else ""
        )
        return (
            f"SELECT * FROM {self.table} WHERE {stage} = :stage AND {amount} >= :min_amount{after} "
            f"ORDER BY {amount} DESC NULLS LAST, id ASC LIMIT 51"
        )

    def page_first(self) -> None:
        request = RecordQuery(filter=PAGE_FILTER, sort=PAGE_SORT, page_size=50, with_total=False)
        params = {"stage": "won", "min_amount": 50000 * 100}
        engine = median_time(lambda: self.store.query(request), repeats=100)
        raw = median_time(lambda: self.raw.rows(self.page_sql(False), params), repeats=100)
        self.check_same(
            self.store.query(request).records, self.raw.rows(self.page_sql(False), params)
        )
        self.add(Result("page_first", engine, raw, "≤ 1.5× raw", engine <= 1.5 * raw))

    def page_deep(self) -> None:
        """A page ``DEEP_OFFSET`` rows in, reached by walking cursors (untimed)."""
        cursor, depth, last = None, 0, None
        matching = self.store.count(filter=PAGE_FILTER)
        target_depth = max(0, min(DEEP_OFFSET, matching - 50))
        while depth < target_depth:
            size = min(1000, target_depth - depth)
            page = self.store.query(
                RecordQuery(
                    filter=PAGE_FILTER,
                    sort=PAGE_SORT,
                    page_size=size,
                    cursor=cursor,
                    with_total=False,
                )
            )
            if not page.records or page.next_cursor is None:
                break
            cursor, depth, last = page.next_cursor, depth + len(page.records), page.records[-1]
        request = RecordQuery(
            filter=PAGE_FILTER, sort=PAGE_SORT, page_size=50, cursor=cursor, with_total=False
        )
        amount_field = self.store.ts.fields["amount"]
        if last is None:  # too few rows to go deep: the first page again
            sql, params = self.page_sql(False), {"stage": "won", "min_amount": 50000 * 100}
        else:
            sql = self.page_sql(True)
            amount = last.fields["amount"]
            params = {
                "stage": "won",
                "min_amount": 50000 * 100,
                "after_id": last.id,
                "after_amount": None
                if amount is None
                else amount_field.type.to_db(amount_field, amount),
            }
        engine = median_time(lambda: self.store.query(request), repeats=100)
        raw = median_time(lambda: self.raw.rows(sql, params), repeats=100)
        self.check_same(self.store.query(request).records, self.raw.rows(sql, params))
        self.add(
            Result(
                "page_deep",
                engine,
                raw,
                "≤ 1.5× raw",
                engine <= 1.5 * raw,
                f"{depth:,} rows deep of {matching:,} matching",
            )
        )
        self.extra["page_deep_offset"] = depth

    def check_same(self, records: Sequence[Any], raw_rows: Sequence[Any]) -> None:
        """Both sides must return the same ids, or the comparison means nothing."""
        engine_ids = [r.id for r in records]
        raw_ids = [r[0] for r in raw_rows][: len(engine_ids)]
        if engine_ids != raw_ids:
            raise SystemExit(
                f"engine and raw SQL disagree: {engine_ids[:5]}... vs {raw_ids[:5]}..."
            )

    def grid_page(self) -> None:
        """The browser's grid page: first 50 rows and the total, rendered by the web app as a signed-in admin.

        Server time is the in-process request through Flask's test client —
        routing, session, the engine query and count, link labels, Jinja — with
        no network. The raw side is the two statements the page needs: the
        first 50 rows by id and ``count(*)``.
        """
        from recordbase_web import create_app

        email, password = "bench-admin@example.org", "bench-password-1"
        if not any(u["email"] == email for u in self.rb.list_users()):
            self.rb.create_user(self.actor, email, password, display_name="Bench", is_admin=True)
        app = create_app(
            {"RECORDBASE_SETTINGS": self.rb.settings, "TESTING": True, "WTF_CSRF_ENABLED": False}
        )
        app.extensions["recordbase"].dispose()
        app.extensions["recordbase"] = self.rb
        client = app.test_client()
        answer = client.post("/login", data={"email": email, "password": password})
        if answer.status_code != 303:
            raise SystemExit(f"grid_page: could not sign in ({answer.status_code})")
        url = "/apps/bench/tables/deals"

        def render() -> None:
            response = client.get(url)
            if response.status_code != 200 or b'id="grid"' not in response.data:
                raise SystemExit(f"grid_page: {url} answered {response.status_code}")

        first = f"SELECT * FROM {self.table} ORDER BY id LIMIT 51"
        count = f"SELECT count(*) FROM {self.table}"
        engine = median_time(render, repeats=30, budget_s=10.0)
        raw = median_time(lambda: (self.raw.rows(first), self.raw.rows(count)), repeats=30)
        self.add(
            Result(
                "grid_page",
                engine,
                raw,
                "≤ 50 ms server time",
                engine <= 0.050,
                "GET of the grid page (50 rows + total) as a signed-in user",
            )
        )

    def rollup_children(self, parents: int = 1_000) -> None:
        """A rollup over ``--rows`` child rows: orders sorted by their total (a sum over their lines).

        A second app, ``bench_rollup``: 1,000 orders made through the engine and
        one line per row of ``--rows`` (each line points at an order), loaded
        with plain INSERTs — this operation times the read, and the rows are
        exactly what the engine would store. The engine side is the first page
        of orders sorted by the rollup, as the system actor; the raw side is
        the same query hand-written with a correlated subquery.
        """
        definition = {
            "slug": "bench_rollup",
            "label": "Rollup benchmark",
            "version": 1,
            "tables": [
                {
                    "slug": "orders",
                    "label": "Orders",
                    "fields": [
                        {"slug": "name", "label": "Name", "type": "text"},
                        {
                            "slug": "total",
                            "label": "Total",
                            "type": "rollup",
                            "options": {
                                "table": "lines",
                                "via": "order",
                                "function": "sum",
                                "field": "amount",
                            },
                        },
                    ],
                },
                {
                    "slug": "lines",
                    "label": "Lines",
                    "fields": [
                        {
                            "slug": "order",
                            "label": "Order",
                            "type": "link",
                            "options": {"table": "orders"},
                        },
                        {
                            "slug": "amount",
                            "label": "Amount",
                            "type": "currency",
                            "options": {"currency": "CNY"},
                        },
                    ],
                },
            ],
        }
        self.rb.install(definition, self.actor)
        orders = self.rb.records(self.actor, "bench_rollup", "orders")
        lines = self.rb.records(self.actor, "bench_rollup", "lines")
        order_ids = [
            r.id for r in orders.create_many([{"name": f"Order {i}"} for i in range(parents)])
        ]
        table, link, amount = (
            lines.ts.name,
            lines.ts.fields["order"].column_name,
            lines.ts.fields["amount"].column_name,
        )
        now = dt.datetime.now(dt.UTC)
        stamp: Any = (
            now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            if self.raw.dialect == "sqlite"
            else now
        )
        start = time.perf_counter()
        done = 0
        while done < self.rows:
            n = min(BATCH * 5, self.rows - done)
            batch = [
                {
                    "version": 1,
                    "created_at": stamp,
                    "updated_at": stamp,
                    "created_by": None,
                    "updated_by": None,
                    link: order_ids[(done + i) % parents],
                    amount: 100 + (done + i) % 9_900,
                }
                for i in range(n)
            ]
            self.raw.write(insert_sql(table, batch[0]), batch)
            done += n
        self.log(
            f"  loaded {self.rows:,} lines under {parents:,} orders in {time.perf_counter() - start:.1f} s"
        )
        request = RecordQuery(sort=["-total"], page_size=50, with_total=False)
        raw_sql = (
            f"SELECT o.*, (SELECT coalesce(sum(l.{amount}), 0) FROM {table} l WHERE l.{link} = o.id) AS total "
            f"FROM {orders.ts.name} o ORDER BY total DESC, o.id LIMIT 51"
        )
        engine = median_time(lambda: orders.query(request), repeats=10, budget_s=30.0)
        raw = median_time(lambda: self.raw.rows(raw_sql), repeats=10, budget_s=30.0)
        first = orders.query(request).records
        expected = self.raw.rows(raw_sql)
        # Totals, not ids: equal totals may tie-break differently (the engine sums in floating point).
        engine_totals = [r.fields["total"] for r in first]
        raw_totals = [Decimal(row[-1]) / 100 for row in expected[:50]]
        if engine_totals != raw_totals:
            raise SystemExit("rollup_children: engine and raw SQL disagree on the totals")
        self.add(
            Result(
                "rollup_children",
                engine,
                raw,
                "≤ 1.5× raw",
                engine <= 1.5 * raw,
                f"first 50 of {parents:,} orders sorted by a sum over {self.rows:,} lines",
            )
        )

    def get_by_id(self) -> None:
        ids = self.rng.sample(range(1, self.rows + 1), min(500, self.rows))
        sql = f"SELECT * FROM {self.table} WHERE id = :id"
        self.store.get(ids[0])
        engine = statistics.median(timed(lambda rid=rid: self.store.get(rid)) for rid in ids)
        raw = statistics.median(
            timed(lambda rid=rid: self.raw.rows(sql, {"id": rid})) for rid in ids
        )
        self.add(
            Result(
                "get_by_id",
                engine,
                raw,
                "≤ 1.5× raw",
                engine <= 1.5 * raw,
                f"median of {len(ids)} ids",
            )
        )

    def search(self) -> None:
        request = RecordQuery(search=SEARCH_WORD, page_size=50, with_total=False)
        if self.raw.dialect == "sqlite":
            inner = f"SELECT rowid FROM {self.table}_search WHERE {self.table}_search MATCH :phrase"
            params = {"phrase": f'"{SEARCH_WORD}"'}
        else:
            inner = f"SELECT id FROM {self.table}_search WHERE body LIKE :pattern"
            params = {"pattern": f"%{SEARCH_WORD}%"}
        sql = f"SELECT * FROM {self.table} WHERE id IN ({inner}) ORDER BY id LIMIT 51"
        engine = median_time(lambda: self.store.query(request), repeats=50)
        raw = median_time(lambda: self.raw.rows(sql, params), repeats=50)
        self.check_same(self.store.query(request).records, self.raw.rows(sql, params))
        hits = self.store.count(search=SEARCH_WORD)
        self.add(
            Result(
                "search",
                engine,
                raw,
                "≤ 1.5× raw",
                engine <= 1.5 * raw,
                f'"{SEARCH_WORD}" in {hits:,} rows',
            )
        )

    # --- writes ------------------------------------------------------------------

    def create_one(self) -> None:
        n = 300
        deals = generate_deals(self.rng, 2 * n)
        engine = statistics.median(timed(lambda d=d: self.store.create(d)) for d in deals[:n])
        now = dt.datetime.now(dt.UTC)
        rows = [physical_row(self.store, d, now, self.raw.dialect) for d in deals[n:]]
        sql = insert_sql(self.table, rows[0])
        raw = statistics.median(timed(lambda r=r: self.raw.write(sql, r)) for r in rows)
        self.add(
            Result(
                "create_one",
                engine,
                raw,
                "≤ 2 ms",
                engine <= 0.002,
                f"median of {n}, each its own transaction",
            )
        )

    def bulk_create(self, runs: int = 3) -> None:
        """The median of ``runs`` batches each side (one batch is a few seconds: noise matters)."""
        engine_times, raw_times = [], []
        for _ in range(runs):
            deals = generate_deals(self.rng, BATCH)
            engine_times.append(timed(lambda deals=deals: self.store.create_many(deals)))
            now = dt.datetime.now(dt.UTC)
            rows = [physical_row(self.store, d, now, self.raw.dialect) for d in deals]
            raw_times.append(
                timed(lambda rows=rows: self.raw.write(insert_sql(self.table, rows[0]), rows))
            )
        engine, raw = statistics.median(engine_times), statistics.median(raw_times)
        rate = BATCH / engine
        self.extra["bulk_rows_per_s"] = rate
        self.extra["bulk_raw_rows_per_s"] = BATCH / raw
        self.add(
            Result(
                f"bulk_create_{BATCH}",
                engine,
                raw,
                "≥ 50,000 rows/s",
                rate >= 50_000,
                f"{rate:,.0f} rows/s (raw {BATCH / raw:,.0f})",
            )
        )

    def import_csv(self) -> None:
        """Import a CSV of ``BATCH`` deals (an export of the same table): the file's rows to stored records.

        The raw side reads the same file with ``csv`` and inserts the physical
        rows it maps to with one ``executemany``: what a hand-written loader does.
        """
        import csv
        import io

        sample = self.rb.records(self.actor, "bench", "deals")
        buffer = io.BytesIO()
        sample.export("csv", filter={"field": "id", "op": "lte", "value": BATCH}).write_to(buffer)
        text = buffer.getvalue().decode("utf-8-sig")
        path = Path(tempfile.mkdtemp()) / "deals.csv"
        path.write_text(text, encoding="utf-8")
        start = time.perf_counter()
        report = self.store.import_rows(str(path), mode="atomic")
        engine = time.perf_counter() - start
        if not report.committed or report.created == 0:
            raise SystemExit(f"import_csv: nothing imported ({report.problems[:3]})")
        labels = {
            f.label if isinstance(f.label, str) else f.slug: f
            for f in self.store.ts.fields.values()
        }
        now = dt.datetime.now(dt.UTC)
        start = time.perf_counter()
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            deals = [
                {labels[k].slug: (v or None) for k, v in row.items() if k in labels}
                for row in reader
            ]
        for deal in deals:
            deal["amount"] = (
                None
                if deal.get("amount") is None
                else f"{float(deal['amount'].replace(',', '')):.2f}"
            )
        rows = [physical_row(self.store, d, now, self.raw.dialect) for d in deals]
        self.raw.write(insert_sql(self.table, rows[0]), rows)
        raw = time.perf_counter() - start
        shutil.rmtree(path.parent, ignore_errors=True)
        rate = report.created / engine
        self.extra["import_rows_per_s"] = rate
        self.add(
            Result(
                "import_csv",
                engine,
                raw,
                "≥ 20,000 rows/s",
                rate >= 20_000,
                f"{report.created:,} rows: {rate:,.0f} rows/s (raw {len(rows) / raw:,.0f}), atomic",
            )
        )

    def add_field(self) -> None:
        """Adding a text field must not rewrite the table: compare with the same change on an empty app."""

        def changed(definition: dict[str, Any], slug: str) -> dict[str, Any]:
            definition = json.loads(json.dumps(definition))
            definition["tables"][0]["fields"].append({"slug": slug, "label": slug, "type": "text"})
            return definition

        empty = json.loads(json.dumps(DEFINITION))
        empty["slug"] = "bench_empty"
        self.rb.install(empty, self.actor)
        at_zero = timed(
            lambda: self.rb.install(changed(self.rb.export("bench_empty"), "extra"), self.actor)
        )
        definition = changed(self.rb.export("bench"), "extra")
        engine = timed(lambda: self.rb.install(definition, self.actor))
        raw = timed(lambda: self.raw.write(f"ALTER TABLE {self.table} ADD COLUMN raw_x TEXT", {}))
        self.store = self.rb.records(self.actor, "bench", "deals")  # the new schema
        self.extra["add_field_empty_table_s"] = at_zero
        # O(1): at N rows within 3× (+50 ms of noise) of the same change on an empty table.
        ok = engine <= 3 * at_zero + 0.05
        self.add(
            Result(
                "add_field", engine, raw, "O(1) in rows", ok, f"{fmt(at_zero)} on an empty table"
            )
        )

    # --- streaming ---------------------------------------------------------------

    def stream_all(self) -> None:
        peak = current_rss_mb()

        def engine_stream() -> int:
            nonlocal peak
            n = 0
            for _ in self.store.stream(RecordQuery()):
                n += 1
                if n % 10_000 == 0:
                    peak = max(peak, current_rss_mb())
            return n

        start = time.perf_counter()
        engine_count = engine_stream()
        engine = time.perf_counter() - start
        peak = max(peak, current_rss_mb())
        start = time.perf_counter()
        raw_count = self.raw.count_all(f"SELECT * FROM {self.table}")
        raw = time.perf_counter() - start
        if engine_count != raw_count:
            raise SystemExit(f"stream_all: engine saw {engine_count:,} rows, raw SQL {raw_count:,}")
        self.extra["stream_rss_mb"] = peak
        self.add(
            Result(
                "stream_all",
                engine,
                raw,
                "< 200 MB RSS",
                peak < 200,
                f"{engine_count:,} rows, RSS ≤ {peak:.0f} MB",
            )
        )

    def run(self, only: Sequence[str] | None = None) -> list[Result]:
        for step in (
            self.page_first,
            self.page_deep,
            self.grid_page,
            self.rollup_children,
            self.get_by_id,
            self.search,
            self.create_one,
            self.bulk_create,
            self.import_csv,
            self.add_field,
            self.stream_all,
        ):
            if only and step.__name__ not in only:
                continue
            step()
        return self.results


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def markdown(results: Sequence[Result]) -> str:
    lines = [
        "| operation | engine | raw | ratio (engine/raw) | target | met | note |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for r in results:
        met = "yes" if r.met else "**no**"
        lines.append(
            f"| {r.operation} | {fmt(r.engine_s)} | {fmt(r.raw_s)} | {r.ratio:.2f}× | {r.target} | {met} | {r.note} |"
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows in the deals table (default 1,000,000)"
    )
    parser.add_argument("--out", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL URL to run on instead of a temporary SQLite file; "
        "use a throwaway database: the tables stay there",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (and its database)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="OPERATION",
        help="time only this operation (repeatable), e.g. --only grid_page",
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="recordbase-bench-"))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        sqlite_path = None if args.database_url else tmp / "bench.db"
        url = args.database_url or f"sqlite:///{sqlite_path}"
        settings = Settings.from_env(
            environ={}, instance_path=tmp / "instance", database_url=url, secret_key="bench"
        )
        rb = Recordbase(settings)
        rb.init_db()
        if any(app["slug"] in ("bench", "bench_empty") for app in rb.list_apps()):
            raise SystemExit(
                "the database already has a bench app; give --database-url an empty database"
            )
        raw = RawSQL(url, sqlite_path)
        try:
            log(
                f"loading {args.rows:,} deals into {rb.dialect} ({tmp if sqlite_path else 'PostgreSQL'})"
            )
            bench = Bench(rb, raw, args.rows, log)
            if args.only and set(args.only) <= STANDALONE:
                bench.extra["load_rows_per_s"] = (
                    0.0  # nothing of the deals table is timed: not loaded
                )
            else:
                bench.load()
            log("timing")
            results = bench.run(args.only)
        finally:
            raw.close()
            rb.dispose()
        print(
            f"\n{args.rows:,} rows on {rb.dialect}; engine load {bench.extra['load_rows_per_s']:,.0f} rows/s\n"
        )
        print(markdown(results))
        if args.out:
            report = {
                "rows": args.rows,
                "database": rb.dialect,
                "results": [r.as_json() for r in results],
                "peak_rss_mb": round(peak_rss_mb(), 1),
                **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in bench.extra.items()},
            }
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
            log(f"wrote {args.out}")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
