"""Browser pages, views: kanban boards (moving cards) and month calendars, as the signed-in user.

A small "shop" app: orders with a status (the board's columns), a due date
and a due instant (two calendars), a customer link, a personal phone and a
secret note. The people:

- ``clerk`` reads every order, updates them, sees the phone masked and never
  the secret;
- ``boss`` the same, with personal data in clear;
- ``viewer`` only reads: no dragging, no move forms, moves refused;
- ``fixed`` updates orders but may only read the status: no move either;
- ``maker`` may only create orders: the views exist for it, their records not;
- ``blind`` reads orders without their status and due date (hidden);
- ``public`` reads orders with public clearance only: status and dates masked;
- ``outsider`` has no role in the app.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from page_helpers import SYSTEM, csrf_from, login, token
from recordbase.core import Recordbase
from recordbase.definition import load_definition_file

pytestmark = pytest.mark.sqlite_only  # see conftest: pages are database-independent

PASSWORD = "views-password-1"
BOARD = "/apps/shop/views/board"
MOVE = BOARD + "/move"
CRM = Path(__file__).resolve().parent.parent / "schemas" / "gallery" / "crm.json"
PHONE = "+8613812345678"
MASKED = "+86 138****5678"


def shop() -> dict[str, Any]:
    status = {
        "slug": "status",
        "label": {"en": "Status", "zh-CN": "状态"},
        "type": "single_select",
        "options": {
            "choices": [
                {"id": "new", "label": {"en": "New", "zh-CN": "新建"}, "color": "blue"},
                {"id": "paid", "label": {"en": "Paid", "zh-CN": "已付款"}, "color": "green"},
                {"id": "shipped", "label": {"en": "Shipped", "zh-CN": "已发货"}},
            ]
        },
    }
    return {
        "slug": "shop",
        "label": {"en": "Shop", "zh-CN": "商店"},
        "version": 1,
        "roles": [
            {"slug": "clerk", "label": "Clerk", "clearance": ["public", "internal"]},
            {"slug": "boss", "label": "Boss", "clearance": ["public", "internal", "personal"]},
            {"slug": "viewer", "label": "Viewer"},
            {"slug": "fixed", "label": "Fixed"},
            {"slug": "maker", "label": "Maker"},
            {"slug": "blind", "label": "Blind"},
            {"slug": "public", "label": "Public only", "clearance": ["public"]},
        ],
        "tables": [
            {
                "slug": "customers",
                "label": "Customers",
                "primary_field": "name",
                "fields": [
                    {
                        "slug": "name",
                        "label": "Name",
                        "type": "text",
                        "sensitivity": "personal",
                        "encrypted": False,
                        "purpose": "delivery",
                    }
                ],
                "permissions": {
                    role: {"read": True} for role in ("clerk", "boss", "viewer", "fixed")
                },
            },
            {
                "slug": "orders",
                "label": {"en": "Orders", "zh-CN": "订单"},
                "primary_field": "title",
                "fields": [
                    {"slug": "title", "label": "Title", "type": "text"},
                    {
                        "slug": "customer",
                        "label": "Customer",
                        "type": "link",
                        "options": {"table": "customers"},
                    },
                    {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "delivery"},
                    status,
                    {"slug": "due", "label": "Due", "type": "date"},
                    {"slug": "due_at", "label": "Due at", "type": "datetime"},
                    {"slug": "secret", "label": "Secret", "type": "long_text"},
                    {"slug": "code", "label": "Code", "type": "text", "required": True},
                ],
                "permissions": {
                    "clerk": {"read": True, "update": True, "fields": {"secret": "hidden"}},
                    "boss": {"read": True, "update": True},
                    "viewer": {"read": True},
                    "fixed": {"read": True, "update": True, "fields": {"status": "read"}},
                    "maker": {"create": True},
                    "blind": {"read": True, "fields": {"status": "hidden", "due": "hidden"}},
                    "public": {"read": True},
                },
            },
        ],
        "views": [
            {
                "slug": "board",
                "label": {"en": "Order board", "zh-CN": "订单看板"},
                "table": "orders",
                "type": "kanban",
                "group_by": "status",
                "filter": {"field": "title", "op": "ne", "value": "Filtered out"},
                "sort": ["title"],
                "fields": ["title", "customer", "phone", "secret", "due"],
            },
            {
                "slug": "days",
                "label": "Due days",
                "table": "orders",
                "type": "calendar",
                "date_field": "due",
                "filter": {"field": "title", "op": "ne", "value": "Filtered out"},
            },
            {
                "slug": "moments",
                "label": "Due moments",
                "table": "orders",
                "type": "calendar",
                "date_field": "due_at",
            },
            {"slug": "all_orders", "label": "All orders", "table": "orders", "type": "grid"},
            {"slug": "order_form", "label": "Order form", "table": "orders", "type": "form"},
            {"slug": "numbers", "label": "Numbers", "table": "orders", "type": "dashboard"},
        ],
    }


PEOPLE = {
    "clerk": ["clerk"],
    "boss": ["boss"],
    "viewer": ["viewer"],
    "fixed": ["fixed"],
    "maker": ["maker"],
    "blind": ["blind"],
    "public": ["public"],
    "outsider": [],
}


@pytest.fixture
def world(rb: Recordbase) -> dict[str, int]:
    """The shop, its people, a customer and orders; returns the orders' ids by title."""
    result = rb.install(shop(), SYSTEM)
    assert result.applied, result.problems
    for person, roles in PEOPLE.items():
        rb.create_user(SYSTEM, f"{person}@example.com", PASSWORD, display_name=person.title())
        if roles:
            rb.set_roles(SYSTEM, f"{person}@example.com", "shop", roles)
    customer = rb.records(SYSTEM, "shop", "customers").create({"name": "Zhang San"})
    orders = rb.records(SYSTEM, "shop", "orders")
    made = {}
    for title, status, due in [
        ("Apples", "new", "2026-05-01"),
        ("Bananas", "new", "2026-05-31"),
        ("Cherries", "paid", "2026-06-01"),
        ("Dates", None, "2026-04-30"),
        ("Eggs", "shipped", None),
        ("Filtered out", "new", "2026-05-15"),
    ]:
        record = orders.create(
            {
                "title": title,
                "status": status,
                "due": due,
                "customer": customer.id,
                "phone": PHONE,
                "secret": f"secret of {title}",
                "code": title[:3],
            }
        )
        made[title] = record.id
    return made


def sign_in(client: FlaskClient, person: str) -> None:
    response = login(client, f"{person}@example.com", PASSWORD)
    assert response.status_code == 303, response.status_code


def column(html: str, choice: str) -> str:
    """The HTML of the board's column for ``choice`` ("" for "No value")."""
    found = re.search(
        rf'<section class="kanban-column[^"]*"[^>]*data-column="{choice}".*?</section>', html, re.S
    )
    assert found, choice
    return found.group(0)


def card_titles(html: str) -> list[str]:
    return re.findall(r'<h3><a href="[^"]+">([^<]+)</a></h3>', html)


def count_of(html: str, choice: str) -> int:
    found = re.search(r'class="kanban-count" data-count="(\d+)"', column(html, choice))
    assert found
    return int(found.group(1))


def card(html: str, record_id: int) -> str:
    found = re.search(rf'<li class="kanban-card" data-id="{record_id}".*?</li>', html, re.S)
    assert found, record_id
    return found.group(0)


def version_of(html: str, record_id: int) -> int:
    found = re.search(rf'data-id="{record_id}" data-version="(\d+)"', html)
    assert found
    return int(found.group(1))


def status_of(rb: Recordbase, record_id: int) -> Any:
    return rb.records(SYSTEM, "shop", "orders").get(record_id).fields["status"]


# --- the view's address ------------------------------------------------------------------


def test_anonymous_is_sent_to_sign_in(client: FlaskClient, world: dict[str, int]) -> None:
    response = client.get(BOARD)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=/apps/shop/views/board"
    response = client.post(MOVE, data={"csrf_token": token(client), "record_id": "1", "to": "paid"})
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", [BOARD, "/apps/shop/views/days", "/apps/shop/views/nothing"])
def test_a_user_without_a_role_gets_404(
    client: FlaskClient, world: dict[str, int], path: str
) -> None:
    sign_in(client, "outsider")
    response = client.get(path)
    assert response.status_code == 404
    assert "This page does not exist, or you have no access to it." in response.text
    assert "Apples" not in response.text


def test_an_unknown_view_is_404(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    assert client.get("/apps/shop/views/nothing").status_code == 404
    assert client.get("/apps/nothing/views/board").status_code == 404


def test_a_dashboard_without_charts_says_so(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    page = client.get("/apps/shop/views/numbers")
    assert page.status_code == 200
    assert "This dashboard has no charts yet." in page.text


def test_grid_and_form_views_redirect_to_their_pages(
    client: FlaskClient, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    grid = client.get("/apps/shop/views/all_orders")
    assert grid.status_code == 302
    assert grid.headers["Location"] == "/apps/shop/tables/orders?view=all_orders"
    form = client.get("/apps/shop/views/order_form")
    assert form.status_code == 302
    assert form.headers["Location"] == "/apps/shop/forms/order_form"


@pytest.mark.parametrize("view", ["board", "days"])
def test_views_of_a_table_without_read_right_are_refused(
    client: FlaskClient, world: dict[str, int], view: str
) -> None:
    sign_in(client, "maker")
    response = client.get(f"/apps/shop/views/{view}")
    assert response.status_code == 403
    assert "Apples" not in response.text


@pytest.mark.parametrize(
    "view, message",
    [
        ("board", "You cannot see the field this board is grouped by."),
        ("days", "You cannot see the date this calendar is arranged by."),
    ],
)
def test_a_view_by_a_hidden_field_is_refused(
    client: FlaskClient, world: dict[str, int], view: str, message: str
) -> None:
    sign_in(client, "blind")
    response = client.get(f"/apps/shop/views/{view}")
    assert response.status_code == 403
    assert message in response.text
    assert "Apples" not in response.text


@pytest.mark.parametrize("view", ["board", "days"])
def test_a_view_by_a_masked_field_says_why_and_shows_nothing(
    client: FlaskClient, world: dict[str, int], view: str
) -> None:
    sign_in(client, "public")
    response = client.get(f"/apps/shop/views/{view}?month=2026-05")
    assert response.status_code == 422
    error = re.search(
        r'<p class="notice notice-error" role="alert" id="view-error">([^<]+)</p>', response.text
    )
    assert error and "you cannot read it in clear" in error.group(1)
    assert "Apples" not in response.text and "Bananas" not in response.text


# --- the board -----------------------------------------------------------------------------


def test_board_has_a_column_per_choice_and_no_value(
    client: FlaskClient, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD)
    assert page.status_code == 200
    headings = re.findall(r'<h2 id="column-\d+-heading">([^<]+)<', page.text)
    assert [h.strip() for h in headings] == ["New", "Paid", "Shipped", "No value"]
    # the view's filter applied
    assert card_titles(column(page.text, "new")) == ["Apples", "Bananas"]
    assert card_titles(column(page.text, "paid")) == ["Cherries"]
    assert card_titles(column(page.text, "shipped")) == ["Eggs"]
    assert card_titles(column(page.text, "")) == ["Dates"]
    assert [count_of(page.text, c) for c in ("new", "paid", "shipped", "")] == [2, 1, 1, 1]
    assert "Filtered out" not in page.text
    link = f'href="/apps/shop/tables/orders/records/{world["Apples"]}"'
    assert link in card(page.text, world["Apples"])


def test_board_in_chinese(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD, headers={"Accept-Language": "zh-CN"})
    headings = re.findall(r'<h2 id="column-\d+-heading">([^<]+)<', page.text)
    assert [h.strip() for h in headings[:3]] == ["新建", "已付款", "已发货"]
    assert "<h1>订单看板</h1>" in page.text


def test_cards_show_masked_values_masked_and_hidden_ones_not_at_all(
    client: FlaskClient, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    apples = card(page, world["Apples"])
    assert f'<dd data-field="phone" class="masked">{MASKED}</dd>' in apples
    assert PHONE not in page
    assert "secret of" not in page and 'data-field="secret"' not in page
    # the linked customer's name is personal: masked for the clerk, as link_labels gives it
    customer = re.search(r'<dd data-field="customer"[^>]*>([^<]*)</dd>', apples)
    assert customer and customer.group(1) != "Zhang San" and "Zhang San" not in page
    # dates as the grid shows them (records_pages.shown)
    assert re.search(r'<dd data-field="due">(2026-05-01|May 1, 2026)</dd>', apples)


def test_cards_show_clear_values_to_who_may_see_them(
    client: FlaskClient, world: dict[str, int]
) -> None:
    sign_in(client, "boss")
    apples = card(client.get(BOARD).text, world["Apples"])
    assert f'<dd data-field="phone">{PHONE}</dd>' in apples
    assert '<dd data-field="customer">Zhang San</dd>' in apples
    assert '<dd data-field="secret">secret of Apples</dd>' in apples


def test_a_user_who_may_move_gets_drag_and_move_forms(
    client: FlaskClient, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    assert 'data-draggable="true"' in page
    assert "/assets/sortable.min.js" in page and "/static/views.js" in page
    apples = card(page, world["Apples"])
    assert f'action="{MOVE}"' in apples
    assert '<option value="new" selected>New</option>' in apples
    assert '<option value="">No value</option>' in apples
    assert 'aria-live="polite"' in page


@pytest.mark.parametrize("person", ["viewer", "fixed"])
def test_no_dragging_and_no_move_forms_without_the_right(
    client: FlaskClient, world: dict[str, int], person: str
) -> None:
    sign_in(client, person)
    page = client.get(BOARD)
    assert page.status_code == 200
    assert card_titles(column(page.text, "new")) == ["Apples", "Bananas"]
    assert "data-draggable" not in page.text
    assert "sortable.min.js" not in page.text
    assert "move-form" not in page.text and 'name="to"' not in page.text


def test_more_cards_than_a_column_holds(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    orders = rb.records(SYSTEM, "shop", "orders")
    orders.create_many(
        [{"title": f"Paid {i:02d}", "status": "paid", "code": "x"} for i in range(30)]
    )
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    paid = column(page, "paid")
    assert count_of(page, "paid") == 31
    assert len(card_titles(paid)) == 25
    more = re.search(r'<li class="kanban-more"><a href="([^"]+)"', paid)
    assert more
    href = more.group(1).replace("&amp;", "&")
    assert href.startswith(BOARD + "?column=paid&cursor=")
    rest = client.get(href, headers={"HX-Request": "true"})  # htmx: the next cards only
    assert rest.status_code == 200
    assert "<html" not in rest.text and "kanban-more" not in rest.text
    shown = card_titles(paid) + card_titles(rest.text)
    assert sorted(shown) == sorted(["Cherries"] + [f"Paid {i:02d}" for i in range(30)])
    whole = client.get(href)  # without JavaScript: a page of that column
    assert whole.status_code == 200 and "<html" in whole.text
    assert card_titles(whole.text) == card_titles(rest.text)
    assert client.get(BOARD + "?column=nothing").status_code == 404


# --- moving a card -------------------------------------------------------------------------


def test_move_form_without_javascript(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    apples = world["Apples"]
    response = client.post(
        MOVE,
        data={
            "csrf_token": csrf_from(page),
            "record_id": str(apples),
            "version": str(version_of(page, apples)),
            "to": "paid",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == BOARD
    assert status_of(rb, apples) == "paid"
    after = client.get(BOARD).text
    assert "Moved to “Paid”." in after
    assert card_titles(column(after, "paid")) == ["Apples", "Cherries"]
    assert count_of(after, "new") == 1


def test_drag_posts_json_and_gets_the_new_version(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    apples = world["Apples"]
    version = version_of(page, apples)
    response = client.post(
        MOVE,
        data={"record_id": str(apples), "version": str(version), "to": ""},
        headers={"Accept": "application/json", "X-CSRFToken": csrf_from(page)},
    )
    assert response.status_code == 200
    assert response.json == {
        "ok": True,
        "message": "Moved to “No value”.",
        "version": version + 1,
        "column": "",
    }
    assert status_of(rb, apples) is None


def test_a_stale_version_is_a_conflict_and_nothing_moves(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    apples = world["Apples"]
    seen = version_of(page, apples)
    orders = rb.records(SYSTEM, "shop", "orders")
    orders.update(apples, {"title": "Apples!"}, version=seen)  # someone else, meanwhile
    response = client.post(
        MOVE,
        data={"record_id": str(apples), "version": str(seen), "to": "shipped"},
        headers={"Accept": "application/json", "X-CSRFToken": csrf_from(page)},
    )
    assert response.status_code == 409
    assert response.json is not None and response.json["ok"] is False
    assert "changed this record meanwhile" in response.json["message"]
    assert status_of(rb, apples) == "new"
    # the form without JavaScript: back to the board, which says so
    plain = client.post(
        MOVE,
        data={
            "csrf_token": csrf_from(page),
            "record_id": str(apples),
            "version": str(seen),
            "to": "shipped",
        },
    )
    assert plain.status_code == 303
    assert "changed this record meanwhile" in client.get(BOARD).text
    assert status_of(rb, apples) == "new"


def test_an_invalid_move_is_refused_with_a_message(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    apples = world["Apples"]
    headers = {"Accept": "application/json", "X-CSRFToken": csrf_from(page)}
    unknown = client.post(
        MOVE, data={"record_id": str(apples), "version": "1", "to": "lost"}, headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.json == {"ok": False, "message": "Choose one of the board's columns."}
    garbled = client.post(
        MOVE, data={"record_id": "x", "version": "1", "to": "paid"}, headers=headers
    )
    assert garbled.status_code == 422
    assert status_of(rb, apples) == "new"


def test_a_move_outside_the_users_rows_is_404(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    page = client.get(BOARD).text
    response = client.post(
        MOVE,
        data={"record_id": "999", "version": "1", "to": "paid"},
        headers={"Accept": "application/json", "X-CSRFToken": csrf_from(page)},
    )
    assert response.status_code == 404


@pytest.mark.parametrize("person", ["viewer", "fixed", "maker"])
def test_move_without_the_update_right_is_403(
    client: FlaskClient, rb: Recordbase, world: dict[str, int], person: str
) -> None:
    sign_in(client, person)
    apples = world["Apples"]
    data = {
        "csrf_token": token(client, "/"),
        "record_id": str(apples),
        "version": "1",
        "to": "paid",
    }
    plain = client.post(MOVE, data=data)
    assert plain.status_code == 403
    assert plain.mimetype == "text/html"
    as_json = client.post(MOVE, data=data, headers={"Accept": "application/json"})
    assert as_json.status_code == 403
    assert as_json.json == {"ok": False, "message": "You may not move cards on this board."}
    assert status_of(rb, apples) == "new"


def test_move_of_a_view_that_is_not_a_board_is_404(
    client: FlaskClient, world: dict[str, int]
) -> None:
    sign_in(client, "clerk")
    data = {"csrf_token": token(client, "/"), "record_id": "1", "version": "1", "to": "paid"}
    assert client.post("/apps/shop/views/days/move", data=data).status_code == 404
    sign_in(client, "outsider")
    data["csrf_token"] = token(client, "/")
    assert client.post(MOVE, data=data).status_code == 404


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_move_needs_the_csrf_token(
    client: FlaskClient, rb: Recordbase, world: dict[str, int], csrf: str | None
) -> None:
    sign_in(client, "clerk")
    apples = world["Apples"]
    data = {"record_id": str(apples), "version": "1", "to": "paid"}
    if csrf:
        data["csrf_token"] = csrf
    response = client.post(MOVE, data=data)
    assert response.status_code == 403
    headers = {"Accept": "application/json", "X-CSRFToken": csrf or ""}
    assert client.post(MOVE, data=data, headers=headers).status_code == 403
    assert status_of(rb, apples) == "new"


# --- the calendar --------------------------------------------------------------------------


def days_with(html: str) -> dict[str, list[str]]:
    """Day (ISO) → the titles placed on it."""
    out: dict[str, list[str]] = {}
    for day, body in re.findall(r'<td data-date="([0-9-]+)"[^>]*>(.*?)</td>', html, re.S):
        titles = re.findall(r'<a href="[^"]+">([^<]+)</a>', body)
        if titles:
            out[day] = titles
    return out


def test_calendar_places_records_on_their_days(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    page = client.get("/apps/shop/views/days?month=2026-05")
    assert page.status_code == 200
    assert '<h2 id="calendar-month">May 2026</h2>' in page.text
    # weeks start on Monday in English and Chinese alike (Babel's locales): 2026-04-27 … 2026-05-31
    dates = re.findall(r'<td data-date="([0-9-]+)"', page.text)
    assert dates[0] == "2026-04-27" and dates[-1] == "2026-05-31" and len(dates) == 35
    assert '<td data-date="2026-04-30" class="other-month">' in page.text
    # the month's boundaries, and the days of the neighbouring months the grid shows
    assert days_with(page.text) == {
        "2026-04-30": ["Dates"],
        "2026-05-01": ["Apples"],
        "2026-05-31": ["Bananas"],
    }  # "Filtered out" (15 May) is left out by the view's filter; 1 June is not in May's weeks
    assert f'href="/apps/shop/tables/orders/records/{world["Apples"]}"' in page.text
    undated = page.text.split('id="undated"', 1)[1]
    assert re.findall(r'<a href="[^"]+">([^<]+)</a>', undated) == ["Eggs"]
    weekdays = re.findall(r'<th scope="col"><abbr title="([^"]+)">', page.text)
    assert weekdays == [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ]


def test_calendar_navigation(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    page = client.get("/apps/shop/views/days?month=2026-01").text
    assert 'href="/apps/shop/views/days?month=2025-12" id="calendar-previous"' in page
    assert 'href="/apps/shop/views/days?month=2026-02" id="calendar-next"' in page
    today = dt.datetime.now(dt.UTC).date()
    this_month = client.get("/apps/shop/views/days").text
    assert (
        f'<td data-date="{today.isoformat()}" class="in-month today" aria-current="date">'
        in this_month
    )
    assert (
        f'href="/apps/shop/views/days?month={today:%Y-%m}" id="calendar-today" aria-current="date"'
        in this_month
    )
    june = days_with(client.get("/apps/shop/views/days?month=2026-06").text)
    assert june == {"2026-06-01": ["Cherries"]}  # 1 June 2026 is a Monday
    april = days_with(client.get("/apps/shop/views/days?month=2026-04").text)
    assert april == {"2026-04-30": ["Dates"], "2026-05-01": ["Apples"]}  # weeks up to 3 May
    for bad in ("2026-13", "May", "2026-5", "0001-01"):
        assert client.get(f"/apps/shop/views/days?month={bad}").status_code == 400


def test_calendar_in_chinese(client: FlaskClient, world: dict[str, int]) -> None:
    sign_in(client, "clerk")
    page = client.get("/apps/shop/views/days?month=2026-05", headers={"Accept-Language": "zh-CN"})
    assert '<h2 id="calendar-month">2026年5月</h2>' in page.text
    weekdays = re.findall(r'<th scope="col"><abbr title="([^"]+)">', page.text)
    assert weekdays == ["星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"]


def test_calendar_of_a_datetime_field_at_the_month_boundaries(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    orders = rb.records(SYSTEM, "shop", "orders")
    for title, at in [
        ("Before", "2026-04-26T23:59:59Z"),  # the day before the grid starts
        ("First", "2026-04-27T00:00:00Z"),  # the grid's first instant
        ("Month start", "2026-05-01T00:00:00+00:00"),
        ("Month end", "2026-05-31T23:59:59.999999Z"),  # the grid's last instant
        ("After", "2026-06-01T00:00:00Z"),  # the day after the grid
    ]:
        orders.create({"title": title, "due_at": at, "code": "t"})
    sign_in(client, "clerk")
    page = client.get("/apps/shop/views/moments?month=2026-05")
    assert page.status_code == 200
    assert days_with(page.text) == {
        "2026-04-27": ["First"],
        "2026-05-01": ["Month start"],
        "2026-05-31": ["Month end"],
    }
    # the time of day in the user's locale (CLDR puts a narrow no-break space before "PM")
    assert re.search(
        r'<time datetime="2026-05-31T23:59:59.999999\+00:00">11:59\sPM</time>', page.text
    )
    undated = page.text.split('id="undated"', 1)[1]
    # the orders of the fixture have no instant
    assert len(re.findall(r"<li data-id=", undated)) == 6


def test_calendar_says_when_every_record_has_a_date(
    client: FlaskClient, rb: Recordbase, world: dict[str, int]
) -> None:
    rb.records(SYSTEM, "shop", "orders").update(world["Eggs"], {"due": "2026-05-02"}, version=1)
    sign_in(client, "clerk")
    page = client.get("/apps/shop/views/days?month=2026-05").text
    assert "Every record in this view has a date." in page
    assert days_with(page)["2026-05-02"] == ["Eggs"]


# --- the gallery's CRM ---------------------------------------------------------------------


@pytest.fixture
def crm(rb: Recordbase) -> Recordbase:
    """The gallery's CRM, with a sales rep who owns one won deal."""
    definition, problems = load_definition_file(CRM)
    assert not problems
    assert rb.install(definition, SYSTEM).applied
    rep = rb.create_user(SYSTEM, "rep@example.com", PASSWORD, display_name="Rep")
    rb.set_roles(SYSTEM, "rep@example.com", "crm", ["sales_rep"])
    acme = rb.records(SYSTEM, "crm", "companies").create({"name": "ACME"})
    deals = rb.records(SYSTEM, "crm", "deals")
    deals.create({"name": "ACME renewal", "stage": "won", "owner": rep, "company": acme.id})
    deals.create({"name": "Not the rep's", "stage": "won", "company": acme.id})
    rb.records(SYSTEM, "crm", "activities").create(
        {"subject": "Call ACME", "due_date": "2026-05-04T02:00:00Z", "done": False, "owner": rep}
    )
    return rb


def test_crm_pipeline_and_activity_calendar(client: FlaskClient, crm: Recordbase) -> None:
    sign_in(client, "rep")
    board = client.get("/apps/crm/views/pipeline")
    assert board.status_code == 200
    assert card_titles(column(board.text, "won")) == ["ACME renewal"]  # the rep's rows only
    assert "data-draggable" in board.text
    activity = client.get("/apps/crm/views/activity_calendar?month=2026-05")
    assert activity.status_code == 200
    assert days_with(activity.text) == {"2026-05-04": ["Call ACME"]}
