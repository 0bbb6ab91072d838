"""Working together on records: comments with @mentions, the in-app inbox, and who may be mentioned.

**Comments** (``rb_comment``) belong to one record. Anyone who may read the
record — checked by reading it through the record store as the actor, so a
record outside the actor's rows is ``NotFound`` exactly like a missing one —
may comment on it and read its comments. The body is free text that may name
people, so it is stored sealed with the data keys (AES-GCM, the table and
record bound as associated data) and never written to the audit trail: the
entries ``comment_add`` and ``comment_delete`` carry the comment's id, its
length and whom it mentioned. A comment is deleted (``deleted_at``) by its
author or a platform administrator; deleted comments are no longer listed.

**Mentions** are stored in a stable form, ``@[user:42]``, whatever name the
person has later; :func:`add_comment` also turns ``@Display Name`` of an app
member into that form. Each mentioned user who can read the record (checked
by reading it as that user) gets a notification of kind ``mention``; a
mentioned user who cannot is told nothing, and the result lists them as
``undelivered`` so the author can be told.

**Notifications** (``rb_notification``) hold no record value: only which
record, who and what kind. :func:`list_notifications` shows each through the
engine as its reader, so a record the reader can no longer read is listed as
unavailable and nothing of it is shown. :func:`notify` adds one; it does not
check access itself — callers (mentions, assignment, automations) decide whom
to notify.

When a record is erased for good (trash purge, retention, a data subject's
erasure), :func:`forget_records` removes its comments and notifications in the
same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .actor import Actor
from .audit import write_audit
from .errors import NotFound, PermissionDenied, Problem, ValidationError
from .migrate import tables_t
from .models import Comment, Notification, utcnow
from .users import apps_t, members_t, users_t

if TYPE_CHECKING:
    from .core import Recordbase
    from .records import Record, RecordStore

comments_t: sa.Table = Comment.__table__  # type: ignore[assignment]
notifications_t: sa.Table = Notification.__table__  # type: ignore[assignment]

MAX_COMMENT_LENGTH = 5000
KINDS = ("mention", "assigned", "automation")
MENTION = re.compile(r"@\[user:(\d{1,18})\]")


@dataclass(frozen=True)
class Member:
    """A user with a role in an app."""

    user_id: int
    name: str


@dataclass
class CommentView:
    """A comment as its reader gets it: the body in its stored form and split into text and mentions."""

    id: int
    author_id: int | None
    author: str | None  # None: the author's account is gone
    body: str
    parts: list[dict[str, Any]]  # {"kind": "text", "text"} | {"kind": "mention", "user_id", "name"}
    created_at: dt.datetime
    may_delete: bool


@dataclass
class AddedComment:
    comment: CommentView
    notified: list[Member] = field(default_factory=list)
    undelivered: list[Member] = field(default_factory=list)  # mentioned, but they cannot read the record


@dataclass
class NotificationView:
    """A notification as its reader may see it: ``available`` is False when the record is out of reach."""

    id: int
    kind: str
    app: str | None
    table: str | None
    record_id: int | None
    actor: str
    message: str | None
    comment_id: int | None
    created_at: dt.datetime
    read_at: dt.datetime | None
    available: bool
    label: str | None = None  # the record's primary field as the reader sees it (None: not readable)
    app_label: Any = None
    table_label: Any = None


# --- people -------------------------------------------------------------------------------


def members(rb: Recordbase, app: str) -> list[Member]:
    """The active users with a role in ``app``, by name."""
    schema = rb.app(app)
    with rb.read() as conn:
        rows = conn.execute(
            sa.select(users_t.c.id, users_t.c.display_name).distinct()
            .join(members_t, members_t.c.user_id == users_t.c.id)
            .where(members_t.c.app_id == schema.pk, users_t.c.is_active.is_(True))
            .order_by(users_t.c.display_name, users_t.c.id)
        ).all()
    return [Member(int(uid), str(name)) for uid, name in rows]


def user_names(rb: Recordbase, ids: Iterable[int]) -> dict[int, str]:
    """Display names of the users ``ids`` (unknown ids left out)."""
    wanted = sorted({int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)})
    if not wanted:
        return {}
    with rb.read() as conn:
        rows = conn.execute(sa.select(users_t.c.id, users_t.c.display_name).where(users_t.c.id.in_(wanted))).all()
    return {int(uid): str(name) for uid, name in rows}


def can_read(rb: Recordbase, user_id: int, app: str, table: str, record_id: int) -> bool:
    """Whether the user, as of now, may read the record (read through the store as that user)."""
    who = rb.actor_for(user_id)
    if who is None:
        return False
    try:
        rb.records(who, app, table).get(record_id)
    except (NotFound, PermissionDenied):
        return False
    return True


def mentionable(rb: Recordbase, actor: Actor, app: str, table: str, record_id: int) -> list[Member]:
    """The app's members (other than ``actor``) who can read the record: whom a comment may notify.

    ``NotFound`` when ``actor`` itself cannot read the record.
    """
    rb.records(actor, app, table).get(record_id)
    return [m for m in members(rb, app) if m.user_id != actor.user_id and can_read(rb, m.user_id, app, table, record_id)]


def resolve_mentions(body: str, people: Sequence[Member]) -> str:
    """``body`` with each ``@Display Name`` of one of ``people`` written as ``@[user:<id>]``.

    The longest name that fits wins; a name two people share is left as text.
    A name ending in a letter or digit must not run on into one (``@Li Weiwei``
    is not ``@Li Wei``); ``@`` right after a letter or digit (an email address)
    starts no mention.
    """
    counts: dict[str, int] = {}
    for p in people:
        counts[p.name.casefold()] = counts.get(p.name.casefold(), 0) + 1
    names = sorted(
        ((p.name, p.user_id) for p in people if p.name and counts[p.name.casefold()] == 1),
        key=lambda pair: -len(pair[0]),
    )
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "@" and not (i > 0 and body[i - 1].isalnum()) and not body.startswith("@[user:", i):
            found = None
            for name, uid in names:
                end = i + 1 + len(name)
                if body[i + 1 : end].casefold() != name.casefold():
                    continue
                if name[-1].isascii() and name[-1].isalnum() and end < len(body) and body[end].isascii() and body[end].isalnum():
                    continue
                found = (uid, end)
                break
            if found is not None:
                out.append(f"@[user:{found[0]}]")
                i = found[1]
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def mentioned_ids(body: str) -> list[int]:
    """The user ids a stored body mentions, in order, each once."""
    return list(dict.fromkeys(int(m) for m in MENTION.findall(body)))


def split_body(body: str, names: Mapping[int, str]) -> list[dict[str, Any]]:
    """A stored body as text and mention parts (a mention of an unknown user has name ``None``)."""
    parts: list[dict[str, Any]] = []
    last = 0
    for match in MENTION.finditer(body):
        if match.start() > last:
            parts.append({"kind": "text", "text": body[last : match.start()]})
        uid = int(match.group(1))
        parts.append({"kind": "mention", "user_id": uid, "name": names.get(uid)})
        last = match.end()
    if last < len(body):
        parts.append({"kind": "text", "text": body[last:]})
    return parts


# --- comments ------------------------------------------------------------------------------


def _context(table_pk: int, record_id: int) -> str:
    return f"comment:{table_pk}:{record_id}"


def _checked_body(body: Any) -> str:
    text = body.strip() if isinstance(body, str) else ""
    if not text:
        raise ValidationError("a comment cannot be empty", [Problem("/body", "a comment cannot be empty")])
    if len(text) > MAX_COMMENT_LENGTH:
        message = f"a comment has at most {MAX_COMMENT_LENGTH} characters"
        raise ValidationError(message, [Problem("/body", message)])
    return text


def add_comment(rb: Recordbase, actor: Actor, app: str, table: str, record_id: int, body: str) -> AddedComment:
    """Comment on a record the actor may read; notify each mentioned member who may read it too.

    ``NotFound`` when the actor cannot read the record; ``ValidationError`` for
    an empty body or one longer than ``MAX_COMMENT_LENGTH``. Audited
    (``comment_add``) without the body.
    """
    store = rb.records(actor, app, table)
    store.get(record_id)  # outside the actor's rows, or no read right: NotFound
    text = _checked_body(body)
    people = members(rb, app)
    text = resolve_mentions(text, people)
    if len(text) > MAX_COMMENT_LENGTH:  # the stored form of mentions is longer than a short name
        text = _checked_body(text)
    known = {m.user_id: m for m in people}
    # A typed token naming someone outside the app mentions nobody (and shows no one's name).
    text = MENTION.sub(lambda m: m.group(0) if int(m.group(1)) in known else "@?", text)
    names = {uid: known[uid].name for uid in mentioned_ids(text)}
    notified: list[Member] = []
    undelivered: list[Member] = []
    for uid in mentioned_ids(text):
        if uid == actor.user_id:
            continue
        if can_read(rb, uid, app, table, record_id):
            notified.append(known[uid])
        else:
            undelivered.append(known[uid])
    ts = store.ts
    now = utcnow()
    with rb.write() as conn:
        comment_id = conn.execute(
            sa.insert(comments_t).values(
                app_id=ts.app.pk, table_id=ts.pk, record_id=record_id, author_id=actor.user_id,
                body=rb.keys.encrypt(text, _context(ts.pk, record_id)), created_at=now,
            ).returning(comments_t.c.id)
        ).scalar_one()
        for person in notified:
            _insert_notification(conn, person.user_id, "mention", ts.app.pk, ts.pk, record_id, actor, None, comment_id)
        write_audit(conn, actor, "comment_add", app_id=ts.app.pk, table_id=ts.pk, entries=[(record_id, {
            "comment_id": comment_id, "length": len(text),
            "mentions": [m.user_id for m in notified], "undelivered": [m.user_id for m in undelivered],
        })])
    view = CommentView(
        int(comment_id), actor.user_id, actor.name, text, split_body(text, names),
        now, may_delete=True,
    )
    return AddedComment(view, notified, undelivered)


def list_comments(rb: Recordbase, actor: Actor, app: str, table: str, record_id: int) -> list[CommentView]:
    """The record's comments, oldest first, with author names (``NotFound`` when the actor cannot read it)."""
    store = rb.records(actor, app, table)
    store.get(record_id)
    c = comments_t
    with rb.read() as conn:
        rows = conn.execute(
            sa.select(c.c.id, c.c.author_id, users_t.c.display_name, c.c.body, c.c.created_at)
            .select_from(c.outerjoin(users_t, users_t.c.id == c.c.author_id))
            .where(c.c.table_id == store.ts.pk, c.c.record_id == record_id, c.c.deleted_at.is_(None))
            .order_by(c.c.created_at, c.c.id)
        ).all()
    bodies = [(row, rb.keys.decrypt(row.body, _context(store.ts.pk, record_id))) for row in rows]
    names = user_names(rb, [uid for _, text in bodies for uid in mentioned_ids(text)])
    return [
        CommentView(
            int(row.id), row.author_id, row.display_name, text, split_body(text, names), row.created_at,
            may_delete=_may_delete(actor, row.author_id),
        )
        for row, text in bodies
    ]


def _may_delete(actor: Actor, author_id: int | None) -> bool:
    return actor.kind == "system" or actor.is_admin or (author_id is not None and author_id == actor.user_id)


def delete_comment(rb: Recordbase, actor: Actor, app: str, table: str, record_id: int, comment_id: int) -> None:
    """Delete a comment (its author or a platform administrator); its mention notifications go with it.

    ``NotFound`` when the actor cannot read the record or the record has no
    such comment; ``PermissionDenied`` for someone else's comment. Audited
    (``comment_delete``).
    """
    store = rb.records(actor, app, table)
    store.get(record_id)
    c = comments_t
    with rb.write() as conn:
        row = conn.execute(
            sa.select(c.c.id, c.c.author_id).where(
                c.c.id == comment_id, c.c.table_id == store.ts.pk, c.c.record_id == record_id, c.c.deleted_at.is_(None))
        ).first()
        if row is None:
            raise NotFound(f"record {record_id} has no comment {comment_id}")
        if not _may_delete(actor, row.author_id):
            raise PermissionDenied("only its author or an administrator may delete a comment")
        conn.execute(sa.update(c).where(c.c.id == comment_id).values(deleted_at=utcnow()))
        conn.execute(sa.delete(notifications_t).where(notifications_t.c.comment_id == comment_id))
        write_audit(conn, actor, "comment_delete", app_id=store.ts.app.pk, table_id=store.ts.pk,
                    entries=[(record_id, {"comment_id": comment_id})])


# --- notifications ---------------------------------------------------------------------------


def _insert_notification(
    conn: sa.Connection, user_id: int, kind: str, app_pk: int | None, table_pk: int | None, record_id: int | None,
    actor: Actor | str, message: str | None, comment_id: int | None,
) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    return int(conn.execute(
        sa.insert(notifications_t).values(
            user_id=user_id, kind=kind, app_id=app_pk, table_id=table_pk, record_id=record_id, comment_id=comment_id,
            actor=actor.label if isinstance(actor, Actor) else str(actor)[:200],
            message=None if message is None else message[:500], created_at=utcnow(),
        ).returning(notifications_t.c.id)
    ).scalar_one())


def notify(
    target: Recordbase | sa.Connection, user_id: int, kind: str, app: str, table: str, record_id: int | None,
    actor: Actor | str, message: str | None = None, comment_id: int | None = None,
) -> int:
    """Put a notification in a user's inbox; returns its id.

    ``target`` is the engine (its own transaction) or a writing connection
    (the caller's transaction, e.g. an automation's). ``message`` must hold no
    record value (it is shown as it is). Access is not checked here: notify
    only someone who may read the record — the inbox checks again when shown.
    """
    if isinstance(target, sa.Connection):
        return _notify(target, user_id, kind, app, table, record_id, actor, message, comment_id)
    with target.write() as conn:
        return _notify(conn, user_id, kind, app, table, record_id, actor, message, comment_id)


def _notify(
    conn: sa.Connection, user_id: int, kind: str, app: str, table: str, record_id: int | None,
    actor: Actor | str, message: str | None, comment_id: int | None,
) -> int:
    row = conn.execute(
        sa.select(apps_t.c.id, tables_t.c.id).join(tables_t, tables_t.c.app_id == apps_t.c.id)
        .where(apps_t.c.slug == app, tables_t.c.slug == table, tables_t.c.removed_at.is_(None))
    ).first()
    if row is None:
        raise NotFound(f'app "{app}" has no table "{table}"')
    return _insert_notification(conn, user_id, kind, int(row[0]), int(row[1]), record_id, actor, message, comment_id)


def list_notifications(rb: Recordbase, actor: Actor, *, limit: int = 100) -> list[NotificationView]:
    """The actor's notifications, newest first, each record read as the actor reads it now."""
    if actor.user_id is None:
        return []
    n = notifications_t
    with rb.read() as conn:
        rows = conn.execute(
            sa.select(n, apps_t.c.slug.label("app_slug"), tables_t.c.slug.label("table_slug"),
                      tables_t.c.removed_at.label("table_removed"))
            .select_from(n.outerjoin(apps_t, apps_t.c.id == n.c.app_id).outerjoin(tables_t, tables_t.c.id == n.c.table_id))
            .where(n.c.user_id == actor.user_id).order_by(n.c.created_at.desc(), n.c.id.desc()).limit(limit)
        ).mappings().all()
    stores: dict[tuple[str, str], RecordStore | None] = {}
    out = []
    for row in rows:
        view = NotificationView(
            id=int(row["id"]), kind=row["kind"], app=row["app_slug"], table=row["table_slug"], record_id=row["record_id"],
            actor=row["actor"], message=row["message"], comment_id=row["comment_id"], created_at=row["created_at"],
            read_at=row["read_at"], available=False,
        )
        if row["app_slug"] and row["table_slug"] and row["table_removed"] is None and row["record_id"] is not None:
            key = (row["app_slug"], row["table_slug"])
            if key not in stores:
                stores[key] = _store_or_none(rb, actor, *key)
            store = stores[key]
            if store is not None:
                _read_as_reader(store, view)
        out.append(view)
    return out


def _store_or_none(rb: Recordbase, actor: Actor, app: str, table: str) -> RecordStore | None:
    try:
        return rb.records(actor, app, table)
    except NotFound:
        return None


def _read_as_reader(store: RecordStore, view: NotificationView) -> None:
    assert view.record_id is not None
    primary = store.ts.primary_field
    visible = primary is not None and store.access.visible_somewhere(primary)
    try:
        record = store.get(view.record_id, fields=[primary.slug] if visible and primary is not None else None)
    except (NotFound, PermissionDenied):
        return
    view.available = True
    view.label = record_label(store, record)
    view.app_label = store.ts.app.definition.get("label") or store.ts.app.slug
    view.table_label = store.ts.definition.get("label") or store.ts.slug


def record_label(store: RecordStore, record: Record) -> str | None:
    """The record's primary field as text, as the store's actor sees it (masked stays masked); None if not shown."""
    primary = store.ts.primary_field
    if primary is None:
        return None
    value = record.fields.get(primary.slug)
    if value is None or value == "":
        return None
    if not store.access.clear_everywhere(primary) and isinstance(value, str):
        return value  # masked, or clear under some role only: as the store gave it
    try:
        return primary.type.to_text(primary, value) or None
    except (TypeError, ValueError, AttributeError):
        return str(value)


def mark_read(rb: Recordbase, actor: Actor, notification_id: int) -> None:
    """Mark one of the actor's notifications read (``NotFound`` for anyone else's)."""
    n = notifications_t
    with rb.write() as conn:
        row = conn.execute(sa.select(n.c.id, n.c.read_at).where(n.c.id == notification_id, n.c.user_id == actor.user_id)).first()
        if row is None or actor.user_id is None:
            raise NotFound(f"no notification {notification_id}")
        if row.read_at is None:
            conn.execute(sa.update(n).where(n.c.id == notification_id).values(read_at=utcnow()))


def mark_all_read(rb: Recordbase, actor: Actor) -> int:
    """Mark every unread notification of the actor read; returns how many."""
    if actor.user_id is None:
        return 0
    n = notifications_t
    with rb.write() as conn:
        return int(conn.execute(
            sa.update(n).where(n.c.user_id == actor.user_id, n.c.read_at.is_(None)).values(read_at=utcnow())
        ).rowcount)


def unread_count(rb: Recordbase, actor: Actor) -> int:
    if actor.user_id is None:
        return 0
    n = notifications_t
    with rb.read() as conn:
        return int(conn.execute(
            sa.select(sa.func.count()).select_from(n).where(n.c.user_id == actor.user_id, n.c.read_at.is_(None))
        ).scalar_one())


# --- assignment and updates -------------------------------------------------------------------


def update_scope(store: RecordStore, record_id: int) -> frozenset[str] | None:
    """The fields the store's actor may write on this record, or ``None`` when it may not update it.

    Only the roles with ``update`` whose rows cover the record count; the
    store still decides on every write — this is for offering the controls.
    """
    inputs = frozenset(slug for slug, f in store.ts.fields.items() if not f.type.system and f.type.name != "autonumber")
    if store.access.full:
        return inputs
    updaters = [r for r in store.access.roles if r.can("update")]
    if not updaters:
        return None
    now = utcnow()
    table = store.table
    with store.rb.read() as conn:
        covering = [
            r for r in updaters
            if conn.execute(sa.select(table.c.id).where(
                table.c.id == record_id, store.access.role_condition(r, now, store.rb.dialect))).first() is not None
        ]
    if not covering:
        return None
    return frozenset(slug for slug in inputs if max(r.levels[slug] for r in covering) >= 2)


@dataclass
class Assignment:
    record: Record  # as the actor sees it after the change
    assignee: Member | None  # None: the field was emptied
    notified: bool = False
    cannot_read: bool = False  # the assignee may not read the record, so was not notified


def assign(
    rb: Recordbase, actor: Actor, app: str, table: str, record_id: int, field: str, user_id: int | None, *, version: int,
) -> Assignment:
    """Set a user field through the store (with the version read) and notify the new assignee.

    The assignee is notified (kind ``assigned``) when they are someone else
    than the actor, were not assigned already, and can read the record; one
    who cannot is not, and ``cannot_read`` says so. Raises like ``store.update``
    (``Conflict`` for a stale version, ``PermissionDenied``, ``NotFound``),
    and ``ValidationError`` for a field that is not a user field or a user
    who is not a member of the app (unless they are already the assignee:
    keeping someone who has since lost their role changes nothing).
    """
    store = rb.records(actor, app, table)
    f = store.ts.fields.get(field)
    if f is None or f.type.name != "user":
        raise ValidationError(f'"{field}" is not a user field', [Problem(f"/fields/{field}", "not a user field")])
    before = store.get(record_id)
    assignee = None
    if user_id is not None:
        assignee = next((m for m in members(rb, app) if m.user_id == user_id), None)
        if assignee is None and before.fields.get(field) == user_id:
            assignee = Member(user_id, user_names(rb, [user_id]).get(user_id, ""))
        if assignee is None:
            raise ValidationError("the user is not a member of this app", [Problem(f"/fields/{field}", "not a member of this app")])
    record = store.update(record_id, {field: user_id}, version=version)
    done = Assignment(record, assignee)
    if assignee is not None and assignee.user_id != actor.user_id and before.fields.get(field) != user_id:
        if can_read(rb, assignee.user_id, app, table, record_id):
            notify(rb, assignee.user_id, "assigned", app, table, record_id, actor)
            done.notified = True
        else:
            done.cannot_read = True
    return done


# --- erasure -----------------------------------------------------------------------------------


def forget_records(conn: sa.Connection, table_pk: int, record_ids: Sequence[int]) -> None:
    """Delete the comments and notifications of records erased for good, in the caller's transaction."""
    ids = list(record_ids)
    n, c = notifications_t, comments_t
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        conn.execute(sa.delete(n).where(n.c.table_id == table_pk, n.c.record_id.in_(chunk)))
        conn.execute(sa.delete(c).where(c.c.table_id == table_pk, c.c.record_id.in_(chunk)))


__all__ = [
    "MAX_COMMENT_LENGTH", "Member", "CommentView", "AddedComment", "NotificationView", "members", "user_names",
    "can_read", "mentionable", "resolve_mentions", "mentioned_ids", "split_body", "add_comment", "list_comments",
    "delete_comment", "notify", "list_notifications", "record_label", "mark_read", "mark_all_read", "unread_count",
    "update_scope", "Assignment", "assign", "forget_records",
]
