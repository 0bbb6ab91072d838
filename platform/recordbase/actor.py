"""Who is acting. Every engine call takes one explicitly; nothing is read from globals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Actor:
    """A platform user, or a named system process (CLI install, retention job...).

    ``user_id`` is ``None`` for system actors; their ``name`` is recorded in the audit.
    """

    kind: str  # "user" or "system"
    name: str
    user_id: int | None = None
    is_admin: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)
    roles: Mapping[str, frozenset[str]] = field(default_factory=dict)  # app slug → role slugs

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(kind="system", name=name, is_admin=True)

    @classmethod
    def user(
        cls, user_id: int, name: str, *, is_admin: bool = False, attributes: Mapping[str, Any] | None = None,
        roles: Mapping[str, frozenset[str]] | None = None,
    ) -> Actor:
        return cls(
            kind="user", name=name, user_id=user_id, is_admin=is_admin,
            attributes=dict(attributes or {}), roles=dict(roles or {}),
        )

    def roles_in(self, app: str) -> frozenset[str]:
        """The actor's roles in an app (empty when it has none there)."""
        return self.roles.get(app, frozenset())

    @property
    def label(self) -> str:
        return self.name if self.kind in ("user", "anonymous") else f"system:{self.name}"
