"""The inbox: the signed-in user's notifications (mentions, assignments, automations' notices).

``/inbox`` lists them newest first. Each is shown through the engine as its
reader (``collab.list_notifications``): the record's label as the reader may
read it now, with a link to its page — or, for a record the reader can no
longer read (deleted, moved out of their rows, a role taken away), only that
it is no longer available, never anything of it. ``POST /inbox/<id>/read``
and ``POST /inbox/read-all`` mark read (with htmx only the list is swapped).
Someone else's notification is 404.

:func:`inbox_unread` is a Jinja global: the signed-in user's unread count, for
a badge in the page header.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, redirect, render_template, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user
from recordbase import collab
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login
from .records_pages import htmx_partial

bp = page_blueprint(Blueprint("inbox", __name__))
bp.before_request(require_login)


def kind_text(kind: str) -> str:
    texts = {
        "mention": _("mentioned you in a comment on"),
        "assigned": _("assigned you to"),
        "automation": _("sent you a notice about"),
    }
    return texts.get(kind, kind)


def inbox_context() -> dict[str, Any]:
    """The inbox as its reader sees it: one data function for the page and its htmx fragment."""
    rb, who = engine(), actor()
    items = []
    for n in collab.list_notifications(rb, who):
        url = None
        if n.available and n.app and n.table and n.record_id is not None:
            url = url_for(
                "record_page.record_page",
                app=n.app,
                table=n.table,
                record_id=n.record_id,
                _anchor=f"comment-{n.comment_id}" if n.comment_id else None,
            )
        items.append(
            {
                "id": n.id,
                "kind": n.kind,
                "what": kind_text(n.kind),
                "actor": n.actor,
                "message": n.message,
                "at": format_datetime(n.created_at, "medium"),
                "iso": n.created_at.isoformat(),
                "unread": n.read_at is None,
                "available": n.available,
                "label": (n.label or _("Record %(id)s", id=n.record_id)) if n.available else None,
                "table": label(n.table_label) if n.available else None,
                "app": label(n.app_label) if n.available else None,
                "url": url,
            }
        )
    return {"items": items, "unread": sum(1 for i in items if i["unread"])}


def _answer() -> BaseResponse:
    if htmx_partial():
        response = Response(
            render_template("inbox/_list.html", **inbox_context()), mimetype="text/html"
        )
        response.vary.add("HX-Request")
        return response
    return redirect(url_for("inbox.index"), 303)


@bp.get("/inbox")
def index() -> Response:
    response = Response(
        render_template("inbox/index.html", **inbox_context()), mimetype="text/html"
    )
    response.vary.add("HX-Request")
    return response


@bp.post("/inbox/<int:notification_id>/read")
def mark_read(notification_id: int) -> BaseResponse:
    collab.mark_read(engine(), actor(), notification_id)  # someone else's: NotFound → 404
    return _answer()


@bp.post("/inbox/read-all")
def mark_all_read() -> BaseResponse:
    collab.mark_all_read(engine(), actor())
    return _answer()


def inbox_unread() -> int:
    """The signed-in user's unread notifications (0 for a visitor)."""
    if not current_user.is_authenticated:
        return 0
    return collab.unread_count(engine(), actor())


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.globals["inbox_unread"] = inbox_unread
