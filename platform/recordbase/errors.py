"""Errors the engine raises. Each says what went wrong and where.

``where`` is a JSON pointer into the input the caller gave (a definition, a
record's fields, a filter tree), so the CLI, the pages and the API can point
at the exact spot without parsing messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One mistake: a JSON pointer and a message, optionally only a warning."""

    pointer: str
    message: str
    severity: str = "error"  # or "warning"

    def __str__(self) -> str:
        return f"{self.pointer or '/'}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "message": self.message, "severity": self.severity}


class RecordbaseError(Exception):
    """Base of every error the engine raises on purpose (never for a bug)."""

    status = 400

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems or [])


class DefinitionError(RecordbaseError):
    """An app definition is invalid; ``problems`` lists every mistake."""

    status = 422


class ValidationError(RecordbaseError):
    """Record values are invalid; each problem's pointer names the field (``/fields/slug``)."""

    status = 422


class QueryError(RecordbaseError):
    """A filter, sort, projection or cursor is invalid; the pointer names the node."""

    status = 400


class NotFound(RecordbaseError):
    status = 404


class Conflict(RecordbaseError):
    """A write was based on a stale version; ``current`` is the record as it is now."""

    status = 409

    def __init__(self, message: str, current: Any = None) -> None:
        super().__init__(message)
        self.current = current


class PlanRefused(RecordbaseError):
    """A schema change would lose data; ``problems`` lists each value that cannot convert."""

    status = 409


class PermissionDenied(RecordbaseError):
    """The actor may not do this; ``problems`` point at the fields concerned, if any.

    A record outside the actor's rows is never reported with this error: it is
    ``NotFound``, exactly as a record that does not exist.
    """

    status = 403
