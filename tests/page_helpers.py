"""Helpers for the page tests: the real CSRF flow (token read from a form) and signing in."""

from __future__ import annotations

import re

from flask.testing import FlaskClient
from recordbase.actor import Actor
from recordbase.core import Recordbase
from werkzeug.test import TestResponse

SYSTEM = Actor.system("tests")
ADMIN = ("admin@example.org", "admin-password-1")
USER = ("li.wei@example.org", "li-wei-password")

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_from(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def token(client: FlaskClient, path: str = "/login") -> str:
    """The CSRF token of a form on ``path``, as a browser would read it."""
    page = client.get(path, follow_redirects=True)
    assert page.status_code == 200, page.status_code
    return csrf_from(page.text)


def post_form(
    client: FlaskClient,
    path: str,
    data: dict[str, str],
    *,
    form_page: str | None = None,
    **kwargs: object,
) -> TestResponse:
    """POST ``data`` with the CSRF token read from ``form_page`` (default: ``path``)."""
    return client.post(
        path, data={"csrf_token": token(client, form_page or path), **data}, **kwargs
    )  # type: ignore[arg-type]


def login(client: FlaskClient, email: str, password: str, next: str | None = None) -> TestResponse:
    data = {"email": email, "password": password}
    if next is not None:
        data["next"] = next
    return post_form(client, "/login", data)


def add_admin(rb: Recordbase) -> None:
    rb.create_user(SYSTEM, ADMIN[0], ADMIN[1], display_name="Ada Admin", is_admin=True)


def add_user(
    rb: Recordbase, email: str = USER[0], password: str = USER[1], name: str = "Li Wei"
) -> None:
    rb.create_user(SYSTEM, email, password, display_name=name)
