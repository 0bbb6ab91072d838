"""Browser pages, ``/admin/users``: list, add, roles, (de)activate — for platform administrators only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from page_helpers import (
    ADMIN,
    SYSTEM,
    USER,
    add_admin,
    add_user,
    csrf_from,
    login,
    post_form,
    token,
)
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"


@pytest.fixture
def world(rb: Recordbase) -> Recordbase:
    definition, problems = load_definition_file(CRM)
    assert not problems
    rb.install(definition, SYSTEM)
    add_admin(rb)
    add_user(rb)
    return rb


@pytest.fixture
def admin(client: FlaskClient, world: Recordbase) -> FlaskClient:
    assert login(client, *ADMIN).status_code == 303
    return client


def user_row(html: str, email: str) -> str:
    found = re.search(rf'<tr id="user-\d+" data-email="{re.escape(email)}">(.*?)</tr>', html, re.S)
    assert found, email
    return found.group(1)


def roles_of(rb: Recordbase, email: str) -> list[str]:
    return next(u["roles"] for u in rb.list_users() if u["email"] == email)


def audit_actions(rb: Recordbase) -> list[str]:
    return [e["action"] for e in rb.audit_entries()]


def test_admin_sees_every_user_with_roles(admin: FlaskClient, world: Recordbase) -> None:
    world.set_roles(SYSTEM, USER[0], "crm", ["sales_rep", "auditor"])
    page = admin.get("/admin/users")
    assert page.status_code == 200
    row = user_row(page.text, USER[0])
    assert "Li Wei" in row and "CRM: Sales rep" in row and "CRM: Auditor" in row
    assert "administrator" in user_row(page.text, ADMIN[0])
    # The role select offers the roles the CRM declares, labelled.
    assert '<optgroup label="CRM">' in page.text
    for role in ("sales_manager", "sales_rep", "marketing", "auditor"):
        assert f'value="crm:{role}"' in page.text


def test_admin_page_in_chinese(admin: FlaskClient, world: Recordbase) -> None:
    world.set_roles(SYSTEM, USER[0], "crm", ["sales_rep"])
    page = admin.get("/admin/users", headers={"Accept-Language": "zh-CN"})
    assert "客户关系管理: 销售代表" in user_row(page.text, USER[0])
    assert "添加用户" in page.text and "用户" in page.text


def test_add_user_with_password_and_role(admin: FlaskClient, world: Recordbase) -> None:
    response = post_form(
        admin,
        "/admin/users",
        {
            "email": "Zhang.San@Example.org",
            "name": "Zhang San",
            "password": "zhang-san-pass",
            "role": "crm:sales_rep",
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == "/admin/users"
    page = admin.get("/admin/users").text
    assert "zhang.san@example.org was added." in page
    assert "CRM: Sales rep" in user_row(page, "zhang.san@example.org")
    assert roles_of(world, "zhang.san@example.org") == ["crm:sales_rep"]
    assert {"user_create", "role_change"} <= set(audit_actions(world))
    assert world.authenticate("zhang.san@example.org", "zhang-san-pass") is not None


def test_add_user_with_a_generated_password_shows_it_once(
    admin: FlaskClient, world: Recordbase
) -> None:
    response = post_form(
        admin, "/admin/users", {"email": "wang@example.org", "name": "", "password": "", "role": ""}
    )
    assert response.status_code == 201
    shown = re.search(r'id="generated-password">.*?<code>([^<]+)</code>', response.text, re.S)
    assert shown
    assert world.authenticate("wang@example.org", shown.group(1)) is not None
    assert roles_of(world, "wang@example.org") == []
    assert shown.group(1) not in admin.get("/admin/users").text  # only in that answer
    with admin.session_transaction() as session:
        assert shown.group(1) not in str(dict(session))


@pytest.mark.parametrize(
    "data, message",
    [
        ({"email": "not-an-email", "password": ""}, "Enter an email address."),
        ({"email": USER[0], "password": ""}, "A user with this email already exists."),
        ({"email": "new@example.org", "password": "short"}, "Use at least 8 characters."),
        (
            {"email": "new@example.org", "password": "", "role": "crm:emperor"},
            "Choose one of the listed roles.",
        ),
    ],
)
def test_add_user_mistakes(
    admin: FlaskClient, world: Recordbase, data: dict[str, str], message: str
) -> None:
    before = len(world.list_users())
    response = post_form(admin, "/admin/users", {"name": "", "role": "", **data})
    assert response.status_code == 422
    assert message in response.text
    assert len(world.list_users()) == before


def user_id(rb: Recordbase, email: str) -> int:
    return next(u["id"] for u in rb.list_users() if u["email"] == email)


def test_give_and_take_roles(admin: FlaskClient, world: Recordbase) -> None:
    uid = user_id(world, USER[0])
    response = post_form(
        admin, f"/admin/users/{uid}/roles", {"role": "crm:sales_rep"}, form_page="/admin/users"
    )
    assert response.status_code == 303
    post_form(
        admin, f"/admin/users/{uid}/roles", {"role": "crm:marketing"}, form_page="/admin/users"
    )
    assert roles_of(world, USER[0]) == ["crm:marketing", "crm:sales_rep"]
    post_form(
        admin,
        f"/admin/users/{uid}/roles/remove",
        {"role": "crm:sales_rep"},
        form_page="/admin/users",
    )
    assert roles_of(world, USER[0]) == ["crm:marketing"]
    assert audit_actions(world).count("role_change") == 3
    refused = post_form(
        admin, f"/admin/users/{uid}/roles", {"role": "crm:emperor"}, form_page="/admin/users"
    )
    assert refused.status_code == 303
    assert "Choose one of the listed roles." in admin.get("/admin/users").text
    assert roles_of(world, USER[0]) == ["crm:marketing"]


def test_role_forms_work_through_htmx(admin: FlaskClient, world: Recordbase) -> None:
    """htmx follows the redirect and keeps #users from the page; the token may come as a header."""
    uid = user_id(world, USER[0])
    csrf = token(admin, "/admin/users")
    response = admin.post(
        f"/admin/users/{uid}/roles",
        data={"role": "crm:auditor"},
        headers={"HX-Request": "true", "X-CSRFToken": csrf},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert '<section id="users"' in response.text
    assert roles_of(world, USER[0]) == ["crm:auditor"]


def test_deactivate_and_activate(admin: FlaskClient, world: Recordbase) -> None:
    uid = user_id(world, USER[0])
    post_form(admin, f"/admin/users/{uid}/active", {"active": "0"}, form_page="/admin/users")
    assert "deactivated" in user_row(admin.get("/admin/users").text, USER[0])
    assert world.authenticate(*USER) is None
    post_form(admin, f"/admin/users/{uid}/active", {"active": "1"}, form_page="/admin/users")
    assert world.authenticate(*USER) is not None
    assert {"user_deactivate", "user_activate"} <= set(audit_actions(world))


def test_a_deactivated_user_is_signed_out_at_the_next_request(
    client: FlaskClient, world: Recordbase
) -> None:
    login(client, *USER)
    assert client.get("/").status_code == 200
    world.set_active(SYSTEM, USER[0], False)
    assert client.get("/").status_code == 303


def test_admin_cannot_deactivate_themselves(admin: FlaskClient, world: Recordbase) -> None:
    me = user_id(world, ADMIN[0])
    post_form(admin, f"/admin/users/{me}/active", {"active": "0"}, form_page="/admin/users")
    assert "You cannot deactivate your own account." in admin.get("/admin/users").text
    assert world.authenticate(*ADMIN) is not None


def test_unknown_user_is_404(admin: FlaskClient, world: Recordbase) -> None:
    response = post_form(
        admin, "/admin/users/999/active", {"active": "0"}, form_page="/admin/users"
    )
    assert response.status_code == 404 and response.mimetype == "text/html"


ADMIN_REQUESTS = [
    ("GET", "/admin/users", {}),
    ("POST", "/admin/users", {"email": "x@example.org", "password": "x-password-1"}),
    ("POST", "/admin/users/1/roles", {"role": "crm:sales_rep"}),
    ("POST", "/admin/users/1/roles/remove", {"role": "crm:sales_rep"}),
    ("POST", "/admin/users/1/active", {"active": "0"}),
]


@pytest.mark.parametrize("method, path, data", ADMIN_REQUESTS)
def test_non_admins_are_refused(
    client: FlaskClient, world: Recordbase, method: str, path: str, data: dict
) -> None:
    world.set_roles(
        SYSTEM, USER[0], "crm", ["sales_manager"]
    )  # a manager in an app is no platform admin
    login(client, *USER)
    before = audit_actions(world)
    csrf = token(client, "/")
    response = client.open(path, method=method, data={**data, "csrf_token": csrf})
    assert response.status_code == 403
    assert response.mimetype == "text/html"
    assert "You do not have access to this page." in response.text
    assert audit_actions(world) == before  # nothing changed
    assert "/admin/users" not in client.get("/").text  # no link to it either


@pytest.mark.parametrize("method, path, data", ADMIN_REQUESTS)
def test_anonymous_visitors_are_sent_to_sign_in(
    client: FlaskClient, world: Recordbase, method: str, path: str, data: dict
) -> None:
    csrf = csrf_from(client.get("/login").text)
    response = client.open(path, method=method, data={**data, "csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("method, path, data", ADMIN_REQUESTS[1:])
def test_admin_posts_need_the_csrf_token(
    admin: FlaskClient, world: Recordbase, method: str, path: str, data: dict
) -> None:
    before = audit_actions(world)
    response = admin.post(path, data=data)
    assert response.status_code == 403
    assert audit_actions(world) == before
