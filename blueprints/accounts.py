"""Accounts: sign in, sign out, change password, choose the language.

**Sign-in** (``/login``) checks the email and password with
``Recordbase.authenticate``, which audits every attempt (``login`` /
``login_failed``, with the client's address). A failure says only "wrong email
or password", whichever was wrong. Failed attempts are counted with the app's
rate-limit counters (``ratelimits.py``) per client address
(``RECORDBASE_LOGIN_LIMIT_IP``, default ``20/minute;100/hour``) and per
email (``RECORDBASE_LOGIN_LIMIT``, default ``5/minute;20/hour``); once either
is used up, sign-in answers 429 with ``Retry-After`` until the window
passes, even for the right password.
The counters are shared by every process of the server when
``RECORDBASE_RATELIMIT_STORAGE`` is shared: ``redis://…`` across machines, or
``sqlite:///<absolute path>`` across the workers of one machine
(``recordbase.serving.SQLiteRateLimitStorage``, which ``recordbase serve
--workers N`` picks by itself); ``memory://`` (the one-process default)
counts per process.
A successful sign-in starts a fresh session (keeping only the language) and
clears the email's count.

**Password** (``/account/password``): the current password and the new one
twice; ``Recordbase.change_password`` verifies, hashes (argon2) and audits
``password_change``. Wrong current passwords count like failed sign-ins
(per user).

**Language** (``POST /language``): ``en`` or ``zh-CN`` into the session.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from limits import RateLimitItem, parse_many
from recordbase.errors import PermissionDenied, ValidationError
from recordbase.users import MIN_PASSWORD_LENGTH
from werkzeug.wrappers import Response as BaseResponse

from .config import config_value
from .i18n import LANGUAGES
from .identity import SessionUser
from .pages import actor, engine, login_redirect, page_blueprint, safe_next
from .ratelimits import counter

bp = page_blueprint(Blueprint("accounts", __name__))

DEFAULT_LIMIT = "5/minute;20/hour"
DEFAULT_LIMIT_IP = "20/minute;100/hour"


# --- counting failures -------------------------------------------------------------------


def _limits(keys: list[tuple[str, str, str]]) -> list[tuple[RateLimitItem, str, str]]:
    """(limit, kind, key) for each (setting, kind, key): every limit of the setting applies."""
    out = []
    for setting, kind, key in keys:
        default = DEFAULT_LIMIT_IP if setting.endswith("_IP") else DEFAULT_LIMIT
        for item in parse_many(config_value(current_app, setting, default)):
            out.append((item, kind, key))
    return out


def _login_keys(email: str) -> list[tuple[str, str, str]]:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return [
        ("RECORDBASE_LOGIN_LIMIT_IP", "login-ip", request.remote_addr or "unknown"),
        ("RECORDBASE_LOGIN_LIMIT", "login-email", digest),  # no email in the counter store
    ]


def _password_keys() -> list[tuple[str, str, str]]:
    return [("RECORDBASE_LOGIN_LIMIT", "password-user", str(actor().user_id))]


def blocked_for(keys: list[tuple[str, str, str]]) -> int | None:
    """Seconds until another attempt is allowed, ``None`` when it is allowed now."""
    limiter = counter()
    if not limiter.enabled:
        return None
    waits = []
    for item, kind, key in _limits(keys):
        if not limiter.limiter.test(item, "recordbase", kind, key):
            reset = limiter.limiter.get_window_stats(item, "recordbase", kind, key).reset_time
            waits.append(max(1, math.ceil(reset - time.time())))
    return max(waits) if waits else None


def count_failure(keys: list[tuple[str, str, str]]) -> None:
    limiter = counter()
    if limiter.enabled:
        for item, kind, key in _limits(keys):
            limiter.limiter.hit(item, "recordbase", kind, key)


def forget_failures(keys: list[tuple[str, str, str]]) -> None:
    limiter = counter()
    if limiter.enabled:
        for item, kind, key in _limits(keys):
            limiter.limiter.clear(item, "recordbase", kind, key)


def too_many(template: str, wait: int, **context: object) -> Response:
    minutes = max(1, math.ceil(wait / 60))
    message = _("Too many failed attempts. Try again in %(minutes)s minute(s).", minutes=minutes)
    body = render_template(template, error=message, **context)
    return Response(body, status=429, mimetype="text/html", headers={"Retry-After": str(wait)})


# --- sign in and out ---------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse:
    target = safe_next(request.values.get("next"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(target, 303)
    if request.method == "GET":
        return Response(render_template("accounts/login.html", next=target, email=""))

    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    context = {"next": target, "email": email}
    if not email or not password:
        body = render_template(
            "accounts/login.html", error=_("Enter your email and your password."), **context
        )
        return Response(body, status=422, mimetype="text/html")
    keys = _login_keys(email)
    wait = blocked_for(keys)
    if wait is not None:
        return too_many("accounts/login.html", wait, **context)
    found = engine().authenticate(email, password, source=request.remote_addr)  # audited
    if found is None:
        count_failure(keys)
        body = render_template(
            "accounts/login.html", error=_("Wrong email or password."), **context
        )
        return Response(body, status=422, mimetype="text/html")
    forget_failures(keys[1:])  # the email's count; the address keeps its own
    language = session.get("lang")
    session.clear()  # a fresh session for the signed-in user
    if language:
        session["lang"] = language
    login_user(SessionUser(found))
    return redirect(target, 303)


@bp.post("/logout")
def logout() -> BaseResponse:
    language = session.get("lang")
    logout_user()
    session.clear()
    if language:
        session["lang"] = language
    flash(_("You have logged out."), "info")
    return redirect(url_for("accounts.login"), 303)


# --- password ------------------------------------------------------------------------------


@bp.route("/account/password", methods=["GET", "POST"])
def password() -> BaseResponse:
    if not current_user.is_authenticated:
        return login_redirect()
    template = "accounts/password.html"
    if request.method == "GET":
        return Response(render_template(template, errors={}))
    current = request.form.get("current_password", "")
    new = request.form.get("new_password", "")
    repeated = request.form.get("new_password_again", "")
    problems: dict[str, str] = {}
    if not current:
        problems["current_password"] = _("Enter your current password.")
    if len(new) < MIN_PASSWORD_LENGTH:
        problems["new_password"] = _(
            "Use at least %(count)s characters.", count=MIN_PASSWORD_LENGTH
        )
    elif new != repeated:
        problems["new_password_again"] = _("The two new passwords differ.")
    if problems:
        body = render_template(template, errors=problems)
        return Response(body, status=422, mimetype="text/html")
    keys = _password_keys()
    wait = blocked_for(keys)
    if wait is not None:
        return too_many(template, wait, errors={})
    try:
        engine().change_password(actor(), current, new)
    except PermissionDenied:
        count_failure(keys)
        body = render_template(
            template, errors={"current_password": _("This is not your current password.")}
        )
        return Response(body, status=422, mimetype="text/html")
    except ValidationError:
        body = render_template(template, errors={"new_password": _("Choose another password.")})
        return Response(body, status=422, mimetype="text/html")
    forget_failures(keys)
    flash(_("Your password has been changed."), "success")
    return redirect(url_for("workspace.home"), 303)


# --- language ------------------------------------------------------------------------------


@bp.post("/language")
def language() -> BaseResponse:
    chosen = request.form.get("lang", "")
    if chosen in LANGUAGES:
        session["lang"] = chosen
    return redirect(safe_next(request.form.get("next")), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
