"""``/admin/users``: platform administrators manage users and their roles per app.

List users with their roles, add a user (with a password, or a generated one
shown once), give and take app roles (the roles the app's definition
declares), deactivate and reactivate — each through the engine's own user
functions (``create_user``, ``set_roles``, ``set_active``, ``list_users``),
which audit every change. Anyone but a platform administrator gets 403.

The forms work without JavaScript (POST, then redirect back); with htmx they
replace only the user list (``hx-select``), the CSRF token riding in the form.
"""

from __future__ import annotations

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
from recordbase.errors import RecordbaseError
from recordbase.users import MIN_PASSWORD_LENGTH, generate_password
from werkzeug.wrappers import Response as BaseResponse

from .i18n import label
from .pages import actor, engine, page_blueprint, require_login

bp = page_blueprint(Blueprint("admin", __name__, url_prefix="/admin"))


@bp.before_request
def admins_only() -> BaseResponse | None:
    refused = require_login()
    if refused is not None:
        return refused
    if not actor().is_admin:
        abort(403)
    return None


def app_roles() -> list[dict[str, Any]]:
    """Each installed app with the roles its definition declares, labels in the user's language."""
    out = []
    for row in engine().list_apps():
        definition = row["definition"]
        out.append(
            {
                "slug": row["slug"],
                "label": label(definition.get("label")) or row["slug"],
                "roles": [
                    {
                        "slug": r["slug"],
                        "label": label(r.get("label")) or r["slug"],
                        "value": f"{row['slug']}:{r['slug']}",
                    }
                    for r in definition.get("roles") or []
                ],
            }
        )
    return out


def role_names(apps: list[dict[str, Any]]) -> dict[str, str]:
    """``"app:role"`` → "App label: Role label"."""
    return {r["value"]: f"{a['label']}: {r['label']}" for a in apps for r in a["roles"]}


def render_users(status: int = 200, **context: Any) -> Response:
    apps = app_roles()
    body = render_template(
        "admin/users.html",
        users=engine().list_users(),
        apps=apps,
        role_names=role_names(apps),
        me=actor().user_id,
        form=context.pop("form", {}),
        errors=context.pop("errors", {}),
        min_length=MIN_PASSWORD_LENGTH,
        **context,
    )
    return Response(body, status=status, mimetype="text/html")


def user_by_id(user_id: int) -> dict[str, Any]:
    for user in engine().list_users():
        if user["id"] == user_id:
            return user
    abort(404)


def parse_role(value: str) -> tuple[str, str] | None:
    known = role_names(app_roles())
    if value not in known:
        return None
    app, _sep, role = value.partition(":")
    return app, role


def roles_in(user: dict[str, Any], app: str) -> list[str]:
    return [r.partition(":")[2] for r in user["roles"] if r.partition(":")[0] == app]


def back() -> BaseResponse:
    return redirect(url_for("admin.users"), 303)


@bp.get("/users")
def users() -> Response:
    return render_users()


@bp.post("/users")
def add_user() -> BaseResponse:
    form = {
        "email": request.form.get("email", "").strip(),
        "name": request.form.get("name", "").strip(),
        "role": request.form.get("role", ""),
    }
    password = request.form.get("password", "")
    errors: dict[str, str] = {}
    if "@" not in form["email"]:
        errors["email"] = _("Enter an email address.")
    if password and len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = _("Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH)
    role = parse_role(form["role"]) if form["role"] else None
    if form["role"] and role is None:
        errors["role"] = _("Choose one of the listed roles.")
    if errors:
        return render_users(422, form=form, errors=errors)
    generated = None if password else generate_password()
    rb, who = engine(), actor()
    try:
        rb.create_user(who, form["email"], password or generated, display_name=form["name"] or None)
    except RecordbaseError as exc:
        message = (
            _("A user with this email already exists.")
            if "already exists" in exc.message
            else _("Enter an email address.")
        )
        return render_users(422, form=form, errors={"email": message})
    if role is not None:
        rb.set_roles(who, form["email"], role[0], [role[1]])
    if generated:
        # Shown once, in this answer only (never put in the session or a redirect).
        return render_users(201, created=form["email"].lower(), generated=generated)
    flash(_("%(email)s was added.", email=form["email"].lower()), "success")
    return back()


@bp.post("/users/<int:user_id>/roles")
def add_role(user_id: int) -> BaseResponse:
    user = user_by_id(user_id)
    role = parse_role(request.form.get("role", ""))
    if role is None:
        flash(_("Choose one of the listed roles."), "error")
        return back()
    app, slug = role
    engine().set_roles(actor(), user["email"], app, [*roles_in(user, app), slug])
    flash(_("%(email)s got a new role.", email=user["email"]), "success")
    return back()


@bp.post("/users/<int:user_id>/roles/remove")
def remove_role(user_id: int) -> BaseResponse:
    user = user_by_id(user_id)
    value = request.form.get("role", "")
    app, _sep, slug = value.partition(":")
    if value not in user["roles"]:
        flash(_("This user does not have that role."), "error")
        return back()
    engine().set_roles(actor(), user["email"], app, [r for r in roles_in(user, app) if r != slug])
    flash(_("A role of %(email)s was removed.", email=user["email"]), "success")
    return back()


@bp.post("/users/<int:user_id>/active")
def set_active(user_id: int) -> BaseResponse:
    user = user_by_id(user_id)
    active = request.form.get("active") == "1"
    if user_id == actor().user_id and not active:
        flash(_("You cannot deactivate your own account."), "error")
        return back()
    engine().set_active(actor(), user["email"], active)
    if active:
        flash(_("%(email)s can sign in again.", email=user["email"]), "success")
    else:
        flash(_("%(email)s was deactivated.", email=user["email"]), "success")
    return back()


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
