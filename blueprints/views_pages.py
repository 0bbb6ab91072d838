"""(being built: see issue 4)"""

from __future__ import annotations

from flask import Blueprint, Flask, abort

from .pages import page_blueprint, require_login

bp = page_blueprint(Blueprint("views_pages", __name__))
bp.before_request(require_login)


@bp.get("/apps/<app>/views/<view>")
def view(app: str, view: str) -> str:
    abort(404)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
