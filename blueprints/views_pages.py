"""An app's views in the browser: kanban boards and month calendars, read and changed as the user.

``/apps/<app>/views/<view>`` shows a view of the app definition. Which views
exist, and on which table, is what ``rb.schema_for`` shows the signed-in user:
any other slug is 404, exactly like a view of an app where the user has no
role. A grid view redirects to the grid (``?view=<slug>``), a form view to its
form.

**Kanban** (``group_by``: a single-select field): a column per choice, in
the definition's order and labelled in the user's language, then "No value".
Each column's count comes from ``store.aggregate`` and its cards from one
bounded ``store.query`` (``CARDS_PER_COLUMN``), with the view's filter and
sort; "Show more" pages on with the engine's cursor (an htmx fragment, or a
page of that one column without JavaScript). A card shows the view's fields as
the engine returns them — masked values masked, hidden ones absent, linked
records by their label (``link_labels``) — and links to the record's page.
``POST …/move`` changes the card's group field with the version the card was
shown at (``store.update(id, {group_by: choice}, version=v)``): dragging a card
(SortableJS, ``static/views.js``) sends it with ``fetch`` and reads a JSON
answer; each card's "Move to" form sends the same without JavaScript and comes
back to the board. A stale version is 409, an invalid value 422, a missing
right 403, a record outside the user's rows 404 — nothing is written then.
When no role of the user may update the group field there is no dragging and
no move form, and ``…/move`` answers 403.

**Calendar** (``date_field``: a date or datetime field): the weeks covering one
month (``?month=YYYY-MM``, default this month), weeks starting on the locale's
first day, month and weekday names from Babel. The records are one query as the
user: the view's filter and the grid's date range (for a datetime field, the
user's local midnights as UTC instants); each is placed on its day (local day
for a datetime) and links to its record page. Records without a date are listed
below the month (the first ``UNDATED_LIMIT``, with their count).

**Dashboard** (``charts``): one card per chart, from ``dashboards.dashboard`` —
the engine computes every chart as the user (row rules, clear fields), so the
page only formats: a number card's value per locale; a bar, line or pie chart
drawn by Chart.js (``static/dashboards.js``) from a JSON data block, and the
same numbers in a table with a caption, readable without JavaScript and by
screen readers. A chart the user cannot compute says why, in words.

No value a user may not see ever reaches a page or a message: flashes and JSON
messages name columns and counts, never a record's values.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from babel.dates import format_skeleton, get_day_names
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import (
    format_currency,
    format_date,
    format_datetime,
    format_decimal,
    format_time,
    get_locale,
    get_timezone,
)
from flask_babel import gettext as _
from recordbase import dashboards
from recordbase.errors import Conflict, NotFound, PermissionDenied, QueryError, ValidationError
from recordbase.records import Record, RecordStore
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, error_page, page_blueprint, require_login
from .records_pages import EMPTY, cells, columns_of, htmx_partial, pointer_labels

bp = page_blueprint(Blueprint("views_pages", __name__))
bp.before_request(require_login)

VIEW = "/apps/<app>/views/<view>"
CARDS_PER_COLUMN = 25
CALENDAR_LIMIT = 1000  # records in one month's grid; more are cut with a notice
UNDATED_LIMIT = 50
CARD_FIELDS_BY_DEFAULT = 4  # a view without "fields": the first few readable ones
MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$", re.ASCII)


# --- the view as the user sees it ----------------------------------------------------------


def view_for(app: str, view: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The app's, the view's and its table's definitions as the user may see them; 404 otherwise."""
    definition = engine().schema_for(actor(), app)  # no role in the app: NotFound → 404 page
    found = next((v for v in definition.get("views") or [] if v.get("slug") == view), None)
    if found is None:
        abort(404)
    table = next((t for t in definition["tables"] if t.get("slug") == found.get("table")), None)
    if table is None:
        abort(404)
    return definition, found, table


def all_of(*filters: Any) -> Any:
    """The filter trees joined with ``and``, leaving out the ``None`` ones."""
    parts = [f for f in filters if f]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


def card_columns(
    view_def: Mapping[str, Any], table_def: Mapping[str, Any], store: RecordStore
) -> list[dict[str, Any]]:
    """The readable fields a card or entry shows: the view's ``fields`` in its order, else the first few."""
    readable = columns_of(table_def, store)
    if "fields" not in view_def:
        return readable[:CARD_FIELDS_BY_DEFAULT]
    by_slug = {c["slug"]: c for c in readable}
    return [by_slug[slug] for slug in view_def["fields"] if slug in by_slug]


def titled(
    record: Record, store: RecordStore, table_def: Mapping[str, Any], links: Mapping[str, Any]
) -> str:
    """A record's name: its primary field as the user sees it (masked stays masked), else "Record N"."""
    primary = store.ts.primary_field
    if primary is not None and primary.slug in record.fields:
        column = next((c for c in columns_of(table_def, store) if c["slug"] == primary.slug), None)
        if column is not None:
            text = cells(record, [column], store, links)[0]["text"]
            if text and text != EMPTY:
                return str(text)
    return _("Record %(id)s", id=record.id)


def context_base(
    app: str,
    definition: Mapping[str, Any],
    view_def: Mapping[str, Any],
    table_def: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "view": {
            "slug": view_def["slug"],
            "label": label(view_def.get("label")) or view_def["slug"],
        },
        "table": {
            "slug": table_def["slug"],
            "label": label(table_def.get("label")) or table_def["slug"],
        },
    }


@bp.get(VIEW)
def view(app: str, view: str) -> BaseResponse:
    definition, view_def, table_def = view_for(app, view)
    kind = view_def.get("type", "grid")
    if kind == "grid":
        return redirect(url_for("records_pages.grid", app=app, table=table_def["slug"], view=view))
    if kind == "form":
        return redirect(url_for("forms.form_view", app=app, view=view))
    if kind == "dashboard":
        return dashboard_page(app, definition, view_def, table_def)
    store = engine().records(actor(), app, table_def["slug"])
    if kind == "kanban":
        return kanban(app, definition, view_def, table_def, store)
    if kind == "calendar":
        return calendar(app, definition, view_def, table_def, store)
    abort(404)


# --- kanban ----------------------------------------------------------------------------------


def group_field(view_def: Mapping[str, Any], store: RecordStore) -> Any:
    """The single-select field the board groups by, when the user may see it at all."""
    f = store.ts.fields.get(view_def.get("group_by") or "")
    if f is None or f.type.name != "single_select" or not store.access.visible_somewhere(f):
        return None
    return f


def may_move(store: RecordStore, field: Any) -> bool:
    """Whether some role of the user may update records and write the group field (the engine still decides)."""
    access = store.access
    return access.full or any(
        r.can("update") and r.levels.get(field.slug, 0) >= 2 for r in access.roles
    )


def board_columns(field: Any) -> list[dict[str, Any]]:
    """A column per choice, in the definition's order, then "No value" (id ``""``)."""
    columns = [
        {
            "id": str(c["id"]),
            "label": label(c.get("label")) or str(c["id"]),
            "color": c.get("color"),
        }
        for c in field.options.get("choices") or []
    ]
    columns.append({"id": "", "label": _("No value"), "color": None})
    for index, column in enumerate(columns):
        column["index"] = index
    return columns


def column_filter(field: Any, choice: str) -> dict[str, Any]:
    if choice == "":
        return {"field": field.slug, "op": "is_empty"}
    return {"field": field.slug, "op": "eq", "value": choice}


def column_cards(
    store: RecordStore,
    table_def: Mapping[str, Any],
    view_def: Mapping[str, Any],
    field: Any,
    choice: str,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a column's cards, as the user may see them, and the cursor of the next page."""
    shown = card_columns(view_def, table_def, store)
    primary = store.ts.primary_field
    wanted = [c["slug"] for c in shown]
    for extra in (field.slug, primary.slug if primary is not None else None):
        if extra and extra not in wanted:
            wanted.append(extra)
    page = store.query(
        filter=all_of(view_def.get("filter"), column_filter(field, choice)),
        sort=view_def.get("sort") or None,
        fields=wanted,
        page_size=CARDS_PER_COLUMN,
        cursor=cursor,
        with_total=False,
    )
    links = pointer_labels(store, page.records)
    skip = {field.slug, primary.slug if primary is not None else ""}
    cards = [
        {
            "id": r.id,
            "version": r.version,
            "title": titled(r, store, table_def, links),
            "cells": [
                c for c in cells(r, shown, store, links) if c["present"] and c["slug"] not in skip
            ],
        }
        for r in page.records
    ]
    return cards, page.next_cursor


def kanban(
    app: str,
    definition: Mapping[str, Any],
    view_def: Mapping[str, Any],
    table_def: Mapping[str, Any],
    store: RecordStore,
) -> BaseResponse:
    field = group_field(view_def, store)
    if field is None:
        return error_page(403, _("You cannot see the field this board is grouped by."))
    columns = board_columns(field)
    context = context_base(app, definition, view_def, table_def)
    context.update(columns=columns, may_move=may_move(store, field), error=None, field=field.slug)
    choice = request.args.get("column")
    try:
        if choice is not None:  # "Show more" of one column
            column = next((c for c in columns if c["id"] == choice), None)
            if column is None:
                abort(404)
            cards, next_cursor = column_cards(
                store, table_def, view_def, field, choice, request.args.get("cursor") or None
            )
            context.update(column=column, cards=cards, next_cursor=next_cursor)
            template = "views/_kanban_more.html" if htmx_partial() else "views/kanban_column.html"
            response = Response(render_template(template, **context), mimetype="text/html")
            response.vary.add("HX-Request")
            return response
        counts = {
            group.values.get(field.slug) or "": int(group.metrics["count"])
            for group in store.aggregate(
                group_by=[field.slug], metrics=["count"], filter=view_def.get("filter")
            )
        }  # no read right: PermissionDenied → 403 page
        for column in columns:
            column["count"] = counts.get(column["id"], 0)
            column["cards"], column["next_cursor"] = (
                column_cards(store, table_def, view_def, field, column["id"])
                if column["count"]
                else ([], None)
            )
    except QueryError as refused:  # a filter or group field the user cannot read in clear
        context["error"] = refused.message
        for column in columns:
            column.update(count=0, cards=[], next_cursor=None)
    status = 422 if context["error"] else 200
    return Response(
        render_template("views/kanban.html", **context), status=status, mimetype="text/html"
    )


def wants_json() -> bool:
    return (
        request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"
    )


def move_answer(
    status: int, message: str, column: str | None = None, version: int | None = None
) -> BaseResponse:
    """The answer to a move: JSON for the drag script, else the board again with a flash (or an error page)."""
    if wants_json():
        body: dict[str, Any] = {"ok": status == 200, "message": message}
        if version is not None:
            body.update(version=version, column=column)
        answer = jsonify(body)
        answer.status_code = status
        return answer
    if status in (403, 404):
        return error_page(status, message)
    flash(message, "success" if status == 200 else "error")
    app, view_slug = request.view_args["app"], request.view_args["view"]  # type: ignore[index]
    return redirect(url_for("views_pages.view", app=app, view=view_slug), 303)


@bp.post(VIEW + "/move")
def move(app: str, view: str) -> BaseResponse:
    """Put a card in another column: the group field changes at the version the card was shown at."""
    definition, view_def, table_def = view_for(app, view)
    if view_def.get("type") != "kanban":
        abort(404)
    store = engine().records(actor(), app, table_def["slug"])
    field = group_field(view_def, store)
    if field is None or not may_move(store, field):
        return move_answer(403, _("You may not move cards on this board."))
    form = request.form
    try:
        record_id, version = int(form.get("record_id", "")), int(form.get("version", ""))
    except ValueError:
        return move_answer(422, _("The card could not be moved: reload the page and try again."))
    columns = {c["id"]: c for c in board_columns(field)}
    target = columns.get(form.get("to", ""))
    if target is None:
        return move_answer(422, _("Choose one of the board's columns."))
    try:
        moved = store.update(record_id, {field.slug: target["id"] or None}, version=version)
    except NotFound:
        return move_answer(404, _("This page does not exist, or you have no access to it."))
    except PermissionDenied:
        return move_answer(403, _("You may not move this card."))
    except Conflict:
        return move_answer(
            409,
            _(
                "Someone else changed this record meanwhile: the card was not moved. Reload the board to see it as it is now."
            ),
        )
    except ValidationError:
        return move_answer(
            422,
            _(
                "The card cannot go to “%(column)s”: the record would not be valid.",
                column=target["label"],
            ),
        )
    return move_answer(
        200, _("Moved to “%(column)s”.", column=target["label"]), target["id"], moved.version
    )


# --- calendar --------------------------------------------------------------------------------


def month_asked(today: dt.date) -> dt.date | None:
    """The first day of the month in ``?month=YYYY-MM`` (this month when absent); ``None`` when invalid."""
    text = request.args.get("month", "").strip()
    if not text:
        return today.replace(day=1)
    match = MONTH_RE.match(text)
    if not match:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    if not (1 <= month <= 12 and 1 < year < 9999):
        return None
    return dt.date(year, month, 1)


def add_months(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_grid(first: dt.date, first_weekday: int) -> tuple[dt.date, dt.date]:
    """The first day shown and the day after the last: whole weeks covering the month."""
    start = first - dt.timedelta(days=(first.weekday() - first_weekday) % 7)
    last = add_months(first, 1) - dt.timedelta(days=1)
    end = last + dt.timedelta(days=(first_weekday + 6 - last.weekday()) % 7 + 1)
    return start, end


def local_midnight(day: dt.date) -> dt.datetime:
    """The instant the user's day starts, in UTC."""
    tz = get_timezone()
    naive = dt.datetime.combine(day, dt.time())
    local = (
        tz.localize(naive)
        if tz is not None and hasattr(tz, "localize")
        else naive.replace(tzinfo=tz or dt.UTC)
    )
    return local.astimezone(dt.UTC)


def calendar(
    app: str,
    definition: Mapping[str, Any],
    view_def: Mapping[str, Any],
    table_def: Mapping[str, Any],
    store: RecordStore,
) -> BaseResponse:
    date_field = store.ts.fields.get(view_def.get("date_field") or "")
    if (
        date_field is None
        or date_field.type.name not in ("date", "datetime")
        or not store.access.visible_somewhere(date_field)
    ):
        return error_page(403, _("You cannot see the date this calendar is arranged by."))
    timed = date_field.type.name == "datetime"
    tz = get_timezone()
    today = dt.datetime.now(dt.UTC).astimezone(tz).date() if tz is not None else dt.date.today()
    first = month_asked(today)
    if first is None:
        return error_page(400, _("Give the month as YYYY-MM, for example 2026-05."))
    locale = get_locale()
    first_weekday = locale.first_week_day if locale is not None else 0
    start, end = month_grid(first, first_weekday)
    bounds: tuple[Any, Any] = (
        (local_midnight(start).isoformat(), local_midnight(end).isoformat())
        if timed
        else (start.isoformat(), end.isoformat())
    )
    shown = card_columns(view_def, table_def, store)
    wanted = [c["slug"] for c in shown] + [date_field.slug]
    if store.ts.primary_field is not None:
        wanted.append(store.ts.primary_field.slug)
    wanted = list(dict.fromkeys(wanted))
    view_filter = view_def.get("filter")
    in_month = all_of(
        view_filter,
        {"field": date_field.slug, "op": "gte", "value": bounds[0]},
        {"field": date_field.slug, "op": "lt", "value": bounds[1]},
    )
    undated_filter = all_of(view_filter, {"field": date_field.slug, "op": "is_empty"})
    sort = [date_field.slug, *(view_def.get("sort") or [])]
    entries: dict[dt.date, list[dict[str, Any]]] = {}
    undated: list[dict[str, Any]] = []
    undated_total = 0
    error, cut = None, False
    try:
        page = store.query(
            filter=in_month, sort=sort, fields=wanted, page_size=CALENDAR_LIMIT, with_total=False
        )
        cut = page.next_cursor is not None
        links = pointer_labels(store, page.records)
        for record in page.records:
            value = record.fields.get(date_field.slug)
            if not isinstance(value, dt.date):
                continue  # masked: never placed by a value the user may not see
            day = (
                value.astimezone(tz).date()
                if isinstance(value, dt.datetime) and tz is not None
                else value
            )
            if isinstance(day, dt.datetime):
                day = day.date()
            entries.setdefault(day, []).append(
                {
                    "id": record.id,
                    "title": titled(record, store, table_def, links),
                    "time": format_time(value, "short") if isinstance(value, dt.datetime) else None,
                    "iso": value.isoformat(),
                }
            )
        undated_page = store.query(
            filter=undated_filter,
            sort=view_def.get("sort") or None,
            fields=wanted,
            page_size=UNDATED_LIMIT,
        )
        undated_links = store.link_labels(undated_page.records) if undated_page.records else {}
        undated = [
            {"id": r.id, "title": titled(r, store, table_def, undated_links)}
            for r in undated_page.records
        ]
        undated_total = undated_page.total or 0
    except QueryError as refused:  # a filter or date field the user cannot read in clear
        error = refused.message
    weeks = []
    day = start
    while day < end:
        weeks.append(
            [
                {
                    "date": day + dt.timedelta(days=i),
                    "in_month": (day + dt.timedelta(days=i)).month == first.month,
                    "today": day + dt.timedelta(days=i) == today,
                    "entries": entries.get(day + dt.timedelta(days=i), []),
                }
                for i in range(7)
            ]
        )
        day += dt.timedelta(days=7)
    wide = get_day_names("wide", locale=locale)
    short = get_day_names("abbreviated", locale=locale)
    order = [(first_weekday + i) % 7 for i in range(7)]
    context = context_base(app, definition, view_def, table_def)
    context.update(
        month_title=format_skeleton("yMMMM", first, locale=locale),
        weekdays=[{"short": short[i], "wide": wide[i]} for i in order],
        weeks=weeks,
        previous=add_months(first, -1).strftime("%Y-%m"),
        next=add_months(first, 1).strftime("%Y-%m"),
        this_month=today.strftime("%Y-%m"),
        is_this_month=first == today.replace(day=1),
        undated=undated,
        undated_total=undated_total,
        error=error,
        cut=cut,
        limit=CALENDAR_LIMIT,
        date_label=label(
            next(
                (f.get("label") for f in table_def["fields"] if f["slug"] == date_field.slug), None
            )
        )
        or date_field.slug,
    )
    status = 422 if error else 200
    return Response(
        render_template("views/calendar.html", **context), status=status, mimetype="text/html"
    )


# --- dashboard -------------------------------------------------------------------------------


def dashboard_page(
    app: str,
    definition: Mapping[str, Any],
    view_def: Mapping[str, Any],
    table_def: Mapping[str, Any],
) -> BaseResponse:
    data = dashboards.dashboard(engine(), actor(), app, view_def["slug"])
    context = context_base(app, definition, view_def, table_def)
    context.update(charts=[chart_card(chart) for chart in data.charts])
    return Response(render_template("views/dashboard.html", **context), mimetype="text/html")


def unavailable_reason(reason: str | None) -> str:
    if reason == "no_access":
        return _("You may not read the records this chart counts.")
    if reason == "not_clear":
        return _("This chart uses a field you cannot read in clear, so it is not shown to you.")
    return _("This chart cannot be computed: its definition needs fixing.")


def metric_heading(chart: dashboards.Chart) -> str:
    op = chart.metric.partition(":")[0]
    field = label(chart.metric_label)
    if op == "sum":
        return _("Sum of %(field)s", field=field)
    if op == "avg":
        return _("Average %(field)s", field=field)
    if op == "min":
        return _("Lowest %(field)s", field=field)
    if op == "max":
        return _("Highest %(field)s", field=field)
    return _("Records")


def metric_text(chart: dashboards.Chart, value: Any) -> str:
    """A chart's value written for the user's language: counts, amounts, percentages, dates."""
    if value is None:
        return EMPTY
    kind = chart.value_kind
    try:
        if kind in ("date", "datetime", "created_at", "updated_at"):
            if kind == "date":
                return str(format_date(dt.date.fromisoformat(str(value)), "medium"))
            return str(format_datetime(dt.datetime.fromisoformat(str(value)), "medium"))
        number = Decimal(str(value))
        if kind == "currency" and chart.currency:
            return str(format_currency(number, chart.currency))
        text = str(format_decimal(number))
        return f"{text} %" if kind == "percent" else text
    except (ValueError, ArithmeticError):
        return str(value)


def plotted(value: Any) -> float | None:
    """A value as the chart library draws it (a number), ``None`` for what has no height."""
    try:
        return float(Decimal(str(value))) if value is not None else None
    except ArithmeticError:
        return None


def group_text(chart: dashboards.Chart, point: dashboards.Point) -> str:
    """What a group is called on the page: choices and labels in the user's language, dates per locale."""
    if point.key is None:
        return _("No value")
    kind = chart.group_kind
    try:
        if kind == "bucket":
            return bucket_text(chart.bucket or "", str(point.key))
        if kind == "date":
            return str(format_date(dt.date.fromisoformat(str(point.key)), "medium"))
        if kind == "datetime":
            return str(format_datetime(dt.datetime.fromisoformat(str(point.key)), "medium"))
    except ValueError:
        return str(point.key)
    if kind == "boolean":
        return _("yes") if point.key else _("no")
    if kind == "link" and point.label is None:
        return _("A record you cannot see")
    if kind == "user" and point.label is None:
        return _("Unknown user")
    return label(point.label) or str(point.key)


def bucket_text(bucket: str, key: str) -> str:
    """A calendar bucket's label (``2026-11``, ``2026-Q4``…) in the user's language."""
    locale = get_locale()
    if bucket == "month":
        return str(format_skeleton("yMMM", dt.date.fromisoformat(key + "-01"), locale=locale))
    if bucket == "day":
        return str(format_date(dt.date.fromisoformat(key), "medium"))
    if bucket == "week":
        return _("Week of %(date)s", date=format_date(dt.date.fromisoformat(key), "medium"))
    if bucket == "quarter":
        year, _sep, quarter = key.partition("-Q")
        return _("Q%(quarter)s %(year)s", quarter=quarter, year=year)
    return key


def chart_card(chart: dashboards.Chart) -> dict[str, Any]:
    """One chart as the page shows it: texts in the user's language, and the numbers Chart.js draws."""
    card: dict[str, Any] = {
        "slug": chart.slug,
        "label": label(chart.label) or chart.slug,
        "type": chart.type,
        "available": chart.available,
    }
    if not chart.available:
        card["reason"] = unavailable_reason(chart.reason)
        return card
    card["metric"] = metric_heading(chart)
    if chart.type == "number":
        card.update(value=metric_text(chart, chart.value), raw=chart.value)
        return card
    rows = [
        {"label": group_text(chart, p), "value": metric_text(chart, p.value), "raw": p.value}
        for p in chart.points
    ]
    card.update(
        group=label(chart.group_label) or chart.group_by,
        rows=rows,
        plot={
            "type": chart.type,
            "label": card["metric"],
            "labels": [r["label"] for r in rows],
            "values": [plotted(p.value) for p in chart.points],
        },
    )
    return card


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
