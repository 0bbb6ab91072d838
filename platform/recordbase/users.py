"""Platform users: creation and password hashing (argon2)."""

from __future__ import annotations

import secrets
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from .actor import Actor
from .audit import write_audit
from .errors import Problem, RecordbaseError, ValidationError
from .models import App, Membership, User, utcnow

users_t: sa.Table = User.__table__  # type: ignore[assignment]
members_t: sa.Table = Membership.__table__  # type: ignore[assignment]
apps_t: sa.Table = App.__table__  # type: ignore[assignment]
# argon2id as RFC 9106 recommends where memory is limited (64 MiB, 3 passes, 4 lanes): argon2-cffi's default.
PASSWORD_HASHING: Parameters = profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PASSWORD_HASHING)
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def normalise_email(email: str) -> str:
    email = email.strip()
    if "@" not in email or len(email) > 320:
        raise RecordbaseError(f"{email!r} is not an email address")
    # Sign-in names are case-insensitive: Li.Wei@Example.com and li.wei@example.com are one person.
    return email.lower()


def find_user(conn: sa.Connection, email: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(users_t).where(users_t.c.email == normalise_email(email))).mappings().first()
    return dict(row) if row else None


def create_user(
    conn: sa.Connection, actor: Actor, email: str, password: str | None, *,
    display_name: str | None = None, is_admin: bool = False, attributes: dict[str, Any] | None = None,
) -> int:
    email = normalise_email(email)
    if find_user(conn, email):
        raise RecordbaseError(f"a user with email {email} already exists")
    user_id = conn.execute(sa.insert(users_t).values(
        email=email, display_name=display_name or email.split("@")[0],
        password_hash=hash_password(password) if password else None,
        is_active=True, is_admin=is_admin, attributes=attributes or {}, created_at=utcnow(),
    ).returning(users_t.c.id)).scalar_one()
    write_audit(conn, actor, "user_create", entries=[(None, {"user_id": user_id, "email": email, "is_admin": is_admin})])
    return user_id


def require_user(conn: sa.Connection, email: str) -> dict[str, Any]:
    user = find_user(conn, email)
    if user is None:
        raise RecordbaseError(f"no user with email {normalise_email(email)}")
    return user


def _app(conn: sa.Connection, slug: str) -> Mapping[Any, Any]:
    app = conn.execute(sa.select(apps_t.c.id, apps_t.c.definition).where(apps_t.c.slug == slug)).mappings().first()
    if app is None:
        raise RecordbaseError(f'no app "{slug}" is installed')
    return app


def declared_roles(definition: Mapping[str, Any]) -> list[str]:
    return [role["slug"] for role in definition.get("roles") or []]


# The roles an app declares, per database and by (app id, version, time of change): every definition
# change makes a new version, so an entry never goes stale, and a request need not load and parse
# the whole definition.
_DECLARED: weakref.WeakKeyDictionary[sa.Engine, dict[tuple[Any, ...], frozenset[str]]] = weakref.WeakKeyDictionary()


def _declared(engine: sa.Engine, key: tuple[Any, ...], definition_of: Callable[[int], Any]) -> frozenset[str]:
    """The roles declared by the app ``key`` names; ``definition_of(app id)`` loads its definition on a miss."""
    cache = _DECLARED.get(engine)
    if cache is None:
        cache = _DECLARED[engine] = {}
    found = cache.get(key)
    if found is None:
        found = frozenset(declared_roles(definition_of(key[0]) or {}))
        if len(cache) > 1000:
            cache.clear()
        cache[key] = found
    return found


def set_roles(conn: sa.Connection, actor: Actor, email: str, app_slug: str, roles: Iterable[str]) -> list[str]:
    """Make ``roles`` the user's roles in the app (an empty list removes them all)."""
    user = require_user(conn, email)
    app = _app(conn, app_slug)
    known = declared_roles(app["definition"])
    wanted = list(dict.fromkeys(roles))
    unknown = [r for r in wanted if r not in known]
    if unknown:
        raise RecordbaseError(f'app "{app_slug}" has no role "{unknown[0]}"; its roles are: {", ".join(known) or "none"}')
    before = sorted(conn.execute(sa.select(members_t.c.role).where(
        members_t.c.user_id == user["id"], members_t.c.app_id == app["id"])).scalars())
    conn.execute(sa.delete(members_t).where(members_t.c.user_id == user["id"], members_t.c.app_id == app["id"]))
    if wanted:
        now = utcnow()
        conn.execute(sa.insert(members_t), [
            {"user_id": user["id"], "app_id": app["id"], "role": role, "created_at": now} for role in wanted
        ])
    write_audit(conn, actor, "role_change", app_id=app["id"],
                entries=[(None, {"user_id": user["id"], "before": before, "after": sorted(wanted)})])
    return wanted


def set_password(conn: sa.Connection, actor: Actor, email: str, new: str) -> None:
    """Give the user ``new`` as password (argon2); audited as ``password_change``, never the password."""
    if len(new) < MIN_PASSWORD_LENGTH:
        message = f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
        raise ValidationError(message, [Problem("/new_password", message)])
    user = require_user(conn, email)
    conn.execute(sa.update(users_t).where(users_t.c.id == user["id"]).values(password_hash=hash_password(new)))
    write_audit(conn, actor, "password_change", entries=[(None, {"user_id": user["id"]})])


def set_active(conn: sa.Connection, actor: Actor, email: str, active: bool) -> None:
    user = require_user(conn, email)
    conn.execute(sa.update(users_t).where(users_t.c.id == user["id"]).values(is_active=active))
    write_audit(conn, actor, "user_activate" if active else "user_deactivate", entries=[(None, {"user_id": user["id"]})])


def load_actor(conn: sa.Connection, user_id: int) -> Actor | None:
    """The actor for a user as things stand now: ``None`` if inactive or unknown.

    Built fresh for every request, so deactivating a user or removing a role
    (from the membership or from the app's definition) counts at once.
    """
    user = conn.execute(sa.select(users_t).where(users_t.c.id == user_id)).mappings().first()
    if user is None or not user["is_active"]:
        return None
    memberships = conn.execute(MEMBERSHIPS, {"user_id": user_id}).all()
    return actor_from(
        conn.engine, user, memberships,
        lambda app_id: conn.execute(sa.select(apps_t.c.definition).where(apps_t.c.id == app_id)).scalar(),
    )


# A user's roles with what names the app's version: (app id, version, updated_at, slug, role).
MEMBERSHIPS = (
    sa.select(apps_t.c.id, apps_t.c.version, apps_t.c.updated_at, apps_t.c.slug, members_t.c.role)
    .join(apps_t, apps_t.c.id == members_t.c.app_id).where(members_t.c.user_id == sa.bindparam("user_id"))
)


def actor_from(
    engine: sa.Engine, user: Mapping[Any, Any], memberships: Iterable[Sequence[Any]], definition_of: Callable[[int], Any],
) -> Actor | None:
    """The actor for a user row and its ``MEMBERSHIPS`` rows (``None`` if inactive); a role the app no longer declares counts for nothing."""
    if not user["is_active"]:
        return None
    roles: dict[str, set[str]] = {}
    for app_id, version, updated_at, slug, role in memberships:
        if role in _declared(engine, (app_id, version, updated_at), definition_of):
            roles.setdefault(slug, set()).add(role)
    return Actor.user(
        user["id"], user["display_name"], is_admin=user["is_admin"], attributes=user["attributes"] or {},
        roles={app: frozenset(rs) for app, rs in roles.items()},
    )
