"""The audit trail: append-only, hash-chained, written in the transaction of the change it records.

Each entry carries ``hash = sha256(prev_hash + canonical entry)``, so changing,
removing or reordering any entry breaks the chain from there on, and
``verify_chain`` names the first entry that no longer fits.

Personal and sensitive values are kept sealed, as ``{"$sealed": <ciphertext>}``,
and the hash covers only the SHA-256 of each ciphertext. So a data subject's
erasure can replace a sealed value with ``{"$erased": <that digest>}`` — the
one change ever made to a written entry — and the chain still verifies, while
any other change to the entry still breaks it. Appends are
serialised (SQLite's writer lock; a transaction-scoped advisory lock on
PostgreSQL), so two writers can never chain to the same predecessor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .actor import Actor
from .database import allocate_ids, insert_rows
from .models import Audit, utcnow

audit_table: sa.Table = Audit.__table__  # type: ignore[assignment]
GENESIS = "0" * 64
_LOCK_KEY = 0x52424155  # "RBAU": the advisory lock that serialises audit appends on PostgreSQL
SEALED, ERASED = "$sealed", "$erased"
_HASHED = ("id", "at", "actor_kind", "actor_id", "actor_name", "action", "app_id", "table_id", "record_id", "changes")


def audit_rows(
    actor: Actor, action: str, *, app_id: int | None = None, table_id: int | None = None,
    entries: Iterable[tuple[int | None, Mapping[str, Any]]] = ((None, {}),),
) -> list[dict[str, Any]]:
    at = utcnow()
    return [
        {
            "at": at, "actor_kind": actor.kind, "actor_id": actor.user_id, "actor_name": actor.label,
            "action": action, "app_id": app_id, "table_id": table_id, "record_id": record_id,
            "changes": dict(changes),
        }
        for record_id, changes in entries
    ]


def _digest_form(value: Any) -> Any:
    """``value`` with each sealed or erased value replaced by the digest of its ciphertext."""
    if isinstance(value, dict):
        if len(value) == 1 and SEALED in value:
            return {"$digest": hashlib.sha256(str(value[SEALED]).encode()).hexdigest()}
        if len(value) == 1 and ERASED in value:
            return {"$digest": value[ERASED]}
        return {k: _digest_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_digest_form(v) for v in value]
    return value


def _erased_form(value: Any) -> tuple[Any, int]:
    """``value`` with each sealed value replaced by its erased form, and how many were."""
    if isinstance(value, dict):
        if len(value) == 1 and SEALED in value:
            return {ERASED: hashlib.sha256(str(value[SEALED]).encode()).hexdigest()}, 1
        count, out = 0, {}
        for k, v in value.items():
            out[k], n = _erased_form(v)
            count += n
        return out, count
    if isinstance(value, list):
        pairs = [_erased_form(v) for v in value]
        return [v for v, _ in pairs], sum(n for _, n in pairs)
    return value, 0


# One encoder, made once: json.dumps with options builds a new one on every call.
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode


def canonical_form(entry: Mapping[Any, Any]) -> str:
    """The canonical JSON an entry's hash covers: its fields, sealed values as digests."""
    fields = {key: entry[key] for key in _HASHED}
    at = fields["at"]
    fields["at"] = at.astimezone(dt.UTC).isoformat(timespec="microseconds") if isinstance(at, dt.datetime) else at
    text = _canonical_json(fields)
    if SEALED not in text and ERASED not in text:
        return text
    # The same text as serialising _digest_form(changes), done on the text (much faster for big
    # batches): an unescaped {"$sealed":"…"} can only be a one-key dict, since quotes inside
    # JSON strings are escaped. Anything unusual takes the slow, obvious way.
    swapped, count = _SEALED_TEXT.subn(_text_digest, text)
    if count != text.count('{"' + SEALED + '":') + text.count('{"' + ERASED + '":'):
        fields["changes"] = _digest_form(fields["changes"])
        return _canonical_json(fields)
    return swapped


_SEALED_TEXT = re.compile(r'\{"\$(sealed|erased)":"([^"\\]*)"\}')


def _text_digest(match: re.Match[str]) -> str:
    value = match.group(2)
    digest = hashlib.sha256(value.encode()).hexdigest() if match.group(1) == "sealed" else value
    return '{"$digest":"' + digest + '"}'


def entry_hash(prev_hash: str, entry: Mapping[Any, Any]) -> str:
    """The hash of an entry chained to its predecessor's, over a canonical JSON form."""
    return hashlib.sha256((prev_hash + canonical_form(entry)).encode()).hexdigest()


def append_audit(conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Append entries to the chain, inside the caller's (writing) transaction."""
    if not rows:
        return
    transaction = conn.get_transaction()
    known = conn.info.get(_HEAD)
    if known is not None and known[0] is transaction:
        # This transaction appended last and holds the write lock (SQLite) or the advisory lock
        # (PostgreSQL) until it ends, so the head it wrote is still the head.
        _, top, prev = known
    else:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        head = conn.exec_driver_sql(_HEAD_SQL).first()
        top, prev = (head[0], head[1]) if head is not None else (0, GENESIS)
    ids = allocate_ids(conn, audit_table, len(rows), top=top)
    for row, entry_id in zip(rows, ids, strict=True):
        row["id"] = entry_id
        row["prev_hash"] = prev
        row["hash"] = prev = entry_hash(prev, row)
    insert_rows(conn, audit_table, rows)
    conn.info[_HEAD] = (transaction, ids[-1], prev)


_HEAD = "rb_audit_head"  # (transaction, id, hash) of the last entry a transaction appended
_HEAD_SQL = f"SELECT id, hash FROM {audit_table.name} ORDER BY id DESC LIMIT 1"


def write_audit(conn: sa.Connection, actor: Actor, action: str, **kwargs: Any) -> None:
    append_audit(conn, audit_rows(actor, action, **kwargs))


def erase_values(conn: sa.Connection, table_id: int, record_ids: Iterable[int]) -> int:
    """Erase the sealed values in the history of some records; returns how many values.

    Who did what and when stays (with the chain intact); the values are gone.
    """
    erased = 0
    ids = list(record_ids)
    from .webhooks import forget  # their webhook deliveries lose the values too

    forget(conn, table_id, ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = conn.execute(sa.select(audit_table.c.id, audit_table.c.changes).where(
            audit_table.c.table_id == table_id, audit_table.c.record_id.in_(chunk))).all()
        for entry_id, changes in rows:
            cleaned, count = _erased_form(changes)
            if count:
                conn.execute(sa.update(audit_table).where(audit_table.c.id == entry_id).values(changes=cleaned))
                erased += count
    return erased


def readable(changes: Any) -> Any:
    """``changes`` for display: sealed and erased values as short markers."""
    if isinstance(changes, dict):
        if len(changes) == 1 and SEALED in changes:
            return "[sealed]"
        if len(changes) == 1 and ERASED in changes:
            return "[erased]"
        return {k: readable(v) for k, v in changes.items()}
    if isinstance(changes, list):
        return [readable(v) for v in changes]
    return changes


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str

    def __str__(self) -> str:
        return f"audit entry {self.entry_id}: {self.reason}"


def verify_chain(conn: sa.Connection, batch: int = 5_000) -> ChainBreak | None:
    """The first entry whose contents or link no longer match, or ``None`` if the chain holds."""
    prev = GENESIS
    for row in _entries(conn, batch):
        if row["prev_hash"] != prev:
            return ChainBreak(row["id"], "it does not follow the entry before it (an entry was removed, inserted or reordered)")
        if entry_hash(prev, row) != row["hash"]:
            return ChainBreak(row["id"], "its contents were changed after it was written")
        prev = row["hash"]
    return None


def _entries(conn: sa.Connection, batch: int) -> Iterator[Mapping[Any, Any]]:
    last = 0
    while True:
        rows = conn.execute(
            sa.select(audit_table).where(audit_table.c.id > last).order_by(audit_table.c.id).limit(batch)
        ).mappings().all()
        if not rows:
            return
        yield from rows
        last = rows[-1]["id"]
