"""The run history of an app's automations: what fired, on which record, and what each action did.

``/builder/apps/<app>/automations`` lists the runs the engine's
``automations.run_log`` lets the user read (administrators: every table; a
role: the tables it manages), newest first, 50 to a page, narrowed to one
automation or one outcome. A run holds ids and the engine's own messages,
never a record's values; the records it names link to their pages, where the
reader's own rights apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Flask, Response, render_template, request, url_for
from flask_babel import format_datetime, ngettext
from flask_babel import gettext as _
from recordbase import collab
from recordbase.automations import RUN_STATUSES, readable_tables, run_log

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

bp = page_blueprint(Blueprint("automation_runs", __name__))
bp.before_request(require_login)

PAGE_SIZE = 50


def status_names() -> dict[str, str]:
    return {"done": _("Done"), "failed": _("Failed"), "stopped": _("Stopped")}


def trigger_names() -> dict[str, str]:
    return {
        "created": _("Record created"),
        "updated": _("Record updated"),
        "date": _("Date reached"),
        "form": _("Form submitted"),
    }


def action_text(
    action: Mapping[str, Any], fields: Mapping[str, str], tables: Mapping[str, str], names: Mapping[int, str]
) -> str:
    """One action's outcome in words (the log keeps ids and counts, never values)."""

    def person(user: Any) -> str:
        return names.get(user) or _("user %(id)s", id=user)

    kind = action.get("do")
    if kind == "set":
        return _("Set fields of the record (now version %(version)s)", version=action.get("version"))
    if kind == "create":
        table = str(action.get("table"))
        return _("Created record %(id)s in %(table)s", id=action.get("created"), table=tables.get(table, table))
    if kind == "assign":
        field = str(action.get("field"))
        return _("Assigned %(field)s to %(user)s", field=fields.get(field, field), user=person(action.get("user")))
    if kind == "notify":
        notified = action.get("notified") or []
        text = _("Notified %(people)s", people=", ".join(map(person, notified))) if notified else _("Notified nobody")
        skipped = int(action.get("skipped") or 0)
        if skipped:
            text += " " + ngettext(
                "(%(num)d more may not read the record)", "(%(num)d more may not read the record)", skipped
            )
        return text
    if kind == "webhook":
        queued = int(action.get("queued") or 0)
        return ngettext("Queued %(num)d webhook delivery", "Queued %(num)d webhook deliveries", queued)
    if kind == "failed":
        return _("Failed: nothing this run did was kept")
    return str(kind)


def people_in(actions: list[Mapping[str, Any]]) -> list[int]:
    """The users an automation's actions assigned or notified."""
    ids = [a.get("user") for a in actions] + [i for a in actions for i in a.get("notified") or []]
    return [i for i in ids if isinstance(i, int)]


def run_row(
    run: Mapping[str, Any], app: str, tables: Mapping[str, str], fields: Mapping[str, Mapping[str, str]],
    names: Mapping[int, str],
) -> dict[str, Any]:
    """One run as the page shows it; ``tables`` and ``fields`` are the readable tables' and their fields' labels."""
    actions = run["actions"] or []
    record_id = run["record_id"]
    return {
        "id": run["id"],
        "at": format_datetime(run["created_at"], "medium"),
        "iso": run["created_at"].isoformat(),
        "table": tables[run["table"]],
        "automation": label(run["label"]) or run["automation"],
        "slug": run["automation"],
        "removed": run["label"] is None,
        "record_id": record_id,
        "record_url": url_for("record_page.record_page", app=app, table=run["table"], record_id=record_id)
        if record_id
        else None,
        "trigger": trigger_names().get(run["trigger"], run["trigger"]),
        "status": run["status"],
        "status_name": status_names().get(run["status"], run["status"]),
        "error": run["error"],
        "actions": [
            {
                "text": action_text(a, fields[run["table"]], tables, names),
                "url": url_for("record_page.record_page", app=app, table=a["table"], record_id=a["created"])
                if a.get("do") == "create" and a.get("table") in tables and isinstance(a.get("created"), int)
                else None,
            }
            for a in actions
        ],
    }


@bp.get("/builder/apps/<app>/automations")
def runs(app: str) -> Response:
    rb, who = engine(), actor()
    visible = {ts.slug: ts for ts in readable_tables(rb, who, app)}  # NotFound / PermissionDenied: the engine decides
    definition = rb.app(app).definition
    tables = {slug: label(ts.definition.get("label")) or slug for slug, ts in visible.items()}
    fields = {slug: {f.slug: label(f.definition.get("label")) or f.slug for f in ts.fields.values()} for slug, ts in visible.items()}
    choices = [
        (f"{slug}/{a['slug']}", f"{tables[slug]} · {label(a.get('label')) or a['slug']}")
        for slug, ts in visible.items()
        for a in ts.definition.get("automations") or []
    ]
    errors: dict[str, str] = {}
    chosen = request.args.get("automation", "")
    table = automation = None
    if chosen:
        table, _slash, automation = chosen.partition("/")
        if table not in visible or not automation:
            errors["automation"] = _("Choose an automation from the list.")
            table = automation = None
    status = request.args.get("status", "")
    if status and status not in RUN_STATUSES:
        errors["status"] = _("Choose an outcome from the list.")
        status = ""
    before = request.args.get("before", type=int)

    found = run_log(
        rb, who, app, table=table, automation=automation, status=status or None, before=before, limit=PAGE_SIZE + 1
    )
    shown = found[:PAGE_SIZE]
    names = collab.user_names(rb, [i for r in shown for i in people_in(r["actions"] or [])])
    keep = {k: v for k, v in {"automation": chosen if table else "", "status": status}.items() if v}
    older = url_for("automation_runs.runs", app=app, before=shown[-1]["id"], **keep) if len(found) > PAGE_SIZE else None
    newest = url_for("automation_runs.runs", app=app, **keep) if before is not None else None
    return Response(
        render_template(
            "builder/automation_runs.html",
            app={"slug": app, "label": label(definition.get("label")) or app},
            runs=[run_row(r, app, tables, fields, names) for r in shown],
            choices=choices,
            statuses=status_names().items(),
            form={"automation": chosen if table else "", "status": status},
            errors=errors,
            older_url=older,
            newest_url=newest,
        ),
        status=400 if errors else 200,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
