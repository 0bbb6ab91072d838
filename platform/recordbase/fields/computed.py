"""Computed fields — formula, lookup, rollup — whose values the database computes on every read.

None of them has a column. Each builds a SQL expression (see :meth:`ComputedType.expression`)
that the record store selects, filters and sorts by like a stored column, so a
computed value is never stale: an order's total is right the moment a line
changes, whoever changed it and by whichever path.

- ``formula``: ``options.formula`` in the language of ``recordbase.formula``;
  ``options.scale`` rounds a numeric result when read (default 2).
- ``lookup``: ``options.link`` (a link field of this table) and ``options.field``
  (a field of the linked table): the linked record's value, or the linked
  records' values as a list for a link with ``many``.
- ``rollup``: ``options.function`` (count, sum, avg, min, max) over linked
  records — either those this record links to (``options.link``) or those
  linking here (``options.table`` + ``options.via``, e.g. an order's lines) —
  of ``options.field`` (not needed for count).

**Access.** A computed value obeys the rules of everything it reads. Its
sensitivity is the highest of its sources' (set when the schema is built), so
a formula over a personal field is masked wherever that field would be. A
lookup or rollup reads the linked table as the actor: only linked records the
actor may read count, and when the actor cannot read the linked field in clear,
the computed field is hidden from them (``access.py``). Filtering and sorting
use the same expression, so they cannot reveal more than the value does.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from .. import formula as fx
from ..errors import Problem
from . import get, register
from .base import (
    EMPTY_OPS,
    EQUALITY_OPS,
    ORDER_OPS,
    RELATIVE_DATE_OPS,
    TEXT_OPS,
    Field,
    FieldType,
    FieldValueError,
    FilterContext,
)
from .encrypted import wants_encryption

if TYPE_CHECKING:
    from faker import Faker

    from ..schema import TableSchema

ROLLUP_FUNCTIONS = ("count", "sum", "avg", "min", "max")
NUMBER_TYPES = {"number", "currency", "percent"}
TEXT_KINDS = {"text", "long_text", "email", "url", "phone", "address", "single_select"}
SENSITIVITY_RANK = {"public": 0, "internal": 1, "personal": 2, "sensitive": 3}

RowsFor = Callable[["TableSchema"], sa.ColumnElement[bool] | None]
"""The actor's row condition on a linked table (``None``: every row)."""


_BUSY = object()  # a result being worked out: meeting it again means a cycle


class ComputeError(FieldValueError):
    """A computed field that cannot be built (a source gone, a type that no longer fits)."""


@dataclass(frozen=True)
class Result:
    """What a computed field gives: a formula kind, as a list for many-lookups; ``scale`` for numbers."""

    kind: str  # number | text | boolean | date | datetime
    many: bool = False
    scale: int = 2
    source: Field | None = None  # a lookup's linked field: its values are decoded by its own type


def compute_context(ctx: FilterContext | None, dialect: str | None = None) -> FilterContext:
    if ctx is not None:
        return ctx
    return FilterContext(now=dt.datetime.now(dt.UTC), dialect=dialect or "sqlite")


def rows_condition(ctx: FilterContext, ts: TableSchema) -> sa.ColumnElement[bool] | None:
    rows: RowsFor | None = ctx.extra.get("rows")
    return None if rows is None else rows(ts)


# --- a field as a formula reads it ------------------------------------------------------


def operand(ts: TableSchema, f: Field, ctx: FilterContext, seen: frozenset[str]) -> fx.Operand:
    """``f`` (of table ``ts``) as a formula operand: its kind and the SQL giving its value."""
    kind = f.type.name
    table = ts.table
    if isinstance(f.type, ComputedType):
        result = f.type.result(f, ts)
        if result.many:
            raise fx.FormulaError(f'"{f.slug}" holds several values; a formula reads single values')
        sql = f.type.expression(f, ts, ctx, seen)
        if result.source is None:
            return fx.Operand(result.kind, sql)
        # A lookup gives its source's stored form: read it as the source field would be read.
        source = result.source
        target = next(t for t in ts.app.tables.values() if t.pk == source.table_pk)
        kind = operand(target, source, ctx, seen).type
        if kind == "number" and source.type.name in NUMBER_TYPES:
            scale = int(source.options.get("scale", getattr(source.type, "default_scale", 0)))
            sql = sa.cast(sql, sa.Float()) / float(10**scale) if scale else sa.cast(sql, sa.Float())
        return fx.Operand(kind, sql)
    if f.type.encrypted or wants_encryption(dict(f.definition), f.type.default_sensitivity):
        raise fx.FormulaError(f'"{f.slug}" is encrypted: nothing can be computed from it in the database')
    if kind in NUMBER_TYPES:
        scale = int(f.options.get("scale", getattr(f.type, "default_scale", 0)))
        col = sa.cast(table.c[f.column_name], sa.Float())
        return fx.Operand("number", col / float(10**scale) if scale else col)
    if kind in ("rating", "autonumber"):
        return fx.Operand("number", table.c[f.column_name])
    if kind in TEXT_KINDS:
        return fx.Operand("text", table.c[f.column_name])
    if kind == "boolean":
        return fx.Operand("boolean", table.c[f.column_name])
    if kind == "date":
        return fx.Operand("date", table.c[f.column_name])
    if kind == "datetime":
        return fx.Operand("datetime", table.c[f.column_name])
    if kind in ("created_at", "updated_at"):
        return fx.Operand("datetime", f.type.column(f, table))
    raise fx.FormulaError(f'"{f.slug}" is {kind.replace("_", " ")}: a formula cannot read it')


def sources(ts: TableSchema, f: Field, seen: frozenset[str] = frozenset()) -> list[tuple[TableSchema, Field]]:
    """Every stored field a computed field reads, through other computed fields and links."""
    key = f"{ts.slug}.{f.slug}"
    if key in seen:
        raise ComputeError(f'"{f.slug}" depends on itself')
    seen = seen | {key}
    found: list[tuple[TableSchema, Field]] = []
    direct: list[tuple[TableSchema, Field]] = []
    kind = f.type.name
    options = f.options
    if kind == "formula":
        try:
            slugs = fx.references(fx.parse(str(options.get("formula", ""))))
        except fx.FormulaError as error:
            raise ComputeError(error.message) from None
        for slug in slugs:
            if slug not in ts.fields:
                raise ComputeError(f'the formula reads "{slug}", which is not a field of "{ts.slug}"')
            direct.append((ts, ts.fields[slug]))
    elif kind in ("lookup", "rollup"):
        link = _path(ts, f)
        direct.append((link.target if link.backward else ts, link.link))
        if link.field is not None:
            direct.append((link.target, link.field))
    for where, source in direct:
        if isinstance(source.type, ComputedType):
            found.extend(sources(where, source, seen))
        else:
            found.append((where, source))
    return found


# --- links for lookups and rollups -------------------------------------------------------


@dataclass(frozen=True)
class LinkPath:
    """How a lookup or rollup reaches its records from a row of ``ts``."""

    link: Field  # the link field (in ``ts`` forward, in ``target`` backward)
    target: TableSchema  # the table whose records are read
    field: Field | None  # the field read there (None: a count)
    backward: bool

    def where(self, ts: TableSchema) -> tuple[sa.ColumnElement[bool], sa.Table | None]:
        """The condition tying a target row to the outer row, and the junction to join, if any."""
        outer, target = ts.table, self.target.table
        if self.backward:
            junction = self.target.junctions.get(self.link.slug)
            if junction is None:
                return target.c[self.link.column_name] == outer.c.id, None
            return sa.and_(junction.c.src == target.c.id, junction.c.dst == outer.c.id), junction
        junction = ts.junctions.get(self.link.slug)
        if junction is None:
            return target.c.id == outer.c[self.link.column_name], None
        return sa.and_(junction.c.src == outer.c.id, junction.c.dst == target.c.id), junction

    @property
    def many(self) -> bool:
        """Whether a row can reach several records this way."""
        return self.backward or bool(self.link.options.get("many"))


def _path(ts: TableSchema, f: Field) -> LinkPath:
    options = f.options
    app = ts.app
    if f.type.name == "rollup" and options.get("table"):
        target = app.tables.get(options["table"])
        if target is None:
            raise ComputeError(f'rollup table "{options["table"]}" is not a table of this app')
        via = target.fields.get(options.get("via", ""))
        if via is None or via.type.name != "link" or via.options.get("table") != ts.slug:
            raise ComputeError(f'"via" must be a link field of "{target.slug}" pointing to "{ts.slug}"')
        link, backward = via, True
    else:
        link_field = ts.fields.get(options.get("link", ""))
        if link_field is None or link_field.type.name != "link":
            raise ComputeError(f'"link" must be a link field of "{ts.slug}"')
        target = app.tables.get(link_field.options.get("table", ""))
        if target is None:
            raise ComputeError(f'the link "{link_field.slug}" points to no table of this app')
        link, backward = link_field, False
    slug = options.get("field")
    field = None
    if slug is not None:
        field = target.fields.get(slug)
        if field is None:
            raise ComputeError(f'"{slug}" is not a field of "{target.slug}"')
    elif f.type.name == "lookup" or options.get("function") != "count":
        raise ComputeError('"field" is required (only a count needs none)')
    return LinkPath(link, target, field, backward)


# --- the types --------------------------------------------------------------------------


class ComputedType(FieldType):
    """Shared by formula, lookup and rollup: no column, never written, read as an expression."""

    computed: ClassVar[bool] = True
    can_be_unique = False
    can_be_required = False
    operators = ORDER_OPS | TEXT_OPS | RELATIVE_DATE_OPS  # narrowed per field by its result kind
    json_type = ["number", "string", "boolean", "array"]

    @property
    def stores_in_column(self) -> bool:
        return False

    def columns(self, f: Field) -> list[sa.Column[Any]]:
        return []

    def parse(self, f: Field, value: Any) -> Any:
        raise FieldValueError("is computed by Recordbase and cannot be set")

    # --- what it gives -------------------------------------------------------------
    def result(self, f: Field, ts: TableSchema) -> Result:
        """The kind of value (checked once per schema; ``ComputeError`` when it cannot be built)."""
        cached = f._memo.get("result")
        if cached is _BUSY:
            raise ComputeError(f'"{f.slug}" depends on itself')
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        f._memo["result"] = _BUSY
        try:
            result = self._result(f, ts)
        except BaseException:
            f._memo.pop("result", None)
            raise
        f._memo["result"] = result
        return result

    def _result(self, f: Field, ts: TableSchema) -> Result:
        raise NotImplementedError

    def expression(self, f: Field, ts: TableSchema, ctx: FilterContext | None, seen: frozenset[str] = frozenset()) -> sa.ColumnElement[Any]:
        """SQL for the value, in the stored form ``from_db`` decodes; reads linked rows as the context's actor."""
        key = f"{ts.slug}.{f.slug}"
        if key in seen:
            raise ComputeError(f'"{f.slug}" depends on itself')
        try:
            return self._expression(f, ts, compute_context(ctx), seen | {key})
        except fx.FormulaError as error:
            raise ComputeError(f'"{f.slug}" cannot be computed: {error.message}') from None

    def _expression(self, f: Field, ts: TableSchema, ctx: FilterContext, seen: frozenset[str]) -> sa.ColumnElement[Any]:
        raise NotImplementedError

    def column(self, f: Field, table: sa.Table) -> sa.ColumnElement[Any]:
        raise ComputeError(f'"{f.slug}" is computed: it has no column')

    # --- values ----------------------------------------------------------------------
    def _kind(self, f: Field) -> Result:
        result: Result | None = f._memo.get("result")
        if result is None:
            raise ComputeError(f'"{f.slug}" is read before its table schema checked it')
        return result

    def from_db(self, f: Field, raw: Any) -> Any:
        result = self._kind(f)
        if result.many:
            items = json.loads(raw) if isinstance(raw, str) else raw
            if not isinstance(items, list):
                return None
            values = [self._one(f, result, item) for item in items if item is not None]
            return values or None
        return self._one(f, result, raw)

    def _one(self, f: Field, result: Result, raw: Any) -> Any:
        if raw is None:
            return None
        if result.source is not None:  # a lookup: the linked field decodes its own stored form
            return result.source.type.from_db(result.source, raw)
        kind = result.kind
        if kind == "number":
            try:
                number = Decimal(str(raw))
            except InvalidOperation:
                return None
            if not number.is_finite():
                return None
            if result.scale == 0:
                return int(number.quantize(Decimal(1), rounding=ROUND_HALF_UP))
            return number.quantize(Decimal(1).scaleb(-result.scale), rounding=ROUND_HALF_UP)
        if kind == "boolean":
            return bool(raw)
        if kind == "date":
            return get("date").from_db(f, raw)
        if kind == "datetime":
            return get("datetime").from_db(f, raw)
        return str(raw)

    def _delegate(self, f: Field) -> tuple[FieldType, Field]:
        """The stored type whose filters and text rules fit this field's values."""
        result = self._kind(f)
        if result.source is not None:
            return result.source.type, result.source
        name = {"number": "number", "text": "text", "boolean": "boolean", "date": "date", "datetime": "datetime"}[result.kind]
        ftype = get(name)
        return ftype, Field(pk=f.pk, uid=f.uid, slug=f.slug, type=ftype, definition={"slug": f.slug, "type": name}, table_pk=f.table_pk)

    def json_value(self, f: Field, value: Any) -> Any:
        if value is None:
            return None
        ftype, proxy = self._delegate(f)
        if isinstance(value, list):
            return [ftype.json_value(proxy, v) for v in value]
        if self._kind(f).kind == "number" and self._kind(f).source is None:
            return str(value) if isinstance(value, Decimal) else value
        return ftype.json_value(proxy, value)

    def json_schema(self, f: Field) -> dict[str, Any]:
        result: Result | None = f._memo.get("result")
        if result is None:
            return {"readOnly": True}
        kinds = {"number": ["string", "integer"], "text": ["string"], "boolean": ["boolean"], "date": ["string"], "datetime": ["string"]}
        if result.source is not None:
            item = dict(result.source.type.json_schema(result.source))
            item.pop("readOnly", None)
        else:
            item = {"type": [*kinds[result.kind], "null"]}
        if result.many:
            return {"type": ["array", "null"], "items": item, "readOnly": True}
        return {**item, "readOnly": True}

    def to_text(self, f: Field, value: Any) -> str:
        if value is None:
            return ""
        ftype, proxy = self._delegate(f)
        if isinstance(value, list):
            return ", ".join(ftype.to_text(proxy, v) for v in value)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return str(value) if self._kind(f).source is None else ftype.to_text(proxy, value)

    def from_text(self, f: Field, text: str) -> Any:
        raise FieldValueError("is computed by Recordbase and cannot be imported")

    def mask(self, f: Field, value: Any) -> Any:
        return None if value is None else "•••"

    def sample(self, f: Field, fake: Faker) -> Any:
        raise NotImplementedError("computed values are not sampled")

    # --- filters and sorting -----------------------------------------------------------
    def allowed_ops(self, f: Field) -> frozenset[str]:
        result = self._kind(f)
        if result.many:
            return EMPTY_OPS
        ftype, _proxy = self._delegate(f)
        ops = ftype.operators if not callable(getattr(ftype, "operators", None)) else EQUALITY_OPS
        return frozenset(ops)

    def parse_filter_value(self, f: Field, op: str, value: Any) -> Any:
        if op not in self.allowed_ops(f):
            raise FieldValueError(f'operator "{op}" does not apply to this computed field; use one of: {", ".join(sorted(self.allowed_ops(f)))}')
        if op in EMPTY_OPS:
            return None
        result = self._kind(f)
        if result.kind == "number" and result.source is None:
            return _number_operand(op, value)
        ftype, proxy = self._delegate(f)
        return ftype.parse_filter_value(proxy, op, value)

    def filter(self, f: Field, col: sa.ColumnElement[Any], op: str, value: Any, ctx: FilterContext) -> sa.ColumnElement[bool]:
        result = self._kind(f)
        if result.many:
            if op == "is_empty":
                return col.is_(None)
            return col.is_not(None)
        if result.kind == "number" and result.source is None:
            return FieldType.filter(self, f, col, op, value, ctx)
        ftype, proxy = self._delegate(f)
        return ftype.filter(proxy, col, op, value, ctx)

    def sort_expression(self, f: Field, col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        result = self._kind(f)
        if result.source is not None:
            return result.source.type.sort_expression(result.source, col)
        return col

    @property
    def sortable(self) -> bool:  # type: ignore[override]
        return True

    def check_definition(self, definition: Mapping[str, Any], pointer: str) -> list[Problem]:
        problems = []
        if "default" in definition:
            problems.append(Problem(pointer + "/default", "a computed field cannot have a default"))
        return problems


def _number_operand(op: str, value: Any) -> Any:
    def one(v: Any) -> float:
        if isinstance(v, bool):
            raise FieldValueError("expected a number")
        try:
            return float(Decimal(str(v).strip()))
        except (InvalidOperation, ValueError):
            raise FieldValueError("expected a number") from None

    if op in ("in", "not_in", "between"):
        if not isinstance(value, list) or not value or (op == "between" and len(value) != 2):
            raise FieldValueError(f'"{op}" needs a list of numbers')
        return [one(v) for v in value]
    return one(value)


@register
class Formula(ComputedType):
    name = "formula"

    def _resolver(self, ts: TableSchema, ctx: FilterContext, seen: frozenset[str]) -> fx.Resolver:
        def resolve(slug: str) -> fx.Operand:
            f = ts.fields.get(slug)
            if f is None:
                raise fx.FormulaError(f'"{slug}" is not a field of "{ts.slug}"')
            return operand(ts, f, ctx, seen)

        return resolve

    def _compile(self, f: Field, ts: TableSchema, ctx: FilterContext, seen: frozenset[str]) -> fx.Compiled:
        text = f.options.get("formula")
        if not isinstance(text, str):
            raise fx.FormulaError("options.formula is required")
        fctx = fx.Context(ctx.dialect, ctx.today, ctx.now)
        return fx.compile_formula(text, self._resolver(ts, ctx, seen), fctx)

    def _result(self, f: Field, ts: TableSchema) -> Result:
        try:
            kind = self._compile(f, ts, compute_context(None), frozenset({f"{ts.slug}.{f.slug}"})).type
        except fx.FormulaError as error:
            raise ComputeError(error.message) from None
        return Result(kind, scale=int(f.options.get("scale", 2)))

    def _expression(self, f: Field, ts: TableSchema, ctx: FilterContext, seen: frozenset[str]) -> sa.ColumnElement[Any]:
        return self._compile(f, ts, ctx, seen).sql


def _stored_value(path: LinkPath, ctx: FilterContext, seen: frozenset[str]) -> sa.ColumnElement[Any]:
    """The read field's value in its stored form (a computed one: its expression)."""
    assert path.field is not None
    f = path.field
    if isinstance(f.type, ComputedType):
        return f.type.expression(f, path.target, ctx, seen)
    if path.target.junctions.get(f.slug) is not None:
        raise ComputeError(f'"{f.slug}" links to several records; look up a single value')
    return path.target.table.c[f.column_name]


def _linked_rows(path: LinkPath, ts: TableSchema, ctx: FilterContext, columns: list[sa.ColumnElement[Any]]) -> sa.Select[Any]:
    tie, junction = path.where(ts)
    stmt = sa.select(*columns).select_from(path.target.table)
    if junction is not None:
        stmt = stmt.select_from(junction)
    stmt = stmt.where(tie)
    rows = rows_condition(ctx, path.target)
    if rows is not None:
        stmt = stmt.where(rows)
    return stmt


@register
class Lookup(ComputedType):
    name = "lookup"

    def _result(self, f: Field, ts: TableSchema) -> Result:
        path = _path(ts, f)
        assert path.field is not None
        source = path.field
        if isinstance(source.type, ComputedType):
            inner = source.type.result(source, path.target)
            if inner.many:
                raise ComputeError(f'"{source.slug}" already holds several values')
            return Result(inner.kind, many=path.many, scale=inner.scale, source=inner.source or source)
        if source.type.name in ("attachment", "multi_select") or path.target.junctions.get(source.slug) is not None:
            raise ComputeError(f'"{source.slug}" holds several values; look up a single-valued field')
        return Result("source", many=path.many, source=source)

    def _expression(self, f: Field, ts: TableSchema, ctx: FilterContext, seen: frozenset[str]) -> sa.ColumnElement[Any]:
        path = _path(ts, f)
        value = _stored_value(path, ctx, seen)
        if not path.many:
            return _linked_rows(path, ts, ctx, [value]).limit(1).scalar_subquery()
        tie, junction = path.where(ts)
        ordered = _linked_rows(path, ts, ctx, [value.label("v"), (junction.c.position if junction is not None else path.target.table.c.id).label("p")])
        inner = ordered.subquery()
        if ctx.dialect == "sqlite":
            in_order = sa.select(inner).order_by(inner.c.p).subquery()
            listed = sa.select(sa.case((sa.func.count() == 0, sa.null()), else_=sa.func.json_group_array(in_order.c.v)))
            return listed.scalar_subquery()
        from sqlalchemy.dialects.postgresql import aggregate_order_by

        aggregated = sa.func.json_agg(aggregate_order_by(inner.c.v, inner.c.p))
        return sa.cast(sa.select(aggregated).select_from(inner).scalar_subquery(), sa.Text())



@register
class Rollup(ComputedType):
    name = "rollup"

    def _result(self, f: Field, ts: TableSchema) -> Result:
        function = f.options.get("function")
        if function not in ROLLUP_FUNCTIONS:
            raise ComputeError(f'"function" must be one of: {", ".join(ROLLUP_FUNCTIONS)}')
        path = _path(ts, f)
        if function == "count":
            return Result("number", scale=0)
        assert path.field is not None
        kind = self._source_kind(path)
        if function in ("sum", "avg") and kind != "number":
            raise ComputeError(f'{function} needs a numeric field; "{path.field.slug}" is not')
        if kind not in ("number", "date", "datetime"):
            raise ComputeError(f'{function} needs a number or a date; "{path.field.slug}" is neither')
        if isinstance(path.field.type, ComputedType):
            source_scale = path.field.type.result(path.field, path.target).scale
        else:
            source_scale = int(path.field.options.get("scale", getattr(path.field.type, "default_scale", 0)))
        default_scale = max(2, source_scale) if function == "avg" else source_scale
        return Result(kind, scale=int(f.options.get("scale", default_scale)))

    @staticmethod
    def _source_kind(path: LinkPath) -> str:
        assert path.field is not None
        source = path.field
        if isinstance(source.type, ComputedType):
            inner = source.type.result(source, path.target)
            return "number" if inner.kind == "source" else inner.kind
        name = source.type.name
        if source.type.encrypted or wants_encryption(dict(source.definition), source.type.default_sensitivity):
            raise ComputeError(f'"{source.slug}" is encrypted: nothing can be computed from it in the database')
        if name in NUMBER_TYPES or name in ("rating", "autonumber"):
            return "number"
        if name in ("date", "datetime"):
            return name
        if name in ("created_at", "updated_at"):
            return "datetime"
        return name

    def _expression(self, f: Field, ts: TableSchema, ctx: FilterContext, seen: frozenset[str]) -> sa.ColumnElement[Any]:
        path = _path(ts, f)
        function = f.options["function"]
        if function == "count":
            return _linked_rows(path, ts, ctx, [sa.func.count()]).scalar_subquery()
        assert path.field is not None
        source = path.field
        scale = 0
        if isinstance(source.type, ComputedType):
            value = _stored_value(path, ctx, seen)
        elif source.type.system:
            value = source.type.column(source, path.target.table)
        else:
            # A stored number is a scaled integer: aggregate the integers, scale once (sum, avg,
            # min and max all commute with a positive scale), not once per linked row.
            value = path.target.table.c[source.column_name]
            if source.type.name in NUMBER_TYPES:
                scale = int(source.options.get("scale", getattr(source.type, "default_scale", 0)))
        functions: dict[str, Callable[[sa.ColumnElement[Any]], sa.ColumnElement[Any]]] = {
            "sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max,
        }
        aggregate = functions[function](value)
        if self._source_kind(path) == "number":
            aggregate = sa.cast(aggregate, sa.Float())
            if scale:
                aggregate = aggregate / float(10**scale)
        if function == "sum":
            aggregate = sa.func.coalesce(aggregate, 0.0)
        return _linked_rows(path, ts, ctx, [aggregate]).scalar_subquery()
