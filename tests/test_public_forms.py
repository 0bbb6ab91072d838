"""Public links to form views: the engine (``recordbase.public_forms``) and the ``/f/<token>`` pages.

Uses the ``intake`` app of ``test_pages_forms``: its ``signup`` form asks for
email, name, phone, health (a sensitive field), stars, tags, company (a link:
never on a public form) and level; the table declares the purposes
``service`` (required by the view) and ``newsletter``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from page_helpers import SYSTEM, csrf_from
from recordbase import public_forms
from recordbase.config import Settings
from recordbase.core import Recordbase
from recordbase.errors import NotFound, PermissionDenied, ValidationError
from recordbase_web import create_app
from test_pages_forms import APP, definition, input_tag, intake  # noqa: F401 (intake: a fixture)

VIEW = "signup"


@pytest.fixture
def link(rb: Recordbase, intake: dict[str, int]) -> str:  # noqa: F811
    """A working public link to the signup form, made by a manager: its token."""
    staff = rb.actor_for(intake["staff"])
    assert staff is not None
    return public_forms.create_link(rb, staff, APP, VIEW).token


def people(rb: Recordbase) -> Any:
    return rb.records(SYSTEM, APP, "people")


def form_post(client: FlaskClient, token: str, data: dict[str, Any]) -> Any:
    page = client.get(f"/f/{token}")
    assert page.status_code == 200
    return client.post(f"/f/{token}", data={"csrf_token": csrf_from(page.text), **data})


GOOD = {"field-name": "Chen Jing", "field-email": "chen@example.com", "consent": "service"}


# --- engine: links ------------------------------------------------------------------------------


def test_links_are_for_managers_of_the_table_only(rb: Recordbase, intake: dict[str, int]) -> None:  # noqa: F811
    clerk, stranger = rb.actor_for(intake["clerk"]), rb.actor_for(intake["stranger"])
    with pytest.raises(PermissionDenied):
        public_forms.create_link(rb, clerk, APP, VIEW)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        public_forms.create_link(rb, stranger, APP, VIEW)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        public_forms.create_link(rb, SYSTEM, APP, "everyone")  # a grid view
    with pytest.raises(NotFound):
        public_forms.create_link(rb, SYSTEM, APP, "nothing")
    assert public_forms.create_link(rb, SYSTEM, APP, VIEW).token  # administrators may


def test_a_form_collecting_personal_data_needs_a_declared_consent(
    rb: Recordbase,
    intake: dict[str, int],  # noqa: F811
) -> None:
    changed = definition()
    del changed["tables"][1]["consent"]
    changed["tables"][1]["fields"] = [
        f for f in changed["tables"][1]["fields"] if f["slug"] != "health"
    ]
    changed["views"][1]["fields"].remove("health")
    del changed["views"][1]["consent_required"], changed["views"][1]["consent_labels"]
    assert rb.install(changed, SYSTEM).applied
    with pytest.raises(ValidationError, match="declares no consent"):
        public_forms.create_link(rb, SYSTEM, APP, VIEW)


def test_the_token_is_stored_hashed_and_sealed_and_shown_again(rb: Recordbase, link: str) -> None:
    with rb.read() as conn:
        row = conn.execute(sa.select(public_forms.shares_t)).mappings().one()
    assert row["token_hash"] == hashlib.sha256(link.encode()).hexdigest()
    assert link not in row["token"] and row["token"].startswith("v1:")
    assert [found.token for found in public_forms.list_links(rb, SYSTEM, APP, VIEW)] == [link]
    assert len(link) == 43  # secrets.token_urlsafe(32)


def test_a_revoked_or_unknown_token_finds_nothing(rb: Recordbase, link: str) -> None:
    found = public_forms.find(rb, link)
    assert found is not None and [f.slug for f in found.fields] == [
        "email",
        "name",
        "phone",
        "health",
        "stars",
        "tags",
        "level",
    ]
    assert public_forms.find(rb, "x" * 43) is None
    public_forms.revoke_link(rb, SYSTEM, APP, VIEW, found.link_id)
    assert public_forms.find(rb, link) is None
    assert public_forms.list_links(rb, SYSTEM, APP, VIEW) == []
    with pytest.raises(NotFound):
        public_forms.revoke_link(rb, SYSTEM, APP, VIEW, found.link_id)  # once is enough
    with pytest.raises(NotFound):
        public_forms.submit(rb, link, {"name": "Late"}, ["service"], source="127.0.0.1")


# --- engine: submitting -------------------------------------------------------------------------


def test_submit_writes_only_the_forms_fields(rb: Recordbase, link: str) -> None:
    for extra in ({"address": "1 Road"}, {"company": 1}, {"id": 5}, {"nonsense": "x"}):
        with pytest.raises(ValidationError) as refused:
            public_forms.submit(rb, link, {"name": "Eve", **extra}, ["service"], source="127.0.0.1")
        key = next(iter(extra))
        assert [p.pointer for p in refused.value.problems] == [f"/fields/{key}"]
    assert people(rb).count() == 0


def test_submit_records_the_record_its_consents_and_who_wrote_it(rb: Recordbase, link: str) -> None:
    record_id = public_forms.submit(
        rb,
        link,
        {"name": "Chen", "email": "chen@example.com"},
        ["service", "newsletter"],
        source="203.0.113.9",
    )
    assert people(rb).get(record_id).fields["email"] == "chen@example.com"
    ledger = people(rb).consents(record_id)
    assert [(c["purpose"], c["version"], c["channel"], c["given_by"]) for c in ledger] == [
        ("service", "v1", "public-form:intake/signup", "system:public-form:intake/signup"),
        ("newsletter", "v1", "public-form:intake/signup", "system:public-form:intake/signup"),
    ]
    entries = rb.audit_entries(app=APP, table="people", record=record_id)
    assert [(e["action"], e["actor_name"]) for e in entries] == [
        ("create", "system:public-form:intake/signup"),
        ("public_form_submit", "system:public-form:intake/signup"),
        ("consent_given", "system:public-form:intake/signup"),
    ]
    assert entries[1]["changes"]["source"] == "203.0.113.9"
    assert people(rb).query(filter={"consent": "newsletter", "op": "given"}).total == 1


def test_a_required_purpose_not_ticked_writes_nothing(rb: Recordbase, link: str) -> None:
    with pytest.raises(ValidationError) as refused:
        public_forms.submit(rb, link, {"name": "Chen"}, ["newsletter"], source=None)
    assert [p.pointer for p in refused.value.problems] == ["/consents/service"]
    with pytest.raises(ValidationError):
        public_forms.submit(rb, link, {"name": "Chen"}, ["service", "marketing"], source=None)
    assert people(rb).count() == 0


def test_a_sensitive_field_needs_its_own_consent(rb: Recordbase, link: str) -> None:
    with pytest.raises(ValidationError) as refused:
        public_forms.submit(
            rb, link, {"name": "Chen", "health": "asthma"}, ["service"], source=None
        )
    assert [p.pointer for p in refused.value.problems] == ["/consents/sensitive:health"]
    assert people(rb).count() == 0
    record_id = public_forms.submit(
        rb, link, {"name": "Chen", "health": "asthma"}, ["service", "sensitive:health"], source=None
    )
    assert [c["purpose"] for c in people(rb).consents(record_id)] == ["service", "sensitive:health"]
    # Left empty, the sensitive field needs no consent of its own.
    public_forms.submit(rb, link, {"name": "Lin"}, ["service"], source=None)
    assert people(rb).count() == 2


def test_a_bad_value_writes_nothing_at_all(rb: Recordbase, link: str) -> None:
    with pytest.raises(ValidationError) as refused:
        public_forms.submit(rb, link, {"name": "Chen", "email": "nope"}, ["service"], source=None)
    assert [p.pointer for p in refused.value.problems] == ["/fields/email"]
    with rb.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(public_forms.consent_t)).scalar()
            == 0
        )
    assert people(rb).count() == 0


# --- the pages --------------------------------------------------------------------------------------


def test_the_public_form_shows_no_data_and_unticked_consents(
    client: FlaskClient, rb: Recordbase, link: str
) -> None:
    people(rb).create({"name": "Existing Person", "email": "existing@example.com"})
    page = client.get(f"/f/{link}")
    assert page.status_code == 200
    html = page.text
    assert (
        "Existing Person" not in html
        and "existing@example.com" not in html
        and "Acme Ltd" not in html
    )
    names = re.findall(r'<div class="form-field form-field-\w+" data-field="(\w+)"', html)
    assert names == ["email", "name", "phone", "health", "stars", "tags", "level"]
    consents = re.findall(
        r'<input type="checkbox" id="consent-[\w-]+" name="consent" value="([\w:]+)"( checked)?',
        html,
    )
    assert consents == [("service", ""), ("newsletter", ""), ("sensitive:health", "")]
    assert "I agree that my Health, a sensitive detail, is processed." in html
    assert "Send me the newsletter" in html and "I agree to: service" in html
    assert "We keep your details." in html and ">Join</button>" in html
    honeypot = input_tag(html, "homepage")
    assert 'tabindex="-1"' in honeypot and '<div class="hp-field" aria-hidden="true">' in html
    assert "Log out" not in html and page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow"


def test_sending_the_form_leads_to_the_thanks(
    client: FlaskClient, rb: Recordbase, link: str
) -> None:
    response = form_post(
        client,
        link,
        {
            **GOOD,
            "field-phone": "13812345678",
            "field-phone-region": "CN",
            "field-tags": ["vip", "new"],
            "field-stars": "3",
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{link}/thanks"
    thanks = client.get(response.headers["Location"])
    assert thanks.status_code == 200 and "Welcome aboard!" in thanks.text
    record = people(rb).get(1)
    assert (
        record.fields["name"],
        record.fields["phone"],
        record.fields["tags"],
        record.fields["stars"],
    ) == ("Chen Jing", "+8613812345678", ["vip", "new"], 3)
    assert [c["purpose"] for c in people(rb).consents(1)] == ["service"]


def test_a_missing_consent_is_shown_and_nothing_is_stored(
    client: FlaskClient, rb: Recordbase, link: str
) -> None:
    response = form_post(
        client, link, {"field-name": "Chen", "field-health": "asthma", "consent": "service"}
    )
    assert response.status_code == 422
    box = input_tag(response.text, "consent")  # the first one, service: ticked and kept
    assert "checked" in box
    assert re.search(r'value="sensitive:health" aria-invalid="true"', response.text)
    assert "Tick this box to send the form." in response.text
    assert 'value="Chen"' in input_tag(response.text, "field-name")
    assert people(rb).count() == 0


def test_extra_keys_in_a_forged_post_are_ignored(
    client: FlaskClient, rb: Recordbase, link: str
) -> None:
    response = form_post(client, link, {**GOOD, "field-address": "1 Road", "field-company": "1"})
    assert response.status_code == 303
    fields = people(rb).get(1).fields
    assert fields["address"] is None and fields["company"] is None


def test_a_filled_honeypot_shows_thanks_and_stores_nothing(
    client: FlaskClient, rb: Recordbase, link: str
) -> None:
    response = form_post(client, link, {**GOOD, "homepage": "http://spam.example"})
    assert response.status_code == 303 and response.headers["Location"] == f"/f/{link}/thanks"
    assert people(rb).count() == 0


def test_unknown_and_revoked_links_are_404(client: FlaskClient, rb: Recordbase, link: str) -> None:
    assert client.get("/f/" + "a" * 43).status_code == 404
    assert client.get("/f/" + "a" * 43 + "/thanks").status_code == 404
    found = public_forms.find(rb, link)
    assert found is not None
    token = csrf_from(client.get(f"/f/{link}").text)
    public_forms.revoke_link(rb, SYSTEM, APP, VIEW, found.link_id)
    assert client.get(f"/f/{link}").status_code == 404
    assert client.get(f"/f/{link}/thanks").status_code == 404
    assert client.post(f"/f/{link}", data={"csrf_token": token, **GOOD}).status_code == 404
    assert people(rb).count() == 0


def test_the_public_form_speaks_the_visitors_language(client: FlaskClient, link: str) -> None:
    chinese = {"Accept-Language": "zh-CN,zh;q=0.9"}
    page = client.get(f"/f/{link}", headers=chinese)
    assert (
        "报名" in page.text
        and "介绍一下您自己。" in page.text
        and "我们保存您的资料。" in page.text
    )
    assert "给我发送简讯" in page.text and ">加入</button>" in page.text
    thanks = client.get(f"/f/{link}/thanks", headers=chinese)
    assert "欢迎加入！" in thanks.text


def test_a_post_without_the_csrf_token_is_refused(
    client: FlaskClient, rb: Recordbase, link: str
) -> None:
    assert client.post(f"/f/{link}", data=GOOD).status_code == 403
    assert client.post(f"/f/{link}", data={**GOOD, "csrf_token": "forged"}).status_code == 403
    assert people(rb).count() == 0


@pytest.fixture
def limited_client(rb: Recordbase, settings: Settings) -> Iterator[FlaskClient]:
    """A web app allowing two public form submissions a minute per address."""
    app: Flask = create_app(
        {
            "TESTING": True,
            "RECORDBASE_SETTINGS": settings,
            "RECORDBASE_PUBLIC_FORM_LIMIT": "2/minute",
        }
    )
    yield app.test_client()
    app.extensions["recordbase"].dispose()


def test_submissions_are_rate_limited_per_address(
    limited_client: FlaskClient, rb: Recordbase, link: str
) -> None:
    assert form_post(limited_client, link, GOOD).status_code == 303
    assert (
        form_post(limited_client, link, {**GOOD, "homepage": "bot"}).status_code == 303
    )  # bots count too
    third = form_post(limited_client, link, {**GOOD, "field-name": "Third"})
    assert third.status_code == 429
    assert int(third.headers["Retry-After"]) > 0
    assert "Too many forms sent from your address." in third.text
    assert people(rb).count() == 1
    other = limited_client.post(
        f"/f/{link}",
        data={"csrf_token": csrf_from(limited_client.get(f"/f/{link}").text), **GOOD},
        environ_base={"REMOTE_ADDR": "198.51.100.7"},
    )
    assert other.status_code == 303  # another address has its own count


def test_the_default_limit_is_documented_in_the_module(app: Flask) -> None:
    assert app.config["RECORDBASE_PUBLIC_FORM_LIMIT"] == "10/minute;100/hour"


# --- the form keys of a view definition ------------------------------------------------------------


def test_form_keys_are_checked_against_the_table(rb: Recordbase) -> None:
    changed = definition()
    form = changed["views"][1]
    form["help"]["nothing"] = "?"
    form["consent_required"] = ["service", "spam"]
    form["consent_labels"]["ads"] = "Ads"
    changed["views"][0]["thanks"] = "Thanks"  # a grid view
    problems = {(p.pointer, p.message) for p in rb.check(changed) if p.severity == "error"}
    assert {pointer for pointer, _ in problems} == {
        "/views/1/help/nothing",
        "/views/1/consent_required/1",
        "/views/1/consent_labels/ads",
        "/views/0/thanks",
    }
    assert ("/views/0/thanks", '"thanks" is for form views; this view is a grid') in problems
    assert [p for p in rb.check(definition()) if p.severity == "error"] == []
