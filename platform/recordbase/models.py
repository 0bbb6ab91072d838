"""System tables: users, installed apps and their physical tables, audit, trash.

App tables themselves are not here: they are built at runtime from each app's
definition (see ``physical.py``). Physical names of app tables and columns are
derived from the integer keys of ``rb_table`` and ``rb_field``, never from text
a user typed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from .database import UTCDateTime


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), list[Any]: sa.JSON()}


class User(Base):
    __tablename__ = "rb_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    is_active: Mapped[bool] = mapped_column(default=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """A user's role in an app; roles themselves are declared in the app's definition."""

    __tablename__ = "rb_membership"
    __table_args__ = (sa.UniqueConstraint("user_id", "app_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_user.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(sa.String(63))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class App(Base):
    __tablename__ = "rb_app"

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    slug: Mapped[str] = mapped_column(sa.String(63), unique=True)
    version: Mapped[int] = mapped_column(default=1)
    definition: Mapped[dict[str, Any]]
    installed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AppVersion(Base):
    """Every definition an app has had, with the plan that led to it."""

    __tablename__ = "rb_app_version"
    __table_args__ = (sa.UniqueConstraint("app_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    version: Mapped[int]
    definition: Mapped[dict[str, Any]]
    plan: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class TableMeta(Base):
    """One row per app table; ``id`` names the physical table ``t<id>``."""

    __tablename__ = "rb_table"
    __table_args__ = (sa.UniqueConstraint("app_id", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(sa.String(64))
    slug: Mapped[str] = mapped_column(sa.String(63))
    removed_at: Mapped[dt.datetime | None]


class FieldMeta(Base):
    """One row per field; ``id`` names the physical column ``f<id>``."""

    __tablename__ = "rb_field"
    __table_args__ = (sa.UniqueConstraint("table_id", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    table_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_table.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(sa.String(64))
    slug: Mapped[str] = mapped_column(sa.String(63))
    type: Mapped[str] = mapped_column(sa.String(32))
    removed_at: Mapped[dt.datetime | None]


class Audit(Base):
    """Append-only, hash-chained trail; a write and its entry commit in the same transaction."""

    __tablename__ = "rb_audit"
    __table_args__ = (
        sa.Index("ix_rb_audit_record", "table_id", "record_id"),
        sa.UniqueConstraint("hash", name="uq_rb_audit_hash"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_kind: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None]
    actor_name: Mapped[str] = mapped_column(sa.String(200))
    action: Mapped[str] = mapped_column(sa.String(32))
    app_id: Mapped[int | None]
    table_id: Mapped[int | None]
    record_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64))


class Trash(Base):
    """Deleted records, removed fields and removed tables, restorable until ``expires_at``."""

    __tablename__ = "rb_trash"
    __table_args__ = (sa.Index("ix_rb_trash_record", "table_id", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))  # record | field | table
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int | None]
    field_id: Mapped[int | None]
    record_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    deleted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deleted_by: Mapped[str] = mapped_column(sa.String(200))
    expires_at: Mapped[dt.datetime]


class Consent(Base):
    """The consent ledger: which purpose a data subject agreed to, under which text version, how and when."""

    __tablename__ = "rb_consent"
    __table_args__ = (sa.Index("ix_rb_consent_record", "table_id", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int]
    record_id: Mapped[int] = mapped_column(sa.BigInteger)
    purpose: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[str] = mapped_column(sa.String(100))
    channel: Mapped[str] = mapped_column(sa.String(100))
    given_at: Mapped[dt.datetime]
    given_by: Mapped[str] = mapped_column(sa.String(200))
    withdrawn_at: Mapped[dt.datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(sa.String(200))


class Sequence(Base):
    """Next value of each autonumber field; bumped in the inserting transaction, so gap-free."""

    __tablename__ = "rb_sequence"

    field_id: Mapped[int] = mapped_column(primary_key=True)
    next_value: Mapped[int] = mapped_column(sa.BigInteger, default=1)


class StoredFile(Base):
    """Attachment content, stored under the instance folder by its SHA-256."""

    __tablename__ = "rb_file"

    sha256: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    content_type: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Token(Base):
    """A personal access token: only its SHA-256 is kept; the secret is shown once, when made."""

    __tablename__ = "rb_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    prefix: Mapped[str] = mapped_column(sa.String(16))
    apps: Mapped[list[Any] | None]  # app slugs the token is limited to; None: every app of its user
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class Webhook(Base):
    """A table's webhook: deliveries are built as ``owner_id`` sees each record (``None``: system-owned, sees all).

    ``secret`` is sealed with the data keys (context ``"webhook"``): it is shown
    once, when made, and recovered only to sign deliveries.
    """

    __tablename__ = "rb_webhook"
    __table_args__ = (sa.Index("ix_rb_webhook_table", "table_id", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_table.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rb_user.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(sa.String(2000))
    secret: Mapped[str] = mapped_column(sa.String(500))
    events: Mapped[list[Any]]
    allow_private: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(200))


class WebhookDelivery(Base):
    """The outbox and delivery log: one row per webhook and record change, written with the change."""

    __tablename__ = "rb_webhook_delivery"
    __table_args__ = (
        sa.Index("ix_rb_webhook_delivery_due", "status", "next_attempt_at"),
        sa.Index("ix_rb_webhook_delivery_webhook", "webhook_id", "record_id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_webhook.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(sa.String(16))
    record_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    payload: Mapped[dict[str, Any]]  # {"$sealed": <the JSON body, encrypted>}
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]


class SavedView(Base):
    """A grid's saved state (filter, sort, search, columns): its owner's alone, or shared with the table's readers.

    ``state`` holds the engine's own filter tree and sort list, so a saved view
    is checked and run exactly like a query typed by hand, as the user opening it.
    """

    __tablename__ = "rb_saved_view"
    __table_args__ = (sa.Index("ix_rb_saved_view_table", "table_id", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_table.id", ondelete="CASCADE"))
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_user.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200))
    shared: Mapped[bool] = mapped_column(default=False)
    state: Mapped[dict[str, Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Comment(Base):
    """A comment on a record. ``body`` is sealed with the data keys (free text may name people)."""

    __tablename__ = "rb_comment"
    __table_args__ = (sa.Index("ix_rb_comment_record", "table_id", "record_id"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_table.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(sa.BigInteger)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rb_user.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    edited_at: Mapped[dt.datetime | None]
    deleted_at: Mapped[dt.datetime | None]


class Notification(Base):
    """An entry in a user's in-app inbox (mentioned, assigned, an automation's notice).

    It points at what happened and holds no record value: the inbox shows it
    through the engine, as its reader, so a record the reader has lost access to
    shows as such.
    """

    __tablename__ = "rb_notification"
    __table_args__ = (sa.Index("ix_rb_notification_user", "user_id", "read_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_user.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(32))  # mention | assigned | automation
    app_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rb_table.id", ondelete="CASCADE"))
    record_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    comment_id: Mapped[int | None] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), sa.ForeignKey("rb_comment.id", ondelete="CASCADE")
    )
    actor: Mapped[str] = mapped_column(sa.String(200))
    message: Mapped[str | None] = mapped_column(sa.String(500))  # no record values: a rule's own text
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    read_at: Mapped[dt.datetime | None]


class FormShare(Base):
    """A form view's public link: unguessable, off until made, revocable.

    Looked up by the SHA-256 of its token; the token itself is kept sealed so
    the builder can show the link again.
    """

    __tablename__ = "rb_form_share"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    view: Mapped[str] = mapped_column(sa.String(63))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    token: Mapped[str] = mapped_column(sa.String(500))  # sealed
    created_by: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None]


class AutomationRun(Base):
    """One run of a table's automation on one record: what fired it, what each action did.

    A scheduled trigger ("a date is reached") fires once per record and date:
    the unique key on (table, automation, record, fire_key) makes
    ``recordbase automations run`` safe to repeat, even from two crons at once.
    """

    __tablename__ = "rb_automation_run"
    __table_args__ = (
        sa.UniqueConstraint("table_id", "automation", "record_id", "fire_key", name="uq_rb_automation_run_fire"),
        sa.Index("ix_rb_automation_run_at", "app_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    app_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_app.id", ondelete="CASCADE"))
    table_id: Mapped[int] = mapped_column(sa.ForeignKey("rb_table.id", ondelete="CASCADE"))
    automation: Mapped[str] = mapped_column(sa.String(63))
    record_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    trigger: Mapped[str] = mapped_column(sa.String(32))
    fire_key: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16))  # done | failed | stopped
    error: Mapped[str | None] = mapped_column(sa.String(1000))
    actions: Mapped[list[Any]]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
