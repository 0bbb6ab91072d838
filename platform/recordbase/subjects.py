"""Data-subject requests: find, export and erase everything kept about one person.

A person is found by email address or phone number, in every email and
phone field of every installed app. Encrypted fields are searched through
their blind indexes, so no value is decrypted to look; deleted records still
in the trash are searched too. Records linking to a found record (a deal of
a contact, say) are reported as linked: they are about the person as well.

``erase`` works in one transaction. Each found record is deleted for good —
with whatever its links cascade to, and out of the trash — unless its table
declares ``"erasure": {"action": "anonymise", "reason": ...}`` (a legal duty
to keep the record) or another record's ``restrict`` link holds it; then its
personal and sensitive fields are emptied instead. Linked records keep their
business values and lose their personal and sensitive ones. The sealed
values in the audit history of every touched record are erased, the search
index follows, and attachment files nobody else uses are removed. The
comments and notifications of each found record go too (deleted or kept:
comments are free text about it); linked records keep theirs. The
consent ledger is kept: it proves consent was given and withdrawn, and holds
no personal value. The report says what was done and what was kept and why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .actor import Actor
from .audit import erase_values, write_audit
from .consent import ledger
from .errors import PermissionDenied, Problem, ValidationError
from .fields import Field, FieldValueError
from .files import files_t
from .models import utcnow
from .schema import TableSchema
from .trash import LinkedRecordError, drop_trashed, erase_for_good, trash_table, trashed_record

if TYPE_CHECKING:
    from .core import Recordbase
    from .records import RecordStore

PERSONAL = ("personal", "sensitive")


@dataclass
class Hit:
    """One record about the person: matched directly, or linking to one that was."""

    app: str
    table: str
    record_id: int
    matched: list[str]  # the fields that matched, or the link field for a linked record
    linked_from: tuple[str, int] | None = None  # (table, record id) this record links to
    in_trash: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "app": self.app, "table": self.table, "record_id": self.record_id, "matched": self.matched,
            "linked_to": None if self.linked_from is None else {"table": self.linked_from[0], "record_id": self.linked_from[1]},
            "in_trash": self.in_trash,
        }


@dataclass
class ErasureReport:
    deleted: list[Hit] = field(default_factory=list)
    anonymised: list[tuple[Hit, str]] = field(default_factory=list)  # (record, why it was kept)
    cascaded: int = 0  # records deleted with them through cascading links
    history_values: int = 0  # sealed values erased from the audit history
    files_removed: int = 0
    kept: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "deleted": [h.as_dict() for h in self.deleted],
            "anonymised": [{**h.as_dict(), "why": why} for h, why in self.anonymised],
            "cascaded": self.cascaded, "history_values_erased": self.history_values,
            "files_removed": self.files_removed, "kept": self.kept,
        }


def _require_admin(actor: Actor) -> None:
    if not (actor.kind == "system" or actor.is_admin):
        raise PermissionDenied("data-subject requests are for platform administrators")


def _identifiers(emails: Iterable[str], phones: Iterable[str]) -> dict[str, list[str]]:
    wanted = {"email": [e.strip() for e in emails if e and e.strip()], "phone": [p.strip() for p in phones if p and p.strip()]}
    if not wanted["email"] and not wanted["phone"]:
        raise ValidationError("give an email address or a phone number", [Problem("/", "give an email address or a phone number")])
    return wanted


def _keys(f: Field, given: Sequence[str]) -> set[Any]:
    """What ``given`` looks like in the field's index column (blind index or value)."""
    found = set()
    for text in given:
        for variant in dict.fromkeys([text, text.lower()]):
            try:
                parsed = f.type.parse(f, variant)
            except FieldValueError:
                continue
            if parsed is not None:
                found.add(f.type.unique_key(f, parsed))
    return found


def _tables(rb: Recordbase) -> list[TableSchema]:
    return [ts for listed in rb.list_apps() for ts in rb.app(listed["slug"]).tables.values()]


def find(rb: Recordbase, actor: Actor, *, emails: Iterable[str] = (), phones: Iterable[str] = ()) -> list[Hit]:
    """Every record about the person, across apps: direct matches first, then linking records."""
    _require_admin(actor)
    wanted = _identifiers(emails, phones)
    with rb.read() as conn:
        return _find(rb, conn, wanted)


def _find(rb: Recordbase, conn: sa.Connection, wanted: dict[str, list[str]]) -> list[Hit]:
    direct: dict[tuple[int, int], Hit] = {}
    tables = _tables(rb)
    for ts in tables:
        for f in ts.fields.values():
            given = wanted.get(f.type.name)
            if not given:
                continue
            keys = _keys(f, given)
            if not keys:
                continue
            column = f.type.index_column(f)
            for rid in conn.execute(sa.select(ts.table.c.id).where(ts.table.c[column].in_(sorted(keys, key=str)))).scalars():
                direct.setdefault((ts.pk, rid), Hit(ts.app.slug, ts.slug, rid, [])).matched.append(f.slug)
            for rid in _trash_matches(conn, ts, column, keys):
                direct.setdefault((ts.pk, rid), Hit(ts.app.slug, ts.slug, rid, [], in_trash=True)).matched.append(f.slug)
    hits = sorted(direct.values(), key=lambda h: (h.app, h.table, h.record_id))
    linked: dict[tuple[int, int], Hit] = {}
    by_slug = {(ts.app.slug, ts.slug): ts for ts in tables}
    for hit in hits:
        if hit.in_trash:
            continue
        target = by_slug[(hit.app, hit.table)]
        for ts, f in _links_into(target, tables):
            junction = ts.junctions.get(f.slug)
            if junction is not None:
                rows = conn.execute(sa.select(junction.c.src).where(junction.c.dst == hit.record_id)).scalars()
            else:
                rows = conn.execute(sa.select(ts.table.c.id).where(ts.table.c[f.column_name] == hit.record_id)).scalars()
            for rid in rows:
                if (ts.pk, rid) not in direct:
                    linked.setdefault((ts.pk, rid), Hit(ts.app.slug, ts.slug, rid, [f.slug], linked_from=(hit.table, hit.record_id)))
    return hits + sorted(linked.values(), key=lambda h: (h.app, h.table, h.record_id))


def _links_into(target: TableSchema, tables: Sequence[TableSchema]) -> list[tuple[TableSchema, Field]]:
    return [
        (ts, f) for ts in tables if ts.app.pk == target.app.pk
        for f in ts.fields.values() if f.type.name == "link" and f.options.get("table") in (target.slug, target.uid)
    ]


def _trash_matches(conn: sa.Connection, ts: TableSchema, column: str, keys: set[Any]) -> list[int]:
    tt = trash_table
    rows = conn.execute(sa.select(tt.c.record_id, tt.c.payload).where(tt.c.kind == "record", tt.c.table_id == ts.pk))
    wanted = {str(k) for k in keys}
    return [rid for rid, payload in rows if str((payload.get("row") or {}).get(column)) in wanted]


# --- export --------------------------------------------------------------------------


def export(rb: Recordbase, actor: Actor, *, emails: Iterable[str] = (), phones: Iterable[str] = ()) -> dict[str, Any]:
    """Everything about the person as one JSON document: records in clear, with their consent ledgers.

    For the person's own access or portability request; audited (without
    the identifiers that were searched for).
    """
    _require_admin(actor)
    wanted = _identifiers(emails, phones)
    with rb.read() as conn:
        hits = _find(rb, conn, wanted)
    records = []
    for hit in hits:
        entry = hit.as_dict()
        store = rb.records(actor, hit.app, hit.table)
        if hit.in_trash:
            # Still held, so still the person's to see: the values as deleted, and until when.
            with rb.read() as conn:
                record, expires = trashed_record(store, conn, hit.record_id)
            entry["fields"] = record.as_json(store.ts)["fields"]
            entry["note"] = f"deleted; kept in the trash until {expires.date().isoformat()}"
        else:
            entry["fields"] = store.get(hit.record_id).as_json(store.ts)["fields"]
        entry["labels"] = {slug: f.label for slug, f in store.ts.fields.items() if slug in entry["fields"]}
        entry["consents"] = [
            {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in c.items()}
            for c in ledger(store, hit.record_id)
        ]
        records.append(entry)
    with rb.write() as conn:
        write_audit(conn, actor, "subject_export", entries=[(None, {"records": len(records), "request": _request_digest(rb, wanted)})])
    return {"exported_at": utcnow().isoformat(), "records": records}


def _request_digest(rb: Recordbase, wanted: dict[str, list[str]]) -> str:
    """A keyed digest of what was searched for: ties audit entries of one request together, reveals nothing."""
    text = "|".join(sorted(f"{k}:{v.lower()}" for k, values in wanted.items() for v in values))
    return rb.keys.blind_index(text, "subject-request")


# --- erase ---------------------------------------------------------------------------


def erase(
    rb: Recordbase, actor: Actor, *, emails: Iterable[str] = (), phones: Iterable[str] = (), dry_run: bool = False,
    reason: str | None = None,
) -> ErasureReport:
    """Erase the person everywhere, in one transaction (rolled back when ``dry_run``).

    ``reason`` (the request's reference, say) is kept in the ``subject_erase`` audit entry.
    """
    _require_admin(actor)
    wanted = _identifiers(emails, phones)
    report = ErasureReport()
    unused_files: list[str] = []
    with rb.engine.connect().execution_options(rb_write=True) as conn:
        transaction = conn.begin()
        try:
            hits = _find(rb, conn, wanted)
            shas = _erase(rb, actor, conn, hits, report)
            unused_files = _unused_files(rb, conn, shas)
            report.files_removed = len(unused_files)
            write_audit(conn, actor, "subject_erase", entries=[(None, {
                "request": _request_digest(rb, wanted), "deleted": len(report.deleted), "anonymised": len(report.anonymised),
                "cascaded": report.cascaded, "history_values_erased": report.history_values, "files_removed": report.files_removed,
                **({"reason": reason} if reason else {}),
            })])
            if dry_run:
                transaction.rollback()
                return report
            transaction.commit()
        except BaseException:
            if transaction.is_active:
                transaction.rollback()
            raise
    for sha in unused_files:  # after the commit: a rolled-back erase must not lose files
        path = rb.files.path_for(sha)
        if path.exists():
            path.unlink()
    return report


def _erase(rb: Recordbase, actor: Actor, conn: sa.Connection, hits: list[Hit], report: ErasureReport) -> set[str]:
    stores: dict[tuple[str, str], RecordStore] = {}

    def store_for(hit: Hit) -> RecordStore:
        key = (hit.app, hit.table)
        if key not in stores:
            stores[key] = rb.records(actor, hit.app, hit.table)  # an administrator: every record, in clear
        return stores[key]

    shas: set[str] = set()
    touched: dict[int, set[int]] = {}  # table pk → record ids whose history loses its values
    # Linked records first: their personal values go, their business values stay.
    for hit in (h for h in hits if h.linked_from is not None):
        store = store_for(hit)
        personal = [f for f in store.ts.stored_fields if f.sensitivity in PERSONAL]
        shas |= _attachments(conn, store, [hit.record_id], personal)
        if personal:
            store.anonymise(conn, [hit.record_id], personal, "subject_erase")
        touched.setdefault(store.ts.pk, set()).add(hit.record_id)
        report.anonymised.append((hit, f'linked to {hit.linked_from[0]} {hit.linked_from[1]}: business record kept, personal fields emptied'))  # type: ignore[index]
    for hit in (h for h in hits if h.linked_from is None):
        store = store_for(hit)
        touched.setdefault(store.ts.pk, set()).add(hit.record_id)
        if hit.in_trash:
            shas |= _trashed_attachments(conn, store, hit.record_id)
            drop_trashed(conn, store.ts.pk, [hit.record_id])
            report.deleted.append(hit)
            continue
        rule = store.ts.definition.get("erasure") or {}
        personal = [f for f in store.ts.stored_fields if f.sensitivity in PERSONAL]
        if rule.get("action") == "anonymise":
            shas |= _attachments(conn, store, [hit.record_id], personal)
            store.anonymise(conn, [hit.record_id], personal, "subject_erase")
            report.anonymised.append((hit, str(rule.get("reason"))))
            continue
        every = [f for f in store.ts.stored_fields if f.type.name == "attachment"]
        found = _attachments(conn, store, [hit.record_id], every)
        savepoint = conn.begin_nested()
        try:
            seen, erased = erase_for_good(store, conn, [hit.record_id])
        except LinkedRecordError as exc:
            savepoint.rollback()
            shas |= _attachments(conn, store, [hit.record_id], personal)
            store.anonymise(conn, [hit.record_id], personal, "subject_erase")
            report.anonymised.append((hit, f"other records must keep linking to it ({exc}); personal fields emptied"))
            continue
        savepoint.commit()
        shas |= found
        report.cascaded += len(seen) - 1
        report.history_values += erased
        report.deleted.append(hit)
    for table_pk, ids in touched.items():
        report.history_values += erase_values(conn, table_pk, sorted(ids))
    # Comments are free text about the record: those on a record about the person go, even when it is kept.
    from .collab import forget_records

    for hit in (h for h in hits if h.linked_from is None):
        forget_records(conn, store_for(hit).ts.pk, [hit.record_id])
    report.kept.append("the consent ledger (purpose, text version, channel and times; no personal value): proof of lawful processing")
    report.kept.append("who did what and when in the audit trail; the values in it are erased")
    return shas


def _attachments(conn: sa.Connection, store: RecordStore, ids: Sequence[int], fields: Sequence[Field]) -> set[str]:
    """The files held by ``fields`` of records ``ids``."""
    wanted = [f for f in fields if f.type.name == "attachment"]
    if not wanted:
        return set()
    shas: set[str] = set()
    for record_id in ids:
        record = store._get(conn, record_id, wanted)
        for f in wanted:
            shas.update(item["sha256"] for item in record.fields.get(f.slug) or [])
    return shas


def _trashed_attachments(conn: sa.Connection, store: RecordStore, record_id: int) -> set[str]:
    from .query import _decode_value

    tt = trash_table
    payloads = conn.execute(sa.select(tt.c.payload).where(
        tt.c.kind == "record", tt.c.table_id == store.ts.pk, tt.c.record_id == record_id)).scalars()
    shas: set[str] = set()
    for payload in payloads:
        row = payload.get("row") or {}
        for f in store.ts.stored_fields:
            if f.type.name == "attachment" and row.get(f.column_name) is not None:
                value = f.type.from_db(f, _decode_value(row[f.column_name]))
                shas.update(item["sha256"] for item in value or [])
    return shas


def _unused_files(rb: Recordbase, conn: sa.Connection, shas: set[str]) -> list[str]:
    """Of ``shas``, the files no record and no trash entry refers to any more (their rows are deleted here)."""
    if not shas:
        return []
    columns = [
        ts.table.c[f.column_name] for ts in _tables(rb) for f in ts.stored_fields
        if f.type.name == "attachment" and not f.type.encrypted
    ]
    unused = []
    for sha in sorted(shas):
        pattern = f"%{sha}%"
        used = any(conn.execute(sa.select(sa.literal(1)).where(sa.cast(col, sa.Text).like(pattern)).limit(1)).first() for col in columns)
        used = used or conn.execute(sa.select(sa.literal(1)).select_from(trash_table).where(
            sa.cast(trash_table.c.payload, sa.Text).like(pattern)).limit(1)).first() is not None
        if not used:
            conn.execute(sa.delete(files_t).where(files_t.c.sha256 == sha))
            unused.append(sha)
    return unused


__all__ = ["Hit", "ErasureReport", "find", "export", "erase"]
