"""Deleting records to the trash, restoring them, and purging them for good.

A deleted record's stored row and outgoing links are kept in ``rb_trash`` so
it can be restored with the same id until the trash period ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .audit import write_audit
from .errors import Conflict, NotFound, PermissionDenied, RecordbaseError
from .models import Trash, utcnow
from .query import _decode_value, _encode_value

if TYPE_CHECKING:
    from .records import Record, RecordStore
    from .schema import TableSchema

trash_table: sa.Table = Trash.__table__  # type: ignore[assignment]


class LinkedRecordError(RecordbaseError):
    """A delete refused because another record links here with on_delete = restrict."""

    status = 409


def _incoming_links(store: RecordStore) -> list[tuple[RecordStore, Any]]:
    """(store of the linking table, its link field) for every link into this table."""
    found = []
    for ts in store.ts.app.tables.values():
        for f in ts.fields.values():
            if f.type.name == "link" and f.options.get("table") in (store.ts.slug, store.ts.uid):
                found.append((store.rb._store_for(store.actor, ts), f))
    return found


def _require_cascade(other: RecordStore, conn: sa.Connection, ids: list[int], link: str) -> None:
    """A cascade deletes only records the actor could delete one by one: else the whole delete is refused."""
    if other.access.full:
        return
    refusal = PermissionDenied(
        f'cannot delete: records in "{other.ts.slug}" link here through "{link}" and would be deleted with it, '
        "and you may not delete them"
    )
    deleters = [r for r in other.access.roles if r.can("delete")]
    if not deleters:
        raise refusal
    allowed = other.access.condition(deleters, utcnow(), conn.dialect.name)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        if conn.execute(sa.select(other.table.c.id).where(other.table.c.id.in_(chunk), sa.not_(allowed)).limit(1)).first():
            raise refusal


def delete_records(store: RecordStore, conn: sa.Connection, ids: Sequence[int], _seen: set[tuple[int, int]] | None = None) -> None:
    seen = _seen if _seen is not None else set()
    ids = [rid for rid in ids if (store.ts.pk, rid) not in seen]
    if not ids:
        return
    seen.update((store.ts.pk, rid) for rid in ids)
    t = store.table
    rows = conn.execute(sa.select(t).where(t.c.id.in_(ids))).mappings().all()
    if len(rows) != len(ids):
        missing = sorted(set(ids) - {r["id"] for r in rows})
        raise NotFound(f'no record {missing[0]} in "{store.ts.slug}"')
    for other, f in _incoming_links(store):
        junction = other.ts.junctions.get(f.slug)
        if junction is not None:
            linking = set(conn.execute(sa.select(junction.c.src).where(junction.c.dst.in_(ids))).scalars())
        else:
            col = other.table.c[f.column_name]
            linking = set(conn.execute(sa.select(other.table.c.id).where(col.in_(ids))).scalars())
        linking -= {rid for (tpk, rid) in seen if tpk == other.ts.pk}
        if not linking:
            continue
        rule = f.options.get("on_delete", "restrict")
        if rule == "cascade":
            _require_cascade(other, conn, sorted(linking), f.slug)
            delete_records(other, conn, sorted(linking), seen)
        elif rule == "set_null":
            if junction is not None:
                conn.execute(sa.delete(junction).where(junction.c.dst.in_(ids)))
            else:
                conn.execute(
                    sa.update(other.table).where(other.table.c.id.in_(linking))
                    .values({f.column_name: None, "version": other.table.c.version + 1, "updated_at": utcnow()})
                )
            write_audit(conn, store.actor, "unlink", app_id=other.ts.app.pk, table_id=other.ts.pk,
                        entries=[(rid, {"field": f.uid, "removed": sorted(ids)}) for rid in sorted(linking)])
        else:
            # Which records link here is told only to an actor who may read them all.
            count, first = (f"{len(linking)} record(s)", f" (first: {min(linking)})") if other.access.full else ("records", "")
            raise LinkedRecordError(
                f'cannot delete: {count} in "{other.ts.slug}" link here through "{f.slug}"{first}; unlink them first'
            )
    from .webhooks import enqueue  # the records as they were, before their rows and links go

    enqueue(conn, store, "delete", ids)
    links: dict[int, dict[str, list[int]]] = {}
    for slug, junction in store.ts.junctions.items():
        for src, dst in conn.execute(sa.select(junction.c.src, junction.c.dst).where(junction.c.src.in_(ids)).order_by(junction.c.src, junction.c.position)):
            links.setdefault(src, {}).setdefault(slug, []).append(dst)
        conn.execute(sa.delete(junction).where(junction.c.src.in_(ids)))
    store.remove_search_documents(conn, ids)
    conn.execute(sa.delete(t).where(t.c.id.in_(ids)))
    now = utcnow()
    expires = now + dt.timedelta(days=store.rb.settings.trash_days)
    conn.execute(sa.insert(trash_table), [
        {
            "kind": "record", "app_id": store.ts.app.pk, "table_id": store.ts.pk, "field_id": None,
            "record_id": row["id"], "deleted_at": now, "deleted_by": store.actor.label, "expires_at": expires,
            "payload": {"row": {k: _encode_value(v) for k, v in row.items()}, "links": links.get(row["id"], {})},
        }
        for row in rows
    ])
    entries = []
    fields = list(store.ts.fields.values())
    for row in rows:
        before = store._to_record(row, fields, links.get(row["id"], {}))
        entries.append((row["id"], {"fields": store._changes(before.fields, dict.fromkeys(before.fields))}))
    write_audit(conn, store.actor, "delete", app_id=store.ts.app.pk, table_id=store.ts.pk, entries=entries)


def _trash_entry(store: RecordStore, conn: sa.Connection, record_id: int) -> Any:
    tt = trash_table
    entry = conn.execute(
        sa.select(tt).where(tt.c.kind == "record", tt.c.table_id == store.ts.pk, tt.c.record_id == record_id)
        .order_by(tt.c.id.desc()).limit(1)
    ).mappings().first()
    if entry is None:
        raise NotFound(f'record {record_id} of "{store.ts.slug}" is not in the trash')
    return entry


def trashed_record(store: RecordStore, conn: sa.Connection, record_id: int) -> tuple[Record, dt.datetime]:
    """A record in the trash as it was when deleted (values decrypted), and when the trash lets it go.

    For a data subject's access request: what is held in the trash is still held.
    """
    entry = _trash_entry(store, conn, record_id)
    record = store._to_record(_stored_row(store, entry), store.ts.stored_fields, entry["payload"].get("links") or {})
    return record, entry["expires_at"]


def _stored_row(store: RecordStore, entry: Any) -> dict[str, Any]:
    """A trash entry's row as the table stores it now (columns of fields removed since are left out)."""
    row = {k: _decode_value(v) for k, v in entry["payload"]["row"].items() if k in store.table.c}
    for key in ("created_at", "updated_at"):
        if isinstance(row.get(key), str):
            row[key] = dt.datetime.fromisoformat(row[key])
    return row


def restore_record(store: RecordStore, conn: sa.Connection, record_id: int) -> None:
    entry = _trash_entry(store, conn, record_id)
    row = _stored_row(store, entry)
    row["version"] = int(row.get("version") or 1) + 1
    row["updated_at"] = utcnow()
    row["updated_by"] = store.actor.user_id
    if conn.execute(sa.select(store.table.c.id).where(store.table.c.id == record_id)).first():
        raise Conflict(f"record {record_id} already exists")
    # Unique values may have been taken meanwhile; check them like any write.
    for f in store.ts.stored_fields:
        if f.unique and row.get(f.column_name) is not None:
            col = store.table.c[f.column_name]
            if conn.execute(sa.select(store.table.c.id).where(col == row[f.column_name])).first():
                raise Conflict(f'cannot restore record {record_id}: another record now has its "{f.slug}"')
        if f.type.name == "link" and row.get(f.column_name) is not None:
            linked = store._link_target(f).table
            if not conn.execute(sa.select(linked.c.id).where(linked.c.id == row[f.column_name])).first():
                row[f.column_name] = None  # the linked record is gone; keep the rest
    conn.execute(sa.insert(store.table).values(row))
    for slug, targets in (entry["payload"].get("links") or {}).items():
        junction = store.ts.junctions.get(slug)
        if junction is None:
            continue
        target: TableSchema | None = store._link_target(store.ts.fields[slug]) if store.ts.fields[slug].type.name == "link" else None
        alive = set(targets) if target is None else store._existing(conn, target.table.c.id, targets)
        rows = [{"src": record_id, "dst": dst, "position": i} for i, dst in enumerate(d for d in targets if d in alive)]
        if rows:
            conn.execute(sa.insert(junction), rows)
    stored = conn.execute(sa.select(store.table).where(store.table.c.id == record_id)).mappings().one()
    store._write_search(conn, store.search_items([stored]))
    conn.execute(sa.delete(trash_table).where(trash_table.c.id == entry["id"]))
    write_audit(conn, store.actor, "restore", app_id=store.ts.app.pk, table_id=store.ts.pk, entries=[(record_id, {})])


def purge_record(store: RecordStore, conn: sa.Connection, record_id: int) -> None:
    from .collab import forget_records  # its comments and notifications go with it

    entry = _trash_entry(store, conn, record_id)
    conn.execute(sa.delete(trash_table).where(trash_table.c.id == entry["id"]))
    forget_records(conn, store.ts.pk, [record_id])
    write_audit(conn, store.actor, "purge", app_id=store.ts.app.pk, table_id=store.ts.pk, entries=[(record_id, {})])


def erase_for_good(store: RecordStore, conn: sa.Connection, ids: Sequence[int]) -> tuple[set[tuple[int, int]], int]:
    """Delete records and what their links cascade to, skipping the trash, and erase the values in their history.

    For retention and data-subject erasure: gone means gone, not in the trash
    for another month. Returns the (table pk, record id) of every record
    removed, and how many sealed values their history lost.
    """
    from .audit import erase_values

    seen: set[tuple[int, int]] = set()
    delete_records(store, conn, ids, seen)
    by_table: dict[int, list[int]] = {}
    for table_pk, rid in seen:
        by_table.setdefault(table_pk, []).append(rid)
    erased = 0
    for table_pk, rids in by_table.items():
        drop_trashed(conn, table_pk, rids)
        erased += erase_values(conn, table_pk, sorted(rids))
    return seen, erased


def drop_trashed(conn: sa.Connection, table_pk: int, record_ids: Sequence[int]) -> None:
    """Remove deleted records' trash entries for good (their rows and links, comments and notifications with them)."""
    from .collab import forget_records

    forget_records(conn, table_pk, record_ids)
    tt = trash_table
    for start in range(0, len(record_ids), 500):
        chunk = list(record_ids[start : start + 500])
        conn.execute(sa.delete(tt).where(tt.c.kind == "record", tt.c.table_id == table_pk, tt.c.record_id.in_(chunk)))

