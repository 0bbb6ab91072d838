"""Browser pages, ``/gallery``: browse the app templates, preview one, install it (administrators).

The gallery holds ``schemas/gallery/*.json`` (the CRM today). Every signed-in
user may browse; installing (with or without sample records) is for platform
administrators and goes through ``Recordbase.install`` as the signed-in
administrator, then to the new app's page.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import recordbase_web.gallery as gallery_module
from flask import Flask
from flask.testing import FlaskClient
from page_helpers import ADMIN, SYSTEM, USER, add_admin, add_user, login, post_form, token
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"


@pytest.fixture
def people(rb: Recordbase) -> Recordbase:
    add_admin(rb)
    add_user(rb)
    return rb


@pytest.fixture
def admin(client: FlaskClient, people: Recordbase) -> FlaskClient:
    assert login(client, *ADMIN).status_code == 303
    return client


@pytest.fixture
def user(client: FlaskClient, people: Recordbase) -> FlaskClient:
    assert login(client, *USER).status_code == 303
    return client


def installed(rb: Recordbase) -> list[str]:
    return [a["slug"] for a in rb.list_apps()]


def counts(rb: Recordbase) -> dict[str, int]:
    return {
        t: rb.records(SYSTEM, "crm", t).count()
        for t in ("companies", "contacts", "deals", "activities")
    }


def card(html: str, name: str) -> str:
    found = re.search(rf'<article id="template-{name}".*?</article>', html, re.S)
    assert found, name
    return found.group(0)


# --- who may see what ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/gallery", "/gallery/crm"])
def test_anonymous_visitors_are_sent_to_sign_in(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/login?next={path}"


def test_anonymous_install_is_sent_to_sign_in(client: FlaskClient, rb: Recordbase) -> None:
    response = client.post("/gallery/crm/install", data={"csrf_token": token(client)})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")
    assert installed(rb) == []


def test_a_user_browses_the_gallery_but_cannot_install(user: FlaskClient, rb: Recordbase) -> None:
    page = user.get("/gallery")
    assert page.status_code == 200
    crm = card(page.text, "crm")
    assert "CRM" in crm
    assert "Companies, contacts, deals and the activities that move them forward." in crm
    for table in ("Companies", "Contacts", "Deals", "Activities"):
        assert f"<li>{table}</li>" in crm
    assert "4 roles" in crm and "8 views" in crm
    assert 'href="/gallery/crm"' in crm
    assert "/gallery/crm/install" not in page.text
    assert "Only an administrator can install a template." in crm

    response = post_form(user, "/gallery/crm/install", {"sample_data": "1"}, form_page="/gallery")
    assert response.status_code == 403
    assert installed(rb) == []


def test_the_gallery_in_chinese(user: FlaskClient) -> None:
    page = user.get("/gallery", headers={"Accept-Language": "zh-CN"})
    crm = card(page.text, "crm")
    assert "客户关系管理" in crm and "公司、联系人、商机，以及推动商机的跟进记录。" in crm
    assert "<li>联系人</li>" in crm and "<li>跟进记录</li>" in crm
    preview = user.get("/gallery/crm", headers={"Accept-Language": "zh-CN"})
    assert "销售经理" in preview.text and "进行中的商机" in preview.text


def test_an_unknown_template_is_404(user: FlaskClient) -> None:
    assert user.get("/gallery/nothing").status_code == 404
    assert user.get("/gallery/..%2Fapp.schema").status_code == 404


# --- the preview ----------------------------------------------------------------------------------


def field_row(html: str, table: str, field: str) -> list[str]:
    section = html.split(f'<article id="table-{table}"', 1)[1].split("</article>", 1)[0]
    row = re.search(rf'<tr data-field="{field}">(.*?)</tr>', section, re.S)
    assert row, (table, field)
    return [
        re.sub(r"<[^>]+>", "", c).strip()
        for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)
    ]


def test_the_preview_shows_fields_privacy_roles_and_views(user: FlaskClient) -> None:
    page = user.get("/gallery/crm")
    assert page.status_code == 200
    assert field_row(page.text, "contacts", "email") == [
        "Email",
        "email",
        "no",
        "personal · encrypted",
        "To send quotes and follow-ups the contact asked for.",
    ]
    assert field_row(page.text, "contacts", "name") == [
        "Name",
        "text",
        "yes",
        "personal · encrypted",
        "To address the contact in sales conversations.",
    ]
    assert field_row(page.text, "companies", "website") == ["Website", "url", "no", "public", "—"]
    contacts = page.text.split('<article id="table-contacts"', 1)[1].split("</article>", 1)[0]
    assert (
        "sales_follow_up, product_news (text version 2024-06); withdrawing does: anonymise."
        in contacts
    )
    activities = page.text.split('<article id="table-activities"', 1)[1].split("</article>", 1)[0]
    assert "delete 1095 days after created" in activities
    role = re.search(r'<tr id="role-marketing">(.*?)</tr>', page.text, re.S).group(1)
    assert "Marketing" in role and "Reads companies and closed deals for campaigns." in role
    assert "public, internal" in role
    view = re.search(r'<tr id="view-pipeline">(.*?)</tr>', page.text, re.S).group(1)
    assert "Pipeline" in view and "Kanban" in view and "Deals" in view


# --- installing -----------------------------------------------------------------------------------


def test_an_admin_installs_without_sample_data(admin: FlaskClient, rb: Recordbase) -> None:
    page = admin.get("/gallery/crm")
    assert 'action="/gallery/crm/install"' in page.text
    assert (
        'name="sample_data" value="1" checked' in page.text
    )  # sample records are offered by default
    response = post_form(admin, "/gallery/crm/install", {}, form_page="/gallery/crm")
    assert response.status_code == 303
    assert response.headers["Location"] == "/apps/crm"
    assert installed(rb) == ["crm"]
    assert counts(rb) == {"companies": 0, "contacts": 0, "deals": 0, "activities": 0}
    landing = admin.get("/apps/crm")
    assert "CRM was installed." in landing.text
    install = [e for e in rb.audit_entries() if e["action"] == "install"]
    assert [e["actor_name"] for e in install] == ["Ada Admin"]


def test_an_admin_installs_with_sample_data(admin: FlaskClient, rb: Recordbase) -> None:
    response = post_form(admin, "/gallery/crm/install", {"sample_data": "1"}, form_page="/gallery")
    assert response.status_code == 303
    assert response.headers["Location"] == "/apps/crm"
    assert counts(rb) == {"companies": 25, "contacts": 25, "deals": 25, "activities": 25}
    assert "CRM was installed with 125 sample records." in admin.get("/apps/crm").text
    creators = {e["actor_name"] for e in rb.audit_entries() if e["action"] == "create"}
    assert creators == {"Ada Admin"}


def test_an_installed_template_says_so_and_is_not_installed_again(
    admin: FlaskClient, rb: Recordbase
) -> None:
    definition, _problems = load_definition_file(CRM)
    rb.install(definition, SYSTEM)
    page = admin.get("/gallery")
    crm = card(page.text, "crm")
    assert "Installed." in crm and 'href="/apps/crm"' in crm
    assert "/gallery/crm/install" not in crm
    before = len(rb.audit_entries())
    response = post_form(
        admin, "/gallery/crm/install", {"sample_data": "1"}, form_page="/gallery/crm"
    )
    assert response.status_code == 409
    assert "This template is installed already: open its app instead." in response.text
    assert len(rb.audit_entries()) == before
    assert counts(rb)["contacts"] == 0


def test_a_user_with_a_role_gets_a_link_to_the_installed_app(
    user: FlaskClient, rb: Recordbase
) -> None:
    definition, _problems = load_definition_file(CRM)
    rb.install(definition, SYSTEM)
    assert 'href="/apps/crm"' not in card(user.get("/gallery").text, "crm")  # no role yet: no link
    rb.set_roles(SYSTEM, USER[0], "crm", ["auditor"])
    assert 'href="/apps/crm"' in card(user.get("/gallery").text, "crm")


@pytest.mark.parametrize("sent", [None, "not-the-token"])
def test_install_needs_the_csrf_token(admin: FlaskClient, rb: Recordbase, sent: str | None) -> None:
    data = {"sample_data": "1"} if sent is None else {"sample_data": "1", "csrf_token": sent}
    response = admin.post("/gallery/crm/install", data=data)
    assert response.status_code == 403
    assert installed(rb) == []


@pytest.fixture
def broken_gallery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A gallery folder with the CRM and a template whose definition has a mistake."""
    folder = tmp_path / "gallery"
    folder.mkdir()
    (folder / "crm.json").write_text(CRM.read_text(encoding="utf-8"), encoding="utf-8")
    broken = {
        "slug": "shop",
        "label": "Shop",
        "tables": [
            {
                "slug": "t",
                "label": "T",
                "fields": [{"slug": "n", "label": "N", "type": "no_such_type"}],
            }
        ],
    }
    (folder / "shop.json").write_text(json.dumps(broken), encoding="utf-8")
    monkeypatch.setattr(gallery_module, "GALLERY", folder)
    return folder


def test_a_template_with_problems_shows_them_and_is_not_installed(
    admin: FlaskClient, rb: Recordbase, broken_gallery: Path, app: Flask
) -> None:
    page = admin.get("/gallery")
    shop = card(page.text, "shop")
    assert "This template has problems and cannot be installed." in shop
    assert "/gallery/shop/install" not in shop
    assert "/gallery/crm/install" in card(page.text, "crm")
    preview = admin.get("/gallery/shop")
    assert "/tables/0/fields/0/type" in preview.text
    response = post_form(admin, "/gallery/shop/install", {}, form_page="/gallery/crm")
    assert response.status_code == 422
    assert 'id="install-error"' in response.text
    assert installed(rb) == []
