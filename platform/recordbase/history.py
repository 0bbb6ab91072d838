"""A record's history, read from the audit trail as one actor may see it.

The record page shows who changed what and when. The audit trail holds every
field's before and after, personal values sealed; this module opens them
for the actor only as far as a read of the record would: the record must be
in the actor's rows, changes to fields it cannot see are left out, values it
sees masked come back masked, and erased values come back as ``ERASED``.
Reasons given for reveals are shown to full-access actors only (they are free
text and may name the person).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .audit import ERASED, SEALED, audit_table
from .fields import Field, FieldValueError
from .models import utcnow

if TYPE_CHECKING:
    from .access import RoleRule
    from .records import RecordStore

ERASED_VALUE = "[erased]"
_QUIET = ("consent_given", "consent_withdrawn", "restore", "purge", "unlink")


@dataclass
class Change:
    at: dt.datetime
    actor: str
    action: str
    fields: dict[str, list[Any]] = field(default_factory=dict)  # slug → [before, after], JSON values
    details: dict[str, Any] = field(default_factory=dict)


def record_history(store: RecordStore, record_id: int, limit: int = 500) -> list[Change]:
    """The record's changes, oldest first (``NotFound`` outside the actor's rows, like a get)."""
    readers = store.access.require("read")
    now = utcnow()
    a = audit_table
    with store.rb.read() as conn:
        store._require_row(conn, record_id, readers, now)
        matching = store._scope(conn, [record_id], readers, now)
        rows = conn.execute(
            sa.select(a.c.at, a.c.actor_name, a.c.action, a.c.changes)
            .where(a.c.table_id == store.ts.pk, a.c.record_id == record_id).order_by(a.c.id).limit(limit)
        ).all()
    by_uid = {f.uid: f for f in store.ts.fields.values()}
    out = []
    for at, actor, action, changes in rows:
        change = Change(at, actor, action)
        changes = changes or {}
        touched = changes.get("fields")
        if isinstance(touched, dict):  # create, update, delete: before and after per field
            for uid, pair in touched.items():
                f = by_uid.get(uid)
                if f is None or not _visible(store, f, matching):
                    continue
                change.fields[f.slug] = [_shown(store, f, value, matching) for value in pair]
        elif isinstance(touched, list):  # anonymised: which fields were emptied
            change.details["emptied"] = [by_uid[u].slug for u in touched if u in by_uid and _visible(store, by_uid[u], matching)]
        elif action == "reveal":
            f = by_uid.get(str(changes.get("field")))
            if f is None or not _visible(store, f, matching):
                continue
            change.details["field"] = f.slug
            if store.access.full:
                change.details["reason"] = changes.get("reason")
        elif action in _QUIET:
            change.details = {k: v for k, v in changes.items() if k in ("purposes", "purpose", "version", "channel", "done")}
        out.append(change)
    return out


def _visible(store: RecordStore, f: Field, matching: list[RoleRule]) -> bool:
    return store.access.full or any(r.levels[f.slug] >= 1 for r in matching)


def _shown(store: RecordStore, f: Field, stored: Any, matching: list[RoleRule]) -> Any:
    """A value from the trail as the actor sees it: opened, parsed, masked if need be, in JSON form."""
    if stored is None:
        return None
    if isinstance(stored, dict) and ERASED in stored:
        return ERASED_VALUE
    if isinstance(stored, dict) and SEALED in stored:
        stored = json.loads(store.rb.keys.decrypt(stored[SEALED], f"{store.ts.pk}:{f.uid}"))
    elif f.type.encrypted and isinstance(stored, str) and stored.startswith("v1:"):
        stored = f.type.from_db(f, stored)  # entries written before values were sealed as {"$sealed": …}
    try:
        value = f.type.parse(f, stored)
    except FieldValueError:  # the field's type changed since: show the old value as it was
        value = stored
    if value is None:
        return None
    presented = store.access.present({f.slug: value}, matching).get(f.slug)
    if presented is None or type(presented) in (str, int, bool, float):
        return presented
    try:
        return f.type.json_value(f, presented)
    except (FieldValueError, TypeError, ValueError, AttributeError):
        return str(presented)
