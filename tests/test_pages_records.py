"""Browser pages, records: a table's grid and a record's page, as the signed-in user reads them.

The CRM of ``access_defs`` (seeded: deals 1–5), with Chinese labels on the
deals table and its phone field, and the ``reveal`` right given to the rep:
the rep sees only its deals (1 and 3) with the phone masked; the viewer sees
every deal but never the notes, and may not reveal.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from access_defs import DEALS_PERMISSIONS, PHONES, SYSTEM, Crm, crm_definition, seed
from flask.testing import FlaskClient
from page_helpers import csrf_from, login
from recordbase import users
from recordbase.core import Recordbase

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

DEALS = "/apps/crm/tables/deals"
PASSWORD = "page-password-1"
MASKED_1 = "+86 138****5678"  # deal 1's phone as the rep and the viewer see it


def definition(**rep_grant: Any) -> dict[str, Any]:
    """The CRM with Chinese labels for deals and phone, and ``rep_grant`` merged into the rep's grant."""
    grants = copy.deepcopy(DEALS_PERMISSIONS)
    grants["rep"].update(rep_grant)
    app = crm_definition(deals_permissions=grants)
    deals = app["tables"][0]
    deals["label"] = {"en": "Deals", "zh-CN": "商机"}
    phone = next(f for f in deals["fields"] if f["slug"] == "phone")
    phone["label"] = {"en": "Phone", "zh-CN": "电话"}
    return app


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    seeded = seed(rb)
    assert rb.install(definition(reveal=True), SYSTEM).applied
    with rb.write() as conn:
        for person in ("rep", "other_rep", "viewer", "manager", "stranger"):
            users.set_password(conn, SYSTEM, f"{person}@example.com", PASSWORD)
    return seeded


def sign_in(client: FlaskClient, person: str) -> None:
    response = login(client, f"{person}@example.com", PASSWORD)
    assert response.status_code == 303, response.status_code


def row_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr data-id="(\d+)"', html)]


def cell(html: str, record_id: int, field: str) -> str:
    row = html.split(f'<tr data-id="{record_id}"', 1)[1].split("</tr>", 1)[0]
    found = re.search(rf'<td data-field="{field}"[^>]*><span class="cell-value">(.*?)</span>', row, re.S)
    assert found, (record_id, field)
    return found.group(1).strip()


def without_tokens(html: str) -> str:
    html = re.sub(r'name="csrf_token" value="[^"]+"', "", html)
    html = re.sub(r'content="[^"]+"', "", html)  # the csrf-token meta
    return re.sub(r'name="next" value="[^"]+"', "", html)


# --- the grid ----------------------------------------------------------------------------


def test_app_page_links_to_its_tables(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    page = client.get("/apps/crm")
    assert f'href="{DEALS}"' in page.text
    assert 'href="/apps/crm/tables/companies"' not in page.text  # the rep has no grant there


def test_rep_sees_only_its_deals_with_the_phone_masked(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    page = client.get(DEALS)
    assert page.status_code == 200
    assert row_ids(page.text) == [1, 3]
    assert cell(page.text, 1, "phone") == MASKED_1
    assert PHONES[1] not in page.text and PHONES[3] not in page.text
    assert cell(page.text, 1, "region") == "East"  # a choice by its label
    assert cell(page.text, 1, "notes") == "call after lunch"
    assert 'id="grid-total">2 records<' in page.text
    # Columns: the readable fields in definition order, labelled.
    headers = re.findall(r'<th scope="col" data-field="([a-z_]+)"', page.text)
    assert headers == ["name", "region", "amount", "phone", "notes", "owner"]
    assert f'href="{DEALS}/records/1"' in page.text


def test_viewer_sees_every_deal_but_no_notes(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "viewer")
    page = client.get(DEALS)
    assert row_ids(page.text) == [1, 2, 3, 4, 5]
    assert 'data-field="notes"' not in page.text
    assert "call after lunch" not in page.text and "walrus" not in page.text
    assert cell(page.text, 1, "phone") == MASKED_1
    assert cell(page.text, 5, "phone") == "—"  # empty stays empty


def test_search_filter_and_sort(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "viewer")
    assert row_ids(client.get(DEALS, query_string={"q": "cedar"}).text) == [3]
    found = client.get(DEALS, query_string={"field": "amount", "op": "gte", "value": "300"})
    assert row_ids(found.text) == [3, 4, 5]
    assert 'id="grid-total">3 records<' in found.text
    west = client.get(DEALS, query_string={"field": "region", "op": "eq", "value": "west"})
    assert row_ids(west.text) == [3, 4]
    empty = client.get(DEALS, query_string={"field": "owner", "op": "is_empty"})
    assert row_ids(empty.text) == [5]
    assert row_ids(client.get(DEALS, query_string={"sort": "-amount"}).text) == [5, 4, 3, 2, 1]
    by_name = client.get(
        DEALS, query_string={"sort": "-name", "field": "region", "op": "eq", "value": "east"}
    )
    assert row_ids(by_name.text) == [5, 2, 1]  # filter and sort together
    # Clicking a sorted header sorts the other way, keeping the search.
    page = client.get(DEALS, query_string={"sort": "amount", "q": "acme"})
    assert 'aria-sort="ascending"' in page.text
    assert f'href="{DEALS}?q=acme&amp;sort=-amount"' in page.text


def test_the_rep_searches_only_its_own_rows(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    assert row_ids(client.get(DEALS, query_string={"q": "birch"}).text) == []
    assert "No records." in client.get(DEALS, query_string={"q": "birch"}).text


@pytest.mark.parametrize(
    "query, message",
    [
        ({"field": "phone", "op": "eq", "value": "+8613899999999"}, 'cannot filter by "phone"'),
        ({"sort": "-phone"}, 'cannot sort by "phone"'),
        ({"field": "amount", "op": "contains", "value": "1"}, "contains"),
    ],
)
def test_refused_queries_show_the_engines_message(
    client: FlaskClient, crm: Crm, query: dict[str, str], message: str
) -> None:
    sign_in(client, "rep")
    page = client.get(DEALS, query_string=query)
    assert page.status_code == 422
    error = re.search(
        r'<p class="notice notice-error" role="alert" id="grid-error">(.*?)</p>', page.text, re.S
    )
    assert error and message in error.group(1).replace("&#34;", '"')
    assert row_ids(page.text) == []
    assert PHONES[1] not in page.text


def test_keyset_pagination(client: FlaskClient, crm: Crm) -> None:
    crm.deals().create_many([{"name": f"Bulk {i:02d}", "region": "east"} for i in range(60)])
    sign_in(client, "viewer")
    first = client.get(DEALS)
    assert 'id="grid-total">65 records<' in first.text
    ids = row_ids(first.text)
    assert ids == list(range(1, 51))
    nxt = re.search(r'href="([^"]+)"[^>]*id="grid-next"', first.text)
    assert nxt
    second = client.get(nxt.group(1).replace("&amp;", "&"))
    assert row_ids(second.text) == list(range(51, 66))
    assert 'id="grid-next"' not in second.text
    assert "First page" in second.text
    # The cursor keeps the sort and the filter.
    sorted_first = client.get(
        DEALS, query_string={"sort": "-name", "field": "name", "op": "starts_with", "value": "Bulk"}
    )
    assert 'id="grid-total">60 records<' in sorted_first.text
    nxt = re.search(r'href="([^"]+)"[^>]*id="grid-next"', sorted_first.text)
    assert nxt and "sort=-name" in nxt.group(1) and "op=starts_with" in nxt.group(1)
    rest = client.get(nxt.group(1).replace("&amp;", "&"))
    assert len(row_ids(rest.text)) == 10
    assert row_ids(rest.text)[-1] == 6  # "Bulk 00", the last by name descending


def test_htmx_requests_get_only_the_results(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    full = client.get(DEALS)
    assert 'hx-get="' in full.text and 'hx-target="#grid-app"' in full.text
    assert '<section id="grid-results"' in full.text
    part = client.get(DEALS, query_string={"q": "acme"}, headers={"HX-Request": "true"})
    assert part.status_code == 200
    assert "<html" not in part.text and "<header" not in part.text
    assert '<tbody id="grid-body">' in part.text
    assert row_ids(part.text) == [1]
    assert "HX-Request" in part.headers.get("Vary", "")
    refused = client.get(DEALS, query_string={"sort": "phone"}, headers={"HX-Request": "true"})
    assert refused.status_code == 200 and 'id="grid-error"' in refused.text  # swapped in


@pytest.mark.parametrize(
    "person, path",
    [
        # no grant at all: the table is not there for the rep
        ("rep", "/apps/crm/tables/companies"),
        ("rep", "/apps/crm/tables/nothing"),
        ("rep", "/apps/nothing/tables/deals"),
        ("stranger", DEALS),  # no role in the app
    ],
)
def test_tables_the_user_cannot_see_are_404(
    client: FlaskClient, crm: Crm, person: str, path: str
) -> None:
    sign_in(client, person)
    page = client.get(path)
    assert page.status_code == 404
    assert "This page does not exist, or you have no access to it." in page.text


def test_a_table_without_read_is_403(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    # The rep may create deals, not read them.
    assert rb.install(definition(read=False), SYSTEM).applied
    sign_in(client, "rep")
    page = client.get(DEALS)
    assert page.status_code == 403
    assert "You are not allowed to do this." in page.text
    assert "Acme" not in page.text


def test_grid_needs_sign_in(client: FlaskClient, crm: Crm) -> None:
    response = client.get(DEALS)
    assert response.status_code == 303
    assert "/login?next=" in response.headers["Location"]


# --- a record ---------------------------------------------------------------------------------


def test_record_page_shows_readable_fields_masked(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    page = client.get(f"{DEALS}/records/1")
    assert page.status_code == 200
    assert "<h1>Acme</h1>" in page.text
    assert '<span class="value masked">' + MASKED_1 + "</span>" in page.text
    assert PHONES[1] not in page.text
    assert "call after lunch" in page.text
    assert 'name="reason"' in page.text and ">Reveal</button>" in page.text
    assert 'hx-post="/apps/crm/tables/deals/records/1/reveal"' in page.text


def test_viewer_record_page_has_no_notes_and_no_reveal(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "viewer")
    page = client.get(f"{DEALS}/records/1")
    assert page.status_code == 200
    assert "call after lunch" not in page.text and 'id="field-notes"' not in page.text
    assert MASKED_1 in page.text
    assert ">Reveal</button>" not in page.text  # the viewer's role has no reveal right


def test_a_record_outside_the_rows_is_the_same_404_as_a_missing_one(
    client: FlaskClient, crm: Crm
) -> None:
    sign_in(client, "rep")
    outside = client.get(f"{DEALS}/records/2")  # other_rep's deal
    missing = client.get(f"{DEALS}/records/999")
    assert outside.status_code == missing.status_code == 404
    assert without_tokens(outside.text) == without_tokens(missing.text)
    assert "Birch" not in outside.text
    huge = client.get(f"{DEALS}/records/99999999999999999999")
    assert huge.status_code == 404


def test_reveal_with_a_reason_shows_the_value_and_is_audited(
    client: FlaskClient, crm: Crm, rb: Recordbase
) -> None:
    sign_in(client, "rep")
    page = client.get(f"{DEALS}/records/1")
    response = client.post(
        f"{DEALS}/records/1/reveal",
        data={
            "csrf_token": csrf_from(page.text),
            "field": "phone",
            "reason": "customer called back",
        },
    )
    assert response.status_code == 200
    assert f'data-revealed="true">{PHONES[1]}</span>' in response.text
    assert "no-store" in response.headers["Cache-Control"]
    reveals = [
        e for e in rb.audit_entries(app="crm", table="deals", record=1) if e["action"] == "reveal"
    ]
    assert len(reveals) == 1
    assert reveals[0]["changes"]["reason"] == "customer called back"
    assert reveals[0]["changes"]["slug"] == "phone"
    assert PHONES[1] not in str(reveals[0]["changes"])
    # Shown once: the page, read again, is masked; its history lists the reveal.
    again = client.get(f"{DEALS}/records/1")
    assert PHONES[1] not in again.text
    assert "revealed a value" in again.text


def test_reveal_through_htmx_swaps_only_the_field(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    page = client.get(f"{DEALS}/records/3")
    response = client.post(
        f"{DEALS}/records/3/reveal",
        data={"csrf_token": csrf_from(page.text), "field": "phone", "reason": "confirm the number"},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "<html" not in response.text
    assert PHONES[3] in response.text


@pytest.mark.parametrize("reason", ["", "   ", "why"])
def test_reveal_without_a_reason_is_refused(
    client: FlaskClient, crm: Crm, rb: Recordbase, reason: str
) -> None:
    sign_in(client, "rep")
    page = client.get(f"{DEALS}/records/1")
    response = client.post(
        f"{DEALS}/records/1/reveal",
        data={"csrf_token": csrf_from(page.text), "field": "phone", "reason": reason},
    )
    assert response.status_code == 422
    assert "Give a reason of at least 5 characters." in response.text
    assert PHONES[1] not in response.text
    assert not [e for e in rb.audit_entries(app="crm", table="deals") if e["action"] == "reveal"]


def test_reveal_without_the_right_is_refused(client: FlaskClient, crm: Crm, rb: Recordbase) -> None:
    sign_in(client, "viewer")
    page = client.get(f"{DEALS}/records/1")
    response = client.post(
        f"{DEALS}/records/1/reveal",
        data={
            "csrf_token": csrf_from(page.text),
            "field": "phone",
            "reason": "just curious, really",
        },
    )
    assert response.status_code == 403
    assert "You may not reveal this value." in response.text
    assert PHONES[1] not in response.text
    assert not [e for e in rb.audit_entries(app="crm", table="deals") if e["action"] == "reveal"]


def test_reveal_outside_the_rows_is_404_and_needs_csrf(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    page = client.get(f"{DEALS}/records/1")
    token = csrf_from(page.text)
    outside = client.post(
        f"{DEALS}/records/2/reveal",
        data={"csrf_token": token, "field": "phone", "reason": "looking around"},
    )
    assert outside.status_code == 404 and PHONES[2] not in outside.text
    no_token = client.post(
        f"{DEALS}/records/1/reveal", data={"field": "phone", "reason": "no token here"}
    )
    assert no_token.status_code == 403 and PHONES[1] not in no_token.text


def test_history_shows_changes_masked(client: FlaskClient, crm: Crm) -> None:
    record = crm.deals().get(1)
    crm.deals().update(
        1, {"phone": "+8613812340000", "notes": "call in the morning"}, version=record.version
    )
    sign_in(client, "rep")
    page = client.get(f"{DEALS}/records/1")
    history = page.text.split('id="history"', 1)[1]
    assert "updated" in history and "created" in history
    assert (
        f'<span class="before">{MASKED_1}</span> → <span class="after">+86 138****0000</span>'
        in history
    )
    assert "call in the morning" in history
    assert "+8613812340000" not in page.text and PHONES[1] not in page.text
    client.post("/logout", data={"csrf_token": csrf_from(page.text)})
    sign_in(client, "viewer")
    seen = client.get(f"{DEALS}/records/1").text
    assert "call in the morning" not in seen and "Notes" not in seen.split('id="history"', 1)[1]


def test_pages_in_chinese(client: FlaskClient, crm: Crm) -> None:
    sign_in(client, "rep")
    zh = {"Accept-Language": "zh-CN"}
    grid = client.get(DEALS, headers=zh)
    assert "<h1>商机</h1>" in grid.text
    assert ">电话</th>" in grid.text  # the column header (encrypted: not sortable, so no link)
    assert "共 2 条记录" in grid.text and "搜索" in grid.text and "筛选" in grid.text
    record = client.get(f"{DEALS}/records/1", headers=zh)
    assert (
        ">电话</dt>" in record.text
        and "历史" in record.text
        and ">查看明文</button>" in record.text
    )
    refused = client.post(
        f"{DEALS}/records/1/reveal",
        data={"csrf_token": csrf_from(record.text), "field": "phone", "reason": ""},
        headers=zh,
    )
    assert "请填写原因，至少 5 个字符。" in refused.text
    english = client.get(DEALS, headers={"Accept-Language": "en"})
    assert "<h1>Deals</h1>" in english.text and ">Phone</th>" in english.text
