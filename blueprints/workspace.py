"""The workspace: ``/`` lists the apps the user can open, ``/apps/<app>`` an app's tables and views.

Both ask the engine as the signed-in user: ``apps_for`` for the list,
``schema_for`` for an app — which shows only the tables and views the user
may use, and answers an app where the user has no role exactly like one that
is not installed (404).

On an app's page each table links to its grid when the user may read it and
to a new record's form when the user may create one (the roles' rights on the
table; the pages behind the links still decide), and each view links to its
page (``views_pages.view``) with its type — except a form view of a table the
user may not create in, and a dashboard none of whose tables the user may read.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template
from recordbase.records import RecordStore

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

bp = page_blueprint(Blueprint("workspace", __name__))
bp.before_request(require_login)


@bp.get("/")
def home() -> str:
    rb, who = engine(), actor()
    apps = []
    for slug in rb.apps_for(who):
        definition = rb.schema_for(who, slug)
        apps.append(
            {
                "slug": slug,
                "label": label(definition.get("label")) or slug,
                "description": label(definition.get("description")),
                "tables": len(definition.get("tables") or []),
            }
        )
    apps.sort(key=lambda a: a["label"].casefold())
    return render_template("workspace/home.html", apps=apps)


# View types with a page of their own (views_pages.view).
LISTED_VIEW_TYPES = ("grid", "kanban", "calendar", "form", "dashboard")


def offered(view: dict[str, Any], tables: dict[str, dict[str, Any]]) -> bool:
    """Whether the app page lists a view: forms need the create right, dashboards a table to read."""
    kind = view.get("type", "grid")
    if kind not in LISTED_VIEW_TYPES:
        return False
    if kind == "form":
        return bool(tables.get(view.get("table"), {}).get("may_create"))
    if kind == "dashboard":
        counted = {view.get("table")} | {c.get("table") for c in view.get("charts") or [] if c.get("table")}
        return any(tables.get(name, {}).get("may_read") for name in counted)
    return True


def may(store: RecordStore, operation: str) -> bool:
    """Whether a role of the user grants ``operation`` on the table (full access grants all)."""
    return store.access.full or any(r.can(operation) for r in store.access.roles)


@bp.get("/apps/<app>")
def app_home(app: str) -> str:
    rb, who = engine(), actor()
    definition = rb.schema_for(who, app)  # NotFound → 404 page
    tables: dict[str, dict[str, Any]] = {}
    for t in definition.get("tables") or []:
        store = rb.records(who, app, t["slug"])
        tables[t["slug"]] = {
            "slug": t["slug"],
            "label": label(t.get("label")) or t["slug"],
            "description": label(t.get("description")),
            "fields": len(t.get("fields") or []),
            "may_read": may(store, "read"),
            "may_create": may(store, "create"),
        }
    views = [
        {
            "slug": v["slug"],
            "label": label(v.get("label")) or v["slug"],
            "type": v.get("type", "grid"),
            "table": tables[v["table"]]["label"] if v.get("table") in tables else v.get("table"),
        }
        for v in definition.get("views") or []
        if offered(v, tables)
    ]
    return render_template(
        "workspace/app.html",
        app={
            "slug": app,
            "label": label(definition.get("label")) or app,
            "description": label(definition.get("description")),
        },
        tables=list(tables.values()),
        views=views,
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
