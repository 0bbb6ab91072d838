"""Writing the audit trail, always inside the transaction of the change it records."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from .actor import Actor
from .models import Audit, utcnow

audit_table: sa.Table = Audit.__table__  # type: ignore[assignment]


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


def write_audit(conn: sa.Connection, actor: Actor, action: str, **kwargs: Any) -> None:
    rows = audit_rows(actor, action, **kwargs)
    if rows:
        conn.execute(sa.insert(audit_table), rows)
