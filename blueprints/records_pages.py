"""Records in the browser: a table's grid, read and changed as the signed-in user.

``/apps/<app>/tables/<table>`` is the grid. Its whole state lives in the URL
(and in saved views): a search, filter conditions (field, operator, value)
combined with "all" or "any" into the engine's filter tree, several sort keys,
the visible columns in their order, and a starting point — a definition view
of type grid (``?view=<slug>``) or a saved view (``?saved=<id>``). Values are
shown as the engine returns them (masked ones masked, hidden ones absent),
formatted for the user's language; linked records by their label. With htmx
only ``#grid-app`` is replaced; without JavaScript the same links and forms
load the whole page (buttons that add or remove a condition, a sort key or
move a column redirect to the resulting URL).

Changing records: a cell the user's roles may write (the engine still
decides) becomes an input for its type (``…/records/<id>/cells/<field>``);
saving calls ``store.update`` with the version shown in the row, so a change
made meanwhile is shown as a conflict — theirs and yours — instead of being
overwritten. Masked values are never put into an input. Selected rows can be
updated (one field, one value, each row with its version) or moved to the
trash after a confirmation step (``…/bulk``); each row's failure is reported.

Saved views (``…/views``) go through ``recordbase.saved_views``; whoever
opens one runs it as themselves.

A record's page lives in ``record_page.py`` and reuses the helpers here
(``table_for``, ``columns_of``, ``cells``, ``shown``). Every read and write
goes through ``rb.records(actor, app, table)``. An app or table the user
cannot see is 404 (``schema_for``), a missing right 403, a record outside the
user's rows the same 404 page as a missing one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from flask import Blueprint, Flask, Response, abort, g, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from recordbase import saved_views
from recordbase.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    QueryError,
    RecordbaseError,
    ValidationError,
)
from recordbase.records import Record, RecordStore
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login, safe_next

bp = page_blueprint(Blueprint("records_pages", __name__))
bp.before_request(require_login)

TABLE = "/apps/<app>/tables/<table>"
PAGE_SIZE = 50
MAX_CONDITIONS = 20
MAX_SORTS = 5
EMPTY = "—"
VALUELESS_OPS = frozenset(
    {
        "is_empty",
        "is_not_empty",
        "today",
        "yesterday",
        "tomorrow",
        "this_week",
        "last_week",
        "next_week",
        "this_month",
        "last_month",
        "next_month",
        "this_year",
        "last_year",
    }
)
LIST_OPS = frozenset({"in", "not_in"})
DAYS_OPS = frozenset({"last_n_days", "next_n_days"})
CHOICES = ("single_select", "multi_select")
NUMBERS = ("number", "currency", "percent", "rating")
# Types a cell can be edited as; links, users and attachments are changed on the record's page.
INLINE_TYPES = frozenset(
    {
        "text",
        "long_text",
        "email",
        "phone",
        "url",
        "address",
        *NUMBERS,
        "boolean",
        "date",
        "datetime",
        *CHOICES,
    }
)
# Arguments that say the URL carries the grid's state itself (not a view's starting state).
STATE_ARGS = ("s", "q", "match", "field", "sort", "sort_field", "cols", "col")


def filter_operators() -> list[tuple[str, str]]:
    """The operators' names in the user's language (once per request: a grid asks per column)."""
    cached: list[tuple[str, str]] | None = g.get("rb_filter_operators")
    if cached is None:
        cached = g.rb_filter_operators = _filter_operators()
    return cached


def _filter_operators() -> list[tuple[str, str]]:
    """Every operator the filter builder may offer, in the order shown; each field gets its own subset."""
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
        ("not_in", _("is none of (comma-separated)")),
        ("is_empty", _("is empty")),
        ("is_not_empty", _("is not empty")),
        ("today", _("is today")),
        ("yesterday", _("is yesterday")),
        ("tomorrow", _("is tomorrow")),
        ("this_week", _("is this week")),
        ("last_week", _("is last week")),
        ("next_week", _("is next week")),
        ("this_month", _("is this month")),
        ("last_month", _("is last month")),
        ("next_month", _("is next month")),
        ("this_year", _("is this year")),
        ("last_year", _("is last year")),
        ("last_n_days", _("in the last … days")),
        ("next_n_days", _("in the next … days")),
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


def may(store: RecordStore, operation: str) -> bool:
    """Whether one of the user's roles grants ``operation`` on the table (the engine still decides)."""
    access = store.access
    return access.full or any(r.can(operation) for r in access.roles)


def maybe_masked(store: RecordStore, column: Mapping[str, Any]) -> bool:
    """Whether this field's values may come back masked to this user (not clear under every role)."""
    return not store.access.clear_everywhere(column["field"])


def writable(store: RecordStore, column: Mapping[str, Any]) -> bool:
    """Whether a cell of this column is offered for editing: a role may update and write the field.

    Only a hint for the page, as in ``access.py``; the engine decides on each write.
    """
    if column["type"] not in INLINE_TYPES:
        return False
    access = store.access
    slug = column["slug"]
    return access.full or any(r.can("update") and r.levels.get(slug, 0) >= 2 for r in access.roles)


def choice_labels(f: Any) -> list[tuple[str, str]]:
    return [
        (str(c.get("id")), label(c.get("label")) or str(c.get("id")))
        for c in f.options.get("choices") or []
    ]


def localised(f: Any, value: Any) -> str | None:
    """A number, date or time in the user's locale (flask-babel); ``None`` for other values."""
    return localiser(f)(value)


def localiser(f: Any) -> Any:
    """A function writing this field's values in the user's locale (``None`` for a value it does not format).

    Built once per field and request: the locale and Babel's parsed patterns are
    looked up here, not per cell (a grid page formats hundreds of values).
    """
    cache: dict[str, Any] = g.setdefault("rb_localisers", {})
    key = f"{f.type.name}:{f.slug}:{f.options.get('scale')}:{f.options.get('currency')}"
    found = cache.get(key)
    if found is None:
        found = cache[key] = _localiser(f)
    return found


def _localiser(f: Any) -> Any:
    from babel import dates, numbers
    from flask_babel import get_locale

    locale = get_locale()
    kind = f.type.name
    number = currency = None
    if kind in ("number", "currency", "percent"):
        scale = int(f.options.get("scale", 2 if kind != "number" else 0))
        number = numbers.parse_pattern("#,##0" + ("." + "0" * scale if scale > 0 else ""))
        if kind == "currency" and f.options.get("currency"):
            currency = (locale.currency_formats["standard"], f.options["currency"])
    medium_date = dates.parse_pattern(dates.get_date_format("medium", locale))
    yes, no = _("yes"), _("no")

    def write(value: Any) -> str | None:
        try:
            if (
                number is not None
                and isinstance(value, int | decimal.Decimal)
                and not isinstance(value, bool)
            ):
                if currency is not None:
                    return str(currency[0].apply(value, locale, currency=currency[1]))
                text = str(number.apply(value, locale))
                return f"{text} %" if kind == "percent" else text
            if isinstance(value, dt.datetime):
                return str(format_datetime(value, "medium"))  # in the user's time zone
            if isinstance(value, dt.date):
                return str(medium_date.apply(value, locale))
            if isinstance(value, bool):
                return yes if value else no
        except (TypeError, ValueError, decimal.InvalidOperation):
            return None
        return None

    return write


PEOPLE = ("user", "created_by", "updated_by")


def pointer_labels(
    store: RecordStore, records: Sequence[Record]
) -> dict[str, dict[int, str | None]]:
    """Labels for what records point at: linked records (read through the linked table's rules)
    and people (users by display name), by field slug — one lookup per page, not per record."""
    if not records:
        return {}
    labels: dict[str, dict[int, str | None]] = dict(store.link_labels(records))
    people = [f for f in store.ts.fields.values() if f.type.name in PEOPLE]
    if people:
        from recordbase.collab import user_names

        ids: set[int] = set()
        for r in records:
            for f in people:
                value = r.fields.get(f.slug)
                ids.update(
                    v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int)
                )
        names = user_names(store.rb, ids)
        for f in people:
            labels[f.slug] = dict(names)
    return labels


def shown(
    column: Mapping[str, Any],
    value: Any,
    links: Mapping[str, Mapping[int, str | None]],
    masked: bool,
    *,
    localise: bool = False,
) -> str:
    """A value as text for a cell: choices by label, links by the linked record's label, "—" for nothing.

    With ``localise``, numbers, amounts, dates and times are written for the user's
    language (flask-babel) instead of in their plain text form.
    """
    return writer(column, localise)(value, links, masked)


def writer(column: Mapping[str, Any], localise: bool) -> Any:
    """``shown`` for one column, with what it needs per value (choice labels, the locale's
    formats) worked out once: a grid page writes the same columns on every row."""
    f = column["field"]
    kind = f.type.name
    choices = dict(choice_labels(f)) if kind in CHOICES else None
    local = localiser(f) if localise else None
    slug = f.slug
    people = kind in PEOPLE

    def write(value: Any, links: Mapping[str, Mapping[int, str | None]], masked: bool) -> str:
        if value is None or value == [] or value == "":
            return EMPTY
        if kind == "link" or (people and slug in links):
            labels = links.get(slug, {})
            ids = value if isinstance(value, list) else [value]
            return ", ".join(labels.get(i) or EMPTY for i in ids)
        if masked and isinstance(value, str):
            return value
        if choices is not None:
            ids = value if isinstance(value, list) else [value]
            return ", ".join(choices.get(str(i), str(i)) for i in ids)
        text = local(value) if local is not None else None
        if text is not None:
            return text
        try:
            text = f.type.to_text(f, value)
        except (TypeError, ValueError, AttributeError):
            text = str(value)
        return text or EMPTY

    return write


def cells(
    record: Record,
    columns: list[dict[str, Any]],
    store: RecordStore,
    links: Mapping[str, Mapping[int, str | None]],
    *,
    localise: bool = False,
) -> list[dict[str, Any]]:
    """Each column's value of a record as the page shows it (see ``shown``), masked or not, editable or not.

    What does not depend on the record (may it be masked, how to write it) is
    kept on the column dicts, so a page of rows works it out once per column.
    """
    out = []
    fields = record.fields
    key = "_write_local" if localise else "_write"
    for column in columns:
        slug = column["slug"]
        if slug not in fields:
            out.append(
                {
                    "slug": slug,
                    "label": column["label"],
                    "present": False,
                    "masked": False,
                    "text": "",
                    "editable": False,
                }
            )
            continue
        write = column.get(key)
        if write is None:
            write = column[key] = writer(column, localise)
            column["_maybe_masked"] = maybe_masked(store, column)
        value = fields[slug]
        masked = value is not None and column["_maybe_masked"]
        out.append(
            {
                "slug": slug,
                "label": column["label"],
                "present": True,
                "masked": masked,
                "text": write(value, links, masked),
                "editable": not masked and column.get("editable", False),
            }
        )
    return out


def htmx_partial() -> bool:
    return bool(request.headers.get("HX-Request")) and not request.headers.get(
        "HX-History-Restore-Request"
    )


def html(body: str, status: int = 200, **headers: str) -> Response:
    response = Response(body, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    response.headers.update(headers)
    return response


# --- the grid's state -------------------------------------------------------------------


@dataclass
class Condition:
    field: str
    op: str
    value: str
    error: str | None = None


@dataclass
class GridState:
    """What the user asked for; ``base`` is a view's filter kept whole (not flat conditions)."""

    q: str = ""
    match: str = "all"
    conditions: list[Condition] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)  # "slug" / "-slug"; "" for a row being added
    cols: list[str] | None = None  # visible columns in order; None: all, in definition order
    view: str = ""
    saved: int | None = None
    base: Any = None

    def params(self) -> dict[str, Any]:
        """The state as URL arguments (the canonical URL of this grid)."""
        out: dict[str, Any] = {}
        if self.view:
            out["view"] = self.view
        if self.saved is not None:
            out["saved"] = self.saved
        if self.view or self.saved is not None:
            out["s"] = "1"  # this state, not the view's starting one
        if self.q:
            out["q"] = self.q
        if self.conditions:
            if self.match == "any":
                out["match"] = "any"
            out["field"] = [c.field for c in self.conditions]
            out["op"] = [c.op for c in self.conditions]
            out["value"] = [c.value for c in self.conditions]
        if self.sort:
            out["sort"] = list(self.sort)
        if self.cols is not None:
            out["cols"] = ",".join(self.cols)
        return out

    def as_saved(self) -> dict[str, Any]:
        """The state a saved view stores: the engine's filter tree, sort list, fields and search."""
        tree, _prefix, _rows = self.filter_tree()
        return {
            "filter": tree,
            "sort": [s for s in self.sort if s],
            "fields": self.cols,
            "search": self.q,
        }

    def filter_tree(self) -> tuple[Any, str, list[int]]:
        """The engine's filter tree, the pointer prefix of the conditions and which row each one is.

        Conditions not filled in (no field, or no value where one is needed) are left out.
        """
        leaves, rows = [], []
        for i, c in enumerate(self.conditions):
            leaf = condition_tree(c)
            if leaf is not None:
                leaves.append(leaf)
                rows.append(i)
        combinator = "or" if self.match == "any" else "and"
        tree: Any = {combinator: leaves} if leaves else None
        prefix = f"/filter/{combinator}/"
        if self.base is not None:
            tree = {"and": [self.base, tree]} if tree else self.base
            prefix = f"/filter/and/1/{combinator}/"
        return tree, prefix, rows


def condition_tree(c: Condition) -> dict[str, Any] | None:
    if not c.field or not c.op:
        return None
    if c.op in VALUELESS_OPS:
        return {"field": c.field, "op": c.op}
    if c.op in LIST_OPS:
        items = [v.strip() for v in c.value.split(",") if v.strip()]
        return {"field": c.field, "op": c.op, "value": items} if items else None
    if c.value.strip() == "":
        return None
    return {"field": c.field, "op": c.op, "value": c.value.strip()}


def value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def definition_view(definition: Mapping[str, Any], table: str, slug: str) -> dict[str, Any]:
    """A grid view of the definition on this table, as the user may see it; 404 otherwise."""
    for v in definition.get("views") or []:
        if v.get("slug") == slug and v.get("table") == table and v.get("type") == "grid":
            return dict(v)
    abort(404)


def parse_state(
    args: MultiDict[str, str], definition: Mapping[str, Any], table: str
) -> tuple[GridState, bool]:
    """The grid's state from URL arguments, and whether a button asked to change it (add/remove/move).

    A definition view or saved view gives the starting state when the URL carries none of its own.
    """
    state = GridState()
    source: dict[str, Any] | None = None
    if args.get("saved", "").isdigit():
        state.saved = int(args["saved"])
        try:
            found = saved_views.get_view(engine(), actor(), definition["slug"], table, state.saved)
        except NotFound:
            abort(404)
        source = found.state
    elif args.get("view"):
        state.view = args["view"]
        v = definition_view(definition, table, state.view)
        source = {
            "filter": v.get("filter"),
            "sort": v.get("sort") or [],
            "fields": v.get("fields"),
            "search": "",
        }
    flat: tuple[str, list[dict[str, Any]]] | None = ("all", [])
    if source is not None:
        flat = saved_views.flat_conditions(source.get("filter"))
        if flat is None:
            state.base = source.get("filter")
    if source is None or any(k in args for k in STATE_ARGS):
        state.q = args.get("q", "").strip()
        state.match = "any" if args.get("match") == "any" else "all"
        fields, ops, values = args.getlist("field"), args.getlist("op"), args.getlist("value")
        state.conditions = [
            Condition(
                f.strip(),
                ops[i].strip() if i < len(ops) else "",
                values[i] if i < len(values) else "",
            )
            for i, f in enumerate(fields[:MAX_CONDITIONS])
        ]
        if args.get("s") == "form" or "sort_field" in args:  # the controls form: its sort rows, maybe none
            dirs = args.getlist("sort_dir")
            state.sort = [
                ("-" if i < len(dirs) and dirs[i] == "desc" else "") + f.strip()
                if f.strip()
                else ""
                for i, f in enumerate(args.getlist("sort_field")[:MAX_SORTS])
            ]
        else:
            state.sort = [s.strip() for s in args.getlist("sort")[:MAX_SORTS]]
        if args.get("s") == "form":  # the controls form: its column checkboxes, in their order
            state.cols = [c for c in args.getlist("col") if c]
        elif "cols" in args:
            state.cols = [c for c in args["cols"].split(",") if c]
    else:
        state.q = str(source.get("search") or "")
        match, leaves = flat or ("all", [])
        state.match = match
        state.conditions = [
            Condition(str(c["field"]), str(c["op"]), value_text(c.get("value"))) for c in leaves
        ]
        state.sort = [str(s) for s in source.get("sort") or [] if isinstance(s, str)]
        fields = source.get("fields")
        state.cols = [str(f) for f in fields] if isinstance(fields, list) else None
    changed = False
    add = args.get("add")
    if add == "condition" and len(state.conditions) < MAX_CONDITIONS:
        state.conditions.append(Condition("", "", ""))
        changed = True
    elif add == "sort" and len(state.sort) < MAX_SORTS:
        state.sort.append("")
        changed = True
    for key, items in (("remove", state.conditions), ("remove_sort", state.sort)):
        index = args.get(key, "")
        if index.isdigit():
            if int(index) < len(items):
                del items[int(index)]
            changed = True
    if args.get("move"):
        changed = True
    return state, changed


def move_column(state: GridState, order: list[str], move: str) -> None:
    """Apply a "move earlier/later" button (``slug:-1`` / ``slug:1``) to the visible columns."""
    slug, _sep, step = move.partition(":")
    cols = list(state.cols if state.cols is not None else order)
    if slug in cols and step in ("-1", "1"):
        i = cols.index(slug)
        j = i + int(step)
        if 0 <= j < len(cols):
            cols[i], cols[j] = cols[j], cols[i]
    state.cols = cols


# --- one data function for the grid ------------------------------------------------------


def filter_spec(column: Mapping[str, Any], store: RecordStore) -> dict[str, Any] | None:
    """What the filter builder offers for a field: its operators (those its type accepts) and value input."""
    f = column["field"]
    if not store.access.clear_everywhere(f):
        return None  # the engine refuses filters on what the user cannot read in clear
    accepted = f.type.operators
    names = filter_operators()
    ops = [(op, name) for op, name in names if op in accepted]
    if not ops:
        return None
    kind = column["type"]
    return {
        "slug": column["slug"],
        "label": column["label"],
        "ops": ops,
        "choices": choice_labels(f) if kind in CHOICES else [],
        "input": "date" if kind == "date" else ("number" if kind in NUMBERS else "text"),
        "boolean": kind == "boolean",
    }


def sortable(column: Mapping[str, Any], store: RecordStore) -> bool:
    f = column["field"]
    return (
        f.type.sortable
        and column["type"] != "attachment"
        and f.slug not in store.ts.junctions
        and store.access.clear_everywhere(f)
    )


def grid_context(app: str, table: str, args: MultiDict[str, str]) -> dict[str, Any]:
    """Everything the grid shows for these URL arguments; the pages and fragments render from it."""
    definition, table_def, store = table_for(app, table)
    columns = columns_of(table_def, store)
    for column in columns:
        column["editable"] = writable(store, column)
        column["sortable"] = sortable(column, store)
    by_slug = {c["slug"]: c for c in columns}
    state, changed = parse_state(args, definition, table)
    if args.get("move"):
        move_column(state, list(by_slug), args["move"])
    if state.cols is not None:
        state.cols = [
            c for c in dict.fromkeys(state.cols) if c in by_slug
        ]  # hidden to this user: dropped
        if state.cols == list(by_slug):
            state.cols = None
    shown_columns = columns if state.cols is None else [by_slug[c] for c in state.cols]
    tree, prefix, rows_of = state.filter_tree()
    cursor = args.get("cursor") or None
    error = None
    records: list[Record] = []
    next_cursor = total = None
    try:
        page = store.query(
            filter=tree,
            sort=[s for s in state.sort if s] or None,
            search=state.q or None,
            fields=[c["slug"] for c in shown_columns],
            page_size=PAGE_SIZE,
            cursor=cursor,
        )  # no read right: PermissionDenied → 403 page
        records, next_cursor, total = page.records, page.next_cursor, page.total
    except QueryError as refused:
        error = refused.message
        for problem in refused.problems:
            if problem.pointer.startswith(prefix):
                index = problem.pointer[len(prefix) :].split("/", 1)[0]
                if index.isdigit() and int(index) < len(rows_of):
                    state.conditions[rows_of[int(index)]].error = problem.message
    links = pointer_labels(store, records)
    here = url_for("records_pages.grid", app=app, table=table, **state.params())
    cols = ",".join(c["slug"] for c in shown_columns)
    urls = row_urls(app, table, cols, here)
    rows = [row_context(r, shown_columns, store, links, urls) for r in records]
    specs = {c["slug"]: spec for c in columns if (spec := filter_spec(c, store)) is not None}
    params = state.params()
    views = [
        {"slug": v["slug"], "label": label(v.get("label")) or v["slug"]}
        for v in definition.get("views") or []
        if v.get("table") == table and v.get("type") == "grid"
    ]
    return {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "table": {"slug": table, "label": label(table_def.get("label")) or table},
        "columns": shown_columns,
        "all_columns": columns,
        "hidden_columns": [c for c in columns if c not in shown_columns],
        "rows": rows,
        "total": total,
        "next_cursor": next_cursor,
        "paged": bool(cursor),
        "error": error,
        "state": state,
        "changed": changed,
        "params": params,
        "specs": specs,
        "sort_columns": [c for c in columns if c["sortable"]],
        "operators": filter_operators(),
        "definition_views": views,
        "saved_views": saved_views.list_views(engine(), actor(), app, table),
        "may_create": may(store, "create"),
        "may_update": may(store, "update"),
        "may_delete": may(store, "delete"),
        "may_manage": may(store, "manage"),
        "may_import": may(store, "import") and may(store, "create"),
        "export_urls": export_urls(app, table, tree, state, shown_columns) if may(store, "export") else None,
        "editable_columns": [c for c in columns if c["editable"]],
        "selectable": may(store, "update") or may(store, "delete"),
        "cols": cols,
        "views_error": None,
        "grid_url": url_for("records_pages.grid", app=app, table=table),
        "here": here,
        "query": query_text(params),
    }


def export_urls(
    app: str, table: str, tree: Any, state: GridState, columns: Sequence[Mapping[str, Any]]
) -> dict[str, str]:
    """The grid's records as it shows them (filter, search, sort, columns) as a file, by format.

    The API's export, which a signed-in user may call: the engine decides what
    may be exported and how (masked values stay masked) and audits the export.
    """
    args = {
        "filter": json.dumps(tree, ensure_ascii=False) if tree else None,
        "sort": ",".join(s for s in state.sort if s) or None,
        "q": state.q or None,
        "fields": ",".join(c["slug"] for c in columns),
    }
    return {
        fmt: url_for("api.export", app=app, table=table, format=fmt, **{k: v for k, v in args.items() if v})
        for fmt in ("csv", "xlsx")
    }


def row_urls(app: str, table: str, cols: str, here: str) -> dict[str, str]:
    """The links and labels every row of a grid page repeats, built once per page.

    ``url_for`` and ``gettext`` per cell were most of a page's time (a page has
    hundreds of cells); each row fills in ``{id}``, ``{version}``, ``{field}``
    and ``{label}``. Only the paths hold placeholders (a record id and a field
    slug are digits and a slug); the query string is encoded once.
    """
    from urllib.parse import quote, urlencode

    base = url_for("record_page.record_page", app=app, table=table, record_id=1)[: -len("/1")]
    shared = urlencode({"cols": cols, "next": here}, quote_via=quote)
    return {
        "record": base + "/{id}",
        "row": base + "/{id}/row?" + shared,
        "edit": base + "/{id}/cells/{field}?version={version}&" + shared,
        "select_label": _("Select record %(id)s", id="{id}"),
        "open_label": _("Open record %(id)s", id="{id}"),
        "edit_label": _("Edit %(field)s of record %(id)s", field="{label}", id="{id}"),
    }


def query_text(params: Mapping[str, Any]) -> str:
    """The state's URL arguments as a query string (what "Save as…" sends along)."""
    from urllib.parse import urlencode

    return urlencode(params, doseq=True)


def row_context(
    record: Record,
    columns: list[dict[str, Any]],
    store: RecordStore,
    links: Mapping[str, Mapping[int, str | None]],
    urls: Mapping[str, str],
) -> dict[str, Any]:
    """A grid row: its cells, and its links and labels filled in from ``row_urls`` (plain string work)."""
    rid, version = str(record.id), str(record.version)
    row_cells = cells(record, columns, store, links, localise=True)
    edit, edit_label = (
        urls["edit"].replace("{id}", rid).replace("{version}", version),
        urls["edit_label"].replace("{id}", rid),
    )
    for cell in row_cells:
        if cell.get("editable"):
            cell["edit_url"] = edit.replace("{field}", cell["slug"])
            cell["edit_label"] = edit_label.replace("{label}", cell["label"])
    return {
        "id": record.id,
        "version": record.version,
        "cells": row_cells,
        "url": urls["record"].replace("{id}", rid),
        "row_url": urls["row"].replace("{id}", rid),
        "select_label": urls["select_label"].replace("{id}", rid),
        "open_label": urls["open_label"].replace("{id}", rid),
    }


@bp.get(TABLE)
def grid(app: str, table: str) -> BaseResponse:
    context = grid_context(app, table, request.args)
    if context["changed"] and not htmx_partial():
        return redirect(context["here"], 303)  # a button changed the state: show its own URL
    partial = htmx_partial()
    template = "records/_grid_app.html" if partial else "records/grid.html"
    status = 422 if context["error"] and not partial else 200
    headers = {"HX-Push-Url": context["here"]} if partial and context["changed"] else {}
    return html(render_template(template, **context), status, **headers)


@bp.get(TABLE + "/grid/condition")
def condition_row(app: str, table: str) -> Response:
    """One condition of the filter builder for a field (its operators and value input), for htmx."""
    _definition, table_def, store = table_for(app, table)
    store.access.require("read")
    specs = {
        c["slug"]: spec
        for c in columns_of(table_def, store)
        if (spec := filter_spec(c, store)) is not None
    }
    index = request.args.get("index", "0")
    fields, ops, values = (request.args.getlist(k) for k in ("field", "op", "value"))
    chosen = fields[-1] if fields else ""
    op = ops[-1] if ops else ""
    spec = specs.get(chosen)
    if spec is not None and op not in {o for o, _name in spec["ops"]}:
        op = spec["ops"][0][0]
    condition = Condition(chosen if spec else "", op, values[-1] if values else "")
    body = render_template(
        "records/_grid_condition.html",
        condition=condition,
        index=int(index) if index.isdigit() else 0,
        specs=specs,
        app={"slug": app},
        table={"slug": table},
    )
    return html(body)


# --- one record's row and inline editing ------------------------------------------------------


def row_columns(app: str, table: str) -> tuple[RecordStore, list[dict[str, Any]]]:
    """The store and the columns the grid shows, from the ``cols`` argument (as in the grid)."""
    _definition, table_def, store = table_for(app, table)
    columns = columns_of(table_def, store)
    for column in columns:
        column["editable"] = writable(store, column)
        column["sortable"] = sortable(column, store)
    cols = (request.values.get("cols") or "").split(",") if "cols" in request.values else None
    if cols is not None:
        by_slug = {c["slug"]: c for c in columns}
        columns = [by_slug[c] for c in dict.fromkeys(cols) if c in by_slug]
    return store, columns


def render_row(
    app: str,
    table: str,
    store: RecordStore,
    columns: list[dict[str, Any]],
    record: Record,
    editing: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    links = pointer_labels(store, [record])
    cols = ",".join(c["slug"] for c in columns)
    back = safe_next(
        request.values.get("next"), url_for("records_pages.grid", app=app, table=table)
    )
    row = row_context(record, columns, store, links, row_urls(app, table, cols, back))
    context = {
        "app": {"slug": app},
        "table": {"slug": table},
        "row": row,
        "editing": editing,
        "cols": cols,
        "selectable": may(store, "update") or may(store, "delete"),
        "here": back,
    }
    if htmx_partial():
        return html(render_template("records/_grid_row.html", inline=True, **context), status)
    context["table"]["label"] = label(store.ts.definition.get("label")) or table
    return html(render_template("records/_grid_cell_page.html", inline=False, **context), status)


def edit_value(column: Mapping[str, Any], value: Any) -> Any:
    """A clear value as an input shows it (the type's text form; ISO dates; choice ids)."""
    f = column["field"]
    if value is None:
        return [] if column["type"] == "multi_select" else ""
    if column["type"] == "multi_select":
        return [str(v) for v in value]
    if column["type"] == "single_select":
        return str(value)  # the choice's id, which the select's options carry
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, bool):
        return value
    try:
        return f.type.to_text(f, value)
    except (TypeError, ValueError, AttributeError):
        return str(value)


def editor(
    column: dict[str, Any],
    record: Record,
    value: Any,
    *,
    error: str | None = None,
    theirs: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """What the cell editor shows: the column, the value in the input, an error or a conflict."""
    kind = column["type"]
    return {
        "column": column,
        "kind": kind,
        "value": value,
        "version": record.version if version is None else version,
        "choices": choice_labels(column["field"]) if kind in CHOICES else [],
        "error": error,
        "theirs": theirs,
    }


def submitted_value(column: Mapping[str, Any]) -> Any:
    """The value a cell editor sent: text, a list (multi-select), true/false (checkbox); "" is empty."""
    kind = column["type"]
    if kind == "multi_select":
        return [v for v in request.form.getlist("value") if v] or None
    if kind == "boolean":
        return "true" in request.form.getlist("value")
    text = request.form.get("value", "")
    return None if text.strip() == "" else text


def record_version(text: str | None) -> int:
    if not text or not text.isdigit():
        abort(400)
    return int(text)


@bp.get(TABLE + "/records/<int:record_id>/row")
def row(app: str, table: str, record_id: int) -> BaseResponse:
    """A record's grid row as it is now (cancelling an edit, "keep theirs")."""
    store, columns = row_columns(app, table)
    record = store.get(record_id)  # outside the user's rows: the same 404 as a missing id
    if not htmx_partial():
        return redirect(
            safe_next(
                request.args.get("next"), url_for("records_pages.grid", app=app, table=table)
            ),
            303,
        )
    return render_row(app, table, store, columns, record)


@bp.get(TABLE + "/records/<int:record_id>/cells/<field>")
def edit_cell(app: str, table: str, record_id: int, field: str) -> BaseResponse:
    """A cell as an input (the row with that cell editing); 403 when the user may not change it."""
    store, columns = row_columns(app, table)
    column = next((c for c in columns if c["slug"] == field), None)
    record = store.get(record_id)
    if column is None or field not in record.fields:
        abort(404)
    if not column["editable"] or maybe_masked(store, column) and record.fields[field] is not None:
        raise PermissionDenied(f'you may not change "{field}" here')
    version = record_version(request.args.get("version") or str(record.version))
    value = edit_value(column, record.fields[field])
    return render_row(
        app, table, store, columns, record, editor(column, record, value, version=version)
    )


@bp.post(TABLE + "/records/<int:record_id>/cells/<field>")
def save_cell(app: str, table: str, record_id: int, field: str) -> BaseResponse:
    """Save one cell with the version the row showed; a stale version shows the conflict, nothing is overwritten."""
    store, columns = row_columns(app, table)
    column = next((c for c in columns if c["slug"] == field), None)
    if column is None or column["type"] not in INLINE_TYPES:
        abort(404)
    version = record_version(request.form.get("version"))
    value = submitted_value(column)
    typed = (
        request.form.getlist("value")
        if column["type"] == "multi_select"
        else (value if column["type"] == "boolean" else request.form.get("value", ""))
    )
    try:
        record = store.update(record_id, {field: value}, version=version)
    except Conflict as conflict:
        current: Record = conflict.current
        if current is None or field not in current.fields:
            raise NotFound("no such record") from None
        masked = current.fields[field] is not None and maybe_masked(store, column)
        theirs = shown(
            column, current.fields[field], pointer_labels(store, [current]), masked, localise=True
        )
        edit = editor(
            column,
            current,
            typed,
            theirs=theirs,
            version=current.version,
            error=_("Someone else changed this record since you opened it."),
        )
        return render_row(app, table, store, columns, current, edit, 409)
    except ValidationError as invalid:
        record = store.get(record_id)
        message = "; ".join(p.message for p in invalid.problems) or invalid.message
        return render_row(
            app,
            table,
            store,
            columns,
            record,
            editor(column, record, typed, error=message, version=version),
            422,
        )
    except PermissionDenied:
        record = store.get(record_id)
        return render_row(
            app,
            table,
            store,
            columns,
            record,
            editor(
                column, record, typed, error=_("You may not change this field."), version=version
            ),
            403,
        )
    if not htmx_partial():
        return redirect(
            safe_next(
                request.form.get("next"), url_for("records_pages.grid", app=app, table=table)
            ),
            303,
        )
    return render_row(app, table, store, columns, record)


# --- several rows at once ---------------------------------------------------------------------


def selected_rows() -> list[tuple[int, int]]:
    """(id, version) of the selected rows, or every row of the page with "select all on this page"."""
    chosen = (
        request.form.getlist("page_row")
        if request.form.get("all_page")
        else request.form.getlist("row")
    )
    out: dict[int, int] = {}
    for item in chosen:
        rid, _sep, version = item.partition(":")
        if rid.isdigit() and version.isdigit():
            out.setdefault(int(rid), int(version))
    return list(out.items())


def failure(error: RecordbaseError) -> str:
    """A row's failure in words that never repeat a value."""
    if isinstance(error, Conflict):
        return _("changed by someone else since the page was loaded")
    if isinstance(error, NotFound):
        return _("not found, or no longer yours to change")
    if isinstance(error, PermissionDenied):
        return _("you may not change it")
    if isinstance(error, ValidationError):
        return "; ".join(p.message for p in error.problems) or error.message
    return error.message


@bp.post(TABLE + "/bulk")
def bulk(app: str, table: str) -> BaseResponse:
    """Set one field on the selected rows, or move them to the trash after a confirmation step."""
    definition, table_def, store = table_for(app, table)
    columns = columns_of(table_def, store)
    back = safe_next(request.form.get("next"), url_for("records_pages.grid", app=app, table=table))
    rows = selected_rows()
    action = request.form.get("action", "")
    context: dict[str, Any] = {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "table": {"slug": table, "label": label(table_def.get("label")) or table},
        "back": back,
        "rows": rows,
        "action": action,
        "done": 0,
        "failures": [],
        "confirm": False,
        "message": None,
    }
    status = 200
    if action not in ("update", "delete"):
        abort(400)
    if not may(store, action):  # refused as a fragment, so htmx shows it in place
        status, context["message"] = 403, _("You are not allowed to do this.")
    elif not rows:
        status, context["message"] = 422, _("Select at least one record.")
    elif action == "update":
        slug = request.form.get("field", "")
        column = next((c for c in columns if c["slug"] == slug and writable(store, c)), None)
        if column is None:
            status, context["message"] = 422, _("Choose a field you may change.")
        else:
            text = request.form.get("value", "")
            value = None if text.strip() == "" else text
            context["field"] = column["label"]
            for rid, version in rows:
                try:
                    store.update(rid, {slug: value}, version=version)
                    context["done"] += 1
                except (Conflict, NotFound, PermissionDenied, ValidationError) as error:
                    context["failures"].append((rid, failure(error)))
    else:
        if request.form.get("confirm") != "yes":
            context["confirm"] = True
            context["labels"] = record_labels(store, [rid for rid, _v in rows])
        else:
            for rid, _version in rows:
                try:
                    store.delete(rid)
                    context["done"] += 1
                except (NotFound, PermissionDenied, Conflict, ValidationError) as error:
                    context["failures"].append((rid, failure(error)))
    if context["failures"] and not context["done"]:
        status = 409
    partial = htmx_partial()
    template = "records/_grid_bulk.html" if partial else "records/_grid_bulk_page.html"
    headers = {"HX-Trigger": "grid-changed"} if context["done"] else {}
    return html(render_template(template, **context), status, **headers)


def record_labels(store: RecordStore, ids: Sequence[int]) -> list[tuple[int, str]]:
    """(id, name) of records for the confirmation step: the primary field as the user sees it."""
    primary = store.ts.primary_field
    column = None if primary is None else {"slug": primary.slug, "field": primary}
    out = []
    for rid in ids:
        try:
            record = store.get(rid)
        except NotFound:
            continue
        text = ""
        if column is not None and primary is not None and primary.slug in record.fields:
            value = record.fields[primary.slug]
            masked = value is not None and maybe_masked(store, column)
            text = (
                ""
                if value is None
                else shown(column, value, pointer_labels(store, [record]), masked)
            )
        out.append((rid, text))
    return out


# --- saved views ---------------------------------------------------------------------------------


def posted_state(app: str, table: str) -> MultiDict[str, str]:
    """The grid's URL arguments a saved-view form carries (``query``), as the grid would read them."""
    parsed = parse_qs(request.form.get("query", ""), keep_blank_values=True)
    return MultiDict([(k, v) for k, values in parsed.items() for v in values])


def grid_with_error(
    app: str, table: str, args: MultiDict[str, str], message: str, status: int
) -> Response:
    context = grid_context(app, table, args)
    context["views_error"] = message
    return html(render_template("records/grid.html", **context), status)


@bp.post(TABLE + "/views")
def save_view(app: str, table: str) -> BaseResponse:
    """Save the grid's current state as a new view (personal, or shared with ``manage``)."""
    definition, _table_def, _store = table_for(app, table)
    args = posted_state(app, table)
    state, _changed = parse_state(args, definition, table)
    shared = request.form.get("shared") == "yes"
    try:
        view = saved_views.save_view(
            engine(),
            actor(),
            app,
            table,
            request.form.get("name", ""),
            state.as_saved(),
            shared=shared,
        )
    except ValidationError:
        return grid_with_error(
            app, table, args, _("Give the view a name (at most 200 characters)."), 422
        )
    except QueryError as refused:
        return grid_with_error(app, table, args, refused.message, 422)
    except PermissionDenied:
        return grid_with_error(
            app, table, args, _("Only those who manage this table may share views."), 403
        )
    return redirect(url_for("records_pages.grid", app=app, table=table, saved=view.id), 303)


@bp.post(TABLE + "/views/<int:view_id>")
def change_view(app: str, table: str, view_id: int) -> BaseResponse:
    """Rename (and share or unshare), replace the state of, or delete a saved view."""
    definition, _table_def, _store = table_for(app, table)
    action = request.form.get("action", "")
    args = posted_state(app, table)
    rb, who = engine(), actor()
    try:
        if action == "delete":
            saved_views.delete_view(rb, who, app, table, view_id)
            return redirect(url_for("records_pages.grid", app=app, table=table), 303)
        if action == "rename":
            saved_views.update_view(
                rb,
                who,
                app,
                table,
                view_id,
                name=request.form.get("name", ""),
                shared=request.form.get("shared") == "yes",
            )
        elif action == "replace":
            state, _changed = parse_state(args, definition, table)
            saved_views.update_view(rb, who, app, table, view_id, state=state.as_saved())
        else:
            abort(400)
    except ValidationError:
        return grid_with_error(
            app, table, args, _("Give the view a name (at most 200 characters)."), 422
        )
    except QueryError as refused:
        return grid_with_error(app, table, args, refused.message, 422)
    except PermissionDenied:
        return grid_with_error(
            app, table, args, _("Only those who manage this table may change shared views."), 403
        )
    return redirect(url_for("records_pages.grid", app=app, table=table, saved=view_id), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
