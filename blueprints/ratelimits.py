"""The app's rate-limit counters: fixed windows of the ``limits`` library.

One :class:`RateCounter` per app (``app.extensions["recordbase_limiter"]``),
on the storage ``RECORDBASE_RATELIMIT_STORAGE`` names (``memory://`` by
default, per process; ``sqlite:///…`` shared by the workers of one machine,
see ``recordbase.serving.SQLiteRateLimitStorage``; ``redis://…`` across
machines). Its users count what they limit themselves: the API's two limits
per request (``api.limit_rate``), failed sign-ins and password checks
(``accounts``), public form submissions (``forms``). ``RATELIMIT_ENABLED =
False`` in the app's config turns all of them off.
"""

from __future__ import annotations

from flask import Flask, current_app
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from recordbase import serving  # noqa: F401  (registers the sqlite:// rate-limit storage)

from .config import config_value


class RateCounter:
    """A storage and the fixed-window strategy counting on it."""

    def __init__(self, storage_uri: str, *, enabled: bool = True) -> None:
        self.storage = storage_from_string(storage_uri)
        self.limiter = FixedWindowRateLimiter(self.storage)
        self.enabled = enabled


def counter() -> RateCounter:
    """The current app's counters."""
    found: RateCounter = current_app.extensions["recordbase_limiter"]
    return found


def init_app(app: Flask) -> None:
    app.extensions["recordbase_limiter"] = RateCounter(
        config_value(app, "RECORDBASE_RATELIMIT_STORAGE", "memory://"),
        enabled=bool(app.config.get("RATELIMIT_ENABLED", True)),
    )
