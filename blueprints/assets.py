"""Static files of the pages: third-party assets from ``node_modules`` and our own from ``static/``.

Third-party files come from npm (``htmx.org``, ``@picocss/pico``, ``sortablejs``,
``chart.js``; pinned in
``package.json`` / ``package-lock.json``, installed by ``make assets``) and are
served straight out of ``node_modules`` — no CDN, no copy in the repository —
from a fixed allow-list, the way ``docs.py`` serves Swagger UI.

URLs carry a version (``?v=`` the package's version, or a digest of our own
file), so the files are cached for a year and a new release is fetched at
once: use ``asset_url(name)`` and ``static_url(filename)`` in templates.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from flask import Blueprint, Flask, request, send_from_directory, url_for
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.wrappers import Response as BaseResponse

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
STATIC = Path(__file__).resolve().parent / "static"
# name in the URL → (npm package, file inside it)
VENDOR = {
    "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
    "pico.min.css": ("@picocss/pico", "css/pico.min.css"),
    "sortable.min.js": ("sortablejs", "Sortable.min.js"),
    "chart.umd.min.js": ("chart.js", "dist/chart.umd.min.js"),  # bundles its one dependency
}
YEAR = 365 * 24 * 3600
SHORT = 3600  # a URL without the current version: the file may change

bp = Blueprint("assets", __name__)


@functools.cache
def package_version(package: str) -> str:
    try:
        return str(json.loads((NODE_MODULES / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "missing"


def file_digest(filename: str) -> str:
    """A short digest of one of our files (recomputed when the file changes)."""
    path = safe_join(str(STATIC), filename)
    try:
        modified = Path(path or "").stat().st_mtime_ns
    except OSError:
        return "missing"
    return _digest(str(path), modified)


@functools.lru_cache(maxsize=256)
def _digest(path: str, modified: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def asset_url(name: str) -> str:
    package, _ = VENDOR[name]
    return url_for("assets.vendor", name=name, v=package_version(package))


def static_url(filename: str) -> str:
    return url_for("assets.static", filename=filename, v=file_digest(filename))


def _cached(response: BaseResponse, current: str) -> BaseResponse:
    if request.args.get("v") == current:
        response.cache_control.max_age = YEAR
        response.cache_control.public = True
        response.cache_control.immutable = True
    return response


@bp.get("/assets/<name>")
def vendor(name: str) -> BaseResponse:
    if name not in VENDOR:
        raise NotFound()
    package, inside = VENDOR[name]
    folder = (NODE_MODULES / package / inside).parent
    if not (folder / Path(inside).name).is_file():
        raise NotFound("the pages' assets are not installed: run 'make assets' (npm ci)")
    response = send_from_directory(folder, Path(inside).name, max_age=SHORT)
    return _cached(response, package_version(package))


@bp.get("/static/<path:filename>")
def static(filename: str) -> BaseResponse:
    response = send_from_directory(STATIC, filename, max_age=SHORT)  # 404 outside static/
    return _cached(response, file_digest(filename))


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(asset_url=asset_url, static_url=static_url)
    app.register_blueprint(bp)
