"""Web-only settings: Flask config first (tests), then the ``RECORDBASE_*`` environment.

The engine's ``Settings`` keeps every ``RECORDBASE_*`` variable in ``extra``;
the web app reads the ones only it uses (rate limits, request size) here.
"""

from __future__ import annotations

from flask import Flask, current_app
from recordbase.core import Recordbase


def config_value(app: Flask, name: str, default: str) -> str:
    """``app.config[name]`` when set, else the environment variable ``name``, else ``default``."""
    value = app.config.get(name)
    if value is None:
        value = app.config["RECORDBASE_SETTINGS"].extra.get(name)
    return default if value is None or str(value).strip() == "" else str(value)


def engine() -> Recordbase:
    """The app's one engine (built by ``create_app``), for the request being served."""
    rb: Recordbase = current_app.extensions["recordbase"]
    return rb
