"""The workspace: ``/`` lists the apps the user can open, ``/apps/<app>`` an app's tables and views.

Both ask the engine as the signed-in user: ``apps_for`` for the list,
``schema_for`` for an app — which shows only the tables and views the user
may use, and answers an app where the user has no role exactly like one that
is not installed (404).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, render_template

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


@bp.get("/apps/<app>")
def app_home(app: str) -> str:
    definition = engine().schema_for(actor(), app)  # NotFound → 404 page
    tables: dict[str, dict[str, Any]] = {
        t["slug"]: {
            "slug": t["slug"],
            "label": label(t.get("label")) or t["slug"],
            "description": label(t.get("description")),
            "fields": len(t.get("fields") or []),
        }
        for t in definition.get("tables") or []
    }
    views = [
        {
            "slug": v["slug"],
            "label": label(v.get("label")) or v["slug"],
            "type": v.get("type", "grid"),
            "table": tables[v["table"]]["label"] if v.get("table") in tables else v.get("table"),
        }
        for v in definition.get("views") or []
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
