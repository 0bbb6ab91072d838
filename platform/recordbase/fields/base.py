"""The contract every field type fulfils, and the pieces most types share.

A field type is a stateless object registered under its ``name``. Methods
take the resolved ``Field`` (its stable id, options, physical column name) so
one instance serves every field of that type. The value a caller gives goes
``parse`` (validate + normalise to a Python value) then ``to_db``; a value read
back goes ``from_db``. Filters, sorting, CSV text, samples and masks are
expressed in terms of those same Python values, so a type's rules live in one
place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import marshmallow as ma
import sqlalchemy as sa

from ..errors import Problem

if TYPE_CHECKING:
    from faker import Faker

    from ..schema import TableSchema

EMPTY_OPS = frozenset({"is_empty", "is_not_empty"})
EQUALITY_OPS = frozenset({"eq", "ne", "in", "not_in"}) | EMPTY_OPS
ORDER_OPS = EQUALITY_OPS | {"lt", "lte", "gt", "gte", "between"}
TEXT_OPS = EQUALITY_OPS | {"contains", "starts_with"}
RELATIVE_DATE_OPS = frozenset(
    {
        "today", "yesterday", "tomorrow", "this_week", "last_week", "next_week",
        "this_month", "last_month", "next_month", "this_year", "last_year",
        "last_n_days", "next_n_days",
    }
)
ALL_OPS = ORDER_OPS | TEXT_OPS | RELATIVE_DATE_OPS


class FieldValueError(ValueError):
    """A value does not fit its field; the message says why, without echoing secrets."""


@dataclass(frozen=True)
class Field:
    """A field of an installed table, as the engine uses it."""

    pk: int  # rb_field.id: names the physical column
    uid: str  # the stable id from the definition
    slug: str
    type: FieldType
    definition: Mapping[str, Any]
    table_pk: int
    _memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value derived from the definition, computed once per field (e.g. a choice index)."""
        try:
            return self._memo[key]
        except KeyError:
            value = self._memo[key] = compute()
            return value

    @property
    def column_name(self) -> str:
        return f"f{self.pk}"

    @property
    def options(self) -> Mapping[str, Any]:
        return self.definition.get("options") or {}

    @property
    def label(self) -> Any:
        return self.definition.get("label", self.slug)

    @property
    def required(self) -> bool:
        return bool(self.definition.get("required"))

    @property
    def unique(self) -> bool:
        return bool(self.definition.get("unique"))

    @property
    def indexed(self) -> bool:
        return bool(self.definition.get("indexed"))

    @property
    def default(self) -> Any:
        return self.definition.get("default")

    @property
    def sensitivity(self) -> str:
        return self.definition.get("sensitivity") or self.type.default_sensitivity


@dataclass(frozen=True)
class FilterContext:
    """What a filter may depend on besides the field: the clock and the database."""

    now: dt.datetime
    dialect: str
    schema: TableSchema | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(dt.UTC).date()


class FieldType:
    """Base of every field type. Subclasses set ``name`` and override what differs."""

    name: ClassVar[str]
    default_sensitivity: ClassVar[str] = "internal"
    operators: ClassVar[frozenset[str]] = EQUALITY_OPS
    can_be_unique: ClassVar[bool] = True
    can_be_required: ClassVar[bool] = True
    searchable: ClassVar[bool] = False  # part of the record's full-text document
    system: ClassVar[bool] = False  # reads a system column; never written by callers
    json_type: ClassVar[str | list[str]] = "string"

    # --- storage ---------------------------------------------------------
    def sql_type(self, f: Field) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def columns(self, f: Field) -> list[sa.Column[Any]]:
        """Physical columns; most types have exactly one, named ``f.column_name``."""
        return [sa.Column(f.column_name, self.sql_type(f), nullable=True)]

    def column(self, f: Field, table: sa.Table) -> sa.ColumnElement[Any]:
        """The SQL expression holding this field's stored value."""
        return table.c[f.column_name]

    def junction(self, f: Field, table_name: str, metadata: sa.MetaData) -> sa.Table | None:
        """A side table (many-to-many links); ``None`` for column-stored types."""
        return None

    @property
    def stores_in_column(self) -> bool:
        return not self.system

    #: Whether values can be ordered (an encrypted field's cannot).
    sortable: ClassVar[bool] = True
    #: Whether values are stored sealed (see ``fields/encrypted.py``).
    encrypted: ClassVar[bool] = False

    def index_column(self, f: Field) -> str:
        """The column indexes and uniqueness apply to."""
        return f.column_name

    def stored_columns(self, f: Field) -> list[str]:
        """Every column holding this field's value (emptied together)."""
        return [f.column_name]

    def db_values(self, f: Field, value: Any) -> dict[str, Any]:
        """Column → stored value for a parsed value (``None`` empties every column)."""
        return {f.column_name: None if value is None else self.to_db(f, value)}

    def unique_key(self, f: Field, value: Any) -> Any:
        """What two values share exactly when they are equal, as found in ``index_column``."""
        return self.to_db(f, value)

    # --- codec -----------------------------------------------------------
    def parse(self, f: Field, value: Any) -> Any:
        """Validate and normalise a caller's value; ``None`` means empty."""
        raise NotImplementedError

    def to_db(self, f: Field, value: Any) -> Any:
        """A parsed value as stored in the column."""
        return value

    def from_db(self, f: Field, raw: Any) -> Any:
        """A stored value as the engine returns it."""
        return raw

    def json_schema(self, f: Field) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": [self.json_type, "null"] if isinstance(self.json_type, str) else [*self.json_type, "null"]}
        if self.system:
            schema["readOnly"] = True
        return schema

    def marshmallow_field(self, f: Field) -> ma.fields.Field:
        """A marshmallow field that (de)serialises through this type's own rules."""
        return TypedValue(f, required=f.required and not self.system, allow_none=not f.required)

    def json_value(self, f: Field, value: Any) -> Any:
        """A value in plain JSON types (Decimal → string, dates → ISO text)."""
        return value

    # --- query -----------------------------------------------------------
    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        """The operand of a filter, in stored form."""
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise FieldValueError(f'"{op}" needs a non-empty list of values')
            return [self._operand(f, v) for v in value]
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise FieldValueError('"between" needs a list of two values [low, high]')
            return [self._operand(f, v) for v in value]
        return self._operand(f, value)

    def _operand(self, f: Field, value: Any) -> Any:
        parsed = self.parse(f, value)
        if parsed is None:
            raise FieldValueError("a filter value cannot be empty; use is_empty")
        return self.to_db(f, parsed)

    def filter(self, f: Field, col: sa.ColumnElement[Any], op: str, value: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
        """SQL for ``field op value``; ``value`` has been through ``parse_filter_value``.

        Negative operators (ne, not_in) match empty values too: "stage is not
        won" includes records with no stage, as a spreadsheet user expects.
        """
        if op == "is_empty":
            return col.is_(None)
        if op == "is_not_empty":
            return col.is_not(None)
        if op == "eq":
            return col == value
        if op == "ne":
            return sa.or_(col != value, col.is_(None))
        if op == "in":
            return col.in_(value)
        if op == "not_in":
            return sa.or_(col.not_in(value), col.is_(None))
        if op == "lt":
            return col < value
        if op == "lte":
            return col <= value
        if op == "gt":
            return col > value
        if op == "gte":
            return col >= value
        if op == "between":
            return col.between(value[0], value[1])
        if op == "contains":
            return col.icontains(value, autoescape=True)
        if op == "starts_with":
            return col.istartswith(value, autoescape=True)
        raise FieldValueError(f'operator "{op}" is not supported by {self.name} fields')

    def sort_expression(self, f: Field, col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return col

    # --- text (CSV) ------------------------------------------------------
    def to_text(self, f: Field, value: Any) -> str:
        return "" if value is None else str(value)

    def from_text(self, f: Field, text: str) -> Any:
        """A CSV cell as a value ``parse`` accepts; empty text is empty."""
        text = text.strip()
        return text or None

    def search_text(self, f: Field, value: Any) -> str | None:
        return None if value is None or not self.searchable else self.to_text(f, value)

    # --- samples and masks -----------------------------------------------
    def sample(self, f: Field, fake: Faker) -> Any:
        raise NotImplementedError

    def mask(self, f: Field, value: Any) -> Any:
        """The value as shown to someone who may not see it in clear; never the clear value."""
        return None if value is None else "••••"

    # --- definition ------------------------------------------------------
    def check_definition(self, definition: Mapping[str, Any], pointer: str) -> list[Problem]:
        """Type-specific problems with a field definition (options and default)."""
        problems = []
        default = definition.get("default")
        if default is not None and not self.system:
            problems.extend(self.check_default(definition, default, pointer + "/default"))
        return problems

    def check_default(self, definition: Mapping[str, Any], default: Any, pointer: str) -> list[Problem]:
        probe = Field(pk=0, uid="", slug=definition.get("slug", ""), type=self, definition=definition, table_pk=0)
        try:
            self.parse(probe, self.resolve_default(default))
        except FieldValueError as exc:
            return [Problem(pointer, f"default is not a valid {self.name}: {exc}")]
        return []

    def resolve_default(self, default: Any) -> Any:
        """The default as a value to parse (dates resolve "today" here)."""
        return default


class TypedValue(ma.fields.Field):
    """A marshmallow field delegating to a ``FieldType`` — one set of rules, two doors."""

    def __init__(self, f: Field, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rb_field = f

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        try:
            return self.rb_field.type.parse(self.rb_field, value)
        except FieldValueError as exc:
            raise ma.ValidationError(str(exc)) from exc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else self.rb_field.type.json_value(self.rb_field, value)


def ensure_str(value: Any, what: str = "text") -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FieldValueError(f"expected {what}, got {type(value).__name__}")


def ensure_list(value: Any) -> Sequence[Any]:
    if isinstance(value, (list, tuple)):
        return value
    raise FieldValueError(f"expected a list, got {type(value).__name__}")
