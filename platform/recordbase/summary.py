"""Group, aggregate and distinct values over the records an actor may read.

Compiled in the actor's view like every query: the row rules are part of the
WHERE, and every field grouped by or aggregated over must be one the actor
reads in clear under all its roles — otherwise an error names the field — so
no count, sum or group label ever depends on a value the actor may not see.

Metrics are written ``"count"`` or ``"<op>:<field>"``: ``sum`` and ``avg``
(numbers, currency, percent, rating), ``min`` and ``max`` (anything with an
order), ``filled``, ``empty`` and ``distinct`` (counts, any stored field).
Encrypted fields have no order and no clear value in SQL: grouping by them
and aggregating them are refused, except counting filled and empty ones.

A date or date-time field can be grouped by a calendar bucket, written
``"<bucket>:<field>"`` — ``day``, ``week`` (starting Monday), ``month``,
``quarter`` or ``year`` — and its group value is the bucket's label
(``2026-11-02``, ``2026-11``, ``2026-Q4``, ``2026``), in UTC. Computed fields
(formula, lookup, rollup) group and aggregate like stored ones, read as the
actor reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import query as q
from .errors import Problem, QueryError
from .fields import Field
from .models import utcnow

if TYPE_CHECKING:
    from .records import RecordStore

NUMERIC = frozenset({"number", "currency", "percent", "rating"})
BUCKETS = ("day", "week", "month", "quarter", "year")
TEMPORAL = frozenset({"date", "datetime", "created_at", "updated_at"})
OPS = ("sum", "avg", "min", "max", "filled", "empty", "distinct")
MAX_GROUPS = 10_000
MAX_GROUP_FIELDS = 3


@dataclass
class Group:
    """One group: its values by field slug (empty dict without grouping) and its metrics by name."""

    values: dict[str, Any]
    metrics: dict[str, Any]


def _error(pointer: str, message: str) -> QueryError:
    return QueryError(f"{pointer}: {message}", [Problem(pointer, message)])


@dataclass(frozen=True)
class GroupKey:
    """A field grouped by its value, or a date field by a calendar ``bucket``."""

    field: Field
    bucket: str | None
    name: str  # as the caller wrote it: "stage", "month:close_date"


def _kind(store: RecordStore, f: Field) -> str:
    """A field's value kind for grouping and metrics: its type, or a computed field's result."""
    if getattr(f.type, "computed", False):
        result = f.type.result(f, store.ts)  # type: ignore[attr-defined]
        if result.source is not None:
            return str(result.source.type.name)
        return {"number": "number", "date": "date", "datetime": "datetime"}.get(result.kind, result.kind)
    return str(f.type.name)


def _group_key(store: RecordStore, spec: Any, pointer: str) -> GroupKey:
    bucket = None
    slug = spec
    if isinstance(spec, str) and ":" in spec:
        bucket, _, slug = spec.partition(":")
        if bucket not in BUCKETS:
            raise _error(pointer, f'unknown bucket "{bucket}"; buckets are: {", ".join(BUCKETS)}')
    f = _groupable(store, slug, pointer)
    if bucket is not None and _kind(store, f) not in TEMPORAL:
        raise _error(pointer, f'"{f.slug}" is not a date: it cannot be grouped by {bucket}')
    return GroupKey(f, bucket, str(spec))


def bucket_expression(col: sa.ColumnElement[Any], bucket: str, dialect: str) -> sa.ColumnElement[Any]:
    """A date or date-time as its bucket's label (text that sorts in time order)."""
    if dialect == "sqlite":
        if bucket == "week":
            return sa.func.date(col, "weekday 0", "-6 days")
        if bucket == "quarter":
            month = sa.cast(sa.func.strftime("%m", col), sa.Integer())
            return sa.func.strftime("%Y", col).op("||")("-Q").op("||")(sa.cast((month + 2) // 3, sa.Text()))
        fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[bucket]
        return sa.func.strftime(fmt, col)
    utc = sa.func.timezone("UTC", col) if not isinstance(col.type, sa.Date) else col
    fmt = {"day": "YYYY-MM-DD", "week": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": "YYYY-\"Q\"Q", "year": "YYYY"}[bucket]
    return sa.func.to_char(sa.func.date_trunc(bucket, utc), fmt)


def _groupable(store: RecordStore, slug: Any, pointer: str) -> Field:
    f = q.resolve_field(store.ts, slug, pointer)
    if f is None:
        raise _error(pointer, "grouping by the record id makes one group per record; query the records instead")
    if f.slug in store.ts.junctions or f.type.name in ("multi_select", "attachment"):
        raise _error(pointer, f'cannot group by "{f.slug}": it holds several values')
    if f.type.encrypted:
        raise _error(pointer, f'cannot group by "{f.slug}": it is encrypted')
    store.access.require_clear(f.slug, "group", pointer)
    return f


def _metric(store: RecordStore, spec: Any, pointer: str) -> tuple[str, str, Field | None]:
    if spec == "count":
        return "count", "count", None
    if not isinstance(spec, str) or ":" not in spec:
        raise _error(pointer, 'a metric is "count" or "<op>:<field>", e.g. "sum:amount"')
    op, _, slug = spec.partition(":")
    if op not in OPS:
        raise _error(pointer, f'unknown metric "{op}"; metrics are: count, {", ".join(OPS)}')
    f = q.resolve_field(store.ts, slug, pointer)
    if f is None:
        raise _error(pointer, f'"{op}" of the record id says nothing; use "count"')
    if f.slug in store.ts.junctions:
        raise _error(pointer, f'cannot aggregate "{f.slug}": it holds several values')
    if op in ("sum", "avg") and _kind(store, f) not in NUMERIC:
        raise _error(pointer, f'"{op}" needs a number field; "{f.slug}" is {f.type.name}')
    if op in ("min", "max", "sum", "avg", "distinct") and f.type.encrypted:
        raise _error(pointer, f'cannot take "{op}" of "{f.slug}": it is encrypted')
    if op in ("min", "max") and not f.type.sortable:
        raise _error(pointer, f'"{f.slug}" has no order, so no {op}')
    store.access.require_clear(f.slug, "aggregate", pointer)
    return spec, op, f


def _decode(f: Field, raw: Any) -> Any:
    if raw is None or f.type.system:
        return raw
    return f.type.from_db(f, raw)


def _total(f: Field | None, raw: Any) -> Any:
    """A sum as the field's values are: scaled integers decoded; a computed sum is already in units."""
    if f is None:
        return raw
    if getattr(f.type, "computed", False):
        return _decode(f, raw)
    return _decode(f, int(raw))


def aggregate(
    store: RecordStore, *, group_by: Sequence[str] | str | None = None, metrics: Sequence[str] = ("count",),
    filter: Any = None, search: str | None = None, now: dt.datetime | None = None,
) -> list[Group]:
    """Metrics per group of the records the actor reads (one group when ``group_by`` is empty).

    Groups come in the order of their fields' sort (choices in their
    declared order, empty last), at most ``MAX_GROUPS``.
    """
    readers = store.access.require("read")
    if isinstance(group_by, str):
        group_by = [part.strip() for part in group_by.split(",") if part.strip()]
    group_by = list(group_by or [])
    if len(group_by) > MAX_GROUP_FIELDS:
        raise _error("/group_by", f"group by at most {MAX_GROUP_FIELDS} fields")
    keys_wanted = [_group_key(store, spec, f"/group_by/{i}") for i, spec in enumerate(group_by)]
    groups = [k.field for k in keys_wanted]
    if not metrics:
        raise _error("/metrics", "ask for at least one metric")
    wanted = [_metric(store, spec, f"/metrics/{i}") for i, spec in enumerate(metrics)]
    request = q.RecordQuery(filter=filter, search=search, now=now or utcnow())
    dialect = store.rb.dialect
    where = store._where(request, dialect, readers)
    ctx = store._context(request, dialect)
    ts = store.ts

    def grouped(key: GroupKey) -> sa.ColumnElement[Any]:
        col = q.field_expression(ts, key.field, ctx)
        return col if key.bucket is None else bucket_expression(col, key.bucket, dialect)

    # Rows first (group values, sort keys and metric inputs as plain columns), then the
    # grouping over them: an expression with parameters (a formula, a bucket) is then one
    # column that GROUP BY, ORDER BY and SELECT all name the same way, on both databases.
    group_exprs = [grouped(k) for k in keys_wanted]
    sort_keys = q.compile_sort(ts, [f.slug for f in groups], ctx)[: len(groups)] if groups else []
    inputs: list[sa.ColumnElement[Any]] = [e.label(f"_g{i}") for i, e in enumerate(group_exprs)]
    inputs += [
        (e if k.bucket is not None else s.expression).label(f"_s{i}")
        for i, (k, e, s) in enumerate(zip(keys_wanted, group_exprs, sort_keys, strict=True))
    ]
    inputs += [
        (q.field_expression(ts, f, ctx) if f is not None else ts.table.c.id).label(f"_v{i}")
        for i, (_name, _op, f) in enumerate(wanted)
    ]
    rows_q = sa.select(*inputs).where(*where).subquery()
    group_columns = [rows_q.c[f"_g{i}"] for i in range(len(groups))]
    sort_columns = [rows_q.c[f"_s{i}"] for i in range(len(groups))]
    metric_columns = []
    for i, (_name, op, _f) in enumerate(wanted):
        col = rows_q.c[f"_v{i}"]
        expression: sa.ColumnElement[Any]
        if op == "count":
            expression = sa.func.count()
        elif op == "filled":
            expression = sa.func.count(col)
        elif op == "empty":
            expression = sa.func.count() - sa.func.count(col)
        elif op == "distinct":
            expression = sa.func.count(sa.distinct(col))
        elif op == "avg":
            expression = sa.func.sum(col)  # divided by the filled count below, exactly
        else:
            expression = getattr(sa.func, op)(col)
        metric_columns.append(expression.label(f"_m{i}"))
        if op == "avg":
            metric_columns.append(sa.func.count(col).label(f"_n{i}"))
    stmt = sa.select(*group_columns, *metric_columns).select_from(rows_q)
    if groups:
        stmt = stmt.group_by(*group_columns, *sort_columns)
        stmt = stmt.order_by(*(c.is_(None) for c in sort_columns), *sort_columns)
    stmt = stmt.limit(MAX_GROUPS + 1)
    with store.rb.read() as conn:
        rows = conn.execute(stmt).mappings().all()
    if len(rows) > MAX_GROUPS:
        raise _error("/group_by", f"more than {MAX_GROUPS} groups; filter first or group by something coarser")
    out = []
    for row in rows:
        values = {
            (k.field.slug if k.bucket is None else k.name): (_decode(k.field, row[f"_g{i}"]) if k.bucket is None else row[f"_g{i}"])
            for i, k in enumerate(keys_wanted)
        }
        results: dict[str, Any] = {}
        for i, (name, op, f) in enumerate(wanted):
            raw = row[f"_m{i}"]
            if op in ("count", "filled", "empty", "distinct"):
                results[name] = int(raw or 0)
            elif raw is None:
                results[name] = None
            elif op == "avg":
                total = _total(f, raw)
                count = int(row[f"_n{i}"])
                results[name] = (Decimal(total) / count) if count else None
            elif op == "sum":
                results[name] = _total(f, raw)
            else:
                results[name] = _decode(f, raw) if f is not None else raw
        out.append(Group(values, results))
    return out


def distinct(
    store: RecordStore, field: str, *, filter: Any = None, search: str | None = None, limit: int = 100,
) -> list[tuple[Any, int]]:
    """The values of ``field`` among the records the actor reads, most frequent first, with their counts."""
    groups = aggregate(store, group_by=[field], metrics=["count"], filter=filter, search=search)
    ranked = sorted(groups, key=lambda g: -g.metrics["count"])  # stable: ties keep the field's order
    return [(next(iter(g.values.values())), g.metrics["count"]) for g in ranked[:limit]]
