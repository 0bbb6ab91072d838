"""``GET /healthz``: is the app up and can it reach its database?

For load balancers and monitoring; it says nothing about *why* the database is
unreachable (the log does), so it is safe to expose without authentication.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    try:
        current_app.extensions["recordbase"].ping()
    except Exception:
        current_app.logger.warning("Health check: database unreachable", exc_info=True)
        response, status = jsonify(status="error", database="unreachable"), 503
    else:
        response, status = jsonify(status="ok", database="ok"), 200
    response.headers["Cache-Control"] = "no-store"
    return response, status


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
