"""Dashboards: charts computed by the engine as the viewer, the dashboard page, the API, the checks.

The gallery's CRM app with two dashboard views added on deals: ``dash_sales``
(number cards, a pie by stage, a line by month, bars by company, owner and
contact, a card on activities), ``dash_groups`` (grouped by a date, a text, a
yes/no field and a creation stamp) and ``dash_empty`` (no charts), and a personal
field ``dash_discount`` that is stored in clear (so it can be summed) but is
above the marketing role's clearance. The people:

- ``ada``: platform administrator, sees everything;
- ``east``: sales manager whose rows are the deals of region east;
- ``rep``: sales rep, sees the deals they own — not the contacts of others;
- ``mark``: marketing, sees won and lost deals, ``amount`` hidden,
  ``dash_discount`` masked, no access to activities;
- ``stranger``: no role in the CRM.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from page_helpers import SYSTEM, login
from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.dashboards import dashboard
from recordbase.definition import check_definition
from recordbase.errors import NotFound

CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"
PASSWORD = "dashboards-password-1"
PAGE = "/apps/crm/views/dash_sales"
API = "/api/v1/apps/crm/dashboards/dash_sales"

CHARTS: list[dict[str, Any]] = [
    {"slug": "deal_count", "label": {"en": "Deals", "zh-CN": "商机数"}, "type": "number"},
    {"slug": "total", "label": {"en": "Total amount", "zh-CN": "总金额"}, "type": "number", "metric": "sum:amount"},
    {"slug": "average", "label": "Average deal", "type": "number", "metric": "avg:amount"},
    {"slug": "discounts", "label": "Discounts", "type": "number", "metric": "sum:dash_discount"},
    {"slug": "by_stage", "label": {"en": "Deals by stage", "zh-CN": "各阶段商机"}, "type": "pie", "group_by": "stage"},
    {"slug": "by_month", "label": "Amount by month", "type": "line", "metric": "sum:amount", "group_by": "month:close_date"},
    {"slug": "by_company", "label": "By company", "type": "bar", "group_by": "company"},
    {"slug": "by_owner", "label": "By owner", "type": "bar", "group_by": "owner"},
    {"slug": "by_contact", "label": "By contact", "type": "bar", "group_by": "contact"},
    {
        "slug": "open_activities", "label": "Open activities", "type": "number", "table": "activities",
        "filter": {"field": "done", "op": "eq", "value": False},
    },
]  # fmt: skip


# Charts grouped by a plain value: a date, a text, a yes/no field and a creation stamp.
GROUP_CHARTS: list[dict[str, Any]] = [
    {"slug": "by_close_date", "label": "By close date", "type": "bar", "metric": "sum:amount", "group_by": "close_date"},
    {"slug": "by_name", "label": "By name", "type": "bar", "group_by": "name"},
    {"slug": "by_done", "label": "Done or not", "type": "pie", "table": "activities", "group_by": "done"},
    {"slug": "by_created", "label": "By creation", "type": "bar", "group_by": "created"},
]  # fmt: skip


def crm_with_dashboards() -> dict[str, Any]:
    definition = json.loads(CRM.read_text())
    deals = next(t for t in definition["tables"] if t["slug"] == "deals")
    deals["fields"].append(
        {
            "slug": "dash_discount", "label": "Discount", "type": "number",
            "sensitivity": "personal", "encrypted": False, "purpose": "Negotiated price, for the manager.",
        }
    )  # fmt: skip
    definition["views"] += [
        {
            "slug": "dash_sales",
            "label": {"en": "Sales numbers", "zh-CN": "销售数字"},
            "table": "deals",
            "type": "dashboard",
            "charts": CHARTS,
        },
        {"slug": "dash_empty", "label": "Nothing yet", "table": "deals", "type": "dashboard"},
        {"slug": "dash_groups", "label": "Groups", "table": "deals", "type": "dashboard", "charts": GROUP_CHARTS},
    ]
    return definition


@pytest.fixture
def world(rb: Recordbase) -> dict[str, int]:
    result = rb.install(crm_with_dashboards(), SYSTEM)
    assert result.applied, result.problems
    ids = {
        "ada": rb.create_user(SYSTEM, "ada@example.org", PASSWORD, display_name="Ada", is_admin=True),
        "east": rb.create_user(
            SYSTEM, "east@example.org", PASSWORD, display_name="Wang East", attributes={"region": "east"}
        ),
        "rep": rb.create_user(SYSTEM, "rep@example.org", PASSWORD, display_name="Zhao Rep"),
        "mark": rb.create_user(SYSTEM, "mark@example.org", PASSWORD, display_name="Mark"),
        "stranger": rb.create_user(SYSTEM, "stranger@example.org", PASSWORD, display_name="Stranger"),
    }
    rb.set_roles(SYSTEM, "east@example.org", "crm", ["sales_manager"])
    rb.set_roles(SYSTEM, "rep@example.org", "crm", ["sales_rep"])
    rb.set_roles(SYSTEM, "mark@example.org", "crm", ["marketing"])
    companies = rb.records(SYSTEM, "crm", "companies")
    acme = companies.create({"name": "Acme"}).id
    globex = companies.create({"name": "Globex"}).id
    contact = rb.records(SYSTEM, "crm", "contacts").create(
        {"name": "Chen Jing", "company": acme, "owner": ids["east"], "region": "east"}
    ).id
    deals = rb.records(SYSTEM, "crm", "deals")
    rows = [
        ("Alpha", "1000.00", "won", "2026-01-10", "east", acme, ids["rep"], contact, 10),
        ("Beta", "250.50", "lead", "2026-01-20", "east", globex, ids["east"], None, 5),
        ("Gamma", "3000", "won", "2026-03-05", "west", acme, None, None, None),
        ("Delta", "99.99", "lost", None, "west", globex, ids["rep"], None, 7),
    ]
    for name, amount, stage, close, region, company, owner, person, discount in rows:
        deals.create(
            {
                "name": name, "amount": amount, "stage": stage, "close_date": close, "region": region,
                "company": company, "owner": owner, "contact": person, "dash_discount": discount,
            }
        )  # fmt: skip
    activities = rb.records(SYSTEM, "crm", "activities")
    activities.create({"subject": "Call Chen", "done": False})
    activities.create({"subject": "Sent the offer", "done": True})
    ids.update(acme=acme, globex=globex, contact=contact)
    return ids


def as_user(rb: Recordbase, user_id: int) -> Actor:
    found = rb.actor_for(user_id)
    assert found is not None
    return found


def charts_of(rb: Recordbase, actor: Actor, view: str = "dash_sales") -> dict[str, dict[str, Any]]:
    return {c["slug"]: c for c in dashboard(rb, actor, "crm", view).as_json()["charts"]}


def points(chart: dict[str, Any]) -> list[tuple[Any, Any, Any]]:
    return [(p["key"], p["label"], p["value"]) for p in chart["points"]]


def sign_in(client: FlaskClient, who: str) -> None:
    answer = login(client, f"{who}@example.org", PASSWORD)
    assert answer.status_code == 303, answer.status_code


# --- the engine ------------------------------------------------------------------------------


def test_charts_grouped_by_plain_values_name_each_group(rb: Recordbase, world: dict[str, int]) -> None:
    charts = charts_of(rb, as_user(rb, world["ada"]), "dash_groups")
    assert {slug: c["group_kind"] for slug, c in charts.items()} == {
        "by_close_date": "date", "by_name": "value", "by_done": "boolean", "by_created": "datetime",
    }  # fmt: skip
    assert points(charts["by_close_date"]) == [
        ("2026-01-10", "2026-01-10", "1000.00"),
        ("2026-01-20", "2026-01-20", "250.50"),
        ("2026-03-05", "2026-03-05", "3000.00"),
        (None, None, "99.99"),  # Delta has no close date
    ]
    assert points(charts["by_name"]) == [(n, n, 1) for n in ("Alpha", "Beta", "Delta", "Gamma")]
    assert points(charts["by_done"]) == [(False, "false", 1), (True, "true", 1)]
    created = points(charts["by_created"])
    assert [value for _key, _label, value in created] == [1, 1, 1, 1]  # one instant per deal
    assert all(dt.datetime.fromisoformat(key).tzinfo is not None for key, _label, _value in created)


def test_every_chart_is_computed_for_a_full_viewer(rb: Recordbase, world: dict[str, int]) -> None:
    charts = charts_of(rb, as_user(rb, world["ada"]))
    assert list(charts) == [c["slug"] for c in CHARTS]
    assert charts["deal_count"] == {
        "slug": "deal_count", "label": {"en": "Deals", "zh-CN": "商机数"}, "type": "number",
        "table": "deals", "metric": "count", "group_by": None, "available": True,
        "value_kind": "count", "currency": None, "metric_label": None, "value": 4,
    }  # fmt: skip
    assert charts["total"]["value"] == "4350.49"
    assert (charts["total"]["value_kind"], charts["total"]["currency"]) == ("currency", "CNY")
    assert charts["average"]["value"] == "1087.62"  # 4350.49 / 4, to the field's two places
    assert charts["discounts"]["value"] == 22
    assert charts["open_activities"]["value"] == 1
    stage = charts["by_stage"]
    assert stage["group_kind"] == "choice"
    assert points(stage) == [
        ("lead", {"en": "Lead", "zh-CN": "线索"}, 1),
        ("won", {"en": "Won", "zh-CN": "赢单"}, 2),
        ("lost", {"en": "Lost", "zh-CN": "输单"}, 1),
    ]
    month = charts["by_month"]
    assert (month["group_kind"], month["bucket"]) == ("bucket", "month")
    assert points(month) == [
        ("2026-01", "2026-01", "1250.50"),
        ("2026-03", "2026-03", "3000.00"),
        (None, None, "99.99"),  # no close date: last
    ]
    assert points(charts["by_company"]) == [
        (world["acme"], "Acme", 2),
        (world["globex"], "Globex", 2),
    ]
    assert sorted(points(charts["by_owner"]), key=str) == sorted(
        [(world["east"], "Wang East", 1), (world["rep"], "Zhao Rep", 2), (None, None, 1)], key=str
    )
    assert points(charts["by_contact"]) == [(world["contact"], "Chen Jing", 1), (None, None, 3)]


def test_row_rules_change_the_numbers_per_viewer(rb: Recordbase, world: dict[str, int]) -> None:
    east = charts_of(rb, as_user(rb, world["east"]))
    assert east["deal_count"]["value"] == 2  # Alpha and Beta: region east
    assert east["total"]["value"] == "1250.50"
    assert east["discounts"]["value"] == 15  # personal, within the manager's clearance
    assert points(east["by_stage"]) == [
        ("lead", {"en": "Lead", "zh-CN": "线索"}, 1),
        ("won", {"en": "Won", "zh-CN": "赢单"}, 1),
    ]
    rep = charts_of(rb, as_user(rb, world["rep"]))
    assert rep["deal_count"]["value"] == 2  # Alpha and Delta: their own
    assert rep["total"]["value"] == "1099.99"
    assert points(rep["by_owner"]) == [(world["rep"], "Zhao Rep", 2)]
    mark = charts_of(rb, as_user(rb, world["mark"]))
    assert mark["deal_count"]["value"] == 3  # won and lost deals only
    assert [p[2] for p in points(mark["by_stage"])] == [2, 1]


def test_a_link_label_is_read_as_the_viewer(rb: Recordbase, world: dict[str, int]) -> None:
    rep = charts_of(rb, as_user(rb, world["rep"]))
    # Alpha's contact belongs to someone else: the rep reads the shared contact book, but the
    # name (personal) is in clear only on the rep's own contacts, so the label is masked.
    assert points(rep["by_contact"]) == [(world["contact"], "C********", 1), (None, None, 1)]
    assert "Chen Jing" not in json.dumps(rep, ensure_ascii=False)


def test_hidden_and_masked_fields_make_a_chart_unavailable(rb: Recordbase, world: dict[str, int]) -> None:
    mark = charts_of(rb, as_user(rb, world["mark"]))
    hidden = "this chart uses \"amount\", which you cannot read in clear"
    for slug in ("total", "average", "by_month"):
        assert mark[slug] == {
            "slug": slug, "label": next(c["label"] for c in CHARTS if c["slug"] == slug),
            "type": next(c["type"] for c in CHARTS if c["slug"] == slug), "table": "deals",
            "metric": next(c.get("metric", "count") for c in CHARTS if c["slug"] == slug),
            "group_by": next(c.get("group_by") for c in CHARTS if c["slug"] == slug),
            "available": False, "reason": "not_clear", "message": hidden,
        }  # fmt: skip
    assert (mark["discounts"]["available"], mark["discounts"]["reason"]) == (False, "not_clear")
    assert (mark["open_activities"]["available"], mark["open_activities"]["reason"]) == (False, "no_access")
    assert mark["by_stage"]["available"] and mark["deal_count"]["available"]
    text = json.dumps(mark)
    for secret in ("1000", "3000", "99.99", '"17"', "4350", "4099"):
        assert secret not in text


def test_a_filter_on_a_masked_field_makes_the_chart_unavailable(rb: Recordbase, world: dict[str, int]) -> None:
    definition = crm_with_dashboards()
    view = next(v for v in definition["views"] if v["slug"] == "dash_sales")
    view["charts"] = [
        {
            "slug": "big_discounts", "label": "Big discounts", "type": "number",
            "filter": {"field": "dash_discount", "op": "gte", "value": 6},
        }
    ]  # fmt: skip
    assert rb.install(definition, SYSTEM).applied
    [mark] = charts_of(rb, as_user(rb, world["mark"])).values()
    assert (mark["available"], mark["reason"]) == (False, "not_clear")
    [east] = charts_of(rb, as_user(rb, world["east"])).values()
    assert east["value"] == 1  # Alpha (10); Beta has 5


def test_a_view_filter_applies_to_the_charts_on_its_table(rb: Recordbase, world: dict[str, int]) -> None:
    definition = crm_with_dashboards()
    view = next(v for v in definition["views"] if v["slug"] == "dash_sales")
    view["filter"] = {"field": "stage", "op": "eq", "value": "won"}
    assert rb.install(definition, SYSTEM).applied
    charts = charts_of(rb, SYSTEM)
    assert charts["deal_count"]["value"] == 2
    assert charts["open_activities"]["value"] == 1  # another table: the view's filter does not apply


def test_a_dashboard_the_viewer_cannot_see_is_not_found(rb: Recordbase, world: dict[str, int]) -> None:
    with pytest.raises(NotFound):
        dashboard(rb, as_user(rb, world["stranger"]), "crm", "dash_sales")
    with pytest.raises(NotFound):
        dashboard(rb, SYSTEM, "crm", "pipeline")  # a kanban, not a dashboard
    with pytest.raises(NotFound):
        dashboard(rb, SYSTEM, "crm", "nothing")
    empty = dashboard(rb, SYSTEM, "crm", "dash_empty").as_json()
    assert empty == {"app": "crm", "view": "dash_empty", "label": "Nothing yet", "table": "deals", "charts": []}


def test_the_gallery_crm_dashboard_computes_every_chart(rb: Recordbase, world: dict[str, int]) -> None:
    definition = json.loads(CRM.read_text())
    for view in definition["views"]:
        if view.get("type") != "dashboard":
            continue
        charts = dashboard(rb, as_user(rb, world["ada"]), "crm", view["slug"]).charts
        assert [c.slug for c in charts] == [c["slug"] for c in view.get("charts") or []]
        assert [(c.slug, c.message) for c in charts if not c.available] == []


# --- the page --------------------------------------------------------------------------------


def card(page: str, slug: str) -> str:
    found = re.search(rf'<article class="dashboard-card[^"]*" id="chart-{slug}".*?</article>', page, re.S)
    assert found, f"no card {slug}"
    return found.group(0)


def test_the_page_shows_every_chart_with_its_numbers(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "east")
    answer = client.get(PAGE)
    assert answer.status_code == 200
    page = answer.text
    assert "<h1>Sales numbers</h1>" in page
    assert re.search(r'<script src="/assets/chart\.umd\.min\.js\?v=4\.\d+\.\d+" defer></script>', page)
    assert re.search(r'<script src="/static/dashboards\.js\?v=\w+" defer></script>', page)
    assert '<data value="2">2</data>' in card(page, "deal_count")
    assert '<data value="1250.50">CN¥1,250.50</data>' in card(page, "total")
    assert "Sum of Amount" in card(page, "total")
    stage = card(page, "by_stage")
    assert "<caption>Deals by stage</caption>" in stage
    assert '<th scope="col">Stage</th><th scope="col">Records</th>' in stage
    assert '<tr><th scope="row">Lead</th><td><data value="1">1</data></td></tr>' in stage
    assert '<tr><th scope="row">Won</th><td><data value="1">1</data></td></tr>' in stage
    data = json.loads(re.search(r'<script type="application/json" class="chart-data">(.*?)</script>', stage, re.S).group(1))  # type: ignore[union-attr]
    assert data == {"type": "pie", "label": "Records", "labels": ["Lead", "Won"], "values": [1.0, 1.0]}
    month = card(page, "by_month")
    assert '<tr><th scope="row">Jan 2026</th><td><data value="1250.50">CN¥1,250.50</data></td></tr>' in month
    assert "<canvas" in month and 'role="img"' in month
    assert '<tr><th scope="row">Wang East</th>' in card(page, "by_owner")
    assert "Chen Jing" in card(page, "by_contact")
    assert "You may not read" not in page


@pytest.mark.sqlite_only
def test_the_page_names_plain_groups_in_the_readers_language(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "ada")
    page = client.get("/apps/crm/views/dash_groups").text
    done = card(page, "by_done")
    assert '<tr><th scope="row">no</th><td><data value="1">1</data></td></tr>' in done
    assert '<tr><th scope="row">yes</th><td><data value="1">1</data></td></tr>' in done
    dates = card(page, "by_close_date")
    assert '<tr><th scope="row">Jan 10, 2026</th><td><data value="1000.00">CN¥1,000.00</data></td></tr>' in dates
    assert '<tr><th scope="row">No value</th><td><data value="99.99">CN¥99.99</data></td></tr>' in dates
    chinese = client.get("/apps/crm/views/dash_groups", headers={"Accept-Language": "zh-CN"}).text
    assert '<th scope="row">2026年1月10日</th>' in card(chinese, "by_close_date")


def test_the_page_in_chinese(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "east")
    page = client.get(PAGE, headers={"Accept-Language": "zh-CN"}).text
    assert "<h1>销售数字</h1>" in page
    assert '<h2 id="chart-by_stage-title">各阶段商机</h2>' in page
    stage = card(page, "by_stage")
    assert "<caption>各阶段商机</caption>" in stage
    assert '<th scope="row">线索</th>' in stage and '<th scope="row">赢单</th>' in stage
    assert '<th scope="col">阶段</th>' in stage
    assert '<th scope="row">2026年1月</th>' in card(page, "by_month")
    assert '<data value="1250.50">¥1,250.50</data>' in card(page, "total")


def test_unavailable_charts_say_why_and_leak_nothing(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "mark")
    answer = client.get(PAGE)
    assert answer.status_code == 200
    page = answer.text
    for slug in ("total", "average", "by_month", "discounts"):
        assert (
            '<p class="dashboard-unavailable">This chart uses a field you cannot read in clear, '
            "so it is not shown to you.</p>" in card(page, slug)
        )
    assert '<p class="dashboard-unavailable">You may not read the records this chart counts.</p>' in card(
        page, "open_activities"
    )
    assert '<data value="3">3</data>' in card(page, "deal_count")
    for secret in ("1,000", "3,000", "99.99", "4,350", 'value="17"'):
        assert secret not in page


def test_a_linked_record_is_named_as_the_viewer_sees_it(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "rep")
    contact = card(client.get(PAGE).text, "by_contact")
    assert '<tr><th scope="row">C********</th>' in contact  # masked: not the rep's contact
    assert '<tr><th scope="row">No value</th>' in contact
    assert "Chen Jing" not in contact


def test_a_dashboard_without_charts(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "east")
    page = client.get("/apps/crm/views/dash_empty").text
    assert '<p id="dashboard-empty">This dashboard has no charts yet.</p>' in page


def test_the_page_is_refused_to_who_may_not_see_it(client: FlaskClient, world: dict[str, int]) -> None:
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 303
    assert anonymous.headers["Location"] == "/login?next=/apps/crm/views/dash_sales"
    sign_in(client, "stranger")
    assert client.get(PAGE).status_code == 404
    assert client.get("/apps/crm/views/nothing").status_code == 404


def test_the_chart_library_is_served(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "east")
    page = client.get(PAGE).text
    src = re.search(r'<script src="(/assets/chart\.umd\.min\.js\?v=[^"]+)"', page).group(1)  # type: ignore[union-attr]
    script = client.get(src)
    assert script.status_code == 200
    assert script.data.startswith(b"/*!\n * Chart.js v4.")
    ours = client.get(re.search(r'<script src="(/static/dashboards\.js\?v=[^"]+)"', page).group(1))  # type: ignore[union-attr]
    assert ours.status_code == 200 and b"new window.Chart(" in ours.data


def test_the_app_page_lists_dashboards_the_user_can_read(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    sign_in(client, "mark")
    page = client.get("/apps/crm").text
    row = page.split('id="view-dash_sales"', 1)[1].split("</tr>", 1)[0]
    assert '<a href="/apps/crm/views/dash_sales">Sales numbers</a>' in row
    assert "<td>Dashboard</td>" in row
    drop = {
        "slug": "drop", "label": "Drop box", "roles": [{"slug": "staff", "label": "Staff"}],
        "tables": [
            {
                "slug": "notes", "label": "Notes", "fields": [{"slug": "text", "label": "Text", "type": "text"}],
                "permissions": {"staff": {"create": True}},
            }
        ],
        "views": [
            {
                "slug": "numbers", "label": "Numbers", "table": "notes", "type": "dashboard",
                "charts": [{"slug": "n", "label": "Notes", "type": "number"}],
            }
        ],
    }  # fmt: skip
    assert rb.install(drop, SYSTEM).applied
    rb.set_roles(SYSTEM, "mark@example.org", "drop", ["staff"])
    assert 'id="view-numbers"' not in client.get("/apps/drop").text  # may add notes, not count them
    numbers = client.get("/apps/drop/views/numbers").text  # reached anyway: says why, shows nothing
    assert "You may not read the records this chart counts." in numbers


# --- the API ---------------------------------------------------------------------------------


def test_the_api_returns_what_the_engine_computes_for_the_caller(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    sign_in(client, "mark")
    answer = client.get(API)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.get_json()
    assert body == dashboard(rb, as_user(rb, world["mark"]), "crm", "dash_sales").as_json()
    charts = {c["slug"]: c for c in body["charts"]}
    assert charts["deal_count"]["value"] == 3
    assert (charts["total"]["available"], charts["total"]["reason"]) == (False, "not_clear")
    assert "value" not in charts["total"] and "points" not in charts["total"]


def test_the_api_with_a_token(client: FlaskClient, rb: Recordbase, world: dict[str, int]) -> None:
    _, secret = rb.create_token(SYSTEM, "east@example.org")
    answer = client.get(API, headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    charts = {c["slug"]: c for c in answer.get_json()["charts"]}
    assert charts["total"]["value"] == "1250.50"
    assert points(charts["by_month"]) == [("2026-01", "2026-01", "1250.50")]


def test_the_api_refuses_who_may_not_see_it(client: FlaskClient, world: dict[str, int]) -> None:
    anonymous = client.get(API)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    sign_in(client, "stranger")
    missing = client.get(API)
    assert missing.status_code == 404
    assert missing.headers["Content-Type"] == "application/problem+json"
    sign_in(client, "east")
    assert client.get("/api/v1/apps/crm/dashboards/pipeline").status_code == 404


def test_the_openapi_document_describes_the_dashboards(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "east")
    document = client.get("/api/v1/openapi.json").get_json()
    path = document["paths"]["/api/v1/apps/crm/dashboards/{view}"]["get"]
    [view] = path["parameters"]
    assert {"dash_sales", "dash_empty"} <= set(view["schema"]["enum"])
    assert path["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Dashboard"
    }
    schema = document["components"]["schemas"]["Dashboard"]
    for who in ("east", "mark", "rep"):  # every shape of answer conforms: numbers, points, unavailable
        sign_in(client, who)
        Draft202012Validator(schema).validate(client.get(API).get_json())
    anonymous = FlaskClient(client.application).get("/api/v1/openapi.json").get_json()
    assert not [p for p in anonymous["paths"] if "/dashboards/" in p]


# --- the definition checks -------------------------------------------------------------------


def problems_of(charts: list[dict[str, Any]], **view: Any) -> list[tuple[str, str]]:
    definition = json.loads(CRM.read_text())
    definition["views"].append(
        {"slug": "dash_check", "label": "Check", "table": "deals", "type": "dashboard", "charts": charts, **view}
    )
    where = f"/views/{len(definition['views']) - 1}"
    return [(p.pointer.replace(where, "@"), p.message.replace(where, "@")) for p in check_definition(definition)]


def test_good_charts_pass_the_checks() -> None:
    assert problems_of(CHARTS[:3] + CHARTS[4:]) == []


@pytest.mark.parametrize(
    ("chart", "expected"),
    [
        (
            {"slug": "a", "label": "A", "type": "number", "metric": "sum:name"},
            ("@/charts/0/metric", '"sum" needs a number field; "name" is a text field'),
        ),
        (
            {"slug": "a", "label": "A", "type": "bar", "metric": "max:close_date", "group_by": "stage"},
            ("@/charts/0/metric", 'a bar chart needs a number field; "close_date" is a date field'),
        ),
        (
            {"slug": "a", "label": "A", "type": "number", "metric": "avg:nope"},
            ("@/charts/0/metric", 'avg field "nope" is not a field of table "deals"; expected one of: '),
        ),
        (
            {"slug": "a", "label": "A", "type": "line", "group_by": "month:stage"},
            (
                "@/charts/0/group_by",
                'group_by "stage" is a single_select field; grouping by month needs '
                "a date, datetime, created_at or updated_at field",
            ),
        ),
        (
            {"slug": "a", "label": "A", "type": "pie", "group_by": "nope"},
            ("@/charts/0/group_by", 'group_by field "nope" is not a field of table "deals"; expected one of: '),
        ),
        (
            {"slug": "a", "label": "A", "type": "bar"},
            ("@/charts/0", 'a bar chart needs "group_by": a field, or a date field by bucket like "month:close_date"'),
        ),
        (
            {"slug": "a", "label": "A", "type": "number", "group_by": "stage"},
            ("@/charts/0/group_by", "a number card shows one value: it has no group_by"),
        ),
        (
            {"slug": "a", "label": "A", "type": "number", "table": "nope"},
            ("@/charts/0/table", 'chart table "nope" does not exist in this app; expected one of: '),
        ),
        (
            {"slug": "a", "label": "A", "type": "pie", "table": "contacts", "group_by": "name"},
            ("@/charts/0/group_by", 'cannot group by "name": it is encrypted'),
        ),
        (
            {"slug": "a", "label": "A", "type": "number", "filter": {"field": "stage", "op": "in", "value": []}},
            ("@/charts/0/filter/value", 'operator "in" needs a non-empty array of values, got an array of 0 items'),
        ),
        (
            {"slug": "a", "label": "A", "type": "number", "filter": {"field": "nope", "op": "is_empty"}},
            ("@/charts/0/filter/field", 'filter field "nope" is not a field of table "deals"; expected one of: '),
        ),
    ],
)
def test_a_bad_chart_is_reported_at_its_pointer(chart: dict[str, Any], expected: tuple[str, str]) -> None:
    found = problems_of([chart])
    assert len(found) == 1, found
    assert found[0][0] == expected[0]
    assert found[0][1].startswith(expected[1])


def test_chart_slugs_are_unique_and_charts_belong_to_dashboards() -> None:
    twice = [{"slug": "a", "label": "A", "type": "number"}, {"slug": "a", "label": "B", "type": "number"}]
    assert problems_of(twice) == [("@/charts/1/slug", 'duplicate chart slug "a"; already used at @/charts/0/slug')]
    kanban = problems_of([{"slug": "a", "label": "A", "type": "number"}], type="kanban", group_by="stage")
    assert kanban == [("@/charts", '"charts" are for dashboard views; this view is a kanban')]
