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
    if op in ("sum", "avg") and f.type.name not in NUMERIC:
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
    groups = [_groupable(store, slug, f"/group_by/{i}") for i, slug in enumerate(group_by)]
    if not metrics:
        raise _error("/metrics", "ask for at least one metric")
    wanted = [_metric(store, spec, f"/metrics/{i}") for i, spec in enumerate(metrics)]
    request = q.RecordQuery(filter=filter, search=search, now=now or utcnow())
    where = store._where(request, store.rb.dialect, readers)
    ts = store.ts
    group_columns = [q.field_expression(ts, f).label(f"_g{i}") for i, f in enumerate(groups)]
    metric_columns = []
    for i, (_name, op, f) in enumerate(wanted):
        col = q.field_expression(ts, f) if f is not None else ts.table.c.id
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
    stmt = sa.select(*group_columns, *metric_columns).where(*where)
    if groups:
        stmt = stmt.group_by(*(q.field_expression(ts, f) for f in groups))
        keys = q.compile_sort(ts, [f.slug for f in groups])
        stmt = stmt.order_by(*(k.expression.is_(None) for k in keys[:-1]), *(k.expression for k in keys[:-1]))
    stmt = stmt.limit(MAX_GROUPS + 1)
    with store.rb.read() as conn:
        rows = conn.execute(stmt).mappings().all()
    if len(rows) > MAX_GROUPS:
        raise _error("/group_by", f"more than {MAX_GROUPS} groups; filter first or group by something coarser")
    out = []
    for row in rows:
        values = {f.slug: _decode(f, row[f"_g{i}"]) for i, f in enumerate(groups)}
        results: dict[str, Any] = {}
        for i, (name, op, f) in enumerate(wanted):
            raw = row[f"_m{i}"]
            if op in ("count", "filled", "empty", "distinct"):
                results[name] = int(raw or 0)
            elif raw is None:
                results[name] = None
            elif op == "avg":
                total = _decode(f, int(raw)) if f is not None else raw
                count = int(row[f"_n{i}"])
                results[name] = (Decimal(total) / count) if count else None
            elif op == "sum":
                results[name] = _decode(f, int(raw)) if f is not None else raw
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
