"""Platform users: creation and password hashing (argon2)."""

from __future__ import annotations

import secrets
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .actor import Actor
from .audit import write_audit
from .errors import RecordbaseError
from .models import User, utcnow

users_t: sa.Table = User.__table__  # type: ignore[assignment]
_hasher = PasswordHasher()


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
    local, _, domain = email.rpartition("@")
    return f"{local}@{domain.lower()}"


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
