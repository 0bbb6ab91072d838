"""Backups of the database, taken while the app runs, and restoring one.

SQLite: ``VACUUM INTO`` writes a consistent, compacted copy from one read
transaction, so writers keep going and the copy holds exactly the writes
committed before it began. PostgreSQL: ``pg_dump`` in its custom format (one
snapshot as well), restored with ``pg_restore --clean``. Personal values are
in a backup only as they are in the database: sealed.

A backup is written under a temporary name, flushed to disk (``fsync``) and
only then renamed to the name asked for: a backup interrupted half-way (a
full disk, a killed process) leaves no file that looks like a backup, and one
that was reported written survives a power cut. A restored SQLite file is
flushed the same way before it replaces the database.

The keys are not in the backup, on purpose: a stolen backup without the keys
reveals no personal value. Back ``<instance>/keys.json`` (or the key
variables) up separately — a backup cannot be read without them.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .actor import Actor
from .audit import write_audit
from .config import Settings
from .errors import RecordbaseError

if TYPE_CHECKING:
    from .core import Recordbase


class BackupError(RecordbaseError):
    """A backup or restore that could not be made; nothing was changed."""


@dataclass
class BackupResult:
    path: Path
    size: int
    dialect: str


def _pg_tool(settings: Settings, name: str) -> str:
    folder = settings.extra.get("RECORDBASE_PG_BIN")
    found = str(Path(folder) / name) if folder else shutil.which(name)
    if not found or not Path(found).exists():
        raise BackupError(f"{name} was not found: install the PostgreSQL client tools or set RECORDBASE_PG_BIN to their folder")
    return found


def _fsync(path: Path) -> None:
    """Flush ``path`` and the folder entry naming it to disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _libpq_url(url: sa.engine.URL) -> str:
    """The SQLAlchemy URL as a libpq connection URI (what pg_dump takes)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def backup(rb: Recordbase, path: Path, actor: Actor) -> BackupResult:
    """Write a backup to ``path`` (which must not exist), while writers keep running."""
    path = Path(path)
    if path.exists():
        raise BackupError(f"{path} exists; give a new file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)  # left by an interrupted backup
    try:
        if rb.dialect == "sqlite":
            # Its own connection in autocommit: VACUUM cannot run inside a transaction.
            source = sqlite3.connect(rb.engine.url.database or "", isolation_level=None, timeout=30)
            try:
                source.execute("VACUUM INTO ?", (str(partial),))
            finally:
                source.close()
        else:
            done = subprocess.run(
                [_pg_tool(rb.settings, "pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", f"--dbname={_libpq_url(rb.engine.url)}"],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        _fsync(partial)
        if path.exists():  # made meanwhile by someone else: keep theirs
            raise BackupError(f"{path} exists; give a new file name")
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    with rb.write() as conn:
        write_audit(conn, actor, "backup", entries=[(None, {"file": path.name, "size": path.stat().st_size})])
    return BackupResult(path, path.stat().st_size, rb.dialect)


def restore(settings: Settings, path: Path) -> None:
    """Replace the database with a backup. Stop every server on it first.

    SQLite: the backup is checked (``integrity_check``, and that it is a
    Recordbase database) before it replaces the file in one rename.
    PostgreSQL: ``pg_restore --clean --if-exists`` into the configured database.
    """
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no backup at {path}")
    url = sa.engine.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        target = Path(url.database or "")
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as check:
                verdict = check.execute("PRAGMA integrity_check").fetchone()[0]
                tables = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            check.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"{path} is not an SQLite database ({exc})") from None
        if verdict != "ok" or "rb_app" not in tables:
            raise BackupError(f"{path} is not a sound Recordbase backup ({verdict if verdict != 'ok' else 'no rb_app table'})")
        staged = target.with_name(target.name + ".restoring")
        shutil.copyfile(path, staged)
        _fsync(staged)
        for suffix in ("-wal", "-shm"):
            Path(str(target) + suffix).unlink(missing_ok=True)
        staged.replace(target)
        return
    done = subprocess.run(
        [_pg_tool(settings, "pg_restore"), "--clean", "--if-exists", "--no-owner", "--single-transaction",
         f"--dbname={_libpq_url(url.set(drivername='postgresql'))}", str(path)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
