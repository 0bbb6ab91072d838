"""Connecting to the database, and every difference between SQLite and PostgreSQL.

Dialect-specific SQL lives here and nowhere else, so the rest of the engine
can be read as if there were one database.
"""

from __future__ import annotations

import datetime as dt
import json
import weakref
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine


def json_text(value: Any) -> str:
    """JSON columns' serialiser: orjson (several times faster on audit entries), json for what it refuses."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value, ensure_ascii=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine configured for durability: WAL + synchronous=FULL on SQLite.

    ``hide_parameters`` keeps bound values (personal data among them) out of
    every SQLAlchemy error message and log line.
    """
    kwargs.setdefault("hide_parameters", True)
    kwargs.setdefault("json_serializer", json_text)
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        sa.event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, **kwargs)


# Reads map the database file instead of copying each page into every connection's own cache:
# a filtered count that visits pages all over a big table took half the time, and the pages are
# shared by every connection and worker (the operating system's page cache). Writes still go
# through the WAL. See https://sqlite.org/mmap.html.
SQLITE_MMAP_BYTES = 256 * 1024 * 1024


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions are
    # unreliable with DDL); see the SQLAlchemy SQLite dialect documentation.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # A writing transaction takes the write lock up front (IMMEDIATE), so two
    # writers queue on busy_timeout instead of one failing with "database is
    # locked" half-way; readers keep WAL's concurrent deferred BEGIN.
    if conn.get_execution_options().get("rb_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def is_sqlite(bind: sa.Connection | Engine) -> bool:
    return bind.dialect.name == "sqlite"


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes, stored in UTC on both databases.

    SQLite has no timezone type, so values are stored naive-UTC as ISO text
    (which sorts correctly); PostgreSQL gets ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def drop_field_storage(conn: sa.Connection, table_name: str, field_pk: int) -> None:
    """Drop a purged field's column, its indexes, or its junction table."""
    column = f"f{field_pk}"
    inspector = sa.inspect(conn)
    tables = set(inspector.get_table_names())
    junction = f"{table_name}_{column}"
    if junction in tables:
        conn.exec_driver_sql(f"DROP TABLE {junction}")
    if table_name not in tables:
        return
    if column not in {c["name"] for c in inspector.get_columns(table_name)}:
        return
    for index in inspector.get_indexes(table_name):
        if column in index["column_names"]:
            conn.exec_driver_sql(f"DROP INDEX {index['name']}")
    conn.exec_driver_sql(f"ALTER TABLE {table_name} DROP COLUMN {column}")


def drop_table_storage(conn: sa.Connection, table_pk: int, field_pks: list[int]) -> None:
    table_name = f"t{table_pk}"
    for pk in field_pks:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name}_f{pk}")
    drop_search_index(conn, table_name)
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name}")


def refresh_statistics(engine: Engine, table_name: str, *, growth: float = 1.25, minimum: int = 1_000) -> bool:
    """Refresh SQLite's planner statistics for a table that has grown by ``growth`` since the last time.

    Without statistics SQLite picks an index by its shape alone: on a million
    deals, "stage = won AND amount >= 50000 ORDER BY amount DESC" walked the
    stage index and sorted 150,000 rows (150 ms) instead of walking the amount
    index (under 1 ms). A sampled ANALYZE (``analysis_limit``) misjudges
    low-cardinality columns, so this runs a full one — but only after the
    table grew by a quarter, which keeps the total cost linear in the rows
    written. PostgreSQL's autovacuum keeps its own statistics.
    """
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect().execution_options(rb_write=True) as conn, conn.begin():
        rows = conn.exec_driver_sql(f"SELECT max(id) FROM {table_name}").scalar() or 0
        if rows < minimum:
            return False
        known = 0
        has_stats = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").first()
        if has_stats:
            stat = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE tbl = ? LIMIT 1", (table_name,)).scalar()
            known = int(str(stat).split()[0]) if stat else 0
        if rows <= known * growth:
            return False
        conn.exec_driver_sql("PRAGMA analysis_limit=0")
        conn.exec_driver_sql(f"ANALYZE {table_name}")
    return True


def allocate_ids(conn: sa.Connection, table: sa.Table, count: int, *, top: int | None = None) -> list[int]:
    """Reserve ``count`` new ids for ``table`` in the current writing transaction.

    Knowing ids up front lets a bulk insert be one plain executemany (no
    RETURNING round trips). SQLite: the writing transaction holds the write
    lock (BEGIN IMMEDIATE), so the AUTOINCREMENT high-water mark cannot move
    under us. PostgreSQL: the table's identity sequence hands out the block.
    ``top`` is the table's highest id when the caller has just read it (SQLite).
    """
    if count == 0:
        return []
    if is_sqlite(conn):
        seq = None
        # Only AUTOINCREMENT tables keep a high-water mark; others reuse max(id) + 1, as SQLite would.
        if table.dialect_options["sqlite"].get("autoincrement") and _has_sequences(conn):
            seq = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table.name,)).scalar()
        if top is None:
            top = conn.exec_driver_sql(f"SELECT max(id) FROM {table.name}").scalar()
        start = max(seq or 0, top or 0) + 1
        return list(range(start, start + count))
    return list(conn.execute(
        sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
        {"t": table.name, "n": count},
    ).scalars())


# SQLite databases known to have sqlite_sequence: it appears with the first AUTOINCREMENT table
# (the migrations make several) and is never dropped, so each database is asked once.
_SEQUENCED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _has_sequences(conn: sa.Connection) -> bool:
    if conn.engine in _SEQUENCED:
        return True
    if conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").first() is None:
        return False
    _SEQUENCED.add(conn.engine)
    return True


def _insert_plan(dialect: sa.Dialect, table: sa.Table, names: tuple[str, ...]) -> tuple[str, list[tuple[int, str, Any]]]:
    """The INSERT statement and the bind processors for these columns, built once per table and columns."""
    plans: dict[tuple[Any, ...], tuple[str, list[tuple[int, str, Any]]]] = table.info.setdefault("rb_insert_plans", {})
    key = (dialect.name, names)
    found = plans.get(key)
    if found is None:
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names]
        placeholders = ", ".join("?" if dialect.paramstyle == "qmark" else "%s" for _ in names)
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({placeholders})"
        converted = [(i, name, proc) for i, (name, proc) in enumerate(zip(names, processors, strict=True)) if proc is not None]
        found = plans[key] = (sql, converted)
    return found


def insert_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows with one driver-level executemany, converting values as Core would.

    SQLAlchemy's per-row statement machinery costs more than SQLite's insert
    itself on bulk writes; this applies each column type's bind processor and
    hands plain tuples to the driver.
    """
    if not rows:
        return
    names = list(dict.fromkeys(key for row in rows for key in row))
    sql, converted = _insert_plan(conn.dialect, table, tuple(names))
    params = []
    # Rows of one batch share their timestamps and author: convert a repeated object once.
    last: dict[str, tuple[Any, Any]] = {}
    for row in rows:
        values = [row.get(name) for name in names]
        for i, name, proc in converted:
            value = values[i]
            if value is None:
                continue
            seen = last.get(name)
            if seen is not None and seen[0] is value:
                values[i] = seen[1]
            else:
                values[i] = out = proc(value)
                last[name] = (value, out)
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


# --- full-text search -------------------------------------------------------
# Both databases search by substring over one document per record, made of the
# record's text fields. Substring (trigram) matching is what Chinese users need:
# neither FTS5's unicode61 nor PostgreSQL's "simple" configuration segments
# Chinese words, and the same semantics on both databases keeps results equal.


def search_table_name(table_name: str) -> str:
    return f"{table_name}_search"


def create_search_index(conn: sa.Connection, table_name: str) -> None:
    """Create the structure holding each record's search document."""
    name = search_table_name(table_name)
    if is_sqlite(conn):
        conn.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(body, tokenize='trigram')"
        )
    else:
        conn.exec_driver_sql(
            f"CREATE TABLE IF NOT EXISTS {name} (id BIGINT PRIMARY KEY REFERENCES {table_name}(id)"
            " ON DELETE CASCADE, body TEXT NOT NULL)"
        )
        if _has_pg_trgm(conn):
            conn.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {name}_trgm ON {name} USING gin (body gin_trgm_ops)"
            )


def drop_search_index(conn: sa.Connection, table_name: str) -> None:
    conn.exec_driver_sql(f"DROP TABLE IF EXISTS {search_table_name(table_name)}")


def _has_pg_trgm(conn: sa.Connection) -> bool:
    try:
        with conn.begin_nested():
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        return True
    except sa.exc.DBAPIError:
        return False


def write_search_documents(conn: sa.Connection, table_name: str, docs: list[tuple[int, str]], *, fresh: bool = False) -> None:
    """Insert or replace the search document of each (record id, text) pair.

    ``fresh`` promises the records have no document yet (they were just created).
    """
    if not docs:
        return
    name = search_table_name(table_name)
    if is_sqlite(conn):
        if not fresh:
            conn.exec_driver_sql(f"DELETE FROM {name} WHERE rowid = ?", [(rid,) for rid, _ in docs])
        conn.exec_driver_sql(f"INSERT INTO {name} (rowid, body) VALUES (?, ?)", [(rid, body.lower()) for rid, body in docs])
        return
    rows = [{"id": rid, "body": body.lower()} for rid, body in docs]
    if fresh:
        conn.exec_driver_sql(f"INSERT INTO {name} (id, body) VALUES (%(id)s, %(body)s)", rows)
        return
    else:
        conn.execute(
            sa.text(
                f"INSERT INTO {name} (id, body) VALUES (:id, :body) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body"
            ),
            rows,
        )


def delete_search_documents(conn: sa.Connection, table_name: str, record_ids: list[int]) -> None:
    if not record_ids:
        return
    key = "rowid" if is_sqlite(conn) else "id"
    conn.execute(
        sa.text(f"DELETE FROM {search_table_name(table_name)} WHERE {key} = :id"),
        [{"id": rid} for rid in record_ids],
    )


def search_condition(table: sa.Table, terms: list[str], dialect_name: str) -> sa.ColumnElement[bool]:
    """``table.id`` restricted to records whose document contains every term."""
    name = search_table_name(table.name)
    key = "rowid" if dialect_name == "sqlite" else "id"
    search = sa.table(name, sa.column(key), sa.column("body"))
    conditions: list[sa.ColumnElement[bool]] = []
    for term in (t.lower() for t in terms if t):
        if dialect_name == "sqlite" and len(term) >= 3:
            # A quoted FTS5 phrase uses the trigram index; LIKE with ESCAPE would scan.
            phrase = '"' + term.replace('"', '""') + '"'
            conditions.append(sa.literal_column(name).op("MATCH")(phrase))
        else:
            conditions.append(search.c.body.contains(term, autoescape=True))
    subquery = sa.select(search.c[key]).where(*conditions)
    return table.c.id.in_(subquery)
