"""Browser pages, accounts: sign in and out, password, sign-in required, CSRF, language, headers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from page_helpers import ADMIN, USER, add_admin, add_user, csrf_from, login, post_form, token
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase_web import create_app

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent


@pytest.fixture
def people(rb: Recordbase) -> None:
    add_admin(rb)
    add_user(rb)


@pytest.fixture
def limited_app(rb: Recordbase, settings: Settings) -> Iterator[Flask]:
    """The app with a small failed sign-in limit: 3 per email, 5 per address."""
    app = create_app(
        {
            "TESTING": True,
            "RECORDBASE_SETTINGS": settings,
            "RECORDBASE_LOGIN_LIMIT": "3/minute",
            "RECORDBASE_LOGIN_LIMIT_IP": "5/minute",
        }
    )
    yield app
    app.extensions["recordbase"].dispose()


def audit_actions(rb: Recordbase) -> list[tuple[str, dict]]:
    return [(e["action"], e["changes"]) for e in rb.audit_entries()]


# --- sign in -------------------------------------------------------------------------


def test_login_page_is_a_form_with_labels_and_csrf(client: FlaskClient) -> None:
    page = client.get("/login")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert '<label for="email">' in page.text and '<label for="password">' in page.text
    assert csrf_from(page.text)


def test_login_success_signs_in_and_is_audited(
    client: FlaskClient, rb: Recordbase, people: None
) -> None:
    response = login(client, *USER)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Li Wei" in home.text  # the user's name in the header
    login_entries = [c for a, c in audit_actions(rb) if a == "login"]
    assert login_entries == [{"source": "127.0.0.1"}]


@pytest.mark.parametrize(
    "email, password, reason",
    [
        (USER[0], "not-the-password", "wrong password"),
        ("nobody@example.org", "whatever-it-is", "unknown email"),
    ],
)
def test_login_failure_is_generic_and_audited(
    client: FlaskClient, rb: Recordbase, people: None, email: str, password: str, reason: str
) -> None:
    response = login(client, email, password)
    assert response.status_code == 422
    assert "Wrong email or password." in response.text
    assert client.get("/").status_code == 303  # still anonymous
    failed = [c for a, c in audit_actions(rb) if a == "login_failed"]
    assert failed == [{"source": "127.0.0.1", "reason": reason}]
    assert password not in str(rb.audit_entries())


def test_login_of_a_deactivated_user_fails_the_same_way(
    client: FlaskClient, rb: Recordbase, people: None
) -> None:
    rb.set_active(rb.actor_for(1) or pytest.fail("admin missing"), USER[0], False)  # type: ignore[arg-type]
    response = login(client, *USER)
    assert response.status_code == 422 and "Wrong email or password." in response.text


def test_login_with_empty_fields_asks_for_both(client: FlaskClient, people: None) -> None:
    response = login(client, USER[0], "")
    assert response.status_code == 422
    assert "Enter your email and your password." in response.text


def test_failed_logins_are_rate_limited_per_email(
    limited_app: Flask, rb: Recordbase, people: None
) -> None:
    client = limited_app.test_client()
    for _ in range(3):
        assert login(client, USER[0], "wrong-password").status_code == 422
    refused = login(client, *USER)  # even the right password, until the window passes
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "Too many failed attempts" in refused.text
    # Another email from the same address is still allowed (its own count, and the address has room).
    assert login(client, *ADMIN).status_code == 303
    # Refused attempts never reached the engine: three failures audited, no login for the user.
    actions = [a for a, _ in audit_actions(rb)]
    assert actions.count("login_failed") == 3


def test_failed_logins_are_rate_limited_per_address(limited_app: Flask, people: None) -> None:
    client = limited_app.test_client()
    for number in range(5):
        assert login(client, f"someone{number}@example.org", "wrong-password").status_code == 422
    assert login(client, *USER).status_code == 429


def test_a_successful_login_clears_the_emails_count(limited_app: Flask, people: None) -> None:
    client = limited_app.test_client()
    for _ in range(2):
        login(client, USER[0], "wrong-password")
    assert login(client, *USER).status_code == 303
    client.post("/logout", data={"csrf_token": token(client, "/")})
    for _ in range(2):
        assert login(client, USER[0], "wrong-password").status_code == 422
    assert login(client, *USER).status_code == 303


def test_signing_in_starts_a_fresh_session_keeping_the_language(
    client: FlaskClient, people: None
) -> None:
    post_form(client, "/language", {"lang": "zh-CN", "next": "/login"}, form_page="/login")
    with client.session_transaction() as session:
        session["leftover"] = "from before"
    login(client, *USER)
    with client.session_transaction() as session:
        assert "leftover" not in session
        assert session["lang"] == "zh-CN"
        assert session["_user_id"] == "2"


# --- sign-in required and next ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/apps/crm", "/admin/users", "/account/password"])
def test_pages_require_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")


def test_next_brings_the_user_back_after_sign_in(client: FlaskClient, people: None) -> None:
    first = client.get("/account/password?tab=1")
    assert first.headers["Location"] == "/login?next=/account/password?tab%3D1"
    page = client.get(first.headers["Location"])
    assert 'name="next" value="/account/password?tab=1"' in page.text
    response = login(client, *USER, next="/account/password?tab=1")
    assert response.headers["Location"] == "/account/password?tab=1"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "http:/evil",
        "javascript:alert(1)",
        "/\x00x",
        "evil",
        "",
    ],
)
def test_next_never_leaves_the_site(client: FlaskClient, people: None, target: str) -> None:
    response = login(client, *USER, next=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


def test_signed_in_user_visiting_login_goes_on(client: FlaskClient, people: None) -> None:
    login(client, *USER)
    assert client.get("/login?next=/account/password").headers["Location"] == "/account/password"
    assert client.get("/login?next=//evil.example").headers["Location"] == "/"


def test_htmx_calls_without_a_session_are_told_where_to_go(client: FlaskClient) -> None:
    response = client.get("/", headers={"HX-Request": "true"})
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")


# --- sign out -------------------------------------------------------------------------


def test_logout_ends_the_session(client: FlaskClient, people: None) -> None:
    login(client, *USER)
    response = client.post("/logout", data={"csrf_token": token(client, "/")})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login"
    assert "You have logged out." in client.get("/login").text
    assert client.get("/").status_code == 303


def test_logout_is_post_only(client: FlaskClient, people: None) -> None:
    login(client, *USER)
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200


# --- CSRF ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, data",
    [
        ("/login", {"email": USER[0], "password": USER[1]}),
        ("/logout", {}),
        ("/language", {"lang": "zh-CN"}),
        (
            "/account/password",
            {
                "current_password": USER[1],
                "new_password": "new-pass-123",
                "new_password_again": "new-pass-123",
            },
        ),
    ],
)
def test_posts_without_the_csrf_token_are_refused(
    client: FlaskClient, rb: Recordbase, people: None, path: str, data: dict[str, str]
) -> None:
    if path != "/login":
        login(client, *USER)
    response = client.post(path, data=data)
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert "The form has expired" in response.text
    wrong = client.post(path, data={**data, "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert client.get("/").status_code == (303 if path == "/login" else 200)  # nothing happened


def test_the_csrf_header_works_for_htmx_requests(client: FlaskClient, people: None) -> None:
    login(client, *USER)
    csrf = token(client, "/")
    response = client.post(
        "/language", data={"lang": "zh-CN"}, headers={"X-CSRFToken": csrf, "HX-Request": "true"}
    )
    assert response.status_code == 303
    assert "工作台" in client.get("/").text


def test_pages_load_the_csrf_script_and_htmx_without_inline_script(
    client: FlaskClient, people: None
) -> None:
    login(client, *USER)
    page = client.get("/").text
    assert '<meta name="csrf-token" content="' in page
    assert "/assets/htmx.min.js?v=2.0." in page
    assert "/static/app.js?v=" in page
    assert "<script>" not in page and "<script " not in page.replace("<script src=", "")
    assert " on" not in page.replace(" onl", "")  # no inline event handlers (onclick=...)


# --- password ------------------------------------------------------------------------------


def change(client: FlaskClient, current: str, new: str, again: str | None = None):
    return post_form(
        client,
        "/account/password",
        {
            "current_password": current,
            "new_password": new,
            "new_password_again": new if again is None else again,
        },
    )


def test_password_change_replaces_the_password(
    client: FlaskClient, rb: Recordbase, people: None
) -> None:
    login(client, *USER)
    response = change(client, USER[1], "a-brand-new-pass")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "Your password has been changed." in client.get("/").text
    entries = [c for a, c in audit_actions(rb) if a == "password_change"]
    assert entries == [{"user_id": 2}]
    assert "a-brand-new-pass" not in str(rb.audit_entries()) and USER[1] not in str(
        rb.audit_entries()
    )
    client.post("/logout", data={"csrf_token": token(client, "/")})
    assert login(client, *USER).status_code == 422  # the old password stops working
    assert login(client, USER[0], "a-brand-new-pass").status_code == 303


@pytest.mark.parametrize(
    "current, new, again, message",
    [
        ("wrong-current-pw", "a-brand-new-pass", None, "This is not your current password."),
        (USER[1], "short", None, "Use at least 8 characters."),
        (USER[1], "a-brand-new-pass", "another-new-pass", "The two new passwords differ."),
        ("", "a-brand-new-pass", None, "Enter your current password."),
    ],
)
def test_password_change_mistakes_are_shown_by_the_field(
    client: FlaskClient,
    rb: Recordbase,
    people: None,
    current: str,
    new: str,
    again: str | None,
    message: str,
) -> None:
    login(client, *USER)
    response = change(client, current, new, again)
    assert response.status_code == 422
    assert message in response.text
    assert 'aria-invalid="true"' in response.text
    assert "password_change" not in [a for a, _ in audit_actions(rb)]
    client.post("/logout", data={"csrf_token": token(client, "/")})
    assert login(client, *USER).status_code == 303  # unchanged


def test_wrong_current_passwords_are_rate_limited(limited_app: Flask, people: None) -> None:
    client = limited_app.test_client()
    login(client, *USER)
    for _ in range(3):
        assert change(client, "wrong-current-pw", "a-brand-new-pass").status_code == 422
    assert change(client, USER[1], "a-brand-new-pass").status_code == 429


def test_engine_change_password_checks_the_current_one(rb: Recordbase, people: None) -> None:
    from recordbase.errors import PermissionDenied, ValidationError

    me = rb.authenticate(*USER)
    assert me is not None
    with pytest.raises(PermissionDenied):
        rb.change_password(me, "wrong", "another-password")
    with pytest.raises(ValidationError):
        rb.change_password(me, USER[1], "short")
    rb.change_password(me, USER[1], "another-password")
    assert rb.authenticate(*USER) is None
    assert rb.authenticate(USER[0], "another-password") is not None


# --- language ------------------------------------------------------------------------------


def test_accept_language_chooses_chinese(client: FlaskClient, people: None) -> None:
    page = client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-CN">' in page.text
    assert "<title>登录 · Recordbase</title>" in page.text
    assert "邮箱" in page.text and "密码" in page.text
    english = client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"})
    assert '<html lang="en">' in english.text and "Sign in" in english.text
    assert "Sign in" in client.get("/login", headers={"Accept-Language": "fr"}).text


def test_language_switch_wins_over_the_browser(client: FlaskClient, people: None) -> None:
    login(client, *USER)
    response = post_form(
        client, "/language", {"lang": "zh-CN", "next": "/account/password"}, form_page="/"
    )
    assert response.status_code == 303 and response.headers["Location"] == "/account/password"
    page = client.get("/", headers={"Accept-Language": "en"})
    assert '<html lang="zh-CN">' in page.text
    assert "工作台" in page.text and "退出登录" in page.text
    post_form(client, "/language", {"lang": "en"}, form_page="/")
    assert "Workspace" in client.get("/", headers={"Accept-Language": "zh-CN"}).text


def test_language_switch_ignores_unknown_languages_and_foreign_next(client: FlaskClient) -> None:
    response = post_form(
        client, "/language", {"lang": "xx", "next": "https://evil.example/"}, form_page="/login"
    )
    assert response.headers["Location"] == "/"
    assert '<html lang="en">' in client.get("/login").text


def test_chinese_errors_on_the_login_page(client: FlaskClient, people: None) -> None:
    post_form(client, "/language", {"lang": "zh-CN"}, form_page="/login")
    assert "邮箱或密码错误。" in login(client, USER[0], "wrong-password").text


# --- headers and cookies -------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/", "/account/password", "/admin/users", "/nope"])
def test_security_headers_on_pages(client: FlaskClient, people: None, path: str) -> None:
    login(client, *ADMIN)
    response = client.get(path, headers={"Accept": "text/html"})
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in directives["script-src"] and "unsafe-eval" not in csp
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_security_headers_also_on_the_api_and_docs_keep_their_own(client: FlaskClient) -> None:
    api = client.get("/api/v1/apps")
    assert api.status_code == 401 and api.mimetype == "application/problem+json"
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    docs = client.get("/api/docs")
    assert (
        "style-src 'self' 'unsafe-inline'" in docs.headers["Content-Security-Policy"]
    )  # Swagger UI's own


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient, people: None) -> None:
    response = login(client, *USER)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_secure_cookies_when_configured(rb: Recordbase, settings: Settings, people: None) -> None:
    app = create_app(
        {"TESTING": True, "RECORDBASE_SETTINGS": settings, "RECORDBASE_SECURE_COOKIES": "1"}
    )
    try:
        client = app.test_client()
        response = login(client, *USER)
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        app.extensions["recordbase"].dispose()
