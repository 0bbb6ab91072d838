"""Retention: records past their table's retention period are deleted or anonymised.

Run by ``recordbase retention run`` (safe from cron: it only touches records
still due, so a second run does nothing). Each table's work is one
transaction under the named system actor ``retention``, and audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .actor import Actor
from .errors import RecordbaseError
from .models import utcnow
from .schema import TableSchema

if TYPE_CHECKING:
    from .core import Recordbase

RETENTION_ACTOR = Actor.system("retention")
PERSONAL = ("personal", "sensitive")


@dataclass
class RetentionResult:
    app: str
    table: str
    action: str  # delete | anonymise
    rule: str
    due: int  # records past the period (and, for anonymise, still holding personal data)
    done: int
    error: str | None = None

    def line(self, dry_run: bool) -> str:
        verb = {"delete": "delete", "anonymise": "anonymise"}[self.action]
        if self.error:
            return f"{self.app}.{self.table}: {self.rule}: {self.due} due, refused: {self.error}"
        if dry_run:
            return f"{self.app}.{self.table}: {self.rule}: would {verb} {self.due} record(s)"
        return f"{self.app}.{self.table}: {self.rule}: {verb}d {self.done} record(s)"


def _due(ts: TableSchema, rule: dict[str, Any], now: dt.datetime) -> tuple[sa.ColumnElement[bool], list[Any]]:
    f = ts.fields[rule["field"]]
    col = f.type.column(f, ts.table)
    cutoff: Any = now - dt.timedelta(days=int(rule["days"]))
    if f.type.name == "date":
        cutoff = cutoff.date()
    condition = sa.and_(col.is_not(None), col < cutoff)
    personal = [p for p in ts.stored_fields if p.sensitivity in PERSONAL]
    if rule["action"] == "anonymise":
        # Already anonymised records are not due again: that keeps a rerun a no-op.
        condition = sa.and_(condition, sa.or_(sa.false(), *(ts.table.c[p.column_name].is_not(None) for p in personal)))
    return condition, personal


def run_retention(
    rb: Recordbase, *, now: dt.datetime | None = None, dry_run: bool = False, actor: Actor | None = None,
) -> list[RetentionResult]:
    """Apply every table's retention rule; ``actor`` (default: the retention job) is who the audit names."""
    from .audit import erase_values
    from .trash import erase_for_good

    now = now or utcnow()
    results = []
    for listed in rb.list_apps():
        app = rb.app(listed["slug"])
        for ts in app.tables.values():
            rule = ts.definition.get("retention")
            if not rule:
                continue
            text = f'{rule["action"]} {rule["days"]} days after {rule["field"]}'
            condition, personal = _due(ts, rule, now)
            with rb.read() as conn:
                ids = list(conn.execute(sa.select(ts.table.c.id).where(condition).order_by(ts.table.c.id)).scalars())
            result = RetentionResult(app.slug, ts.slug, rule["action"], text, len(ids), 0)
            results.append(result)
            if dry_run or not ids:
                continue
            store = rb._store_for(actor or RETENTION_ACTOR, ts)
            try:
                with rb.write() as conn:
                    if rule["action"] == "delete":
                        erase_for_good(store, conn, ids)
                    else:
                        store.anonymise(conn, ids, personal, "retention_anonymise")
                        erase_values(conn, ts.pk, ids)
                result.done = len(ids)
            except RecordbaseError as exc:
                result.error = exc.message
    return results
