"""``/gallery``: the app templates of ``schemas/gallery/``, previewed and installed in one click.

Every signed-in user may browse: ``/gallery`` has a card per template (its
name, description, tables and what it is for, in the user's language) and
``/gallery/<name>`` previews it — each table's fields with their type,
whether they are required, their sensitivity and purpose, the table's
consent, retention and erasure rules, the roles and the views.

Installing is for platform administrators (anyone else gets 403): ``POST
/gallery/<name>/install`` (CSRF-checked) does what ``recordbase install NAME
[--sample-data]`` does — the same template files (``recordbase.cli.GALLERY``),
``Recordbase.install(definition, actor)`` as the signed-in administrator,
then ``Recordbase.fill_sample_data`` when asked — and redirects to the new
app. A template whose app is installed already is not installed again: the
page says so and links to the app. A refused install is shown on the
template's page with the engine's reasons (never a record value: there is none yet).

Templates are looked up by name in the listing of the gallery folder, never
by joining a path from the request.
"""

from __future__ import annotations

import re
from pathlib import Path
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
from flask_babel import gettext as _
from recordbase.cli import GALLERY
from recordbase.definition import DEFAULT_SENSITIVITY, load_definition_file
from recordbase.errors import DefinitionError, PermissionDenied, RecordbaseError
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

bp = page_blueprint(Blueprint("gallery", __name__))
bp.before_request(require_login)

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# Keys a gallery template may carry for the gallery page only; they are not part of the app.
GALLERY_ONLY_KEYS = ("use_cases",)


# --- the templates ---------------------------------------------------------------------------


def template_paths() -> dict[str, Path]:
    """Each gallery template's name (its file name without ``.json``) → its file, by name."""
    return {p.stem: p for p in sorted(GALLERY.glob("*.json")) if NAME.match(p.stem)}


def load_template(name: str) -> tuple[dict[str, Any] | None, list[str]]:
    """A template's definition (gallery-only keys kept) and the problems that keep it from installing."""
    path = template_paths().get(name)
    if path is None:
        abort(404)
    data, problems = load_definition_file(path)
    if problems or not isinstance(data, dict):
        return None, [p.message for p in problems] or [_("This template is not an app definition.")]
    found = engine().check(app_definition(data))
    return data, [f"{p.pointer or '/'}: {p.message}" for p in found if p.severity == "error"]


def app_definition(data: dict[str, Any]) -> dict[str, Any]:
    """The app definition a template installs: the template without its gallery-only keys."""
    return {k: v for k, v in data.items() if k not in GALLERY_ONLY_KEYS}


def installed_apps() -> set[str]:
    return {row["slug"] for row in engine().list_apps()}


def summary(
    name: str, data: dict[str, Any] | None, problems: list[str], installed_slugs: set[str]
) -> dict[str, Any]:
    """What a card shows about a template, labels in the user's language."""
    if data is None:
        return {
            "name": name,
            "label": name,
            "description": "",
            "tables": [],
            "use_cases": [],
            "slug": None,
            "installed": False,
            "may_open": False,
            "problems": problems,
        }
    slug = data.get("slug")
    installed = slug in installed_slugs
    who = actor()
    return {
        "name": name,
        "label": label(data.get("label")) or name,
        "description": label(data.get("description")),
        "tables": [label(t.get("label")) or t.get("slug") for t in data.get("tables") or []],
        "use_cases": [label(u) for u in data.get("use_cases") or [] if label(u)],
        "roles": len(data.get("roles") or []),
        "views": len(data.get("views") or []),
        "slug": slug,
        "installed": installed,
        "may_open": installed and (who.is_admin or bool(who.roles_in(str(slug)))),
        "problems": problems,
    }


def field_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for fd in table.get("fields") or []:
        kind = fd.get("type", "")
        sensitivity = fd.get("sensitivity") or DEFAULT_SENSITIVITY(kind)
        out.append(
            {
                "slug": fd.get("slug"),
                "label": label(fd.get("label")) or fd.get("slug"),
                "type": kind,
                "required": bool(fd.get("required")),
                "sensitivity": sensitivity,
                "purpose": label(fd.get("purpose")),
                "encrypted": sensitivity == "sensitive"
                or (sensitivity == "personal" and fd.get("encrypted", True) is not False),
                "help": label(fd.get("help")),
            }
        )
    return out


def preview(data: dict[str, Any]) -> dict[str, Any]:
    """Tables with their fields and privacy rules, roles and views, as the preview page shows them."""
    tables = []
    labels = {}
    for t in data.get("tables") or []:
        labels[t.get("slug")] = label(t.get("label")) or t.get("slug")
        consent = t.get("consent")
        tables.append(
            {
                "slug": t.get("slug"),
                "label": labels[t.get("slug")],
                "description": label(t.get("description")),
                "fields": field_rows(t),
                "retention": t.get("retention"),
                "consent": None
                if not consent
                else {
                    "purposes": consent.get("purposes") or [],
                    "version": consent.get("version"),
                    "text": label(consent.get("text")),
                    "withdraw_action": consent.get("withdraw_action", "flag"),
                },
                "erasure": t.get("erasure"),
            }
        )
    roles = [
        {
            "slug": r.get("slug"),
            "label": label(r.get("label")) or r.get("slug"),
            "description": label(r.get("description")),
            "clearance": r.get("clearance") or ["public", "internal"],
        }
        for r in data.get("roles") or []
    ]
    views = [
        {
            "slug": v.get("slug"),
            "label": label(v.get("label")) or v.get("slug"),
            "type": v.get("type", "grid"),
            "table": labels.get(v.get("table"), v.get("table")),
        }
        for v in data.get("views") or []
    ]
    return {"tables": tables, "roles": roles, "views": views}


# --- pages --------------------------------------------------------------------------------------


@bp.get("/gallery")
def index() -> str:
    installed = installed_apps()
    cards = [summary(name, *load_template(name), installed) for name in template_paths()]
    cards.sort(key=lambda c: c["label"].casefold())
    return render_template("gallery/index.html", cards=cards, is_admin=actor().is_admin)


def render_template_page(name: str, status: int = 200, **context: Any) -> Response:
    data, problems = load_template(name)
    body = render_template(
        "gallery/template.html",
        card=summary(name, data, problems, installed_apps()),
        preview=preview(data) if data is not None else None,
        is_admin=actor().is_admin,
        sample_data=context.pop("sample_data", True),
        error=context.pop("error", None),
        error_problems=context.pop("error_problems", []),
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


@bp.get("/gallery/<name>")
def template(name: str) -> Response:
    return render_template_page(name)


@bp.post("/gallery/<name>/install")
def install(name: str) -> BaseResponse:
    """Install a template (administrators only), with sample records when asked."""
    who = actor()
    if not who.is_admin:
        abort(403)
    data, problems = load_template(name)
    with_samples = request.form.get("sample_data") == "1"
    if data is None or problems:
        return render_template_page(
            name,
            422,
            sample_data=with_samples,
            error=_("This template has problems and cannot be installed."),
            error_problems=problems,
        )
    slug = str(data["slug"])
    if slug in installed_apps():
        return render_template_page(
            name,
            409,
            sample_data=with_samples,
            error=_("This template is installed already: open its app instead."),
        )
    rb = engine()
    try:
        rb.install(app_definition(data), who)
    except PermissionDenied:
        abort(403)
    except DefinitionError as exc:
        return render_template_page(
            name,
            422,
            sample_data=with_samples,
            error=_("The template could not be installed."),
            error_problems=[f"{p.pointer or '/'}: {p.message}" for p in exc.problems],
        )
    except RecordbaseError as exc:
        return render_template_page(
            name,
            422,
            sample_data=with_samples,
            error=_("The template could not be installed."),
            error_problems=[exc.message],
        )
    app_label = label(data.get("label")) or slug
    if with_samples:
        try:
            counts = rb.fill_sample_data(who, slug)
        except RecordbaseError:
            flash(
                _(
                    "%(app)s was installed, but its sample records could not be added.",
                    app=app_label,
                ),
                "error",
            )
        else:
            flash(
                _(
                    "%(app)s was installed with %(count)s sample records.",
                    app=app_label,
                    count=sum(counts.values()),
                ),
                "success",
            )
    else:
        flash(_("%(app)s was installed.", app=app_label), "success")
    return redirect(url_for("workspace.app_home", app=slug), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
