"""Signing in and personal access tokens, every attempt and every use audited.

``authenticate`` checks an email and password (argon2) and writes a ``login``
or ``login_failed`` entry. Tokens are ``rb_`` plus 43 random characters; only
their SHA-256 is stored (a token has 256 random bits, so a fast hash is safe,
and lookups need no scan), the secret is returned once. ``check_token``
loads the user as things stand now — deactivated users, revoked or expired
tokens get nothing — and limits the actor to the token's apps;
``record_token_use`` writes a ``token_use`` entry for every use. The token's ``last_used_at`` is kept to the
minute (``LAST_USED_RESOLUTION``), so a busy token does not rewrite its row on
every request; the audit trail has each use.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa

from .actor import Actor
from .audit import write_audit
from .errors import NotFound, RecordbaseError
from .models import Token, utcnow
from .reads import FastReader
from .users import (
    MEMBERSHIPS,
    actor_from,
    apps_t,
    find_user,
    load_actor,
    require_user,
    users_t,
    verify_password,
)

tokens_t: sa.Table = Token.__table__  # type: ignore[assignment]
PREFIX = "rb_"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
ANONYMOUS = Actor(kind="anonymous", name="anonymous")
# Verified against when the email is unknown, so a wrong email costs as long as a wrong password.
# The argon2 hash of a random password nobody kept, written out: hashing one at import cost every
# process 175 ms (on its first API request). A test checks it has the parameters hash_password uses.
_DUMMY_HASH = "$argon2id$v=19$m=65536,t=3,p=4$+IBOjCvUCALAG8Byh6gkPw$j3l7aeR3xsFPMEGBfUpLtlrKUPNPAhw0IESB5QD5G0E"


def authenticate(conn: sa.Connection, email: str, password: str, *, source: str | None = None) -> Actor | None:
    """The actor for a correct email and password of an active user, else ``None``; audited either way."""
    try:
        user = find_user(conn, email)
    except RecordbaseError:
        user = None
    ok = verify_password(user["password_hash"] if user else _DUMMY_HASH, password) and user is not None
    actor = load_actor(conn, user["id"]) if ok and user is not None else None
    details: dict[str, Any] = {"source": source}
    if actor is not None:
        write_audit(conn, actor, "login", entries=[(None, details)])
        return actor
    if user is None:
        details["reason"] = "unknown email"
        write_audit(conn, ANONYMOUS, "login_failed", entries=[(None, details)])
    else:
        details["reason"] = "wrong password" if not ok else "deactivated user"
        who = Actor.user(user["id"], user["display_name"])
        write_audit(conn, who, "login_failed", entries=[(None, details)])
    return None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    conn: sa.Connection, actor: Actor, email: str, *, name: str = "token",
    expires_days: int | None = None, apps: Sequence[str] | None = None,
) -> tuple[int, str]:
    """(token id, the secret): the secret is never stored and cannot be shown again."""
    user = require_user(conn, email)
    if apps:
        installed = set(conn.execute(sa.select(apps_t.c.slug)).scalars())
        unknown = [a for a in apps if a not in installed]
        if unknown:
            raise NotFound(f'no app "{unknown[0]}" is installed')
    secret = PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token_id = conn.execute(sa.insert(tokens_t).values(
        user_id=user["id"], name=name, token_hash=_digest(secret), prefix=secret[:10],
        apps=sorted(set(apps)) if apps else None, created_at=now,
        expires_at=now + dt.timedelta(days=expires_days) if expires_days else None,
    ).returning(tokens_t.c.id)).scalar_one()
    write_audit(conn, actor, "token_create", entries=[(None, {
        "token_id": token_id, "user_id": user["id"], "name": name, "apps": apps or None, "expires_days": expires_days})])
    return token_id, secret


@dataclass(frozen=True)
class TokenCheck:
    """What a token opens as of now: its user's actor, or the reason it opens nothing."""

    token_id: int
    user_id: int
    actor: Actor | None  # the user as things stand (``None`` if deactivated), limited to the token's apps
    reason: str | None  # why the token no longer works; ``None`` when it does
    touch: bool  # whether ``last_used_at`` is due for rewriting

    @property
    def opens(self) -> Actor | None:
        return self.actor if self.reason is None else None


def _token_and_user() -> sa.Select[Any]:
    return (
        sa.select(tokens_t.c.id, tokens_t.c.user_id, tokens_t.c.revoked_at, tokens_t.c.expires_at, tokens_t.c.apps,
                  tokens_t.c.last_used_at, users_t.c.id, users_t.c.display_name, users_t.c.is_admin,
                  users_t.c.attributes, users_t.c.is_active)
        .select_from(tokens_t.outerjoin(users_t, users_t.c.id == tokens_t.c.user_id))
        .where(tokens_t.c.token_hash == sa.bindparam("token_hash"))
    )


def check_token(reader: FastReader, secret: str) -> TokenCheck | None:
    """The state of the token ``secret`` as of now; ``None`` for a string that is no token.

    Every request with a token asks, so this reads with prepared statements
    on the engine's driver connections (one snapshot), and writes nothing:
    ``record_token_use`` audits the answer.
    """
    if not secret.startswith(PREFIX):
        return None
    token_q = reader.prepared("auth_token", _token_and_user)
    members_q = reader.prepared("auth_memberships", lambda: MEMBERSHIPS)
    definition_q = reader.prepared(
        "auth_definition", lambda: sa.select(apps_t.c.definition).where(apps_t.c.id == sa.bindparam("app_id")))
    with reader.connection(snapshot=True) as dbapi:
        row = token_q.first(dbapi, {"token_hash": _digest(secret)})
        if row is None:
            return None
        token_id, user_id, revoked_at, expires_at, apps, last_used_at, found_user, name, is_admin, attributes, active = row
        actor = None
        if found_user is not None:
            user = {"id": found_user, "display_name": name, "is_admin": is_admin, "attributes": attributes, "is_active": active}
            actor = actor_from(
                reader.engine, user, members_q.all(dbapi, {"user_id": user_id}),
                lambda app_id: (definition_q.first(dbapi, {"app_id": app_id}) or (None,))[0],
            )
    now = utcnow()
    reason = (
        "revoked" if revoked_at is not None
        else "expired" if expires_at is not None and expires_at <= now
        else "user deactivated" if actor is None
        else None
    )
    if actor is not None and apps:
        # A scoped token opens only its apps, even for an administrator.
        actor = replace(actor, is_admin=False, roles={a: r for a, r in actor.roles.items() if a in apps})
    # To the minute: the audit trail records every use; this column says "recently".
    touch = last_used_at is None or last_used_at <= now - LAST_USED_RESOLUTION
    return TokenCheck(token_id, user_id, actor, reason, touch)


def record_token_use(conn: sa.Connection, check: TokenCheck, *, source: str | None = None) -> None:
    """Audit a checked token: ``token_use`` for one that works, ``token_rejected`` (with why) for one that does not."""
    details = {"token_id": check.token_id, "source": source}
    if check.reason is not None:
        who = check.actor or Actor.user(check.user_id, f"user {check.user_id}")
        write_audit(conn, who, "token_rejected", entries=[(None, {**details, "reason": check.reason})])
        return
    assert check.actor is not None  # a token that works has an actor
    if check.touch:
        conn.execute(sa.update(tokens_t).where(tokens_t.c.id == check.token_id).values(last_used_at=utcnow()))
    write_audit(conn, check.actor, "token_use", entries=[(None, details)])


def revoke_token(conn: sa.Connection, actor: Actor, token_id: int) -> None:
    found = conn.execute(sa.select(tokens_t.c.id, tokens_t.c.revoked_at).where(tokens_t.c.id == token_id)).first()
    if found is None:
        raise NotFound(f"no token {token_id}")
    if found.revoked_at is None:
        conn.execute(sa.update(tokens_t).where(tokens_t.c.id == token_id).values(revoked_at=utcnow()))
        write_audit(conn, actor, "token_revoke", entries=[(None, {"token_id": token_id})])


def list_tokens(conn: sa.Connection, email: str | None = None) -> list[dict[str, Any]]:
    """Tokens (never their secret or hash), newest first."""
    stmt = (
        sa.select(tokens_t.c.id, users_t.c.email, tokens_t.c.name, tokens_t.c.prefix, tokens_t.c.apps,
                  tokens_t.c.created_at, tokens_t.c.expires_at, tokens_t.c.last_used_at, tokens_t.c.revoked_at)
        .join(users_t, users_t.c.id == tokens_t.c.user_id).order_by(tokens_t.c.id.desc())
    )
    if email is not None:
        stmt = stmt.where(users_t.c.id == require_user(conn, email)["id"])
    return [dict(r) for r in conn.execute(stmt).mappings()]
