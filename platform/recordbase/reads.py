"""A fast path for the engine's hottest reads (get by id), on the driver connection.

SQLAlchemy's per-call work (pool checkout, BEGIN event, cache key, execution
context) costs 20–40× a SQLite primary-key lookup. Statements here are built
with Core once per table schema, compiled once, and then run on a driver
connection with the same result processors Core would apply — so values come
back exactly as through ``Connection.execute``. SQLite reads use one
read-only (``PRAGMA query_only``) connection per thread; PostgreSQL reads take
a pooled connection, whose network round trip dwarfs the rest anyway.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from .database import SQLITE_MMAP_BYTES


class PreparedSelect:
    """A Core SELECT compiled once to driver SQL, with its columns' result processors."""

    def __init__(self, dialect: sa.Dialect, stmt: sa.Select[Any]) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        self.positional = [name for name in (compiled.positiontup or [])] if compiled.positional else None
        columns = list(stmt.selected_columns)
        self.processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]

    def _params(self, params: Mapping[str, Any]) -> Any:
        return tuple(params[name] for name in self.positional) if self.positional is not None else dict(params)

    def _row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if proc is None or value is None else proc(value)
            for proc, value in zip(self.processors, raw, strict=True)
        )

    def first(self, dbapi: Any, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        cursor = dbapi.cursor()
        try:
            cursor.execute(self.sql, self._params(params))
            raw = cursor.fetchone()
        finally:
            cursor.close()
        return None if raw is None else self._row(raw)

    def all(self, dbapi: Any, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        cursor = dbapi.cursor()
        try:
            cursor.execute(self.sql, self._params(params))
            return [self._row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()


class FastReader:
    """Driver connections for read-only statements."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._prepared: dict[str, PreparedSelect] = {}
        url = engine.url
        self._sqlite_path = url.database if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") else None

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._sqlite_path, isolation_level=None, timeout=30)  # type: ignore[arg-type]
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
            self._local.conn = conn
        return conn

    def prepared(self, name: str, build: Callable[[], sa.Select[Any]]) -> PreparedSelect:
        """The statement ``build`` makes, compiled on first use under ``name``."""
        found = self._prepared.get(name)
        if found is None:
            found = self._prepared[name] = PreparedSelect(self.engine.dialect, build())
        return found

    @contextmanager
    def connection(self, *, snapshot: bool = False) -> Iterator[Any]:
        """A driver connection; ``snapshot`` makes several statements see one state."""
        if self._sqlite_path is not None:
            conn = self._sqlite()
            if not snapshot:
                yield conn
                return
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
            return
        raw = self.engine.raw_connection()
        try:
            yield raw.driver_connection
        finally:
            raw.close()  # back to the pool, which rolls the read transaction back

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
