"""Browser pages, forms: new and edit record pages and form views, as the signed-in user may use them.

The ``intake`` app has a table with one field of every type a form can hold,
and four people: ``staff`` (create, read, update, manage; sees personal data
in clear), ``clerk`` (create, read, update; personal data masked, the address
read-only), ``reader`` (read only) and ``stranger`` (no role in the app).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from page_helpers import SYSTEM, csrf_from, login
from recordbase.core import Recordbase

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

PASSWORD = "forms-password-1"
APP = "intake"
PEOPLE = "/apps/intake/tables/people"
NEW = PEOPLE + "/new"
FORM = "/apps/intake/forms/signup"
PEOPLE_ROLES = {"staff": ["staff"], "clerk": ["clerk"], "reader": ["reader"], "stranger": []}


def definition() -> dict[str, Any]:
    """An app with every kind of field a form holds, a form view and three roles."""
    choices = [
        {"id": "gold", "label": {"en": "Gold", "zh-CN": "金卡"}},
        {"id": "silver", "label": {"en": "Silver", "zh-CN": "银卡"}},
    ]
    tags = [
        {"id": "vip", "label": "VIP"},
        {"id": "new", "label": "New"},
        {"id": "b2b", "label": "B2B"},
    ]
    personal = {"sensitivity": "personal", "purpose": "contact the person"}
    return {
        "slug": APP,
        "label": {"en": "Intake", "zh-CN": "登记"},
        "roles": [
            {
                "slug": "staff",
                "label": "Staff",
                "clearance": ["public", "internal", "personal", "sensitive"],
            },
            {"slug": "clerk", "label": "Clerk", "clearance": ["public", "internal"]},
            {"slug": "reader", "label": "Reader"},
        ],
        "tables": [
            {
                "slug": "companies",
                "label": "Companies",
                "fields": [{"slug": "name", "label": "Name", "type": "text", "required": True}],
                "permissions": {
                    "staff": {"read": True, "create": True},
                    "clerk": {"read": True},
                    "reader": {"read": True},
                },
            },
            {
                "slug": "people",
                "label": {"en": "People", "zh-CN": "人员"},
                "primary_field": "name",
                "fields": [
                    {
                        "slug": "code",
                        "label": "Code",
                        "type": "autonumber",
                        "options": {"prefix": "P-", "digits": 4},
                    },
                    {
                        "slug": "name",
                        "label": {"en": "Name", "zh-CN": "姓名"},
                        "type": "text",
                        "required": True,
                        "help": {"en": "Full name", "zh-CN": "全名"},
                        **personal,
                        "encrypted": False,
                    },
                    {"slug": "bio", "label": "Bio", "type": "long_text"},
                    {"slug": "email", "label": "Email", "type": "email", **personal},
                    {
                        "slug": "phone",
                        "label": "Phone",
                        "type": "phone",
                        "options": {"region": "CN"},
                        **personal,
                    },
                    {"slug": "website", "label": "Website", "type": "url"},
                    {"slug": "address", "label": "Address", "type": "address", **personal},
                    {"slug": "age", "label": "Age", "type": "number", "options": {"min": 0}},
                    {
                        "slug": "budget",
                        "label": "Budget",
                        "type": "currency",
                        "options": {"currency": "CNY"},
                    },
                    {"slug": "share", "label": "Share", "type": "percent"},
                    {"slug": "stars", "label": "Stars", "type": "rating"},
                    {"slug": "active", "label": "Active", "type": "boolean"},
                    {"slug": "born", "label": "Born", "type": "date"},
                    {"slug": "meeting", "label": "Meeting", "type": "datetime"},
                    {
                        "slug": "level",
                        "label": "Level",
                        "type": "single_select",
                        "options": {"choices": choices},
                    },
                    {
                        "slug": "tags",
                        "label": "Tags",
                        "type": "multi_select",
                        "options": {"choices": tags},
                    },
                    {
                        "slug": "company",
                        "label": "Company",
                        "type": "link",
                        "options": {"table": "companies"},
                    },
                    {"slug": "owner", "label": "Owner", "type": "user"},
                    {
                        "slug": "files",
                        "label": "Files",
                        "type": "attachment",
                        "options": {"max_size_mb": 0.001},
                    },
                    {
                        "slug": "health",
                        "label": "Health",
                        "type": "text",
                        "sensitivity": "sensitive",
                        "purpose": "care for the person",
                    },
                    {"slug": "created", "label": "Created", "type": "created_at"},
                    {
                        "slug": "double_age",
                        "label": "Double age",
                        "type": "formula",
                        "options": {"formula": "age * 2"},
                    },
                ],
                "consent": {
                    "purposes": ["service", "newsletter"],
                    "text": {"en": "We keep your details.", "zh-CN": "我们保存您的资料。"},
                    "version": "v1",
                    "withdraw_action": "anonymise",
                },
                "permissions": {
                    "staff": {"read": True, "create": True, "update": True, "manage": True},
                    "clerk": {
                        "read": True,
                        "create": True,
                        "update": True,
                        "fields": {"address": "read"},
                    },
                    "reader": {"read": True},
                },
            },
        ],
        "views": [
            {"slug": "everyone", "label": "Everyone", "table": "people", "type": "grid"},
            {
                "slug": "signup",
                "label": {"en": "Sign up", "zh-CN": "报名"},
                "table": "people",
                "type": "form",
                "fields": ["email", "name", "phone", "health", "stars", "tags", "company", "level"],
                "description": {"en": "Tell us about you.", "zh-CN": "介绍一下您自己。"},
                "help": {
                    "email": {"en": "We answer to this address.", "zh-CN": "我们会回复到这个地址。"}
                },
                "submit_label": {"en": "Join", "zh-CN": "加入"},
                "thanks": {"en": "Welcome aboard!", "zh-CN": "欢迎加入！"},
                "consent_required": ["service"],
                "consent_labels": {
                    "newsletter": {"en": "Send me the newsletter", "zh-CN": "给我发送简讯"}
                },
            },
        ],
    }


@pytest.fixture
def intake(rb: Recordbase) -> dict[str, int]:
    """The app installed, a company, and the four people (with passwords); their user ids."""
    result = rb.install(definition(), SYSTEM)
    assert result.applied, result.plan
    ids = {}
    for person, roles in PEOPLE_ROLES.items():
        email = f"{person}@example.com"
        ids[person] = rb.create_user(SYSTEM, email, PASSWORD, display_name=person.title())
        if roles:
            rb.set_roles(SYSTEM, email, APP, roles)
    rb.records(SYSTEM, APP, "companies").create({"name": "Acme Ltd"})
    return ids


def sign_in(client: FlaskClient, person: str) -> None:
    response = login(client, f"{person}@example.com", PASSWORD)
    assert response.status_code == 303, response.status_code


def store(rb: Recordbase, table: str = "people") -> Any:
    return rb.records(SYSTEM, APP, table)


def submit(client: FlaskClient, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
    """POST ``data`` with the CSRF token read from the form on ``path``."""
    page = client.get(path)
    assert page.status_code == 200, page.status_code
    return client.post(path, data={"csrf_token": csrf_from(page.text), **data}, **kwargs)


def input_tag(html: str, name: str) -> str:
    found = re.search(rf'<(?:input|select|textarea)[^>]*\bname="{re.escape(name)}"[^>]*>', html)
    assert found, name
    return found.group(0)


def options(html: str, name: str) -> list[tuple[str, str]]:
    select = html.split(f'name="{name}"', 1)[1].split("</select>", 1)[0]
    return [
        (v, t.strip())
        for v, t in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)
    ]


def alice(rb: Recordbase, **extra: Any) -> Any:
    return store(rb).create(
        {
            "name": "Alice",
            "email": "alice@example.com",
            "phone": "13812345678",
            "address": "1 Long Road",
            "age": 30,
            **extra,
        }
    )


# --- who may open the pages -------------------------------------------------------------


@pytest.mark.parametrize("path", [NEW, PEOPLE + "/records/1/edit", FORM])
def test_anonymous_visitors_go_to_sign_in(
    client: FlaskClient, intake: dict[str, int], path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login?next=")


def test_anonymous_posts_go_to_sign_in(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    token = csrf_from(client.get("/login").text)  # a session with a token, but nobody signed in
    for path in (NEW, FORM, FORM + "/links", PEOPLE + "/records/1/edit"):
        response = client.post(path, data={"csrf_token": token, "field-name": "x"})
        assert response.status_code == 303 and response.headers["Location"].startswith("/login"), (
            path
        )
    assert client.post(NEW, data={"field-name": "x"}).status_code == 403  # and no token at all
    assert store(rb).count() == 0


@pytest.mark.parametrize("path", [NEW, PEOPLE + "/records/1/edit", FORM])
def test_a_user_without_a_role_in_the_app_gets_404(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int], path: str
) -> None:
    alice(rb)
    sign_in(client, "stranger")
    assert client.get(path).status_code == 404


def test_a_reader_may_not_create_or_edit(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    record = alice(rb)
    sign_in(client, "reader")
    assert client.get(NEW).status_code == 403
    assert client.get(f"{PEOPLE}/records/{record.id}/edit").status_code == 403
    assert client.get(FORM).status_code == 403
    token = csrf_from(client.get(f"{PEOPLE}/records/{record.id}").text)
    refused = client.post(NEW, data={"csrf_token": token, "field-name": "Mallory"})
    assert refused.status_code == 403
    assert store(rb).count() == 1


def test_missing_or_wrong_csrf_token_is_refused(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    record = alice(rb)
    sign_in(client, "staff")
    assert client.post(NEW, data={"field-name": "Bob"}).status_code == 403
    assert client.post(NEW, data={"field-name": "Bob", "csrf_token": "forged"}).status_code == 403
    edit = f"{PEOPLE}/records/{record.id}/edit"
    assert client.post(edit, data={"field-name": "Bob", "version": "1"}).status_code == 403
    assert client.post(FORM, data={"field-name": "Bob"}).status_code == 403
    assert store(rb).count() == 1 and store(rb).get(record.id).fields["name"] == "Alice"


def test_an_edit_of_a_record_that_is_not_there_is_404(
    client: FlaskClient, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    assert client.get(PEOPLE + "/records/99/edit").status_code == 404
    assert client.get("/apps/intake/tables/nothing/new").status_code == 404


# --- widgets ---------------------------------------------------------------------------------


def test_every_field_type_has_its_widget(client: FlaskClient, intake: dict[str, int]) -> None:
    sign_in(client, "staff")
    page = client.get(NEW)
    assert page.status_code == 200
    html = page.text
    assert 'enctype="multipart/form-data"' in html
    assert 'type="text"' in input_tag(html, "field-name") and "<textarea" in input_tag(
        html, "field-bio"
    )
    assert "<textarea" in input_tag(html, "field-address")
    assert 'type="email"' in input_tag(html, "field-email")
    assert 'type="url"' in input_tag(html, "field-website")
    assert 'type="tel"' in input_tag(html, "field-phone")
    regions = options(html, "field-phone-region")
    assert ("CN", "China (+86)") in regions and len(regions) > 200
    assert 'value="CN" selected' in html
    assert 'inputmode="numeric"' in input_tag(html, "field-age")  # whole and never negative
    assert 'inputmode="decimal"' in input_tag(html, "field-budget")
    assert "(CNY)" in html and "(%)" in html
    assert [v for v, _ in options(html, "field-stars")] == ["", "0", "1", "2", "3", "4", "5"]
    assert 'type="checkbox"' in input_tag(html, "field-active")
    assert 'type="date"' in input_tag(html, "field-born")
    assert 'type="datetime-local"' in input_tag(html, "field-meeting")
    assert options(html, "field-level") == [("", "—"), ("gold", "Gold"), ("silver", "Silver")]
    assert re.findall(r'name="field-tags" value="(\w+)"', html) == ["vip", "new", "b2b"]
    assert ("1", "Acme Ltd") in options(html, "field-company")
    members = options(html, "field-owner")
    assert [t for _, t in members] == ["—", "Clerk", "Reader", "Staff"]  # app members only
    assert 'type="file"' in input_tag(html, "field-files")
    # Required marks, help text wired to its input; no field Recordbase sets itself.
    assert re.search(r'for="field-name">Name <abbr class="required"', html)
    assert 'aria-describedby="help-name"' in input_tag(html, "field-name")
    assert '<small id="help-name" class="field-help">Full name</small>' in html
    assert (
        "field-code" not in html and "field-created" not in html and "field-double_age" not in html
    )


def test_widgets_speak_chinese(client: FlaskClient, intake: dict[str, int]) -> None:
    sign_in(client, "staff")
    client.post("/language", data={"csrf_token": csrf_from(client.get(NEW).text), "lang": "zh-CN"})
    html = client.get(NEW).text
    assert re.search(r'for="field-name">姓名', html)
    assert options(html, "field-level")[1:] == [("gold", "金卡"), ("silver", "银卡")]
    assert ("CN", "中国 (+86)") in options(html, "field-phone-region")


# --- create: a round trip through every type --------------------------------------------------


def test_create_round_trip_through_every_type(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    data = {
        "tz": "Asia/Shanghai",
        "field-name": "Zhang Wei",
        "field-bio": "Line one\nLine two",
        "field-email": "Zhang@Example.com",
        "field-phone": "138 1234 5678",
        "field-phone-region": "CN",
        "field-website": "example.org",
        "field-address": "北京市朝阳区",
        "field-age": "42",
        "field-budget": "1,234.5",
        "field-share": "12.5",
        "field-stars": "4",
        "field-active": "true",
        "field-born": "1984-02-29",
        "field-meeting": "2026-05-01T09:30",
        "field-level": "gold",
        "field-tags": ["vip", "b2b"],
        "field-company": "1",
        "field-owner": str(intake["clerk"]),
        "field-health": "asthma",
        "field-files": (io.BytesIO(b"%PDF-1.4 hello"), "cv.pdf", "application/pdf"),
    }
    response = submit(client, NEW, data, content_type="multipart/form-data")
    assert response.status_code == 303, response.text
    assert response.headers["Location"] == f"{PEOPLE}/records/1"
    fields = store(rb).get(1).fields
    assert fields["name"] == "Zhang Wei" and fields["bio"] == "Line one\nLine two"
    assert fields["email"] == "zhang@example.com" and fields["phone"] == "+8613812345678"
    assert fields["website"] == "https://example.org" and fields["address"] == "北京市朝阳区"
    assert (
        fields["age"] == 42
        and fields["budget"] == Decimal("1234.50")
        and fields["share"] == Decimal("12.50")
    )
    assert (
        fields["stars"] == 4 and fields["active"] is True and fields["born"] == dt.date(1984, 2, 29)
    )
    assert fields["meeting"] == dt.datetime(2026, 5, 1, 1, 30, tzinfo=dt.UTC)  # 09:30 in Shanghai
    # Shown again in the zone it was typed in (the browser's, kept in a cookie by forms.js).
    client.set_cookie("rb_tz", "Asia/Shanghai")
    edit = client.get(f"{PEOPLE}/records/1/edit").text
    assert 'value="2026-05-01T09:30"' in input_tag(edit, "field-meeting")
    assert 'name="tz" value="Asia/Shanghai" data-timezone data-zone-reload' in edit
    assert "Time zone: Asia/Shanghai" in edit
    assert fields["level"] == "gold" and fields["tags"] == ["vip", "b2b"]
    assert (
        fields["company"] == 1
        and fields["owner"] == intake["clerk"]
        and fields["health"] == "asthma"
    )
    assert [(f["name"], f["size"], f["content_type"]) for f in fields["files"]] == [
        ("cv.pdf", 14, "application/pdf")
    ]
    assert fields["code"] == "P-0001" and fields["double_age"] == 84
    record_page = client.get(response.headers["Location"])
    assert record_page.status_code == 200
    assert (
        "Zhang Wei" in record_page.text
        and "Acme Ltd" in record_page.text
        and "+8613812345678" in record_page.text
    )
    # The audit trail says who created it.
    assert store(rb).history(1)[0].actor == "Staff"


def test_a_phone_number_is_read_in_the_chosen_region(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    response = submit(
        client,
        NEW,
        {"field-name": "Sam", "field-phone": "020 7946 0018", "field-phone-region": "GB"},
    )
    assert response.status_code == 303
    assert store(rb).get(1).fields["phone"] == "+442079460018"


def test_refused_values_are_shown_next_to_their_fields_with_the_input_kept(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    response = submit(
        client,
        NEW,
        {
            "field-bio": "keep me",
            "field-age": "-3",
            "field-email": "not-an-address",
            "field-tags": ["new"],
        },
    )
    assert response.status_code == 422
    html = response.text
    name = input_tag(html, "field-name")
    assert 'aria-invalid="true"' in name and 'aria-describedby="help-name error-name"' in name
    assert re.search(
        r'id="error-name" class="field-error" role="alert">This field is required.<', html
    )
    assert 'aria-invalid="true"' in input_tag(html, "field-age")
    assert "is less than the minimum, 0" in html
    assert 'value="not-an-address"' in input_tag(html, "field-email")
    assert ">keep me</textarea>" in html
    assert re.search(r'name="field-tags" value="new" checked', html)
    assert 'href="#field-name"' in html  # the summary leads to the field
    assert "aria-invalid" not in input_tag(html, "field-bio")
    assert store(rb).count() == 0


def test_a_value_another_record_has_is_refused_by_the_unique_rule(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    definition_ = definition()
    people = definition_["tables"][1]
    next(f for f in people["fields"] if f["slug"] == "website")["unique"] = True
    rb.install(definition_, SYSTEM)
    store(rb).create({"name": "First", "website": "https://example.org"})
    sign_in(client, "staff")
    response = submit(client, NEW, {"field-name": "Second", "field-website": "https://example.org"})
    assert response.status_code == 422
    assert "Another record already has this value." in response.text


def test_a_refused_upload_is_shown_at_its_field(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    big = (io.BytesIO(b"x" * 2048), "big.bin", "application/octet-stream")
    response = submit(
        client, NEW, {"field-name": "Bo", "field-files": big}, content_type="multipart/form-data"
    )
    assert response.status_code == 422
    assert 'aria-invalid="true"' in input_tag(response.text, "field-files")
    assert (
        "a file is larger than 0.001 MB" in response.text
        and "Choose the file(s) again." in response.text
    )
    assert store(rb).count() == 0


# --- edit ----------------------------------------------------------------------------------


def test_edit_keeps_removes_and_adds_attachments(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    first = rb.files.put(b"first file", "a.txt", "text/plain")
    record = alice(rb, files=[first])
    edit = f"{PEOPLE}/records/{record.id}/edit"
    sign_in(client, "staff")
    html = client.get(edit).text
    assert re.search(r'name="field-files-keep" value="0" checked>\s*Keep a.txt', html)
    base = {
        "csrf_token": csrf_from(html),
        "field-name": "Alice",
        "field-email": "alice@example.com",
        "field-phone": "+8613812345678",
        "field-address": "1 Long Road",
        "field-age": "30",
    }
    added = client.post(
        edit,
        data={
            **base,
            "version": "1",
            "field-files-keep": "0",
            "field-files": (io.BytesIO(b"second"), "b.txt", "text/plain"),
        },
        content_type="multipart/form-data",
    )
    assert added.status_code == 303
    assert [f["name"] for f in store(rb).get(record.id).fields["files"]] == ["a.txt", "b.txt"]
    removed = client.post(edit, data={**base, "version": "2", "field-files-keep": "1"})
    assert removed.status_code == 303
    assert [f["name"] for f in store(rb).get(record.id).fields["files"]] == ["b.txt"]


def test_edit_shows_the_values_and_the_version_and_saves_changes(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    record = alice(rb, tags=["vip"], level="silver", active=True, company=1)
    edit = f"{PEOPLE}/records/{record.id}/edit"
    sign_in(client, "staff")
    html = client.get(edit).text
    assert '<input type="hidden" name="version" value="1">' in html
    assert 'value="Alice"' in input_tag(html, "field-name")
    assert 'value="alice@example.com"' in input_tag(html, "field-email")
    assert re.search(r'<option value="silver" selected>', html) and re.search(
        r'<option value="1" selected>Acme Ltd', html
    )
    assert "checked" in input_tag(html, "field-active")
    token = csrf_from(html)
    response = client.post(
        edit,
        data={
            "csrf_token": token,
            "version": "1",
            "loaded_at": "",
            "field-name": "Alice Li",
            "field-email": "alice@example.com",
            "field-phone": "+8613812345678",
            "field-address": "1 Long Road",
            "field-age": "30",
            "field-level": "silver",
            "field-tags": "vip",
            "field-active": "true",
            "field-company": "1",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PEOPLE}/records/{record.id}"
    after = store(rb).get(record.id)
    assert after.fields["name"] == "Alice Li" and after.version == 2
    last = store(rb).history(record.id)[-1]
    assert list(last.fields) == ["name"]  # only what changed was written


def test_masked_values_are_never_prefilled_and_an_empty_answer_keeps_them(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    record = alice(rb)
    edit = f"{PEOPLE}/records/{record.id}/edit"
    sign_in(client, "clerk")
    html = client.get(edit).text
    for clear in ("Alice", "alice@example.com", "13812345678", "1 Long Road"):
        assert clear not in html
    assert 'value=""' in input_tag(html, "field-email") and 'value=""' in input_tag(
        html, "field-name"
    )
    assert "Leave this empty to keep the current value." in html
    assert 'aria-describedby="help-name masked-name"' in input_tag(html, "field-name")
    # The address is readable, not writable for a clerk: shown (masked), no input.
    assert 'name="field-address"' not in html
    assert re.search(r'class="readonly-value masked"[^>]*>1 L\*\*\*\*<', html)
    response = client.post(
        edit,
        data={
            "csrf_token": csrf_from(html),
            "version": "1",
            "field-name": "",
            "field-email": "",
            "field-phone": "",
            "field-age": "31",
        },
    )
    assert response.status_code == 303
    fields = store(rb).get(record.id).fields
    assert (
        fields["name"] == "Alice" and fields["email"] == "alice@example.com" and fields["age"] == 31
    )
    response = client.post(
        edit, data={"csrf_token": csrf_from(html), "version": "2", "field-email": "new@example.com"}
    )
    assert response.status_code == 303
    assert store(rb).get(record.id).fields["email"] == "new@example.com"


def test_a_stale_version_shows_the_conflict_and_overwrites_nothing(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    record = alice(rb)
    edit = f"{PEOPLE}/records/{record.id}/edit"
    sign_in(client, "staff")
    html = client.get(edit).text
    loaded_at = re.search(r'name="loaded_at" value="([^"]+)"', html).group(1)
    store(rb).update(record.id, {"age": 55}, version=1)  # someone else, meanwhile
    response = client.post(
        edit,
        data={
            "csrf_token": csrf_from(html),
            "version": "1",
            "loaded_at": loaded_at,
            "field-name": "Alice",
            "field-age": "31",
            "field-email": "alice@example.com",
            "field-phone": "+8613812345678",
            "field-address": "1 Long Road",
        },
    )
    assert response.status_code == 409
    assert "Someone else changed this record while you were editing it" in response.text
    conflict = response.text.split('id="conflict"', 1)[1].split("</section>", 1)[0]
    assert "system:tests" in conflict
    assert re.search(
        r'Age</span>: <span class="before">30</span> → <span class="after">55</span>', conflict
    )
    assert 'value="31"' in input_tag(response.text, "field-age")  # the user's answer is kept
    assert (
        '<input type="hidden" name="version" value="2">' in response.text
    )  # to save over it knowingly
    assert store(rb).get(record.id).fields["age"] == 55
    again = client.post(
        edit,
        data={
            "csrf_token": csrf_from(html),
            "version": "2",
            "field-age": "31",
            "field-name": "Alice",
        },
    )
    assert again.status_code == 303 and store(rb).get(record.id).fields["age"] == 31


def test_a_clerk_may_not_edit_a_record_outside_its_rows(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    definition_ = definition()
    definition_["tables"][1]["permissions"]["clerk"].update(rows="own", owner_field="owner")
    rb.install(definition_, SYSTEM)
    record = alice(rb)  # owned by nobody
    sign_in(client, "clerk")
    assert client.get(f"{PEOPLE}/records/{record.id}/edit").status_code == 404


# --- form views -------------------------------------------------------------------------------


def test_a_form_view_shows_its_fields_in_its_order_with_its_help(
    client: FlaskClient, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    page = client.get(FORM)
    assert page.status_code == 200
    names = re.findall(r'<div class="form-field form-field-\w+" data-field="(\w+)"', page.text)
    assert names == ["email", "name", "phone", "health", "stars", "tags", "company", "level"]
    assert (
        '<small id="help-email" class="field-help">We answer to this address.</small>' in page.text
    )
    assert "Tell us about you." in page.text and ">Join</button>" in page.text


def test_a_form_view_creates_a_record(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    response = submit(
        client, FORM, {"field-name": "Wang Fang", "field-stars": "5", "field-level": "gold"}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"{PEOPLE}/records/1"
    fields = store(rb).get(1).fields
    assert (fields["name"], fields["stars"], fields["level"]) == ("Wang Fang", 5, "gold")
    assert store(rb).history(1)[0].actor == "Clerk"


def test_a_view_that_is_not_a_form_is_404(client: FlaskClient, intake: dict[str, int]) -> None:
    sign_in(client, "staff")
    assert client.get("/apps/intake/forms/everyone").status_code == 404
    assert client.get("/apps/intake/forms/nothing").status_code == 404


# --- public links, managed on the form view ---------------------------------------------------


def test_a_manager_makes_and_revokes_public_links(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "staff")
    page = client.get(FORM)
    assert (
        "This form has no public link." in page.text and ">Create public link</button>" in page.text
    )
    made = client.post(FORM + "/links", data={"csrf_token": csrf_from(page.text)})
    assert made.status_code == 303 and made.headers["Location"] == FORM
    page = client.get(FORM)
    url = re.search(r'value="(http://localhost/f/[A-Za-z0-9_-]{43})" readonly', page.text).group(1)
    assert client.get(url.removeprefix("http://localhost")).status_code == 200
    link_id = re.search(r'<li id="link-(\d+)">', page.text).group(1)
    revoked = client.post(
        f"{FORM}/links/{link_id}/revoke", data={"csrf_token": csrf_from(page.text)}
    )
    assert revoked.status_code == 303
    assert "This form has no public link." in client.get(FORM).text
    assert client.get(url.removeprefix("http://localhost")).status_code == 404
    actions = [e["action"] for e in rb.audit_entries(app=APP)]
    assert "form_link_created" in actions and "form_link_revoked" in actions


def test_only_managers_see_or_make_public_links(
    client: FlaskClient, rb: Recordbase, intake: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(FORM)
    assert "Create public link" not in page.text
    refused = client.post(FORM + "/links", data={"csrf_token": csrf_from(page.text)})
    assert refused.status_code == 403
    assert (
        client.post(FORM + "/links/1/revoke", data={"csrf_token": csrf_from(page.text)}).status_code
        == 403
    )
    assert client.post(FORM + "/links").status_code == 403  # no CSRF token


def test_a_stranger_cannot_make_links(client: FlaskClient, intake: dict[str, int]) -> None:
    sign_in(client, "stranger")
    token = csrf_from(client.get("/account/password").text)
    assert client.post(FORM + "/links", data={"csrf_token": token}).status_code == 404
