"""Dashboards: the number cards and charts of a dashboard view, computed as one viewer sees them.

A dashboard is a view of type ``"dashboard"`` whose ``"charts"`` each name a
``type`` (``number``, ``bar``, ``line``, ``pie``), a ``metric`` (``"count"``,
``"sum:<field>"``, ``"avg:<field>"``, ``"min:<field>"``, ``"max:<field>"``), an
optional ``group_by`` (a field, or ``"<bucket>:<date field>"``), a ``filter``
and a ``table`` (default: the view's table).

:func:`dashboard` is the one data function of a dashboard: the page and the
API render what it returns. It promises:

- Every chart is computed with ``rb.records(actor, app, table).aggregate(...)``,
  so the viewer's row rules are part of the numbers and every field grouped by,
  aggregated or filtered on must be one the viewer reads in clear.
- A chart the viewer cannot compute comes back with ``available=False`` and a
  ``reason`` — ``"no_access"`` (no read right on its table), ``"not_clear"``
  (a field it uses is hidden from the viewer or masked under one of its
  roles), ``"invalid"`` (the engine refused it otherwise; ``message`` says why)
  — and no numbers. One chart never fails the dashboard.
- Group labels are resolved for display as the viewer may see them: choices by
  their definition label (a string or ``{"en": …, "zh-CN": …}``), linked
  records by their label read as the viewer (``None`` when the record is not
  the viewer's to see), users by display name, buckets by their label
  (``2026-11``). The empty group has ``key`` and ``label`` ``None``.
- Values are JSON-safe: ``int`` counts, decimals as exact strings (``"1234.50"``;
  averages rounded to at least two places), dates as ISO text.
- A view with a filter applies it to the charts on the view's own table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from .errors import NotFound, PermissionDenied, QueryError
from .summary import Group, _kind

if TYPE_CHECKING:
    from .actor import Actor
    from .core import Recordbase
    from .fields import Field
    from .records import RecordStore

CHART_TYPES = ("number", "bar", "line", "pie")
REASONS = ("no_access", "not_clear", "invalid")
USER_TYPES = frozenset({"user", "created_by", "updated_by"})
AVG_PLACES = 2  # an average keeps at least this many decimal places (more when its field has them)


@dataclass(frozen=True)
class Point:
    """One group of a chart: its group value, what to call it, and the metric's value."""

    key: Any  # JSON-safe: choice id, record or user id, bucket label, bool, number, text; None = empty
    label: Any  # a definition label (str or {locale: text}), text, or None (empty / not the viewer's to see)
    value: Any  # JSON-safe: int, decimal string, ISO date, or None


@dataclass
class Chart:
    """A chart as one viewer sees it; ``points`` (``value`` for a number card) only when ``available``."""

    slug: str
    label: Any
    type: str
    table: str
    metric: str
    group_by: str | None
    available: bool = True
    reason: str | None = None  # one of REASONS when not available
    message: str | None = None  # the engine's words (English) when not available
    value: Any = None  # number cards: the one value
    points: list[Point] = field(default_factory=list)
    group_kind: str | None = None  # choice | link | user | bucket | date | datetime | boolean | value
    bucket: str | None = None  # day | week | month | quarter | year, when grouped by a bucket
    value_kind: str = "count"  # count, or the metric field's kind: number, currency, percent, rating, date…
    currency: str | None = None  # ISO 4217 when the metric is of a currency field
    metric_label: Any = None  # the metric field's definition label (None for count)
    group_label: Any = None  # the grouped field's definition label

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "slug": self.slug, "label": self.label, "type": self.type, "table": self.table,
            "metric": self.metric, "group_by": self.group_by, "available": self.available,
        }
        if not self.available:
            out.update(reason=self.reason, message=self.message)
            return out
        out.update(value_kind=self.value_kind, currency=self.currency, metric_label=self.metric_label)
        if self.type == "number":
            out["value"] = self.value
        else:
            out.update(
                group_kind=self.group_kind, bucket=self.bucket, group_label=self.group_label,
                points=[{"key": p.key, "label": p.label, "value": p.value} for p in self.points],
            )
        return out


@dataclass
class Dashboard:
    """A dashboard view and its charts, in the definition's order."""

    app: str
    slug: str
    label: Any
    table: str
    charts: list[Chart]

    def as_json(self) -> dict[str, Any]:
        return {
            "app": self.app, "view": self.slug, "label": self.label, "table": self.table,
            "charts": [c.as_json() for c in self.charts],
        }


def dashboard(rb: Recordbase, actor: Actor, app: str, view: str) -> Dashboard:
    """The dashboard view ``view`` of ``app`` with every chart computed as ``actor`` sees it.

    ``NotFound`` when the app is not the actor's (no role), or has no dashboard
    view of that slug the actor may see (its table is not one it can use) —
    said the same way.
    """
    definition = rb.schema_for(actor, app)  # no role in the app: NotFound, like an app not installed
    found = next(
        (v for v in definition.get("views") or [] if v.get("slug") == view and v.get("type") == "dashboard"),
        None,
    )
    if found is None:
        raise NotFound(f'app "{app}" has no dashboard "{view}"')
    table = str(found["table"])
    charts = [
        chart_data(rb, actor, app, spec, table, view_filter=found.get("filter"))
        for spec in found.get("charts") or []
    ]
    return Dashboard(app, view, found.get("label", view), table, charts)


def chart_data(
    rb: Recordbase, actor: Actor, app: str, spec: Mapping[str, Any], view_table: str,
    *, view_filter: Any = None, now: dt.datetime | None = None,
) -> Chart:
    """One chart of a dashboard on ``view_table``, computed as ``actor`` sees it (never raises for a chart)."""
    table = str(spec.get("table") or view_table)
    kind = str(spec.get("type", "number"))
    group_by = spec.get("group_by") if kind != "number" else None
    chart = Chart(
        slug=str(spec["slug"]), label=spec.get("label", spec["slug"]), type=kind, table=table,
        metric=str(spec.get("metric") or "count"), group_by=group_by,
    )
    try:
        store = rb.records(actor, app, table)
        store.access.require("read")
    except NotFound as missing:
        return _unavailable(chart, "invalid", missing.message)
    except PermissionDenied as denied:
        return _unavailable(chart, "no_access", denied.message)
    chart_filter = spec.get("filter")
    if view_filter and table == view_table:
        chart_filter = {"and": [view_filter, chart_filter]} if chart_filter else view_filter
    unclear = next((slug for slug in _fields_used(chart, chart_filter) if not _clear(store, slug)), None)
    if unclear is not None:
        return _unavailable(chart, "not_clear", f'this chart uses "{unclear}", which you cannot read in clear')
    try:
        if chart.metric == "count" and not group_by:
            # summary.aggregate's ungrouped count-only SELECT names no column of the rows and so
            # loses its FROM (counting 1); the store's count is the same rules' answer.
            groups = [Group({}, {"count": store.count(filter=chart_filter)})]
        else:
            groups = store.aggregate(
                group_by=[group_by] if group_by else None, metrics=[chart.metric], filter=chart_filter, now=now,
            )
    except PermissionDenied as denied:
        return _unavailable(chart, "no_access", denied.message)
    except QueryError as refused:
        return _unavailable(chart, "invalid", refused.message)
    metric_field = _metric_field(store, chart.metric)
    if metric_field is not None:
        chart.value_kind = _kind(store, metric_field)
        chart.currency = metric_field.options.get("currency") if metric_field.type.name == "currency" else None
        chart.metric_label = metric_field.label
    if kind == "number":
        chart.value = _json_value(chart.metric, metric_field, groups[0].metrics[chart.metric] if groups else 0)
        return chart
    chart.points = _points(store, chart, groups, metric_field)
    return chart


def _unavailable(chart: Chart, reason: str, message: str) -> Chart:
    chart.available, chart.reason, chart.message = False, reason, message
    return chart


def _field_slugs(node: Any) -> Iterator[str]:
    """The field slugs a filter tree names."""
    if isinstance(node, Mapping):
        if isinstance(node.get("field"), str):
            yield node["field"]
        for key in ("and", "or"):
            for child in node.get(key) or []:
                yield from _field_slugs(child)
        if "not" in node:
            yield from _field_slugs(node["not"])


def _fields_used(chart: Chart, chart_filter: Any) -> list[str]:
    used = []
    if ":" in chart.metric:
        used.append(chart.metric.partition(":")[2])
    if chart.group_by:
        used.append(chart.group_by.rpartition(":")[2])
    used += list(_field_slugs(chart_filter))
    return list(dict.fromkeys(used))


def _clear(store: RecordStore, slug: str) -> bool:
    """Whether the viewer reads ``slug`` in clear under every reading role (unknown names: the engine says)."""
    f = store.ts.fields.get(slug)
    if f is None:
        return True
    return store.access.visible_somewhere(f) and store.access.clear_everywhere(f)


def _metric_field(store: RecordStore, metric: str) -> Field | None:
    if ":" not in metric:
        return None
    return store.ts.fields.get(metric.partition(":")[2])


def _json_value(metric: str, f: Field | None, value: Any) -> Any:
    """A metric's value in JSON types: counts as ints, decimals as exact strings, dates as ISO text."""
    if value is None or isinstance(value, bool):
        return value
    if metric.startswith("avg:") and isinstance(value, Decimal):
        scale = int(f.options.get("scale", 0)) if f is not None else 0
        places = max(scale, AVG_PLACES)
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _points(store: RecordStore, chart: Chart, groups: list[Group], metric_field: Field | None) -> list[Point]:
    if not chart.group_by:
        return [Point(None, chart.label, _json_value(chart.metric, metric_field, g.metrics[chart.metric])) for g in groups]
    bucket, _, slug = chart.group_by.rpartition(":")
    keys = [next(iter(g.values.values())) for g in groups]
    values = [_json_value(chart.metric, metric_field, g.metrics[chart.metric]) for g in groups]
    if bucket:
        chart.group_kind, chart.bucket = "bucket", bucket
        chart.group_label = _group_field_label(store, slug)
        return [Point(k, k, v) for k, v in zip(keys, values, strict=True)]
    f = store.ts.fields.get(slug)
    chart.group_label = _group_field_label(store, slug)
    type_name = f.type.name if f is not None else slug  # system stamps are not in ts.fields
    labels: dict[Any, Any]
    if f is not None and type_name == "single_select":
        chart.group_kind = "choice"
        labels = {str(c.get("id")): c.get("label", c.get("id")) for c in f.options.get("choices") or []}
        return [Point(k, None if k is None else labels.get(str(k), str(k)), v) for k, v in zip(keys, values, strict=True)]
    if f is not None and type_name == "link":
        chart.group_kind = "link"
        labels = _link_labels(store, f, [k for k in keys if k is not None])
        return [Point(k, None if k is None else labels.get(k), v) for k, v in zip(keys, values, strict=True)]
    if type_name in USER_TYPES:
        from .collab import user_names

        chart.group_kind = "user"
        names = user_names(store.rb, [k for k in keys if isinstance(k, int)])
        return [Point(k, None if k is None else names.get(k), v) for k, v in zip(keys, values, strict=True)]
    kind = _kind(store, f) if f is not None else type_name
    if kind in ("date", "datetime", "created_at", "updated_at"):
        chart.group_kind = "datetime" if kind != "date" else "date"
    elif kind == "boolean":
        chart.group_kind = "boolean"
    else:
        chart.group_kind = "value"
    return [
        Point(_json_value("", f, k), None if k is None else _text(f, k), v)
        for k, v in zip(keys, values, strict=True)
    ]


def _group_field_label(store: RecordStore, slug: str) -> Any:
    f = store.ts.fields.get(slug)
    return f.label if f is not None else slug


def _text(f: Field | None, value: Any) -> str:
    """A group value's text form (its type's, when it has one)."""
    if f is not None:
        try:
            return str(f.type.to_text(f, value))
        except (TypeError, ValueError, AttributeError):
            pass
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _link_labels(store: RecordStore, f: Field, ids: list[Any]) -> dict[Any, str | None]:
    """Linked records' labels as the viewer sees them, through the store's own ``link_labels``."""
    from .records import Record

    if not ids:
        return {}
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    # link_labels reads the ids out of records: one stand-in record carries them all.
    carrier = Record(id=0, fields={f.slug: list(ids)}, version=0, created_at=epoch, updated_at=epoch)
    return dict(store.link_labels([carrier], fields=[f.slug]).get(f.slug, {}))


__all__ = ["CHART_TYPES", "REASONS", "Chart", "Dashboard", "Point", "chart_data", "dashboard"]
