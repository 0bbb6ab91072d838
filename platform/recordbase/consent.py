"""The consent ledger: giving and withdrawing consent per record and purpose.

A table declares its consent (purposes, the text shown, its version, what
withdrawing does). Each sensitive field needs its own consent, under the
purpose ``sensitive:<field slug>``. Withdrawing is one call, like giving: the
ledger entry is closed and the table's ``withdraw_action`` runs — anonymise
(empty the personal and sensitive fields), delete (for good), or flag (the
ledger records it; processing must stop) — or, for a sensitive field's
consent, that one field is emptied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .audit import write_audit
from .errors import NotFound, Problem, ValidationError
from .models import Consent, utcnow

if TYPE_CHECKING:
    from .records import RecordStore

consent_t: sa.Table = Consent.__table__  # type: ignore[assignment]
SENSITIVE_PREFIX = "sensitive:"


def declared_purposes(store: RecordStore) -> list[str]:
    consent = store.ts.definition.get("consent")
    if not consent:
        return []
    sensitive = [SENSITIVE_PREFIX + f.slug for f in store.ts.fields.values() if f.sensitivity == "sensitive"]
    return [*consent.get("purposes", []), *sensitive]


def _declaration(store: RecordStore) -> dict[str, Any]:
    consent = store.ts.definition.get("consent")
    if not consent:
        raise ValidationError(f'table "{store.ts.slug}" declares no consent', [Problem("/purposes", "this table declares no consent")])
    return dict(consent)


def give(store: RecordStore, record_id: int, purposes: list[str], *, version: Any, channel: str) -> list[dict[str, Any]]:
    declaration = _declaration(store)
    known = declared_purposes(store)
    problems = [Problem(f"/purposes/{i}", f'"{p}" is not a purpose of this table; purposes are: {", ".join(known)}')
                for i, p in enumerate(purposes) if p not in known]
    if str(version) != str(declaration["version"]):
        problems.append(Problem("/version", f'the consent text is at version {declaration["version"]}; consent to version {version} is out of date'))
    if not purposes:
        problems.append(Problem("/purposes", "give at least one purpose"))
    if problems:
        raise ValidationError(f"consent not recorded: {problems[0].message}", problems)
    now = utcnow()
    with store.rb.write() as conn:
        store._require_row(conn, record_id, store.access.require_any("create", "update"), now)
        open_ = _open(conn, store, record_id)
        rows = [
            {"app_id": store.ts.app.pk, "table_id": store.ts.pk, "record_id": record_id, "purpose": p,
             "version": str(version), "channel": channel, "given_at": now, "given_by": store.actor.label}
            for p in dict.fromkeys(purposes) if p not in open_
        ]
        if rows:
            conn.execute(sa.insert(consent_t), rows)
            write_audit(conn, store.actor, "consent_given", app_id=store.ts.app.pk, table_id=store.ts.pk,
                        entries=[(record_id, {"purposes": [r["purpose"] for r in rows], "version": str(version), "channel": channel})])
    return ledger(store, record_id)


def withdraw(store: RecordStore, record_id: int, purpose: str, *, channel: str) -> str:
    """Close the consent and apply its consequence; returns what was done."""
    from .trash import delete_records, purge_record

    declaration = _declaration(store)
    now = utcnow()
    with store.rb.write() as conn:
        store._require_row(conn, record_id, store.access.require_any("create", "update"), now)
        entry = _open(conn, store, record_id).get(purpose)
        if entry is None:
            raise NotFound(f'record {record_id} has no open consent for "{purpose}"')
        conn.execute(sa.update(consent_t).where(consent_t.c.id == entry).values(withdrawn_at=now, withdrawn_by=store.actor.label))
        if purpose.startswith(SENSITIVE_PREFIX):
            field = store.ts.fields[purpose.removeprefix(SENSITIVE_PREFIX)]
            store.anonymise(conn, [record_id], [field], "consent_withdrawn")
            done = f'emptied "{field.slug}"'
        else:
            action = declaration.get("withdraw_action", "flag")
            if action == "delete":
                delete_records(store, conn, [record_id])
                purge_record(store, conn, record_id)
                done = "deleted the record"
            elif action == "anonymise":
                personal = [f for f in store.ts.stored_fields if f.sensitivity in ("personal", "sensitive")]
                store.anonymise(conn, [record_id], personal, "consent_withdrawn")
                done = "anonymised the record"
            else:
                done = "flagged: processing for this purpose must stop"
        write_audit(conn, store.actor, "consent_withdrawn", app_id=store.ts.app.pk, table_id=store.ts.pk,
                    entries=[(record_id, {"purpose": purpose, "channel": channel, "done": done})])
    return done


def _open(conn: sa.Connection, store: RecordStore, record_id: int) -> dict[str, int]:
    """Open (not withdrawn) consents of a record: purpose → ledger id."""
    rows = conn.execute(sa.select(consent_t.c.purpose, consent_t.c.id).where(
        consent_t.c.table_id == store.ts.pk, consent_t.c.record_id == record_id, consent_t.c.withdrawn_at.is_(None)))
    return {purpose: entry for purpose, entry in rows}


def ledger(store: RecordStore, record_id: int) -> list[dict[str, Any]]:
    """Every consent given for a record, withdrawn ones included, oldest first."""
    with store.rb.read() as conn:
        rows = conn.execute(sa.select(consent_t).where(consent_t.c.table_id == store.ts.pk, consent_t.c.record_id == record_id)
                            .order_by(consent_t.c.id)).mappings().all()
    keys = ("purpose", "version", "channel", "given_at", "given_by", "withdrawn_at", "withdrawn_by")
    return [{k: r[k] for k in keys} for r in rows]


# --- the ledger for compliance officers ---------------------------------------------------


def entries(
    rb: Any, *, table_pk: int | None = None, purpose: str | None = None, record: int | None = None,
    before_id: int | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """Ledger entries, newest first, narrowed by table, purpose and record; paged by ``before_id``.

    The ledger holds who consented to what and when — no record value — so it
    is read as it is, for admins answering an auditor.
    """
    c = consent_t
    stmt = sa.select(c).order_by(c.c.id.desc()).limit(limit)
    if table_pk is not None:
        stmt = stmt.where(c.c.table_id == table_pk)
    if purpose is not None:
        stmt = stmt.where(c.c.purpose == purpose)
    if record is not None:
        stmt = stmt.where(c.c.record_id == record)
    if before_id is not None:
        stmt = stmt.where(c.c.id < before_id)
    with rb.read() as conn:
        return [dict(row) for row in conn.execute(stmt).mappings()]


def totals(rb: Any) -> list[dict[str, Any]]:
    """Per table and purpose: consents open now (``given``) and withdrawn ones."""
    c = consent_t
    stmt = (
        sa.select(
            c.c.table_id, c.c.purpose,
            sa.func.count(sa.case((c.c.withdrawn_at.is_(None), 1))).label("given"),
            sa.func.count(c.c.withdrawn_at).label("withdrawn"),
        )
        .group_by(c.c.table_id, c.c.purpose)
        .order_by(c.c.table_id, c.c.purpose)
    )
    with rb.read() as conn:
        return [dict(row) for row in conn.execute(stmt).mappings()]
