"""Records in the browser: a table's grid, read as the signed-in user.

``/apps/<app>/tables/<table>`` is the grid: the fields the user may read (in
definition order, labels in the user's language), the values as the engine
returns them (masked ones masked, hidden ones absent), linked records by their
label (``link_labels``), a search box, one filter (field, operator, value →
the engine's filter tree), sorting by a column header, the total and keyset
pagination with the engine's cursor. With htmx, searching, filtering, sorting
and paging replace only the results (``#grid-results``); without JavaScript
the same links and forms load the whole page.

A record's page lives in ``record_page.py`` and reuses the helpers here
(``table_for``, ``columns_of``, ``cells``, ``shown``).

Every read goes through ``rb.records(actor, app, table)``. An app or table the
user cannot see is 404 (``schema_for``), a table without read right 403, a
record outside the user's rows the same 404 page as a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, abort, render_template, request
from flask_babel import gettext as _
from recordbase.errors import QueryError
from recordbase.records import Record, RecordStore

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

bp = page_blueprint(Blueprint("records_pages", __name__))
bp.before_request(require_login)

TABLE = "/apps/<app>/tables/<table>"
PAGE_SIZE = 50
EMPTY = "—"
# Operators offered by the simple filter, in the order shown; the engine checks each against the field.
VALUELESS_OPS = ("is_empty", "is_not_empty")
LIST_OPS = ("in", "not_in")


def filter_operators() -> list[tuple[str, str]]:
    return [
        ("eq", _("is")),
        ("ne", _("is not")),
        ("contains", _("contains")),
        ("starts_with", _("starts with")),
        ("lt", _("less than")),
        ("lte", _("at most")),
        ("gt", _("greater than")),
        ("gte", _("at least")),
        ("in", _("is one of (comma-separated)")),
        ("is_empty", _("is empty")),
        ("is_not_empty", _("is not empty")),
    ]


# --- the table as the user sees it ------------------------------------------------------


def table_for(app: str, table: str) -> tuple[dict[str, Any], dict[str, Any], RecordStore]:
    """The app's and table's definitions as the user may see them, and the table's store.

    An app or table the user cannot see is 404 (``schema_for`` answers it like a missing one).
    """
    rb, who = engine(), actor()
    definition = rb.schema_for(who, app)  # NotFound → 404 page
    found = next((t for t in definition.get("tables") or [] if t.get("slug") == table), None)
    if found is None:
        abort(404)
    return definition, found, rb.records(who, app, table)


def columns_of(table_def: Mapping[str, Any], store: RecordStore) -> list[dict[str, Any]]:
    """The fields the user may read, in definition order, with their labels in the user's language."""
    out = []
    for fd in table_def.get("fields") or []:
        f = store.ts.fields.get(fd.get("slug"))
        if f is None:
            continue
        out.append(
            {
                "slug": f.slug,
                "label": label(fd.get("label")) or f.slug,
                "type": f.type.name,
                "field": f,
            }
        )
    return out


def may_reveal(store: RecordStore) -> bool:
    """Whether one of the user's roles on this table has the ``reveal`` right (the engine still decides)."""
    access = store.access
    return not access.full and any(r.can("reveal") for r in access.roles)


def maybe_masked(store: RecordStore, column: Mapping[str, Any]) -> bool:
    """Whether this field's values may come back masked to this user (not clear under every role)."""
    return not store.access.clear_everywhere(column["field"])


def shown(
    column: Mapping[str, Any],
    value: Any,
    links: Mapping[str, Mapping[int, str | None]],
    masked: bool,
) -> str:
    """A value as text for a cell: choices by label, links by the linked record's label, "—" for nothing."""
    if value is None or value == [] or value == "":
        return EMPTY
    f = column["field"]
    kind = f.type.name
    if kind == "link":
        labels = links.get(f.slug, {})
        ids = value if isinstance(value, list) else [value]
        return ", ".join(labels.get(i) or EMPTY for i in ids)
    if masked and isinstance(value, str):
        return value
    if kind in ("single_select", "multi_select"):
        choices = {c.get("id"): c for c in f.options.get("choices") or []}
        ids = value if isinstance(value, list) else [value]
        return ", ".join(label(choices[i].get("label")) if i in choices else str(i) for i in ids)
    try:
        text = f.type.to_text(f, value)
    except (TypeError, ValueError, AttributeError):
        text = str(value)
    return text or EMPTY


def cells(
    record: Record,
    columns: list[dict[str, Any]],
    store: RecordStore,
    links: Mapping[str, Mapping[int, str | None]],
) -> list[dict[str, Any]]:
    out = []
    for column in columns:
        present = column["slug"] in record.fields
        value = record.fields.get(column["slug"])
        masked = present and value is not None and maybe_masked(store, column)
        out.append(
            {
                "slug": column["slug"],
                "label": column["label"],
                "present": present,
                "masked": masked,
                "text": shown(column, value, links, masked) if present else "",
            }
        )
    return out


# --- the grid ----------------------------------------------------------------------------


def filter_tree(field: str, op: str, value: str) -> Any:
    """The engine's filter tree for the simple filter, or ``None`` when it is not filled in."""
    if not field or not op:
        return None
    if op in VALUELESS_OPS:
        return {"field": field, "op": op}
    if op in LIST_OPS:
        return {
            "field": field,
            "op": op,
            "value": [v.strip() for v in value.split(",") if v.strip()],
        }
    if value == "":
        return None
    return {"field": field, "op": op, "value": value}


def htmx_partial() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )


@bp.get(TABLE)
def grid(app: str, table: str) -> Response:
    definition, table_def, store = table_for(app, table)
    columns = columns_of(table_def, store)
    args = request.args
    state = {
        "q": args.get("q", "").strip(),
        "sort": args.get("sort", "").strip(),
        "field": args.get("field", "").strip(),
        "op": args.get("op", "").strip(),
        "value": args.get("value", ""),
    }
    cursor = args.get("cursor") or None
    tree = filter_tree(state["field"], state["op"], state["value"])
    error = None
    records: list[Record] = []
    next_cursor = total = None
    try:
        page = store.query(
            filter=tree,
            sort=[state["sort"]] if state["sort"] else None,
            search=state["q"] or None,
            page_size=PAGE_SIZE,
            cursor=cursor,
        )  # no read right: PermissionDenied → 403 page
        records, next_cursor, total = page.records, page.next_cursor, page.total
    except QueryError as refused:
        error = refused.message
    links = store.link_labels(records) if records else {}
    rows = [{"id": r.id, "cells": cells(r, columns, store, links)} for r in records]
    context = {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "table": {"slug": table, "label": label(table_def.get("label")) or table},
        "columns": columns,
        "rows": rows,
        "total": total,
        "next_cursor": next_cursor,
        "paged": bool(cursor),
        "error": error,
        "state": state,
        "params": {k: v for k, v in state.items() if v},
        "operators": filter_operators(),
    }
    template = "records/_grid_results.html" if htmx_partial() else "records/grid.html"
    status = 422 if error and not htmx_partial() else 200
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
