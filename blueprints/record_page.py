"""A record's page: its fields, its links both ways, assignment, comments with @mentions, and its history.

``/apps/<app>/tables/<table>/records/<id>`` shows, as the signed-in user may
read them:

- every readable field (masked values masked, with a "Reveal" form when one
  of the user's roles may reveal), user fields by the person's name, and
  outgoing links by the linked records' labels, each linking to its page;
- an "Edit" link when one of the user's roles may update this record;
- the records that link here: for every table of the app with a link field
  pointing at this table that the user may read, the records there that link
  to this one (queried as the user, filtered on the link field), with a count;
- "Assign to" for each user field the user may write on this record: saved
  with ``store.update`` and the version the page was read at (a stale one is
  a conflict, shown), the new assignee notified in their inbox when they may
  read the record;
- the comments (``collab``), and a box to add one; ``@Name`` of a member who
  may read the record notifies them, a mention of one who may not is
  reported back to the author and notifies nobody;
- the history, with choices, linked records and users by name.

``POST …/reveal`` asks the engine (``store.reveal``), which decides and audits;
the value in clear is shown once and never cached. ``POST …/comments``,
``…/comments/<id>/delete`` and ``…/assign`` change things; with htmx the first
two answer with the comments section only, otherwise they redirect back.

Every read goes through the engine as the user; a record outside the user's
rows is the same 404 page as a missing one, and so is commenting on it.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Mapping, Sequence
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime
from flask_babel import gettext as _
from recordbase import collab
from recordbase.errors import Conflict, PermissionDenied, QueryError, ValidationError
from recordbase.records import Record, RecordStore
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login
from .records_pages import (
    EMPTY,
    TABLE,
    cells,
    columns_of,
    htmx_partial,
    may_reveal,
    pointer_labels,
    shown,
    table_for,
)

bp = page_blueprint(Blueprint("record_page", __name__))
bp.before_request(require_login)

RECORD = TABLE + "/records/<int:record_id>"
INCOMING_SHOWN = 20  # records listed per incoming link; the grid has the rest
PEOPLE_TYPES = ("user", "created_by", "updated_by")  # fields holding a user id: shown by name
ERASED = "[erased]"  # how the engine's history shows an erased value


# --- a record ------------------------------------------------------------------------------


def record_context(
    app: str,
    table: str,
    record_id: int,
    definition: Mapping[str, Any],
    table_def: Mapping[str, Any],
    store: RecordStore,
    *,
    full: bool = True,
) -> dict[str, Any]:
    """What the record page shows. ``full=False``: only the fields (for a field's htmx fragment)."""
    record = store.get(record_id)  # outside the user's rows: NotFound, the same 404 as a missing id
    columns = columns_of(table_def, store)
    links = pointer_labels(store, [record])
    visible_tables = {t["slug"] for t in definition.get("tables") or []}
    user_ids = [
        v for c in columns if c["type"] in PEOPLE_TYPES for v in _ids(record.fields.get(c["slug"]))
    ]
    names = collab.user_names(engine(), user_ids)
    fields = cells(record, columns, store, links, localise=True)  # as the grid writes them
    revealable = may_reveal(store)
    by_slug = {c["slug"]: c for c in columns}
    for cell in fields:
        cell["revealable"] = revealable and cell["masked"]
        column = by_slug[cell["slug"]]
        value = record.fields.get(cell["slug"])
        if not cell["present"] or cell["masked"] or value is None:
            continue
        if column["type"] in PEOPLE_TYPES:
            cell["text"] = ", ".join(_user_name(i, names) for i in _ids(value))
        elif column["type"] == "link":
            target = _target_slug(store, column)
            cell["links"] = [
                {
                    "label": links.get(cell["slug"], {}).get(i),
                    "url": url_for("record_page.record_page", app=app, table=target, record_id=i)
                    if target in visible_tables and links.get(cell["slug"], {}).get(i) is not None
                    else None,
                }
                for i in _ids(value)
            ]
    primary = store.ts.primary_field
    title = ""
    if primary is not None:
        title = next((c["text"] for c in fields if c["slug"] == primary.slug and c["present"]), "")
    context: dict[str, Any] = {
        "app": {"slug": app, "label": label(definition.get("label")) or app},
        "table": {"slug": table, "label": label(table_def.get("label")) or table},
        "record": record,
        "title": title if title and title != EMPTY else _("Record %(id)s", id=record.id),
        "fields": fields,
        "revealed": {},
        "reveal_errors": {},
        "reasons": {},
    }
    if not full:
        return context
    scope = collab.update_scope(store, record_id)
    context.update(
        edit_url=url_for("forms.edit_record", app=app, table=table, record_id=record_id)
        if scope is not None
        else None,
        incoming=incoming_links(app, store, record_id, definition),
        assignable=assignable(app, record, columns, fields, scope or frozenset()),
        history=history_of(store, record, columns),
        assign_error=None,
    )
    context.update(comments_context(app, table, record_id))
    return context


def _ids(value: Any) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
    return []


def _user_name(user_id: int, names: Mapping[int, str]) -> str:
    return names.get(user_id) or _("User %(id)s", id=user_id)


def _target_slug(store: RecordStore, column: Mapping[str, Any]) -> str | None:
    """The slug of the table a link field points at."""
    wanted = column["field"].options.get("table")
    found = next(
        (t for t in store.ts.app.tables.values() if wanted in (t.slug, t.uid)),
        None,
    )
    return found.slug if found is not None else None


def record_text(store: RecordStore, record: Record) -> str:
    return collab.record_label(store, record) or _("Record %(id)s", id=record.id)


def incoming_links(
    app: str, store: RecordStore, record_id: int, definition: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """For each link field of a table the user may read that points here: the records linking to this one."""
    rb, who = engine(), actor()
    here = store.ts
    out = []
    for tdef in definition.get("tables") or []:
        other = rb.records(who, app, tdef["slug"])
        if not (other.access.full or other.access.readers):
            continue
        visible = {f.get("slug"): f for f in tdef.get("fields") or []}
        primary = other.ts.primary_field
        wanted = (
            [primary.slug]
            if primary is not None and other.access.visible_somewhere(primary)
            else None
        )
        for f in other.ts.fields.values():
            if f.type.name != "link" or f.slug not in visible:
                continue
            if f.options.get("table") not in (here.slug, here.uid):
                continue
            condition = {"field": f.slug, "op": "eq", "value": record_id}
            try:
                page = other.query(
                    filter=condition, sort=["id"], fields=wanted, page_size=INCOMING_SHOWN
                )
            except (QueryError, PermissionDenied):  # a link the user cannot filter by in clear
                continue
            out.append(
                {
                    "id": f"links-{tdef['slug']}-{f.slug}",
                    "table": label(tdef.get("label")) or tdef["slug"],
                    "field": label(visible[f.slug].get("label")) or f.slug,
                    "count": page.total or 0,
                    "records": [
                        {
                            "label": record_text(other, r),
                            "url": url_for(
                                "record_page.record_page",
                                app=app,
                                table=tdef["slug"],
                                record_id=r.id,
                            ),
                        }
                        for r in page.records
                    ],
                    "more_url": url_for(
                        "records_pages.grid",
                        app=app,
                        table=tdef["slug"],
                        field=f.slug,
                        op="eq",
                        value=record_id,
                    )
                    if (page.total or 0) > len(page.records)
                    else None,
                }
            )
    return out


def assignable(
    app: str,
    record: Record,
    columns: Sequence[Mapping[str, Any]],
    fields: Sequence[Mapping[str, Any]],
    scope: frozenset[str],
) -> list[dict[str, Any]]:
    """The user fields the user may write on this record, each with the app's members to choose from."""
    shown_cells = {c["slug"]: c for c in fields}
    wanted = [
        c
        for c in columns
        if c["type"] == "user"
        and c["slug"] in scope
        and shown_cells[c["slug"]]["present"]
        and not shown_cells[c["slug"]]["masked"]
        and not c["field"].options.get("many")
    ]
    if not wanted:
        return []
    people = collab.members(engine(), app)
    member_ids = {m.user_id for m in people}
    current = {c["slug"]: record.fields.get(c["slug"]) for c in wanted}
    # Someone assigned who is not one of the app's people (no role here any more, or
    # deactivated) stays the choice shown: saving the form unchanged must not empty the field.
    outsiders = collab.user_names(
        engine(), [v for v in current.values() if v is not None and v not in member_ids]
    )
    return [
        {
            "slug": c["slug"],
            "label": c["label"],
            "current": current[c["slug"]],
            "members": people,
            "outsider": (
                {"user_id": current[c["slug"]], "name": outsiders.get(current[c["slug"]], "")}
                if current[c["slug"]] in outsiders
                else None
            ),
        }
        for c in wanted
    ]


# --- history -------------------------------------------------------------------------------


def history_of(
    store: RecordStore, record: Record, columns: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The engine's history of the record, values as the user would read them: choices, links, users by name."""
    changes = store.history(record.id)
    by_slug = {c["slug"]: c for c in columns}
    link_ids: dict[str, set[int]] = {}
    user_ids: set[int] = set()
    for change in changes:
        for slug, pair in change.fields.items():
            kind = by_slug[slug]["type"] if slug in by_slug else None
            for value in pair:
                if kind == "link":
                    link_ids.setdefault(slug, set()).update(_ids(value))
                elif kind in PEOPLE_TYPES:
                    user_ids.update(_ids(value))
    labels: Mapping[str, Mapping[int, str | None]] = {}
    if link_ids:
        # Every record these changes ever linked to, labelled through the linked tables' own rules.
        probe = Record(
            id=record.id,
            fields={slug: sorted(ids) for slug, ids in link_ids.items()},
            version=record.version,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )
        labels = store.link_labels([probe], fields=list(link_ids))
    names = collab.user_names(engine(), user_ids)
    out = []
    for change in changes:
        out.append(
            {
                "at": format_datetime(change.at, "medium"),
                "iso": change.at.isoformat(),
                "actor": change.actor,
                "action": action_name(change.action),
                "fields": [
                    {
                        "label": by_slug[slug]["label"] if slug in by_slug else slug,
                        "before": history_value(by_slug.get(slug), pair[0], labels, names),
                        "after": history_value(by_slug.get(slug), pair[1], labels, names),
                    }
                    for slug, pair in change.fields.items()
                ],
                "revealed": by_slug[change.details["field"]]["label"]
                if change.details.get("field") in by_slug
                else change.details.get("field"),
            }
        )
    return out


def history_value(
    column: Mapping[str, Any] | None,
    value: Any,
    labels: Mapping[str, Mapping[int, str | None]],
    names: Mapping[int, str],
) -> str:
    """One value of the history as text: choices by label, links by label where readable, users by name."""
    if value is None or value == [] or value == "":
        return EMPTY
    if value == ERASED:
        return _("[erased]")
    if column is None or isinstance(value, str) and column["type"] in ("link", *PEOPLE_TYPES):
        return history_text(value)  # masked values are text in the type's shape
    kind = column["type"]
    if kind == "link":
        found = labels.get(column["slug"], {})
        return ", ".join(found.get(i) or _("a record you cannot see") for i in _ids(value))
    if kind in PEOPLE_TYPES:
        return ", ".join(_user_name(i, names) for i in _ids(value))
    if kind in ("single_select", "multi_select"):
        choices = {c.get("id") for c in column["field"].options.get("choices") or []}
        items = value if isinstance(value, list) else [value]
        if all(item in choices for item in items):
            return shown(column, value, {}, masked=False)
    local = _from_history(kind, value)
    if local is not None:  # dates, times and amounts as the field shows them
        return shown(column, local, {}, masked=False, localise=True)
    return history_text(value)


def _from_history(kind: str, value: Any) -> Any:
    """A date, time or number as the audit trail keeps it (JSON), back in its Python type; else ``None``."""
    try:
        if kind == "date" and isinstance(value, str):
            return dt.date.fromisoformat(value)
        if kind in ("datetime", "created_at", "updated_at") and isinstance(value, str):
            return dt.datetime.fromisoformat(value)
        if kind in ("number", "currency", "percent") and isinstance(value, str | int | float) and not isinstance(value, bool):
            return decimal.Decimal(str(value))
    except (ValueError, decimal.InvalidOperation):
        return None  # a masked value ("••••-••-••") or one the type no longer has
    return None


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
        "comment_add": _("commented"),
        "comment_delete": _("deleted a comment"),
    }
    return names.get(action, action)


# --- comments ------------------------------------------------------------------------------


def comments_context(app: str, table: str, record_id: int) -> dict[str, Any]:
    rb, who = engine(), actor()
    return {
        "comments": [
            {
                "id": c.id,
                "author": c.author or _("Former user"),
                "parts": c.parts,
                "at": format_datetime(c.created_at, "medium"),
                "iso": c.created_at.isoformat(),
                "may_delete": c.may_delete,
            }
            for c in collab.list_comments(rb, who, app, table, record_id)
        ],
        "mentionable": collab.mentionable(rb, who, app, table, record_id),
        "comment_error": None,
        "comment_body": "",
        "comment_notices": [],
        "max_comment": collab.MAX_COMMENT_LENGTH,
    }


def _comments_response(
    app: str, table: str, record_id: int, extra: Mapping[str, Any], status: int = 200
) -> Response:
    """The comments section alone (htmx), or the whole page (an error without htmx)."""
    definition, table_def, store = table_for(app, table)
    if htmx_partial():
        context = record_context(app, table, record_id, definition, table_def, store, full=False)
        context.update(comments_context(app, table, record_id))
        context.update(extra)
        body = render_template("records/_comments.html", **context)
    else:
        context = record_context(app, table, record_id, definition, table_def, store)
        context.update(extra)
        body = render_template("records/record.html", **context)
    response = Response(body, status=status, mimetype="text/html")
    response.vary.add("HX-Request")
    return response


def _back(app: str, table: str, record_id: int, anchor: str) -> BaseResponse:
    return redirect(
        url_for(
            "record_page.record_page", app=app, table=table, record_id=record_id, _anchor=anchor
        ),
        303,
    )


def _comment_problem(error: ValidationError) -> str:
    if any("empty" in p.message for p in error.problems):
        return _("Write something first: a comment cannot be empty.")
    return _("A comment has at most %(max)s characters.", max=collab.MAX_COMMENT_LENGTH)


@bp.post(RECORD + "/comments")
def add_comment(app: str, table: str, record_id: int) -> BaseResponse:
    """Add a comment (anyone who may read the record); mentions notify those who may read it too."""
    table_for(app, table)  # an app or table the user cannot see: 404
    body = request.form.get("body", "")
    chosen = request.form.get("mention", "").strip()
    if chosen.isdigit() and f"@[user:{int(chosen)}]" not in body:
        body = f"{body.rstrip()} @[user:{int(chosen)}]".strip() if body.strip() else ""
    try:
        added = collab.add_comment(engine(), actor(), app, table, record_id, body)
    except ValidationError as error:
        return _comments_response(
            app,
            table,
            record_id,
            {"comment_error": _comment_problem(error), "comment_body": body},
            status=422,
        )
    notices = [
        _("%(name)s was not notified: they cannot read this record.", name=m.name)
        for m in added.undelivered
    ]
    if added.notified:
        notices.insert(
            0, _("Notified: %(names)s.", names=", ".join(m.name for m in added.notified))
        )
    if htmx_partial():
        return _comments_response(app, table, record_id, {"comment_notices": notices})
    flash(_("Your comment was added."), "success")
    for notice in notices:
        flash(notice, "info")
    return _back(app, table, record_id, "comments")


@bp.post(RECORD + "/comments/<int:comment_id>/delete")
def delete_comment(app: str, table: str, record_id: int, comment_id: int) -> BaseResponse:
    """Delete a comment: its author or an administrator (someone else's: 403)."""
    table_for(app, table)
    collab.delete_comment(engine(), actor(), app, table, record_id, comment_id)
    if htmx_partial():
        return _comments_response(
            app, table, record_id, {"comment_notices": [_("The comment was deleted.")]}
        )
    flash(_("The comment was deleted."), "success")
    return _back(app, table, record_id, "comments")


# --- assignment ----------------------------------------------------------------------------


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) <= 18 else None


@bp.post(RECORD + "/assign")
def assign(app: str, table: str, record_id: int) -> BaseResponse:
    """Set a user field to a member (or to nobody) with the version the page was read at."""
    definition, table_def, store = table_for(app, table)
    slug = request.form.get("field", "")
    column = next((c for c in columns_of(table_def, store) if c["slug"] == slug), None)
    if column is None or column["type"] != "user":
        abort(404)
    version = _int_or_none(request.form.get("version", ""))
    raw_user = request.form.get("user", "")
    user_id = _int_or_none(raw_user)
    if version is None or (raw_user.strip() and user_id is None):
        abort(400)
    error, status = None, 200
    try:
        done = collab.assign(
            engine(), actor(), app, table, record_id, slug, user_id, version=version
        )
    except Conflict:
        error, status = (
            _(
                "Someone else changed this record meanwhile. "
                "The page now shows it as it is; choose again if you still want to."
            ),
            409,
        )
    except ValidationError:
        error, status = _("Choose one of the people of this app."), 422
    if error is not None:
        context = record_context(app, table, record_id, definition, table_def, store)
        context["assign_error"] = {"field": slug, "message": error}
        response = Response(
            render_template("records/record.html", **context), status=status, mimetype="text/html"
        )
        return response
    if done.assignee is None:
        flash(_("%(field)s is now empty.", field=column["label"]), "success")
    else:
        flash(_("%(field)s: %(name)s.", field=column["label"], name=done.assignee.name), "success")
    if done.notified:
        flash(_("%(name)s was notified in their inbox.", name=done.assignee.name), "info")  # type: ignore[union-attr]
    if done.cannot_read:
        flash(
            _("%(name)s was not notified: they cannot read this record.", name=done.assignee.name),  # type: ignore[union-attr]
            "info",
        )
    return _back(app, table, record_id, "assign")


# --- pages -----------------------------------------------------------------------------------


@bp.get(RECORD)
def record_page(app: str, table: str, record_id: int) -> str:
    definition, table_def, store = table_for(app, table)
    return render_template(
        "records/record.html", **record_context(app, table, record_id, definition, table_def, store)
    )


@bp.post(RECORD + "/reveal")
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
    partial = htmx_partial()
    context = record_context(app, table, record_id, definition, table_def, store, full=not partial)
    if clear is not None:
        context["revealed"][slug] = clear
    if error is not None:
        context["reveal_errors"][slug] = error
    context["reasons"][slug] = reason
    if partial:
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
