"""Browser pages, ``/admin/compliance``: inventory, audit log, subject requests, consent, retention.

For platform administrators only (anyone else 403, anonymous visitors to the
sign-in page, every POST CSRF-checked). The world: the gallery CRM with one
contact (Wang Fang) who consented to product news, a deal of hers, and a
small shop app whose leads are kept 30 days after the last contact.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from page_helpers import ADMIN, SYSTEM, USER, add_admin, add_user, login, post_form, token
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"
BASE = "/admin/compliance"
EMAIL, PHONE = "wang.fang@example.com", "+8613812345678"
SHOP = {
    "slug": "shop",
    "label": {"en": "Shop", "zh-CN": "商店"},
    "tables": [
        {
            "slug": "leads",
            "label": "Leads",
            "retention": {"field": "last_contact", "days": 30, "action": "delete"},
            "erasure": {"action": "anonymise", "reason": "leads stay in the sales ledger"},
            "fields": [
                {"slug": "name", "label": "Name", "type": "text"},
                {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Call back."},
                {"slug": "last_contact", "label": "Last contact", "type": "date"},
            ],
        },
    ],
}
PAGES = ["", "/inventory", "/audit", "/subjects", "/consent", "/retention"]
POSTS = ["/subjects", "/subjects/export", "/subjects/erase", "/retention/run"]


@pytest.fixture
def world(rb: Recordbase) -> dict[str, Any]:
    definition, problems = load_definition_file(CRM)
    assert not problems
    rb.install(definition, SYSTEM)
    rb.install(SHOP, SYSTEM)
    add_admin(rb)
    add_user(rb)
    rb.set_roles(SYSTEM, USER[0], "crm", ["auditor"])  # a role in an app is not a compliance right
    company = rb.records(SYSTEM, "crm", "companies").create({"name": "Acme"})
    contacts = rb.records(SYSTEM, "crm", "contacts")
    wang = contacts.create(
        {"name": "王芳", "email": EMAIL, "phone": "138 1234 5678", "company": company.id}
    )
    contacts.give_consent(wang.id, ["product_news"], version="2024-06", channel="web form")
    deal = rb.records(SYSTEM, "crm", "deals").create(
        {"name": "Big order", "contact": wang.id, "company": company.id}
    )
    leads = rb.records(SYSTEM, "shop", "leads")
    old = leads.create({"name": "old lead", "phone": "13912345678", "last_contact": "2020-01-01"})
    recent = leads.create(
        {"name": "recent lead", "phone": "13712345678", "last_contact": "2999-01-01"}
    )
    return {
        "rb": rb,
        "wang": wang.id,
        "deal": deal.id,
        "company": company.id,
        "old": old.id,
        "recent": recent.id,
    }


@pytest.fixture
def admin(client: FlaskClient, world: dict[str, Any]) -> FlaskClient:
    assert login(client, *ADMIN).status_code == 303
    return client


@pytest.fixture
def user(client: FlaskClient, world: dict[str, Any]) -> FlaskClient:
    assert login(client, *USER).status_code == 303
    return client


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def row(html: str, pattern: str) -> str:
    found = re.search(pattern + r".*?</tr>", html, re.S)
    assert found, pattern
    return found.group(0)


def actions(rb: Recordbase) -> list[str]:
    return [e["action"] for e in rb.audit_entries()]


# --- who may come in ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_visitors_are_sent_to_sign_in(
    client: FlaskClient, world: dict[str, Any], path: str
) -> None:
    response = client.get(BASE + path)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/login?next={BASE + path}"


@pytest.mark.parametrize("path", POSTS)
def test_anonymous_posts_are_sent_to_sign_in(
    client: FlaskClient, world: dict[str, Any], path: str
) -> None:
    response = client.post(
        BASE + path,
        data={"csrf_token": token(client), "email": EMAIL, "reason": "asked", "confirm": "yes"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")
    assert world["rb"].records(SYSTEM, "crm", "contacts").count() == 1


@pytest.mark.parametrize("path", PAGES)
def test_non_administrators_are_refused(user: FlaskClient, path: str) -> None:
    assert user.get(BASE + path).status_code == 403


@pytest.mark.parametrize("path", POSTS)
def test_non_administrators_cannot_post(
    user: FlaskClient, world: dict[str, Any], path: str
) -> None:
    data = {"email": EMAIL, "reason": "the person asked", "confirm": "yes"}
    response = post_form(user, BASE + path, data, form_page="/account/password")
    assert response.status_code == 403
    rb = world["rb"]
    assert rb.records(SYSTEM, "crm", "contacts").count() == 1
    assert rb.records(SYSTEM, "shop", "leads").count() == 2
    assert not {"subject_export", "subject_erase", "retention_run"} & set(actions(rb))


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("sent", [None, "not-the-token"])
def test_every_post_needs_the_csrf_token(
    admin: FlaskClient, world: dict[str, Any], path: str, sent: str | None
) -> None:
    data = {"email": EMAIL, "reason": "the person asked", "confirm": "yes"}
    if sent is not None:
        data["csrf_token"] = sent
    response = admin.post(BASE + path, data=data)
    assert response.status_code == 403
    rb = world["rb"]
    assert rb.records(SYSTEM, "crm", "contacts").count() == 1
    assert rb.records(SYSTEM, "shop", "leads").count() == 2


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_the_sub_navigation(admin: FlaskClient, path: str) -> None:
    page = admin.get(BASE + path)
    assert page.status_code == 200
    nav = page.text.split('class="compliance-nav"', 1)[1].split("</nav>", 1)[0]
    assert re.findall(r'href="([^"]+)"', nav) == [BASE + p for p in PAGES]
    current = re.findall(r'href="([^"]+)" aria-current="page"', nav)
    assert current == [BASE + path]


# --- inventory ------------------------------------------------------------------------------------


def test_the_inventory_lists_personal_fields_with_purpose_and_who_sees_them(
    admin: FlaskClient,
) -> None:
    page = admin.get(BASE + "/inventory")
    cells = text_of(row(page.text, r'<tr data-field="contacts.email">'))
    assert cells == (
        "Contacts Email email personal To send quotes and follow-ups the contact asked for. yes "
        "sales_follow_up, product_news (version 2024-06) anonymise 1095 days after Last contacted "
        "delete in clear in clear on some rows, masked elsewhere masked masked"
    )
    phone = text_of(row(page.text, r'<tr data-field="contacts.phone">'))
    # Reps see phones in clear only on the contacts they own; marketing and auditors masked.
    assert phone.endswith("in clear in clear on some rows, masked elsewhere masked masked")
    lead = text_of(row(page.text, r'<tr data-field="leads.phone">(?=(?:(?!</tr>).)*Last contact)'))
    assert "delete 30 days after Last contact anonymise: leads stay in the sales ledger" in lead
    assert 'data-field="companies.name"' not in page.text  # not personal
    # For a Chinese-speaking auditor: purposes and who sees what, in Chinese.
    zh = admin.get(BASE + "/inventory", headers={"Accept-Language": "zh-CN"})
    email = text_of(row(zh.text, r'<tr data-field="contacts.email">'))
    assert "用于发送联系人要求的报价和跟进信息。" in email and "To send quotes" not in email
    assert "明文 部分行明文，其余掩码" in email and "clear_rows" not in zh.text


# --- audit log ------------------------------------------------------------------------------------


def test_audit_search_finds_a_reveal_with_its_reason(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    rb = world["rb"]
    assert (
        rb.records(SYSTEM, "crm", "contacts").reveal(world["wang"], "phone", "customer called back")
        == PHONE
    )
    page = admin.get(BASE + "/audit", query_string={"table": "crm.contacts", "action": "reveal"})
    assert page.status_code == 200
    entries = re.findall(r'<tr id="entry-\d+" data-action="([a-z_]+)"', page.text)
    assert entries == ["reveal"]
    entry = text_of(row(page.text, r'<tr id="entry-\d+" data-action="reveal">'))
    assert "system:tests" in entry and "revealed a value" in entry and "CRM · Contacts" in entry
    assert "Field Phone Reason customer called back" in entry
    assert f'href="/apps/crm/tables/contacts/records/{world["wang"]}"' in page.text
    assert PHONE not in page.text and "13812345678" not in page.text

    by_field = admin.get(
        BASE + "/audit",
        query_string={"table": "crm.contacts", "field": "phone", "record": str(world["wang"])},
    )
    assert re.findall(r'data-action="([a-z_]+)"', by_field.text) == ["reveal", "create"]  # newest first


def test_audit_entries_show_sealed_values_only_as_sealed(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    page = admin.get(BASE + "/audit", query_string={"table": "crm.contacts", "action": "create"})
    entry = text_of(row(page.text, r'<tr id="entry-\d+" data-action="create">'))
    assert (
        "Email — → [sealed]" in entry
        and "Phone — → [sealed]" in entry
        and "Name — → [sealed]" in entry
    )
    assert EMAIL not in page.text and "王芳" not in page.text and "8613812345678" not in page.text
    company = admin.get(BASE + "/audit", query_string={"table": "crm.companies"})
    assert "Name — → Acme" in text_of(company.text)  # internal values are shown as they are


def test_audit_search_by_user_dates_and_bad_input(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    rb = world["rb"]
    admin_id = next(u["id"] for u in rb.list_users() if u["email"] == ADMIN[0])
    mine = admin.get(BASE + "/audit", query_string={"user": str(admin_id)})
    assert set(re.findall(r'data-action="([a-z_]+)"', mine.text)) == {"login"}
    assert ADMIN[0] not in mine.request.url
    future = admin.get(BASE + "/audit", query_string={"since": "2999-01-01"})
    assert "No entry matches." in future.text
    today = admin.get(BASE + "/audit", query_string={"until": "2000-01-01"})
    assert "No entry matches." in today.text
    bad = admin.get(
        BASE + "/audit", query_string={"record": "abc", "since": "yesterday", "table": "nope"}
    )
    assert bad.status_code == 422
    assert "A record id is a whole number." in bad.text
    assert "Enter a date like 2026-05-01." in bad.text
    assert "Choose one of the listed apps or tables." in bad.text
    unknown = admin.get(
        BASE + "/audit", query_string={"table": "crm.contacts", "field": "shoe_size"}
    )
    assert (
        unknown.status_code == 422
        and "There is no such table or field in this app." in unknown.text
    )


def test_the_audit_log_is_paged(admin: FlaskClient, world: dict[str, Any]) -> None:
    world["rb"].records(SYSTEM, "crm", "companies").create_many(
        [{"name": f"Company {i}"} for i in range(60)]
    )
    query = {"table": "crm.companies", "action": "create"}
    first = admin.get(BASE + "/audit", query_string=query)
    ids = [int(i) for i in re.findall(r'<tr id="entry-(\d+)" data-action="create"', first.text)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)  # newest first
    assert "Name — → Company 59" in text_of(first.text) and 'rel="first"' not in first.text
    next_url = re.search(r'<a href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert f"before={ids[-1]}" in next_url  # paged by entry id, not by offset
    second = admin.get(next_url)
    older = [int(i) for i in re.findall(r'<tr id="entry-(\d+)" data-action="create"', second.text)]
    assert len(older) == 11 and max(older) < min(ids)
    assert 'rel="next"' not in second.text and 'rel="first"' in second.text
    assert "Name — → Acme" in text_of(second.text)


# --- subject requests -----------------------------------------------------------------------------


def test_find_a_person_by_email_without_putting_it_in_a_url(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    page = admin.get(BASE + "/subjects")
    assert 'method="post" action="/admin/compliance/subjects"' in page.text
    found = post_form(admin, BASE + "/subjects", {"email": "Wang.Fang@Example.com"})
    assert found.status_code == 200
    hits = [text_of(h) for h in re.findall(r'<tr class="subject-hit">(.*?)</tr>', found.text, re.S)]
    assert hits == [
        f"CRM · Contacts {world['wang']} matched: Email",
        f"CRM · Deals {world['deal']} links to Contacts {world['wang']}",
    ]
    assert "2 records about this person" in found.text
    by_phone = post_form(
        admin, BASE + "/subjects", {"phone": "+86 138-1234-5678"}, form_page=BASE + "/subjects"
    )
    assert "2 records about this person" in by_phone.text
    nobody = post_form(admin, BASE + "/subjects", {"email": "nobody@example.com"})
    assert "Nothing is kept about this person." in nobody.text
    empty = post_form(admin, BASE + "/subjects", {"email": "", "phone": ""})
    assert empty.status_code == 422
    assert "Give an email address, a phone number or a name." in empty.text


def test_find_records_by_exact_name_through_the_blind_index(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    found = post_form(admin, BASE + "/subjects", {"name": "王芳"})
    assert found.status_code == 200
    named = found.text.split('id="subject-named"', 1)[1].split("</section>", 1)[0]
    hits = [text_of(h) for h in re.findall(r'<tr class="subject-hit">(.*?)</tr>', named, re.S)]
    assert hits == [f"CRM · Contacts {world['wang']} matched: Name"]
    assert 'id="subject-erase"' not in found.text  # erasure works by email or phone only
    nobody = post_form(admin, BASE + "/subjects", {"name": "王"})
    assert "No record has this name." in nobody.text


def test_export_a_person_as_a_json_download(admin: FlaskClient, world: dict[str, Any]) -> None:
    response = post_form(
        admin, BASE + "/subjects/export", {"email": EMAIL}, form_page=BASE + "/subjects"
    )
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="subject-export-'
    )
    assert response.headers["Cache-Control"] == "no-store"
    document = json.loads(response.text)
    contact = next(r for r in document["records"] if r["table"] == "contacts")
    assert contact["fields"]["phone"] == PHONE and contact["fields"]["name"] == "王芳"
    assert [(c["purpose"], c["channel"]) for c in contact["consents"]] == [
        ("product_news", "web form")
    ]
    entry = world["rb"].audit_entries()[-1]
    assert entry["action"] == "subject_export" and entry["actor_name"] == "Ada Admin"
    assert EMAIL not in json.dumps(entry, default=str)


def test_erase_needs_a_reason_and_a_confirmation(admin: FlaskClient, world: dict[str, Any]) -> None:
    rb = world["rb"]
    refused = post_form(
        admin,
        BASE + "/subjects/erase",
        {"email": EMAIL, "reason": "no"},
        form_page=BASE + "/subjects",
    )
    assert refused.status_code == 422
    assert "Give a reason of at least 5 characters." in refused.text
    assert "Tick the box to confirm that this cannot be undone." in refused.text
    assert rb.records(SYSTEM, "crm", "contacts").count() == 1
    assert "subject_erase" not in actions(rb)


def test_erase_a_person_everywhere_with_the_reason_audited(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    rb = world["rb"]
    response = post_form(
        admin,
        BASE + "/subjects/erase",
        {"email": EMAIL, "reason": "request by email of 3 May", "confirm": "yes"},
        form_page=BASE + "/subjects",
    )
    assert response.status_code == 200
    report = response.text.split('id="erase-report"', 1)[1]
    assert f"CRM · Contacts {world['wang']}" in text_of(report)
    assert rb.records(SYSTEM, "crm", "contacts").count() == 0
    deal = rb.records(SYSTEM, "crm", "deals").get(
        world["deal"]
    )  # the deal is kept, unlinked from her
    assert deal.fields["name"] == "Big order"
    assert (
        post_form(admin, BASE + "/subjects", {"email": EMAIL}).text.count('class="subject-hit"')
        == 0
    )
    entries = rb.audit_entries()
    erase = next(e for e in entries if e["action"] == "subject_erase")
    assert erase["actor_name"] == "Ada Admin" and erase["changes"]["deleted"] == 1
    assert erase["changes"]["reason"] == "request by email of 3 May"
    assert erase["changes"]["anonymised"] == 1
    assert EMAIL not in json.dumps(entries, default=str)


# --- consent ledger -------------------------------------------------------------------------------


def test_the_consent_ledger_shows_consent_given_through_the_engine(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    page = admin.get(BASE + "/consent")
    assert page.status_code == 200
    totals = text_of(page.text.split('id="consent-totals"', 1)[1].split("</table>", 1)[0])
    assert "CRM · Contacts product_news 1 0" in totals
    entry = text_of(row(page.text, r'<tr id="consent-\d+" class="given">'))
    assert entry.startswith(f"CRM · Contacts {world['wang']} product_news 2024-06 web form")
    assert "system:tests" in entry and entry.endswith("—")

    world["rb"].records(SYSTEM, "crm", "contacts").withdraw_consent(
        world["wang"], "product_news", channel="phone"
    )
    withdrawn = admin.get(
        BASE + "/consent", query_string={"table": "crm.contacts", "purpose": "product_news"}
    )
    assert 'class="withdrawn"' in withdrawn.text and 'class="given"' not in withdrawn.text
    assert "CRM · Contacts product_news 0 1" in text_of(withdrawn.text)


def test_the_consent_ledger_filters(admin: FlaskClient, world: dict[str, Any]) -> None:
    contacts = world["rb"].records(SYSTEM, "crm", "contacts")
    other = contacts.create({"name": "John", "email": "john@example.com"})
    contacts.give_consent(other.id, ["sales_follow_up"], version="2024-06", channel="phone")
    every = admin.get(BASE + "/consent")
    assert len(re.findall(r'<tr id="consent-\d+"', every.text)) == 2
    purpose = admin.get(BASE + "/consent", query_string={"purpose": "sales_follow_up"})
    assert len(re.findall(r'<tr id="consent-\d+"', purpose.text)) == 1 and "phone" in purpose.text
    record = admin.get(BASE + "/consent", query_string={"record": str(world["wang"])})
    assert len(re.findall(r'<tr id="consent-\d+"', record.text)) == 1 and "web form" in record.text
    shop = admin.get(BASE + "/consent", query_string={"table": "shop.leads"})
    assert "No consent matches." in shop.text
    assert (
        'value="crm.contacts"' in every.text and 'value="shop.leads"' not in every.text
    )  # no consent there
    bad = admin.get(BASE + "/consent", query_string={"record": "x", "table": "crm.nope"})
    assert bad.status_code == 422
    assert (
        "A record id is a whole number." in bad.text
        and "Choose one of the listed tables." in bad.text
    )


# --- retention ------------------------------------------------------------------------------------


def test_retention_shows_what_is_due_and_running_it_removes_it(
    admin: FlaskClient, world: dict[str, Any]
) -> None:
    rb = world["rb"]
    page = admin.get(BASE + "/retention")
    rules = text_of(page.text.split('id="retention-rules"', 1)[1].split("</table>", 1)[0])
    assert "Shop · Leads delete 30 days after Last contact 1" in rules
    assert "CRM · Activities delete 1095 days after Created 0" in rules
    assert "1 record is due now." in page.text

    response = post_form(admin, BASE + "/retention/run", {}, form_page=BASE + "/retention")
    assert response.status_code == 303
    assert response.headers["Location"] == BASE + "/retention"
    leads = rb.records(SYSTEM, "shop", "leads")
    assert [r.id for r in leads.query().records] == [world["recent"]]
    run = next(e for e in rb.audit_entries() if e["action"] == "retention_run")
    assert run["actor_name"] == "Ada Admin"
    assert {"app": "shop", "table": "leads", "due": 1, "done": 1, "error": None} in run["changes"][
        "tables"
    ]
    after = admin.get(BASE + "/retention")
    assert "Retention ran: 1 record was deleted or anonymised." in after.text
    assert "0 records are due now." in after.text


def test_compliance_pages_in_chinese(admin: FlaskClient) -> None:
    page = admin.get(BASE + "/retention", headers={"Accept-Language": "zh-CN"})
    assert "商店 · Leads" in page.text
