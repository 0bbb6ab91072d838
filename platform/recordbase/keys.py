"""Data key rotation: re-encrypt every sealed value under the newest key, online.

``rotate`` first adds a data key to ``keys.json`` (keys from
``RECORDBASE_DATA_KEYS`` cannot be added from here: then it re-encrypts to
the highest id listed there). It then walks every encrypted field of every
installed app in batches by record id: it reads a batch, opens and re-seals
its values outside any write lock, and writes them back in a short write
transaction of its own, each value compare-and-set (``UPDATE … WHERE id = :id
AND col = :old``) so a value someone changed meanwhile keeps their write.
Record versions and ``updated_at`` stay as they are — the value did not
change — and so do the blind indexes, whose key is not rotated. Deleted
records waiting in the trash are re-sealed the same way.

The audit trail is **not** re-encrypted: its entries are hash-chained, and
rewriting a sealed value in one would break the chain from there on. Its
values stay under the keys they were written with, which is why old data
keys are never dropped from the ring — every key stays needed to read the
audit trail. Values of removed fields and tables waiting in the trash keep
their key too (still readable, for the same reason).

Other processes on the same ``keys.json`` (a running web server) pick the new
key up by themselves (see ``crypto.KeyRing``); the walk is repeated (up to
three sweeps) while it still finds values, to catch those such a process
sealed under the old key in the moment before it noticed the new one.
Running it again re-encrypts nothing that is already under the newest key.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag

from .actor import Actor
from .audit import write_audit
from .crypto import PREFIX, KeyError_, KeyRing, key_id_of
from .fields import Field
from .fields.encrypted import EncryptedType
from .schema import AppSchema, TableSchema
from .trash import trash_table

if TYPE_CHECKING:
    from .core import Recordbase

MAX_SWEEPS = 3


@dataclass
class RotationResult:
    source: str  # "file" (keys.json) or "environment" (RECORDBASE_DATA_KEYS)
    key_id: int  # the key every value was re-encrypted to
    added_key: bool = False  # whether this run added ``key_id`` to keys.json
    reencrypted: int = 0  # values in records
    trash: int = 0  # values in deleted records in the trash
    skipped: int = 0  # values changed by someone else between read and write: their write stands
    failed: list[str] = field(default_factory=list)  # values that could not be opened, by location
    fields: dict[str, int] = field(default_factory=dict)  # "app.table.field" → values re-encrypted
    sweeps: int = 0
    message: str = ""

    @property
    def total(self) -> int:
        return self.reencrypted + self.trash

    def lines(self) -> list[str]:
        out = []
        if self.added_key:
            out.append(f"added data key {self.key_id}")
        out.append(f"re-encrypted {self.total} value(s) to key {self.key_id} ({self.reencrypted} in records, {self.trash} in the trash)")
        out += [f"  {where}: {count}" for where, count in sorted(self.fields.items()) if count]
        if self.skipped:
            out.append(f"{self.skipped} value(s) changed meanwhile and were left to that write")
        out += [f"could not open {where}" for where in self.failed]
        if self.message:
            out.append(self.message)
        return out


def _encrypted_fields(ts: TableSchema) -> list[Field]:
    return [f for f in ts.stored_fields if f.type.encrypted]


def _apps(rb: Recordbase) -> Iterator[AppSchema]:
    for listed in rb.list_apps():
        yield rb.app(listed["slug"])


def _is_current(stored: Any, key_id: int) -> bool:
    return isinstance(stored, str) and stored.startswith(f"{PREFIX}:{key_id}:")


def _reseal(keys: KeyRing, f: Field, stored: str) -> str:
    context = EncryptedType.context(f)
    return keys.encrypt(keys.decrypt(stored, context), context)


_UNREADABLE = (KeyError_, ValueError, InvalidTag)


# --- records: read a batch, re-seal it, write it back compare-and-set -----------------------


@dataclass
class Change:
    record_id: int
    field: Field
    old: str
    new: str


def read_batch(rb: Recordbase, ts: TableSchema, key_id: int, after: int, limit: int) -> Sequence[Mapping[Any, Any]]:
    """Up to ``limit`` records past id ``after`` with a value not sealed under ``key_id``."""
    t = ts.table
    cols = [t.c[f.column_name] for f in _encrypted_fields(ts)]
    stale = sa.or_(*(sa.and_(c.is_not(None), c.not_like(f"{PREFIX}:{key_id}:%")) for c in cols))
    with rb.read() as conn:
        return conn.execute(sa.select(t.c.id, *cols).where(t.c.id > after, stale).order_by(t.c.id).limit(limit)).mappings().all()


def reseal_batch(rb: Recordbase, ts: TableSchema, rows: Sequence[Mapping[Any, Any]], key_id: int, failed: dict[str, None]) -> list[Change]:
    """The new sealed form of each value of ``rows`` not under ``key_id`` (no database access)."""
    changes = []
    for row in rows:
        for f in _encrypted_fields(ts):
            old = row[f.column_name]
            if old is None or _is_current(old, key_id):
                continue
            try:
                changes.append(Change(row["id"], f, old, _reseal(rb.keys, f, old)))
            except _UNREADABLE as exc:
                failed[f"{ts.app.slug}.{ts.slug}.{f.slug} record {row['id']} ({type(exc).__name__})"] = None
    return changes


def write_batch(rb: Recordbase, ts: TableSchema, changes: Sequence[Change]) -> tuple[list[Change], list[Change]]:
    """Write ``changes`` in one short transaction, each only if the value is still the one read.

    Returns (written, skipped): a value someone changed since it was read is
    skipped, and their write stands. Neither ``version`` nor ``updated_at`` moves.
    """
    t = ts.table
    statements: dict[str, Any] = {}
    written: list[Change] = []
    skipped: list[Change] = []
    with rb.write() as conn:
        for change in changes:
            name = change.field.column_name
            stmt = statements.get(name)
            if stmt is None:
                col = t.c[name]
                stmt = statements[name] = (
                    sa.update(t).where(t.c.id == sa.bindparam("rid"), col == sa.bindparam("old")).values({name: sa.bindparam("new")})
                )
            done = conn.execute(stmt, {"rid": change.record_id, "old": change.old, "new": change.new}).rowcount
            (written if done else skipped).append(change)
    return written, skipped


def _sweep_table(rb: Recordbase, ts: TableSchema, key_id: int, batch: int, result: RotationResult, failed: dict[str, None]) -> int:
    """One pass over a table; returns how many values it wrote or found contended."""
    done = 0
    after = 0
    while True:
        rows = read_batch(rb, ts, key_id, after, batch)
        if not rows:
            return done
        after = rows[-1]["id"]
        changes = reseal_batch(rb, ts, rows, key_id, failed)
        if not changes:
            continue
        written, skipped = write_batch(rb, ts, changes)
        result.reencrypted += len(written)
        result.skipped += len(skipped)
        done += len(changes)
        for change in written:
            where = f"{ts.app.slug}.{ts.slug}.{change.field.slug}"
            result.fields[where] = result.fields.get(where, 0) + 1


# --- the trash: deleted records keep their stored row in rb_trash -------------------------------


def _sweep_trash(rb: Recordbase, app: AppSchema, key_id: int, batch: int, result: RotationResult, failed: dict[str, None]) -> int:
    tt = trash_table
    tables = {ts.pk: ts for ts in app.tables.values() if _encrypted_fields(ts)}
    if not tables:
        return 0
    done = 0
    after = 0
    while True:
        with rb.read() as conn:
            entries = conn.execute(
                sa.select(tt.c.id, tt.c.table_id, tt.c.record_id, tt.c.payload)
                .where(tt.c.app_id == app.pk, tt.c.kind == "record", tt.c.id > after).order_by(tt.c.id).limit(batch)
            ).mappings().all()
        if not entries:
            return done
        after = entries[-1]["id"]
        planned: dict[int, dict[str, tuple[str, str]]] = {}
        for entry in entries:
            ts = tables.get(entry["table_id"])
            row = (entry["payload"] or {}).get("row") or {}
            if ts is None:
                continue
            for f in _encrypted_fields(ts):
                old = row.get(f.column_name)
                if not isinstance(old, str) or _is_current(old, key_id):
                    continue
                try:
                    planned.setdefault(entry["id"], {})[f.column_name] = (old, _reseal(rb.keys, f, old))
                except _UNREADABLE as exc:
                    failed[f"{app.slug}.{ts.slug}.{f.slug} trash entry {entry['id']} ({type(exc).__name__})"] = None
        if not planned:
            continue
        with rb.write() as conn:
            for entry_id, columns in planned.items():
                payload = conn.execute(sa.select(tt.c.payload).where(tt.c.id == entry_id).with_for_update()).scalar()
                if payload is None:  # restored or purged meanwhile
                    result.skipped += len(columns)
                    done += len(columns)
                    continue
                payload = copy.deepcopy(payload)
                row = payload.setdefault("row", {})
                changed = 0
                for column, (old, new) in columns.items():
                    if row.get(column) == old:
                        row[column] = new
                        changed += 1
                    else:
                        result.skipped += 1
                if changed:
                    conn.execute(sa.update(tt).where(tt.c.id == entry_id).values(payload=payload))
                result.trash += changed
                done += len(columns)


# --- the entry point ---------------------------------------------------------------------------------


def rotate(rb: Recordbase, *, batch: int = 1000, new_key: bool = True, actor: Actor | None = None) -> RotationResult:
    """Re-encrypt every stored value that is not sealed under the newest data key.

    With ``new_key`` and keys from ``keys.json``, first add a key (id = highest
    + 1); with keys from ``RECORDBASE_DATA_KEYS``, re-encrypt to the highest id
    given there. Each batch of ``batch`` records is its own short write
    transaction; values changed concurrently are left to that change. The
    audit trail keeps its values under their old keys (it is hash-chained), so
    old keys are never dropped. One audit entry ``keys_rotated`` records the
    counts (no values), written only when the run changed something.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    actor = actor or Actor.system("keys")
    keys = rb.keys
    added = False
    if new_key and keys.path is not None:
        keys.add_data_key()
        added = True
    result = RotationResult(source=keys.source, key_id=keys.primary, added_key=added)
    failed: dict[str, None] = {}
    apps = list(_apps(rb))
    for _ in range(MAX_SWEEPS):
        result.sweeps += 1
        done = 0
        for app in apps:
            for ts in app.tables.values():
                if _encrypted_fields(ts):
                    done += _sweep_table(rb, ts, result.key_id, batch, result, failed)
            done += _sweep_trash(rb, app, result.key_id, batch, result, failed)
        if done == 0:  # nothing written or contended: nothing was left behind meanwhile either
            break
    result.failed = list(failed)
    if result.total == 0 and not added:
        result.message = f"nothing to re-encrypt: every value is sealed under key {result.key_id}"
        if keys.source == "environment":
            result.message += (
                f", the highest in RECORDBASE_DATA_KEYS. To rotate, add a key with a higher id "
                f"({result.key_id + 1}:<base64 32-byte key>) to RECORDBASE_DATA_KEYS for every process "
                f"(restart the web server with it), then run this again"
            )
    if added or result.total or result.failed:
        with rb.write() as conn:
            write_audit(conn, actor, "keys_rotated", entries=[(None, {
                "key": result.key_id, "added_key": added, "reencrypted": result.reencrypted, "trash": result.trash,
                "skipped": result.skipped, "failed": len(result.failed),
            })])
    return result


def _key_id_expr(conn: sa.Connection, col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The ``<key id>`` of ``v1:<key id>:…`` in SQL."""
    if conn.dialect.name == "postgresql":
        return sa.func.split_part(col, ":", 2)
    rest = sa.func.substr(col, len(PREFIX) + 2)
    return sa.func.substr(rest, 1, sa.func.instr(rest, ":") - 1)


def _by_key_id(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (not kv[0].isdigit(), int(kv[0]) if kv[0].isdigit() else 0, kv[0])))


def status(rb: Recordbase) -> dict[str, Any]:
    """How many stored values are sealed under each data key id.

    ``fields``: one row per encrypted field (``app``, ``table``, ``field``,
    ``counts`` by key id as a string); ``trash``: the same for deleted records
    in the trash, per table; ``totals`` over both; ``pending``: how many are
    not under the newest key (what ``rotate`` would re-encrypt). The audit
    trail is not counted: its values keep their keys for good.
    """
    keys = rb.keys
    fields: list[dict[str, Any]] = []
    trash: list[dict[str, Any]] = []
    totals: Counter[str] = Counter({str(k): 0 for k in sorted(keys.data_keys)})
    tt = trash_table
    for app in _apps(rb):
        tables = {ts.pk: ts for ts in app.tables.values() if _encrypted_fields(ts)}
        with rb.read() as conn:
            for ts in tables.values():
                for f in _encrypted_fields(ts):
                    col = ts.table.c[f.column_name]
                    expr = _key_id_expr(conn, col)
                    counts = _by_key_id({str(k): int(n) for k, n in conn.execute(
                        sa.select(expr, sa.func.count()).where(col.is_not(None)).group_by(expr))})
                    fields.append({"app": app.slug, "table": ts.slug, "field": f.slug, "counts": counts})
                    totals.update(counts)
            per_table: dict[int, Counter[str]] = {}
            if tables:
                for table_id, payload in conn.execute(
                    sa.select(tt.c.table_id, tt.c.payload).where(tt.c.app_id == app.pk, tt.c.kind == "record", tt.c.table_id.in_(tables))
                ):
                    row = (payload or {}).get("row") or {}
                    for f in _encrypted_fields(tables[table_id]):
                        stored = row.get(f.column_name)
                        if isinstance(stored, str):
                            try:
                                key = str(key_id_of(stored))
                            except ValueError:
                                key = "?"
                            per_table.setdefault(table_id, Counter())[key] += 1
            for table_id, counted in per_table.items():
                trash.append({"app": app.slug, "table": tables[table_id].slug, "counts": _by_key_id(counted)})
                totals.update(counted)
    primary = str(keys.primary)
    return {
        "source": keys.source,
        "path": str(keys.path) if keys.path is not None else None,
        "key_ids": sorted(keys.data_keys),
        "primary": keys.primary,
        "fields": fields,
        "trash": trash,
        "totals": _by_key_id(totals),
        "pending": sum(n for k, n in totals.items() if k != primary),
    }
