"""Importing records from a CSV or Excel file in the browser: ``/apps/<app>/tables/<table>/import``.

The page is a form around ``RecordStore.import_rows`` — the same engine call as
``POST /api/v1/.../records/import`` and ``recordbase import`` — so the engine
checks the ``import`` and ``create`` rights, validates every row, encrypts,
audits and, in the default "all or nothing" mode, writes nothing when a row is
bad. Columns are matched to fields by header (a field's label in any of its
languages, or its slug). A column that matches no field stops the import, as
in the engine (a mistyped header must not drop a column's data unnoticed),
unless the user chose to leave such columns out; the report then names them,
as it names each bad row's problems, by the row number a spreadsheet shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request, url_for
from flask_babel import gettext as _
from recordbase.errors import ValidationError
from recordbase.exchange import MODES, UNKNOWN_COLUMN, ImportReport
from recordbase.records import RecordStore

from .forms import form_fields
from .i18n import label
from .pages import page_blueprint, require_login
from .records_pages import TABLE, html, table_for

bp = page_blueprint(Blueprint("import_page", __name__))
bp.before_request(require_login)

SUFFIXES = ("csv", "xlsx")


def mode_names() -> dict[str, str]:
    return {
        "atomic": _("All or nothing: import only if every row is valid"),
        "skip-invalid": _("Import the valid rows and list the others"),
    }


def context(
    definition: Mapping[str, Any], table_def: Mapping[str, Any], store: RecordStore, **extra: Any
) -> dict[str, Any]:
    app, table = definition["slug"], table_def["slug"]
    labels = {fd["slug"]: label(fd.get("label")) or fd["slug"] for fd in table_def.get("fields") or []}
    return {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "table": {"slug": table, "label": label(table_def.get("label")) or table},
        # The columns a file may fill (what a new-record form lets this user type in), by their headers.
        "fields": [
            {"label": labels[f.slug], "slug": f.slug, "required": f.required}
            for f in form_fields(store, labels, "create")
        ],
        "modes": mode_names(),
        "mode": "atomic",
        "leave_out": False,
        "left_out": [],
        "unknown": [],
        "report": None,
        "error": None,
        "grid_url": url_for("records_pages.grid", app=app, table=table),
        **extra,
    }


@bp.route(TABLE + "/import", methods=["GET", "POST"])
def import_records(app: str, table: str) -> Response:
    """GET: the form. POST: import the uploaded file and show the engine's report (422 when nothing was written)."""
    definition, table_def, store = table_for(app, table)
    store.access.require("import")  # no right: the 403 page, before any file is read
    store.access.require("create")
    if request.method == "GET":
        return html(render_template("records/import.html", **context(definition, table_def, store)))
    mode = request.form.get("mode", "atomic")
    if mode not in MODES:
        mode = "atomic"
    upload = request.files.get("file")
    name = (upload.filename or "") if upload is not None else ""
    fmt = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if upload is None or not name:
        error = _("Choose a CSV or Excel (.xlsx) file.")
    elif fmt not in SUFFIXES:
        error = _("Only .csv and .xlsx files can be imported.")
    else:
        leave_out = request.form.get("leave_out") == "yes"
        try:
            report = store.import_rows(upload.stream, fmt=fmt, mode=mode)
            unknown = unknown_columns(report)
            if leave_out and unknown:
                # The header stopped it before any row was read: again, with those columns ignored.
                upload.stream.seek(0)
                report = store.import_rows(upload.stream, fmt=fmt, mode=mode, mapping=dict.fromkeys(unknown))
        except ValidationError as refused:
            error = _("The file could not be read: %(reason)s", reason=refused.message)
        else:
            extra = {"report": report, "mode": mode, "file_name": name, "leave_out": leave_out,
                     "left_out": unknown if leave_out else [], "unknown": [] if leave_out else unknown}  # fmt: skip
            body = render_template("records/import.html", **context(definition, table_def, store, **extra))
            return html(body, 200 if report.committed else 422)
    return html(render_template("records/import.html", **context(definition, table_def, store, error=error, mode=mode)), 422)


def unknown_columns(report: ImportReport) -> list[str]:
    """The header's columns that match no field, when they are all that stopped the import."""
    if report.committed or not report.problems:
        return []
    if all(p.row == 1 and p.column and p.message.startswith(UNKNOWN_COLUMN) for p in report.problems):
        return [p.column for p in report.problems if p.column]
    return []


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
