"""(being built: see issue 4)"""

from __future__ import annotations

from flask import Blueprint, Flask, abort

from .pages import page_blueprint, require_login

bp = page_blueprint(Blueprint("forms", __name__))
bp.before_request(require_login)


@bp.get("/apps/<app>/tables/<table>/new")
def new_record(app: str, table: str) -> str:
    abort(404)


@bp.get("/apps/<app>/tables/<table>/records/<int:record_id>/edit")
def edit_record(app: str, table: str, record_id: int) -> str:
    abort(404)


@bp.get("/apps/<app>/forms/<view>")
def form_view(app: str, view: str) -> str:
    abort(404)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
