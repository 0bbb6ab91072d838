"""Compiling a record query — filter tree, sort, search, projection, cursor — to SQL.

Pure functions of a ``TableSchema`` and the caller's JSON; nothing here runs
SQL. Every mistake is a ``QueryError`` whose pointer names the offending node
(``/filter/and/1/op``, ``/sort/0``).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from . import fields as field_types
from .database import search_condition
from .errors import Problem, QueryError
from .fields import Field, FieldValueError, FilterContext
from .fields.base import ORDER_OPS, RELATIVE_DATE_OPS
from .fields.relation import MAX_ID
from .schema import TableSchema

#: System columns that can be filtered and sorted like fields, mapped to a field type.
SYSTEM_FIELD_TYPES = {
    "created_at": "created_at", "updated_at": "updated_at",
    "created_by": "created_by", "updated_by": "updated_by",
}
MAX_FILTER_DEPTH = 32


def _error(pointer: str, message: str) -> QueryError:
    return QueryError(f"{pointer}: {message}", [Problem(pointer, message)])


def resolve_field(ts: TableSchema, slug: Any, pointer: str) -> Field | None:
    """The field named ``slug``; ``None`` means the record id. Unknown names are errors."""
    if slug == "id":
        return None
    if isinstance(slug, str):
        if slug in ts.fields:
            return ts.fields[slug]
        if slug in SYSTEM_FIELD_TYPES:
            ftype = field_types.get(SYSTEM_FIELD_TYPES[slug])
            return Field(pk=0, uid=slug, slug=slug, type=ftype, definition={"slug": slug, "type": slug}, table_pk=ts.pk)
    known = ", ".join(["id", *ts.fields])
    raise _error(pointer, f'unknown field "{slug}" in table "{ts.slug}"; fields are: {known}')


def field_expression(ts: TableSchema, f: Field | None, ctx: FilterContext | None = None) -> sa.ColumnElement[Any]:
    """The SQL for a field's value: its column, or a computed field's expression read in ``ctx``."""
    if f is None:
        return ts.table.c.id
    if getattr(f.type, "computed", False):
        from .fields.computed import ComputeError

        try:
            return f.type.expression(f, ts, ctx)  # type: ignore[attr-defined,no-any-return]
        except ComputeError as error:
            raise _error("/fields", str(error)) from None
    return f.type.column(f, ts.table)


class _IdType:
    """Operand parsing for the record id, which has no field type of its own."""

    operators = ORDER_OPS

    @staticmethod
    def operand(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if not (isinstance(value, str) and value.isdigit()):
                raise FieldValueError("expected a record id (an integer)")
            value = int(value)
        if not -MAX_ID <= value <= MAX_ID:
            raise FieldValueError("a record id is at most 2^63 - 1")
        return value


def compile_filter(ts: TableSchema, node: Any, ctx: FilterContext, pointer: str = "/filter", depth: int = 0) -> sa.ColumnElement[bool]:
    """The SQL condition for a filter tree (``None`` or ``{}`` matches everything)."""
    if node is None or node == {}:
        return sa.true()
    if depth > MAX_FILTER_DEPTH:
        raise _error(pointer, f"filter nested deeper than {MAX_FILTER_DEPTH} levels")
    if not isinstance(node, Mapping):
        raise _error(pointer, "a filter node must be an object with and / or / not, or field + op")
    keys = set(node)
    for combinator in ("and", "or"):
        if keys == {combinator}:
            children = node[combinator]
            if not isinstance(children, list):
                raise _error(f"{pointer}/{combinator}", f'"{combinator}" takes a list of filter nodes')
            parts = [compile_filter(ts, child, ctx, f"{pointer}/{combinator}/{i}", depth + 1) for i, child in enumerate(children)]
            if combinator == "and":
                return sa.and_(sa.true(), *parts)
            return sa.or_(sa.false(), *parts)
    if keys == {"not"}:
        # SQL's NOT of an unknown (a comparison with NULL) is unknown, which would
        # drop empty values from both a filter and its negation; coalesce makes
        # "not X" exactly the records X does not match.
        inner = compile_filter(ts, node["not"], ctx, f"{pointer}/not", depth + 1)
        return sa.not_(sa.func.coalesce(inner, sa.false()))
    if "field" in keys and "op" in keys and keys <= {"field", "op", "value"}:
        return compile_condition(ts, node, ctx, pointer)
    if keys == {"consent", "op"}:
        return compile_consent(ts, node, pointer)
    raise _error(pointer, 'a filter node is {"and": [...]}, {"or": [...]}, {"not": {...}}, {"field", "op", "value"} or {"consent", "op"}')


CONSENT_OPS = ("given", "not_given", "withdrawn")


def compile_consent(ts: TableSchema, node: Mapping[str, Any], pointer: str) -> sa.ColumnElement[bool]:
    """Records by the state of their consent to a purpose, from the consent ledger.

    ``given``: an open consent; ``not_given``: none open (never given, or
    withdrawn); ``withdrawn``: given once and withdrawn, not given again —
    the records a "flag" withdrawal stopped processing for.
    """
    declared = ts.definition.get("consent") or {}
    purposes = [*declared.get("purposes", []), *(f"sensitive:{f.slug}" for f in ts.fields.values() if f.sensitivity == "sensitive")]
    purpose, op = node["consent"], node["op"]
    if not declared:
        raise _error(pointer + "/consent", f'table "{ts.slug}" declares no consent')
    if purpose not in purposes:
        raise _error(pointer + "/consent", f'"{purpose}" is not a purpose of this table; purposes are: {", ".join(purposes)}')
    if op not in CONSENT_OPS:
        raise _error(pointer + "/op", f'a consent filter takes one of: {", ".join(CONSENT_OPS)}')
    c = _consent_table()
    about = sa.and_(c.c.table_id == ts.pk, c.c.record_id == ts.table.c.id, c.c.purpose == purpose)
    open_ = sa.exists().where(about, c.c.withdrawn_at.is_(None))
    if op == "given":
        return open_
    if op == "not_given":
        return sa.not_(open_)
    return sa.and_(sa.exists().where(about, c.c.withdrawn_at.is_not(None)), sa.not_(open_))


def _consent_table() -> sa.Table:
    from .models import Consent

    return Consent.__table__  # type: ignore[return-value]


def filter_fields(node: Any, pointer: str = "/filter") -> list[tuple[str, str]]:
    """(field name, pointer) of every condition in a filter tree, for access checks.

    Malformed nodes are skipped here; ``compile_filter`` reports them.
    """
    found: list[tuple[str, str]] = []
    if isinstance(node, Mapping):
        if "field" in node and isinstance(node["field"], str):
            found.append((node["field"], pointer + "/field"))
        for combinator in ("and", "or"):
            if isinstance(node.get(combinator), list):
                for i, child in enumerate(node[combinator]):
                    found.extend(filter_fields(child, f"{pointer}/{combinator}/{i}"))
        if "not" in node:
            found.extend(filter_fields(node["not"], f"{pointer}/not"))
    return found


def compile_condition(ts: TableSchema, node: Mapping[str, Any], ctx: FilterContext, pointer: str) -> sa.ColumnElement[bool]:
    f = resolve_field(ts, node["field"], pointer + "/field")
    op = node["op"]
    value = node.get("value")
    ops = _IdType.operators if f is None else f.type.operators
    if not isinstance(op, str) or op not in ops:
        kind = "the record id" if f is None else f'{f.type.name} field "{f.slug}"'
        raise _error(pointer + "/op", f'operator "{op}" is not supported by {kind}; use one of: {", ".join(sorted(ops))}')
    if op in ("is_empty", "is_not_empty") or op in RELATIVE_DATE_OPS:
        needs_value = op in ("last_n_days", "next_n_days")
        if not needs_value and "value" in node and value is not None:
            raise _error(pointer + "/value", f'"{op}" takes no value')
    elif "value" not in node:
        raise _error(pointer + "/value", f'"{op}" needs a value')
    try:
        if f is None:
            col = ts.table.c.id
            if op in ("in", "not_in", "between"):
                if not isinstance(value, list) or not value:
                    raise FieldValueError(f'"{op}" needs a list of record ids')
                operand: Any = [_IdType.operand(v) for v in value]
            elif op in ("is_empty", "is_not_empty"):
                operand = None
            else:
                operand = _IdType.operand(value)
            return field_types.get("number").filter(None, col, op, operand, ctx)  # type: ignore[arg-type]
        operand = None if op in ("is_empty", "is_not_empty") else f.type.parse_filter_value(f, op, value)
        junction = ts.junctions.get(f.slug)
        if junction is not None:
            return f.type.many_filter(junction, ts.table.c.id, op, operand)  # type: ignore[attr-defined]
        return f.type.filter(f, field_expression(ts, f, ctx), op, operand, ctx)
    except FieldValueError as exc:
        raise _error(pointer + "/value", f'{exc} (field "{node["field"]}", operator "{op}")') from None


@dataclass(frozen=True)
class SortKey:
    field: Field | None  # None: the record id
    descending: bool
    expression: sa.ColumnElement[Any]


def compile_sort(ts: TableSchema, sort: Sequence[Any] | str | None, ctx: FilterContext | None = None) -> list[SortKey]:
    """Sort keys from ``["-amount", "name"]`` (or a comma string); id breaks ties."""
    if sort is None:
        sort = []
    if isinstance(sort, str):
        sort = [part.strip() for part in sort.split(",") if part.strip()]
    keys: list[SortKey] = []
    for i, item in enumerate(sort):
        pointer = f"/sort/{i}"
        if isinstance(item, Mapping):
            slug, descending = item.get("field"), item.get("direction", "asc") == "desc"
        elif isinstance(item, str):
            descending = item.startswith("-")
            slug = item.lstrip("-+")
        else:
            raise _error(pointer, 'a sort key is "field" or "-field"')
        f = resolve_field(ts, slug, pointer)
        if f is not None and f.slug in ts.junctions:
            raise _error(pointer, f'cannot sort by "{slug}": it links to several records')
        if f is not None and f.type.name == "attachment":
            raise _error(pointer, f'cannot sort by "{slug}": attachments have no order')
        if f is not None and not f.type.sortable:
            raise _error(pointer, f'cannot sort by "{slug}": it is encrypted, and ciphertext has no order')
        if f is not None and getattr(f.type, "computed", False) and f.type.result(f, ts).many:  # type: ignore[attr-defined]
            raise _error(pointer, f'cannot sort by "{slug}": it holds several values')
        expression = ts.table.c.id if f is None else f.type.sort_expression(f, field_expression(ts, f, ctx))
        keys.append(SortKey(f, descending, expression))
        if f is None:
            break  # the id is unique: nothing after it can matter
    if not keys or keys[-1].field is not None:
        keys.append(SortKey(None, False, ts.table.c.id))
    return keys


def order_by(keys: Sequence[SortKey], labels: Sequence[sa.Label[Any]] | None = None) -> list[sa.ColumnElement[Any]]:
    """Empty values sort last in both directions, as in a spreadsheet.

    The record id is never empty, so it gets a plain ORDER BY: SQLite then
    walks the primary key and stops at the LIMIT instead of sorting every hit.
    ``labels``: the keys as the statement also selects them. Ordering by
    their names, SQLite plans a rollup's or lookup's subquery once, not once
    for the column and again for the sort.
    """
    clauses: list[sa.ColumnElement[Any]] = []
    for i, k in enumerate(keys):
        expression = k.expression if labels is None else labels[i]
        clause = expression.desc() if k.descending else expression.asc()
        clauses.append(clause if k.field is None else clause.nulls_last())
    return clauses


def keyset_condition(keys: Sequence[SortKey], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """Rows strictly after the row whose sort values are ``values``, in ``order_by(keys)`` order."""
    branches = []
    for i, key in enumerate(keys):
        equal_before = [_equal(k.expression, v) for k, v in zip(keys[:i], values[:i], strict=True)]
        after = _after(key.expression, key.descending, values[i], nullable=key.field is not None)
        if after is not None:
            branches.append(sa.and_(*equal_before, after))
    return sa.or_(sa.false(), *branches)


def _equal(expr: sa.ColumnElement[Any], value: Any) -> sa.ColumnElement[bool]:
    return expr.is_(None) if value is None else expr == sa.literal(value, expr.type)


def _after(expr: sa.ColumnElement[Any], descending: bool, value: Any, *, nullable: bool) -> sa.ColumnElement[bool] | None:
    if value is None:
        return None  # empties come last: nothing sorts after an empty but another empty
    bound = sa.literal(value, expr.type)  # typed, so booleans and dates compare as stored
    beyond = expr < bound if descending else expr > bound
    return sa.or_(beyond, expr.is_(None)) if nullable else beyond


# --- cursors -------------------------------------------------------------


def _encode_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"d": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "dt" in value:
            return dt.datetime.fromisoformat(value["dt"])
        if "d" in value:
            return dt.date.fromisoformat(value["d"])
        if "n" in value:
            return decimal.Decimal(value["n"])
    return value


def query_fingerprint(keys: Sequence[SortKey]) -> str:
    spec = [(k.field.slug if k.field else "id", k.descending) for k in keys]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()[:12]


def encode_cursor(keys: Sequence[SortKey], values: Sequence[Any]) -> str:
    payload = {"q": query_fingerprint(keys), "v": [_encode_value(v) for v in values]}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(keys: Sequence[SortKey], cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw)
        values = [_decode_value(v) for v in payload["v"]]
        fingerprint = payload["q"]
    except (ValueError, KeyError, TypeError):
        raise _error("/cursor", "this cursor is not valid; start again from the first page") from None
    if fingerprint != query_fingerprint(keys) or len(values) != len(keys):
        raise _error("/cursor", "this cursor belongs to a query with another sort order")
    return values


@dataclass
class RecordQuery:
    """What a caller asks for: everything optional."""

    filter: Any = None
    sort: Sequence[Any] | str | None = None
    search: str | None = None
    fields: Sequence[str] | None = None
    page_size: int = 50
    cursor: str | None = None
    with_total: bool = True
    now: dt.datetime | None = None


def search_terms(text: str | None) -> list[str]:
    return [t for t in (text or "").split() if t]


def compile_search(ts: TableSchema, text: str | None, dialect: str) -> sa.ColumnElement[bool] | None:
    terms = search_terms(text)
    if not terms:
        return None
    return search_condition(ts.table, terms, dialect)


def projection(ts: TableSchema, slugs: Sequence[str] | None) -> list[Field]:
    """The fields to return; unknown names are errors naming them."""
    if slugs is None:
        return list(ts.fields.values())
    if isinstance(slugs, str):
        slugs = [s.strip() for s in slugs.split(",") if s.strip()]
    chosen = []
    for i, slug in enumerate(slugs):
        f = resolve_field(ts, slug, f"/fields/{i}")
        if f is not None and f.slug in ts.fields and f not in chosen:
            chosen.append(f)
    return chosen
