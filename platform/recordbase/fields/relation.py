"""Fields that point at other rows: links to records of an app table, and platform users.

Whether a pointed-at row exists is checked by the record store (it needs the
database); these types only check the shape of the value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import register
from .base import EMPTY_OPS, EQUALITY_OPS, Field, FieldType, FieldValueError, FilterContext

if TYPE_CHECKING:
    from faker import Faker

MAX_ID = 2**63 - 1  # ids are BIGINT: anything larger cannot name a record


def _record_id(value: Any) -> int:
    if isinstance(value, bool):
        raise FieldValueError("expected a record id (a positive integer)")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise FieldValueError("expected a record id (a positive integer)")
    return value


class RelationType(FieldType):
    json_type = "integer"
    id_noun = "record id"

    def is_many(self, f: Field) -> bool:
        return bool(f.options.get("many"))

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.BigInteger()

    def junction(self, f: Field, table_name: str, metadata: sa.MetaData) -> sa.Table | None:
        if not self.is_many(f):
            return None
        return sa.Table(
            f"{table_name}_{f.column_name}", metadata,
            sa.Column("src", sa.BigInteger(), primary_key=True),
            sa.Column("dst", sa.BigInteger(), primary_key=True),
            sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
            sa.Index(f"ix_{table_name}_{f.column_name}_dst", "dst"),
        )

    def parse(self, f: Field, value: Any) -> Any:
        if value is None or value == [] or value == "":
            return None
        if self.is_many(f):
            if isinstance(value, str):
                value = [part for part in value.replace(";", ",").split(",") if part.strip()]
            if not isinstance(value, (list, tuple)):
                value = [value]
            ids: list[int] = []
            for item in value:
                rid = _record_id(item)
                if rid not in ids:
                    ids.append(rid)
            return ids
        if isinstance(value, (list, tuple)):
            if len(value) != 1:
                raise FieldValueError(f"takes one {self.id_noun}, not a list")
            value = value[0]
        return _record_id(value)

    def json_schema(self, f: Field) -> dict[str, Any]:
        if self.is_many(f):
            return {"type": ["array", "null"], "items": {"type": "integer", "minimum": 1}, "uniqueItems": True}
        return {"type": ["integer", "null"], "minimum": 1}

    @property
    def operators(self) -> frozenset[str]:  # type: ignore[override]
        return EQUALITY_OPS | {"contains"}

    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise FieldValueError(f'"{op}" needs a non-empty list of {self.id_noun}s')
            return [_record_id(v) for v in value]
        if op in EMPTY_OPS:
            return None
        return _record_id(value)

    def filter(self, f: Field, col: sa.ColumnElement[Any], op: str, value: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
        if op == "contains":
            op = "eq"
        return super().filter(f, col, op, value, ctx)

    def many_filter(self, junction: sa.Table, record_id: sa.ColumnElement[Any], op: str, value: Any) -> sa.ColumnElement[bool]:
        """Filters on a many-link, as EXISTS over its junction table."""
        linked = sa.select(junction.c.src).where(junction.c.src == record_id)
        if op == "is_empty":
            return ~linked.exists()
        if op == "is_not_empty":
            return linked.exists()
        if op in ("eq", "contains"):
            return linked.where(junction.c.dst == value).exists()
        if op == "in":
            return linked.where(junction.c.dst.in_(value)).exists()
        if op in ("ne", "not_in"):
            values = value if isinstance(value, list) else [value]
            return ~linked.where(junction.c.dst.in_(values)).exists()
        raise FieldValueError(f'operator "{op}" is not supported by this field')

    def to_text(self, f: Field, value: Any) -> str:
        if value is None:
            return ""
        return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)

    def sample(self, f: Field, fake: Faker) -> Any:
        raise NotImplementedError("linked ids are chosen by the sample-data generator")

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "•••"


@register
class Link(RelationType):
    """A link to records of a table of the same app; ``options.many`` for several."""

    name = "link"


@register
class UserRef(RelationType):
    """A platform user (by user id)."""

    name = "user"
    id_noun = "user id"

    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.Integer()
