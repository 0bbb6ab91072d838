"""The database connection keeps its durability promises and knows its dialect's quirks."""

import sqlite3

import pytest
from recordbase.database import make_engine, refresh_statistics


def test_sqlite_is_durable_wal_with_full_sync_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


def test_a_writing_transaction_takes_the_sqlite_write_lock_at_begin(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    other = sqlite3.connect(tmp_path / "x.db", timeout=0.1, isolation_level=None)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        with engine.connect().execution_options(rb_write=True) as writer, writer.begin():
            # No statement has run yet, yet another writer is already locked out...
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            # ...while readers are not.
            assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)
        with engine.connect() as reader, reader.begin():
            other.execute("BEGIN IMMEDIATE")  # a reading transaction leaves the lock free
            other.execute("ROLLBACK")
    finally:
        other.close()
        engine.dispose()


def test_statistics_are_refreshed_once_a_table_has_grown_by_a_quarter(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t1 (id INTEGER PRIMARY KEY, stage TEXT)")
            conn.exec_driver_sql("CREATE INDEX ix_t1_stage ON t1 (stage)")
            conn.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 999) INSERT INTO t1 (stage) SELECT 'won' FROM n")
        assert refresh_statistics(engine, "t1") is False  # too small to matter
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t1 (stage) VALUES ('lost'), ('lead')")
        assert refresh_statistics(engine, "t1") is True
        assert refresh_statistics(engine, "t1") is False  # nothing new since
        with engine.begin() as conn:
            stat = conn.exec_driver_sql("SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_t1_stage'").scalar()
            assert stat.split()[0] == "1001"
            conn.exec_driver_sql("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) INSERT INTO t1 (stage) SELECT 'lead' FROM n")
        assert refresh_statistics(engine, "t1") is True  # 1301 > 1.25 × 1001
    finally:
        engine.dispose()
