"""Automations: the repetitive work a table does by itself when records change or dates come.

A table's definition lists its automations::

    {"slug": "won_follow_up", "label": "Follow up a won deal",
     "trigger": {"on": "updated"},
     "condition": {"field": "stage", "op": "eq", "value": "won"},
     "actions": [
       {"do": "create", "table": "activities",
        "values": {"subject": "Thank-you call", "deal": {"$record": "id"}, "due_date": {"$today": 2}}},
       {"do": "notify", "to": {"$record": "owner"}, "message": {"en": "A deal was won", "zh-CN": "赢单了"}}
     ]}

**Triggers** (``trigger.on``): ``created``; ``updated`` — with a condition,
when the update makes it *become* true (it was false before), without one on
every update (``trigger.fields`` narrows it to changes of those fields);
``date`` — ``trigger.field`` (a date or date-time) reached, ``offset_days``
before or after, run by ``recordbase automations run`` from cron; ``form`` — a
record submitted through the public link of form view ``trigger.view``.

**Conditions** are the engine's filter trees, evaluated in SQL on the record.

**Actions** (``do``): ``set`` fields of the record; ``create`` a record in a
table of the app; ``assign`` a user field (and notify the assignee);
``notify`` users in their in-app inbox (``{"$record": <user field>}``,
``{"role": <role>}`` or ``{"user": <email>}`` — only people who can read the
record); ``webhook`` — a delivery to the table's webhooks subscribed to the
``automation`` event, through the signed, retried outbox. Values may be
literals, ``{"$record": <field or "id">}`` or ``{"$today": <days>}``.

**How they run.** Synchronous triggers run inside the writing transaction,
after the write, as the system actor ``automation:<app>/<slug>`` (every change
they make is audited under that name). Each run is its own SAVEPOINT: a failing
action rolls back that run only — never the write that triggered it — and the
failure is logged. Every run lands in ``rb_automation_run`` with what each
action did. Automations that trigger each other are followed to a depth of
:data:`MAX_DEPTH`; an automation meeting itself again on the same record is a
loop, stopped and logged. Scheduled runs fire once per record and date (a
unique key), so repeating ``automations run`` — even two at once — is safe.

Who may change automations: like the privacy rules, only a platform admin
(they write as the system and can send data to webhooks).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .access import Access
from .actor import Actor
from .errors import NotFound, PermissionDenied, Problem, QueryError, RecordbaseError
from .fields import FilterContext
from .models import AutomationRun, Membership, User, utcnow
from .query import compile_filter

if TYPE_CHECKING:
    from .core import Recordbase
    from .records import Record, RecordStore
    from .schema import TableSchema

runs_t: sa.Table = AutomationRun.__table__  # type: ignore[assignment]
members_t: sa.Table = Membership.__table__  # type: ignore[assignment]
users_t: sa.Table = User.__table__  # type: ignore[assignment]

TRIGGERS = ("created", "updated", "date", "form")
ACTIONS = ("set", "create", "assign", "notify", "webhook")
MAX_DEPTH = 5
DEFAULT_SINCE_DAYS = 30

# (table pk, automation slug, record id) of the runs under way in this thread: loops and depth.
_chain: contextvars.ContextVar[tuple[tuple[int, str, int], ...]] = contextvars.ContextVar("automation_chain", default=())


class ActionFailed(Exception):
    """An action that cannot be done; its message names fields and ids, never values."""


@dataclass
class RunLog:
    status: str = "done"
    error: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)


def automations_of(ts: TableSchema, on: str) -> list[Mapping[str, Any]]:
    return [
        a for a in ts.definition.get("automations") or []
        if a.get("active", True) and (a.get("trigger") or {}).get("on") == on
    ]


def has_any(ts: TableSchema) -> bool:
    return bool(ts.definition.get("automations"))


def system_actor(ts: TableSchema, automation: Mapping[str, Any]) -> Actor:
    return Actor.system(f"automation:{ts.app.slug}/{automation['slug']}")


# --- hooks called by the record store, inside the writing transaction ------------------------


def after_create(conn: sa.Connection, store: RecordStore, records: Sequence[Record], *, form: str | None = None) -> None:
    """Run ``created`` automations (and ``form`` ones for a form's submissions) on new records."""
    ts = store.ts
    wanted = automations_of(ts, "created")
    if form is not None:
        wanted += [a for a in automations_of(ts, "form") if a["trigger"].get("view") == form]
    for automation in wanted:
        trigger = automation["trigger"]["on"]
        matching = _matching(conn, store.rb, ts, automation.get("condition"), [r.id for r in records])
        for record in records:
            if record.id in matching:
                run(conn, store.rb, ts, automation, record.id, trigger)


def before_update(conn: sa.Connection, store: RecordStore, record_id: int) -> dict[str, bool]:
    """Which ``updated`` automations' conditions hold now, before the change (slug → held)."""
    return {
        a["slug"]: record_id in _matching(conn, store.rb, store.ts, a["condition"], [record_id])
        for a in automations_of(store.ts, "updated") if a.get("condition")
    }


def after_update(conn: sa.Connection, store: RecordStore, record_id: int, before: Mapping[str, bool], changed: Sequence[str]) -> None:
    """Run the ``updated`` automations this change fires."""
    ts = store.ts
    for automation in automations_of(ts, "updated"):
        fields = automation["trigger"].get("fields")
        if fields and not set(fields) & set(changed):
            continue
        condition = automation.get("condition")
        if condition:
            if before.get(automation["slug"]):
                continue  # it held already: "becomes true" did not happen
            if record_id not in _matching(conn, store.rb, ts, condition, [record_id]):
                continue
        run(conn, store.rb, ts, automation, record_id, "updated")


def _matching(conn: sa.Connection, rb: Recordbase, ts: TableSchema, condition: Any, ids: Sequence[int]) -> set[int]:
    if not ids:
        return set()
    if not condition:
        return set(ids)
    ctx = FilterContext(now=utcnow(), dialect=rb.dialect, schema=ts)
    stmt = sa.select(ts.table.c.id).where(ts.table.c.id.in_(list(ids)), compile_filter(ts, condition, ctx, "/condition"))
    return set(conn.execute(stmt).scalars())


# --- one run ------------------------------------------------------------------------------


@contextmanager
def _link(key: tuple[int, str, int]) -> Iterator[None]:
    token = _chain.set((*_chain.get(), key))
    try:
        yield
    finally:
        _chain.reset(token)


def run(
    conn: sa.Connection, rb: Recordbase, ts: TableSchema, automation: Mapping[str, Any], record_id: int,
    trigger: str, fire_key: str | None = None, log_id: int | None = None,
) -> RunLog:
    """Run one automation on one record in ``conn``'s transaction; the run is logged, a failure contained."""
    key = (ts.pk, str(automation["slug"]), record_id)
    chain = _chain.get()
    log = RunLog()
    if key in chain or len(chain) >= MAX_DEPTH:
        log.status = "stopped"
        log.error = (
            f'loop: "{automation["slug"]}" was already running on record {record_id}'
            if key in chain else f"stopped after {MAX_DEPTH} automations triggering each other"
        )
    else:
        savepoint = conn.begin_nested()
        try:
            with _link(key):
                for i, action in enumerate(automation.get("actions") or []):
                    outcome = _do(conn, rb, ts, automation, action, record_id)
                    log.actions.append({"action": i, "do": action.get("do"), **outcome})
            savepoint.commit()
        except (ActionFailed, RecordbaseError, ValueError, sa.exc.SQLAlchemyError) as error:
            if savepoint.is_active:
                savepoint.rollback()
            log.status = "failed"
            log.error = _describe(error)[:1000]
            log.actions.append({"action": len(log.actions), "do": "failed"})
    values = {"status": log.status, "error": log.error, "actions": log.actions}
    if log_id is not None:
        conn.execute(sa.update(runs_t).where(runs_t.c.id == log_id).values(values))
    else:
        conn.execute(sa.insert(runs_t).values(
            app_id=ts.app.pk, table_id=ts.pk, automation=automation["slug"], record_id=record_id, trigger=trigger,
            fire_key=fire_key, created_at=utcnow(), **values,
        ))
    return log


def _describe(error: BaseException) -> str:
    """An error for the log: the engine's own messages hold no values; anything else by its kind only."""
    if isinstance(error, RecordbaseError):
        details = "; ".join(f"{p.pointer}: {p.message}" for p in error.problems[:5])
        return f"{error.message} ({details})" if details else error.message
    if isinstance(error, ActionFailed):
        return str(error)
    return f"{type(error).__name__} while running the action"


# --- actions --------------------------------------------------------------------------------


def _do(conn: sa.Connection, rb: Recordbase, ts: TableSchema, automation: Mapping[str, Any], action: Mapping[str, Any], record_id: int) -> dict[str, Any]:
    actor = system_actor(ts, automation)
    store = rb._store_for(actor, ts)
    kind = action.get("do")
    if kind == "set":
        current = store._get(conn, record_id, list(ts.fields.values()))
        values = {slug: _value(conn, store, current, v) for slug, v in (action.get("values") or {}).items()}
        updated = store._update_in(conn, record_id, values, version=current.version)
        return {"record": record_id, "version": updated.version}
    if kind == "create":
        target = ts.app.tables.get(action.get("table", ""))
        if target is None:
            raise ActionFailed(f'no table "{action.get("table")}" in this app')
        current = store._get(conn, record_id, list(ts.fields.values()))
        values = {slug: _value(conn, store, current, v) for slug, v in (action.get("values") or {}).items()}
        created = rb._store_for(actor, target)._create([values], "/actions/values", conn)
        return {"table": target.slug, "created": created[0].id}
    if kind == "assign":
        slug = action.get("field", "")
        f = ts.fields.get(slug)
        if f is None or f.type.name != "user":
            raise ActionFailed(f'"{slug}" is not a user field of "{ts.slug}"')
        current = store._get(conn, record_id, list(ts.fields.values()))
        users = _people(conn, rb, ts, current, action.get("to"))
        if not users:
            raise ActionFailed("nobody to assign to")
        store._update_in(conn, record_id, {slug: users[0]}, version=current.version)
        notified = _notify(conn, rb, ts, record_id, users[:1], actor, "assigned", action.get("message"))
        return {"field": slug, "user": users[0], "notified": notified}
    if kind == "notify":
        current = store._get(conn, record_id, list(ts.fields.values()))
        users = _people(conn, rb, ts, current, action.get("to"))
        notified = _notify(conn, rb, ts, record_id, users, actor, "automation", action.get("message") or automation.get("label"))
        return {"notified": notified, "skipped": len(users) - len(notified)}
    if kind == "webhook":
        from .webhooks import enqueue

        queued = enqueue(conn, store, "automation", [record_id], detail={"automation": automation["slug"]})
        return {"queued": queued}
    raise ActionFailed(f'unknown action "{kind}"')


def _value(conn: sa.Connection, store: RecordStore, record: Record, spec: Any) -> Any:
    if isinstance(spec, Mapping) and len(spec) == 1:
        if "$record" in spec:
            slug = spec["$record"]
            if slug == "id":
                return record.id
            if slug in ("created_by", "updated_by"):
                return getattr(record, slug)
            if slug not in record.fields:
                raise ActionFailed(f'"{slug}" is not a field of "{store.ts.slug}"')
            value = record.fields[slug]
            return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value
        if "$today" in spec:
            return (utcnow().date() + dt.timedelta(days=int(spec["$today"] or 0))).isoformat()
    return spec


def _people(conn: sa.Connection, rb: Recordbase, ts: TableSchema, record: Record, spec: Any) -> list[int]:
    """The user ids ``spec`` names: a user field of the record, a role's members, or a user by email."""
    if not isinstance(spec, Mapping):
        raise ActionFailed('"to" is {"$record": <user field>}, {"role": <role>} or {"user": <email>}')
    if "$record" in spec:
        slug = spec["$record"]
        value = getattr(record, slug) if slug in ("created_by", "updated_by") else record.fields.get(slug)
        ids = value if isinstance(value, list) else [value]
        return [int(i) for i in ids if isinstance(i, int)]
    if "role" in spec:
        rows = conn.execute(
            sa.select(members_t.c.user_id).join(users_t, users_t.c.id == members_t.c.user_id)
            .where(members_t.c.app_id == ts.app.pk, members_t.c.role == spec["role"], users_t.c.is_active.is_(True))
            .order_by(members_t.c.user_id)
        ).scalars()
        return list(dict.fromkeys(int(u) for u in rows))
    if "user" in spec:
        found = conn.execute(sa.select(users_t.c.id).where(users_t.c.email == str(spec["user"]).strip().lower())).scalar()
        return [int(found)] if found is not None else []
    raise ActionFailed('"to" is {"$record": <user field>}, {"role": <role>} or {"user": <email>}')


def _notify(
    conn: sa.Connection, rb: Recordbase, ts: TableSchema, record_id: int, users: Sequence[int], actor: Actor,
    kind: str, message: Any,
) -> list[int]:
    """Notify each user who can read the record (checked in this transaction); the others are skipped."""
    from .collab import _insert_notification
    from .users import load_actor

    text = json.dumps(message, ensure_ascii=False) if isinstance(message, Mapping) else (str(message) if message else None)
    done = []
    for uid in dict.fromkeys(users):
        who = load_actor(conn, uid)
        if who is None:
            continue
        access = Access.for_actor(who, ts)
        readers = [r for r in access.roles if r.can("read")]
        if not access.full:
            if not readers:
                continue
            cond = access.condition(readers, utcnow(), rb.dialect)
            if conn.execute(sa.select(ts.table.c.id).where(ts.table.c.id == record_id, cond)).first() is None:
                continue
        _insert_notification(conn, uid, kind, ts.app.pk, ts.pk, record_id, actor, text[:500] if text else None, None)
        done.append(uid)
    return done


# --- scheduled: dates reached ------------------------------------------------------------------


@dataclass
class ScheduledResult:
    app: str
    table: str
    automation: str
    fired: int = 0
    failed: int = 0
    stopped: int = 0


def run_scheduled(rb: Recordbase, *, now: dt.datetime | None = None) -> list[ScheduledResult]:
    """Fire every ``date`` automation whose date has come, once per record and date; safe to repeat."""
    now = now or utcnow()
    results = []
    for listed in rb.list_apps():
        app = rb.app(listed["slug"])
        for ts in app.tables.values():
            for automation in automations_of(ts, "date"):
                result = ScheduledResult(app.slug, ts.slug, automation["slug"])
                results.append(result)
                for record_id, fire_key in _due(rb, ts, automation, now):
                    status = _fire(rb, ts, automation, record_id, fire_key)
                    if status == "done":
                        result.fired += 1
                    elif status == "failed":
                        result.failed += 1
                    elif status == "stopped":
                        result.stopped += 1
    return results


def _due(rb: Recordbase, ts: TableSchema, automation: Mapping[str, Any], now: dt.datetime) -> list[tuple[int, str]]:
    trigger = automation["trigger"]
    f = ts.fields.get(trigger.get("field", ""))
    if f is None:
        return []
    col = ts.table.c[f.column_name]
    offset = dt.timedelta(days=int(trigger.get("offset_days", 0)))
    since = dt.timedelta(days=int(trigger.get("since_days", DEFAULT_SINCE_DAYS)))
    if f.type.name == "date":
        latest: Any = (now - offset).date()
        earliest: Any = (now - offset - since).date()
    else:
        latest, earliest = now - offset, now - offset - since
    done = sa.select(runs_t.c.id).where(
        runs_t.c.table_id == ts.pk, runs_t.c.automation == automation["slug"], runs_t.c.record_id == ts.table.c.id,
        runs_t.c.fire_key == sa.cast(col, sa.String()),
    )
    ctx = FilterContext(now=now, dialect=rb.dialect, schema=ts)
    # The fire key is the stored date as the database writes it as text: the same text the
    # "already fired" test above compares with.
    stmt = sa.select(ts.table.c.id, sa.cast(col, sa.String())).where(
        col.is_not(None), col <= latest, col >= earliest, ~done.exists(),
        compile_filter(ts, automation.get("condition"), ctx, "/condition"),
    ).order_by(ts.table.c.id).limit(10_000)
    with rb.read() as conn:
        return [(int(rid), str(key)) for rid, key in conn.execute(stmt).all()]


def _fire(rb: Recordbase, ts: TableSchema, automation: Mapping[str, Any], record_id: int, fire_key: str) -> str:
    """Claim the (record, date) by inserting its log row, then run; a concurrent claim wins and this one stops."""
    try:
        with rb.write() as conn:
            log_id = conn.execute(sa.insert(runs_t).values(
                app_id=ts.app.pk, table_id=ts.pk, automation=automation["slug"], record_id=record_id, trigger="date",
                fire_key=fire_key, status="running", error=None, actions=[], created_at=utcnow(),
            ).returning(runs_t.c.id)).scalar_one()
            return run(conn, rb, ts, automation, record_id, "date", fire_key, log_id=log_id).status
    except sa.exc.IntegrityError:
        return "claimed"


# --- the log --------------------------------------------------------------------------------


RUN_STATUSES = ("done", "failed", "stopped")
DEFAULT_KEEP_DAYS = 90


def prune_runs(rb: Recordbase, *, days: int = DEFAULT_KEEP_DAYS, now: dt.datetime | None = None) -> int:
    """Delete the runs logged more than ``days`` ago; returns how many.

    A date trigger's run is also what stops it firing twice for one record and
    date, so it stays while that date could still be due: a run at time T was
    for a date that leaves the trigger's window (``since_days``) by T +
    ``since_days``, whatever the offset. Those runs are kept a day past that.
    """
    now = now or utcnow()
    cutoff = now - dt.timedelta(days=days)
    still_due = []
    for listed in rb.list_apps():
        for ts in rb.app(listed["slug"]).tables.values():
            for automation in automations_of(ts, "date"):
                since = int(automation["trigger"].get("since_days", DEFAULT_SINCE_DAYS))
                window = now - dt.timedelta(days=since + 1)
                if window < cutoff:
                    still_due.append(sa.and_(
                        runs_t.c.table_id == ts.pk, runs_t.c.automation == automation["slug"],
                        runs_t.c.fire_key.is_not(None), runs_t.c.created_at >= window,
                    ))
    with rb.write() as conn:
        return conn.execute(sa.delete(runs_t).where(runs_t.c.created_at < cutoff, *(sa.not_(c) for c in still_due))).rowcount


def readable_tables(rb: Recordbase, actor: Actor, app: str) -> list[TableSchema]:
    """The tables of ``app`` whose automation runs ``actor`` may read: all for administrators, else those it manages.

    A run holds ids, slugs and the engine's messages, never values; it is still
    only for who builds the table (administrators, or a role with ``manage``).
    ``NotFound`` for an app the actor has no role in (as for a missing one),
    ``PermissionDenied`` for a role that manages none of its tables.
    """
    schema = rb.app(app)
    if actor.kind == "system" or actor.is_admin:
        return list(schema.tables.values())
    if not actor.roles_in(app):
        raise NotFound(f'no app "{app}"')
    managed = [ts for ts in schema.tables.values() if any(r.can("manage") for r in Access.for_actor(actor, ts).roles)]
    if not managed:
        raise PermissionDenied(f'you may not read the automation runs of "{app}": you manage none of its tables')
    return managed


def run_log(
    rb: Recordbase, actor: Actor, app: str, *, table: str | None = None, automation: str | None = None,
    status: str | None = None, before: int | None = None, limit: int = 50,
) -> list[dict[str, Any]]:
    """Runs of an app's automations, newest first, on the tables ``actor`` may see them for.

    Narrowed to one ``table``, one ``automation`` (its slug), one ``status``
    (:data:`RUN_STATUSES`); ``before`` is a run id, for the next page. Each run
    carries its ``table`` slug and the automation's ``label`` as defined now
    (``None`` when the automation was removed since).
    """
    tables = {ts.pk: ts for ts in readable_tables(rb, actor, app)}
    if table is not None:
        tables = {pk: ts for pk, ts in tables.items() if ts.slug == table}
        if not tables:
            raise NotFound(f'no table "{table}" in "{app}" whose automations you may read')
    if status is not None and status not in RUN_STATUSES:
        message = f'unknown run status "{status}": expected one of {", ".join(RUN_STATUSES)}'
        raise QueryError(message, [Problem("/status", message)])
    stmt = (
        sa.select(runs_t)
        .where(runs_t.c.app_id == rb.app(app).pk, runs_t.c.table_id.in_(list(tables)))
        .order_by(runs_t.c.id.desc())
        .limit(limit)
    )
    if automation is not None:
        stmt = stmt.where(runs_t.c.automation == automation)
    if status is not None:
        stmt = stmt.where(runs_t.c.status == status)
    if before is not None:
        stmt = stmt.where(runs_t.c.id < before)
    with rb.read() as conn:
        rows = conn.execute(stmt).mappings().all()
    out = []
    for r in rows:
        ts = tables[r["table_id"]]
        defined = next((a for a in ts.definition.get("automations") or [] if a.get("slug") == r["automation"]), None)
        out.append({**dict(r), "table": ts.slug, "label": defined.get("label") if defined else None})
    return out
