"""The Recordbase web application: a Flask app factory around one engine.

Installed as ``recordbase_web``. Blueprints parse requests, call the engine and
render; they never hold state of their own. The engine is built once per app,
kept for the app's lifetime (it owns the connection pool) and reached from a
view as ``current_app.extensions["recordbase"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from recordbase.config import Settings
from recordbase.core import Recordbase

from . import (
    accounts,
    admin,
    api,
    assets,
    automation_runs,
    builder,
    compliance,
    docs,
    errors,
    forms,
    gallery,
    health,
    i18n,
    identity,
    import_page,
    inbox,
    pages,
    ratelimits,
    record_page,
    records_pages,
    views_pages,
    workspace,
)
from .config import config_value

TEMPLATE_FOLDER = Path(__file__).resolve().parent.parent / "templates"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``RECORDBASE_*`` environment, then ``test_config``.

    ``test_config`` may carry a ready :class:`Settings` under ``RECORDBASE_SETTINGS``;
    otherwise settings are read from the environment with :meth:`Settings.from_env`.
    """
    overrides = dict(test_config or {})
    settings = overrides.pop("RECORDBASE_SETTINGS", None) or Settings.from_env()
    app = Flask(
        __name__,
        instance_path=str(settings.instance_path),
        template_folder=str(TEMPLATE_FOLDER),
        static_folder=None,
    )
    app.config.from_mapping(
        SECRET_KEY=settings.secret_key,
        RECORDBASE_SETTINGS=settings,
    )
    app.config.update(overrides)
    if app.config.get("MAX_CONTENT_LENGTH") is None:  # larger request bodies are refused with 413
        megabytes = float(config_value(app, "RECORDBASE_MAX_REQUEST_MB", "16"))
        app.config["MAX_CONTENT_LENGTH"] = int(megabytes * 1024 * 1024)

    init_engine(app, settings)
    errors.init_app(app)
    identity.init_app(app)
    pages.init_app(app)
    i18n.init_app(app)
    health.init_app(app)
    ratelimits.init_app(app)
    api.init_app(app)
    docs.init_app(app)
    assets.init_app(app)
    accounts.init_app(app)
    workspace.init_app(app)
    admin.init_app(app)
    records_pages.init_app(app)
    record_page.init_app(app)
    import_page.init_app(app)
    forms.init_app(app)
    views_pages.init_app(app)
    inbox.init_app(app)
    builder.init_app(app)
    automation_runs.init_app(app)
    gallery.init_app(app)
    compliance.init_app(app)
    trust_proxies(app)
    return app


def trust_proxies(app: Flask) -> None:
    """Behind ``RECORDBASE_PROXIES`` reverse proxies, take the client's address, scheme and host
    from their ``X-Forwarded-*`` headers (default 0: trust none — a client could choose its own)."""
    hops = int(config_value(app, "RECORDBASE_PROXIES", "0") or 0)
    if hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def init_engine(app: Flask, settings: Settings) -> None:
    """Create the app's engine. ``recordbase init`` creates the tables, not this."""
    app.extensions["recordbase"] = Recordbase(settings)
