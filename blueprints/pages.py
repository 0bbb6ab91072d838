"""What every browser page shares: sign-in required, safe redirects, security headers, HTML errors.

**Headers.** Every response gets ``X-Content-Type-Options: nosniff``,
``Referrer-Policy: same-origin``, ``X-Frame-Options: DENY`` and, unless the
view set its own (``/api/docs`` does), a Content-Security-Policy that allows
scripts and styles from this origin only — no inline script, no ``eval`` —
and no framing (``frame-ancestors 'none'``). Pages carry a CSRF token and
personal data, so they are never cached (``Cache-Control: no-store``).

**Session cookie.** HttpOnly, ``SameSite=Lax``, and ``Secure`` when
``RECORDBASE_SECURE_COOKIES=1`` (serve over HTTPS then).

**Sign-in.** Page blueprints call :func:`require_login` before each request:
an anonymous visitor is sent to ``/login?next=<the page>``; ``next`` is only
ever followed to a path on this site (:func:`safe_next`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from recordbase.actor import Actor
from recordbase.errors import RecordbaseError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from . import errors
from .config import config_value
from .config import engine as engine  # re-exported: the page blueprints import it from here

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
# The blueprints that render pages (HTML errors, no caching); the API and /api/docs keep their own ways.
PAGE_BLUEPRINTS: set[str] = set()


def actor() -> Actor:
    """The signed-in user's actor, loaded for this request (see ``identity.py``)."""
    found: Actor = current_user.actor
    return found


def safe_next(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default  # browsers read "/\evil.example" as "//evil.example"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def here() -> str:
    """This request's path and query, as a ``next`` value."""
    return request.full_path.rstrip("?") if request.query_string else request.path


def login_redirect() -> BaseResponse:
    target = url_for("accounts.login", next=here() if request.method == "GET" else None)
    if request.headers.get("HX-Request"):  # an htmx call: make the browser go, not the fragment
        return Response(status=401, headers={"HX-Redirect": target})
    return redirect(target, 303)


def require_login() -> BaseResponse | None:
    """``before_request`` of page blueprints: anonymous visitors go to the sign-in page."""
    if current_user.is_authenticated:
        return None
    return login_redirect()


def page_blueprint(bp: Blueprint) -> Blueprint:
    """Mark ``bp`` as rendering pages: HTML error pages, responses not cached."""
    PAGE_BLUEPRINTS.add(bp.name)
    bp.register_error_handler(RecordbaseError, _engine_error_page)
    bp.register_error_handler(CSRFError, _csrf_error_page)
    bp.register_error_handler(HTTPException, _http_error_page)
    bp.after_request(_no_store)
    return bp


def error_page(status: int, message: str) -> BaseResponse:
    titles = {
        403: _("Access denied"),
        404: _("Not found"),
        429: _("Too many requests"),
    }
    title = titles.get(status, _("Something went wrong"))
    body = render_template("error.html", status=status, title=title, message=message)
    return Response(body, status=status, mimetype="text/html")


def _engine_error_page(error: RecordbaseError) -> BaseResponse:
    if error.status == 404:
        return error_page(404, _("This page does not exist, or you have no access to it."))
    if error.status == 403:
        return error_page(403, _("You are not allowed to do this."))
    return error_page(error.status, error.message)


def _csrf_error_page(error: CSRFError) -> BaseResponse:
    return error_page(
        403,
        _("The form has expired or was not sent from this site. Reload the page and try again."),
    )


def _http_error_page(error: HTTPException) -> BaseResponse:
    status = error.code or 500
    messages = {
        403: _("You do not have access to this page."),
        404: _("This page does not exist, or you have no access to it."),
        405: _("This address cannot be used that way."),
    }
    response = error_page(status, messages.get(status, _("The request could not be handled.")))
    for name in ("Allow", "Retry-After"):
        if name in error.get_response().headers:
            response.headers[name] = error.get_response().headers[name]
    return response


def _no_store(response: BaseResponse) -> BaseResponse:
    if response.mimetype == "text/html":
        response.headers["Cache-Control"] = "no-store"
    return response


def _security_headers(response: BaseResponse) -> BaseResponse:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.mimetype == "text/html" and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"  # error pages outside the page blueprints
    return response


def _not_found(error: HTTPException) -> BaseResponse:
    """An unknown address: a page for a browser, problem+json for the API and other clients."""
    if request.blueprint in PAGE_BLUEPRINTS:
        return _http_error_page(error)
    wants_html = (
        request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html"
    )
    if wants_html and request.blueprint is None and not request.path.startswith("/api/"):
        return _http_error_page(error)
    return errors.handle_http_exception(error)


def init_app(app: Flask) -> None:
    # Flask's defaults are HttpOnly, no SameSite, not Secure; a test_config may still say otherwise.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    secure = config_value(app, "RECORDBASE_SECURE_COOKIES", "0").strip().lower()
    if secure in ("1", "true", "yes", "on"):
        app.config["SESSION_COOKIE_SECURE"] = True
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    app.after_request(_security_headers)
    app.register_error_handler(404, _not_found)
