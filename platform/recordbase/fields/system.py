"""Values the engine sets itself: autonumbers and the created/updated stamps."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import register
from .base import EQUALITY_OPS, ORDER_OPS, RELATIVE_DATE_OPS, Field, FieldType, FieldValueError
from .temporal import DateTime, parse_datetime

if TYPE_CHECKING:
    from faker import Faker

_NUMBER_TAIL = re.compile(r"(\d+)$")


@register
class Autonumber(FieldType):
    """``prefix`` + zero-padded sequence, e.g. ``ORD-000123``; gap-free per table.

    Stored as the bare integer (so it sorts and filters as a number); the
    record store draws the next value from ``rb_sequence`` in the inserting
    transaction, so a rolled-back insert gives its number back.
    """

    name = "autonumber"
    operators = ORDER_OPS
    can_be_required = False
    searchable = True

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    def parse(self, f: Field, value: Any) -> Any:
        raise FieldValueError("is numbered automatically and cannot be set")

    def _operand(self, f: Field, value: Any) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        match = _NUMBER_TAIL.search(str(value))
        if not match:
            raise FieldValueError(f"expected a number like {self.format(f, 123)}")
        return int(match.group(1))

    def format(self, f: Field, number: int) -> str:
        return f"{f.options.get('prefix', '')}{number:0{int(f.options.get('digits', 6))}d}"

    def from_db(self, f: Field, raw: Any) -> Any:
        return None if raw is None else self.format(f, raw)

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": ["string", "null"], "readOnly": True}

    def from_text(self, f: Field, text: str) -> Any:
        return text.strip() or None

    def sample(self, f: Field, fake: Faker) -> Any:
        raise NotImplementedError("autonumbers are assigned by the engine")

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "•••"


class SystemType(FieldType):
    """Exposes a system column of every app table under a field of its own."""

    system = True
    can_be_unique = False
    can_be_required = False
    column_name: str = ""

    def column(self, f: Field, table: sa.Table) -> sa.ColumnElement[Any]:
        return table.c[self.column_name]

    def parse(self, f: Field, value: Any) -> Any:
        raise FieldValueError("is set by Recordbase and cannot be written")

    def sample(self, f: Field, fake: Faker) -> Any:
        raise NotImplementedError("set by the engine")

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "•••"


class Stamp(SystemType, DateTime):
    """A creation or change time: filters and sorts exactly like a datetime field."""

    operators = ORDER_OPS | RELATIVE_DATE_OPS

    def _operand(self, f: Field, value: Any) -> Any:
        parsed = parse_datetime(value)
        if parsed is None:
            raise FieldValueError("a filter value cannot be empty; use is_empty")
        return parsed

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": "string", "format": "date-time", "readOnly": True}


class Author(SystemType):
    operators = EQUALITY_OPS
    json_type = "integer"

    def _operand(self, f: Field, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldValueError("expected a user id")
        return value

    def json_schema(self, f: Field) -> dict[str, Any]:
        return {"type": ["integer", "null"], "readOnly": True}


@register
class CreatedAt(Stamp):
    name = "created_at"
    column_name = "created_at"


@register
class UpdatedAt(Stamp):
    name = "updated_at"
    column_name = "updated_at"


@register
class CreatedBy(Author):
    name = "created_by"
    column_name = "created_by"


@register
class UpdatedBy(Author):
    name = "updated_by"
    column_name = "updated_by"
