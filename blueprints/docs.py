"""``/api/docs``: the API's OpenAPI document in Swagger UI, served from this machine.

Swagger UI comes from npm (``swagger-ui-dist``, pinned in ``package.json``,
installed by ``make assets``) and is served straight out of ``node_modules``
— no CDN, no copy in the repository. Only the files the page needs are
served. The page runs no inline script (its start-up is ``static/api-docs.js``)
and says so in its Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Flask, Response, render_template, send_from_directory
from werkzeug.exceptions import NotFound

SWAGGER_UI = Path(__file__).resolve().parent.parent / "node_modules" / "swagger-ui-dist"
ASSETS = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png"}
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

bp = Blueprint("api_docs", __name__, static_folder="static", static_url_path="/api/docs/static")


@bp.get("/api/docs")
def page() -> Response:
    response = Response(render_template("api_docs.html"), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CSP
    response.headers["Cache-Control"] = "no-store"  # it carries the session's CSRF token
    return response


@bp.get("/api/docs/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound()
    if not (SWAGGER_UI / name).is_file():
        raise NotFound("the API browser's files are not installed: run 'make assets' (npm ci)")
    return send_from_directory(SWAGGER_UI, name, max_age=3600)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
