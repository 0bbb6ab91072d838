"""A record's page: every readable field, reveal with a reason, and the record's history.

``/apps/<app>/tables/<table>/records/<id>`` shows every field the user may
read, a "Reveal" form (a reason is required) for a masked value when one of
the user's roles may reveal, and the record's history as the engine shows it
to the user. ``POST …/reveal`` asks the engine (``store.reveal``), which
decides and audits; the value in clear is shown once and never cached.

Every read goes through ``rb.records(actor, app, table)``; a record outside the
user's rows is the same 404 page as a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, abort, render_template, request
from flask_babel import format_datetime
from flask_babel import gettext as _
from recordbase.errors import PermissionDenied, ValidationError
from recordbase.records import RecordStore

from .i18n import label
from .pages import page_blueprint, require_login
from .records_pages import (
    EMPTY,
    TABLE,
    cells,
    columns_of,
    htmx_partial,
    may_reveal,
    shown,
    table_for,
)

bp = page_blueprint(Blueprint("record_page", __name__))
bp.before_request(require_login)


# --- a record ------------------------------------------------------------------------------


def record_context(
    app: str,
    table: str,
    record_id: int,
    definition: Mapping[str, Any],
    table_def: Mapping[str, Any],
    store: RecordStore,
) -> dict[str, Any]:
    record = store.get(record_id)  # outside the user's rows: NotFound, the same 404 as a missing id
    columns = columns_of(table_def, store)
    links = store.link_labels([record])
    fields = cells(record, columns, store, links)
    revealable = may_reveal(store)
    for cell in fields:
        cell["revealable"] = revealable and cell["masked"]
    changes = store.history(record_id)
    labels = {c["slug"]: c["label"] for c in columns}
    history = []
    for change in changes:
        history.append(
            {
                "at": format_datetime(change.at, "medium"),
                "iso": change.at.isoformat(),
                "actor": change.actor,
                "action": action_name(change.action),
                "fields": [
                    {
                        "label": labels.get(slug, slug),
                        "before": EMPTY if pair[0] is None else history_text(pair[0]),
                        "after": EMPTY if pair[1] is None else history_text(pair[1]),
                    }
                    for slug, pair in change.fields.items()
                ],
                "revealed": labels.get(change.details.get("field"), change.details.get("field")),
            }
        )
    primary = store.ts.primary_field
    title = ""
    if primary is not None:
        title = next((c["text"] for c in fields if c["slug"] == primary.slug and c["present"]), "")
    return {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "table": {"slug": table, "label": label(table_def.get("label")) or table},
        "record": record,
        "title": title if title and title != EMPTY else _("Record %(id)s", id=record.id),
        "fields": fields,
        "history": history,
        "revealed": {},
        "reveal_errors": {},
        "reasons": {},
    }


def history_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    return str(value)


def action_name(action: str) -> str:
    names = {
        "create": _("created"),
        "update": _("updated"),
        "delete": _("deleted"),
        "restore": _("restored"),
        "reveal": _("revealed a value"),
        "anonymise": _("anonymised"),
    }
    return names.get(action, action)


@bp.get(TABLE + "/records/<int:record_id>")
def record_page(app: str, table: str, record_id: int) -> str:
    definition, table_def, store = table_for(app, table)
    return render_template(
        "records/record.html", **record_context(app, table, record_id, definition, table_def, store)
    )


@bp.post(TABLE + "/records/<int:record_id>/reveal")
def reveal(app: str, table: str, record_id: int) -> Response:
    """One masked value in clear, with a reason; the engine decides, audits, and refuses."""
    definition, table_def, store = table_for(app, table)
    store.get(record_id)  # outside the user's rows: the same 404 as a missing id
    slug = request.form.get("field", "")
    reason = request.form.get("reason", "").strip()
    columns = {c["slug"]: c for c in columns_of(table_def, store)}
    if slug not in columns:
        abort(404)
    status, error, clear = 200, None, None
    if len(reason) < 5:
        status, error = 422, _("Give a reason of at least 5 characters.")
    else:
        try:
            value = store.reveal(record_id, slug, reason)
        except PermissionDenied:
            status, error = 403, _("You may not reveal this value.")
        except ValidationError:
            status, error = 422, _("Give a reason of at least 5 characters.")
        else:
            column = columns[slug]
            clear = (
                history_text(value)
                if column["type"] == "link"
                else shown(column, value, {}, masked=False)
            )
    context = record_context(app, table, record_id, definition, table_def, store)
    if clear is not None:
        context["revealed"][slug] = clear
    if error is not None:
        context["reveal_errors"][slug] = error
    context["reasons"][slug] = reason
    if htmx_partial():
        cell = next((c for c in context["fields"] if c["slug"] == slug and c["present"]), None)
        if cell is None:
            abort(404)
        body = render_template("records/_field.html", cell=cell, **context)
    else:
        body = render_template("records/record.html", **context)
    response = Response(body, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
