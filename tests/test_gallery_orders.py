"""The gallery's orders template: clean definition, sample data, totals that add up, and its three roles.

Installs ``schemas/gallery/orders.json`` with sample data on both databases and
acts as each role with users of our own:

- ``sales`` (Sam): customers in clear, takes orders and their lines, records
  shipments' addresses; reads payments but may not record them;
- ``warehouse`` (Wei): products and stock, only paid/shipped/delivered orders
  and without any amount, lines without prices, shipments with the address in
  clear; no customer records at all;
- ``finance`` (Fay): every order with totals and balances, records payments,
  exports; customers' personal data masked, shipment addresses hidden.

Line totals are a formula, the order total a rollup over its lines, the
balance a formula over two rollups — checked against the arithmetic, and
after a line changes. Automations: a paid order gets a shipment to prepare
and tells the warehouse; a shipped order tells its salesperson; a parcel not
delivered after five days is chased.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest
from gallery_helpers import (
    World,
    load_template,
    make_world,
    not_bilingual,
    notes_from,
    texts_in,
)
from recordbase import RecordQuery, automations
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import NotFound, PermissionDenied

TABLES = ["products", "customers", "orders", "order_lines", "payments", "shipments"]
CENT = Decimal("0.01")
PEOPLE = {"sam": ["sales"], "wei": ["warehouse"], "fay": ["finance"]}


@pytest.fixture
def world(rb: Recordbase) -> World:
    return make_world(rb, "orders", PEOPLE)


@pytest.fixture
def order(world: World) -> dict[str, Any]:
    """One known order: 3 × 19.90 less 10 %, plus 1 × 1,200.00; 1,000.00 paid."""
    customer = world.store("customers").create(
        {
            "name": "王芳",
            "phone": "13812345678",
            "email": "wang.fang@example.com",
            "address": "上海市浦东新区世纪大道100号",
        }
    )
    tea = world.store("products").create({"sku": "T-001", "name": "龙井茶", "list_price": "19.90"})
    chair = world.store("products").create(
        {"sku": "C-001", "name": "Office chair", "list_price": "1200"}
    )
    order = world.store("orders").create({"customer": customer.id, "salesperson": world.ids["sam"]})
    lines = world.store("order_lines").create_many(
        [
            {
                "order": order.id,
                "product": tea.id,
                "quantity": 3,
                "unit_price": "19.90",
                "discount": 10,
            },
            {"order": order.id, "product": chair.id, "quantity": 1, "unit_price": "1200.00"},
        ]
    )
    world.store("payments").create({"order": order.id, "amount": "1000", "method": "alipay"})
    return {
        "customer": customer.id,
        "order": order.id,
        "lines": [r.id for r in lines],
        "tea": tea.id,
    }


# --- the definition -------------------------------------------------------------------------------


def test_the_template_checks_without_a_problem_or_a_warning(rb: Recordbase) -> None:
    data = load_template("orders")
    assert check_definition(data) == []
    assert rb.check(data) == []


def test_every_text_is_bilingual_and_the_app_has_what_the_issue_asks() -> None:
    data = load_template("orders")
    texts = texts_in(data, split_form_help=False)
    assert not_bilingual(texts) == []
    assert [t["slug"] for t in data["tables"]] == TABLES
    assert [r["slug"] for r in data["roles"]] == ["sales", "warehouse", "finance"]
    fields = {t["slug"]: {f["slug"]: f for f in t["fields"]} for t in data["tables"]}
    assert fields["order_lines"]["line_total"]["type"] == "formula"
    assert fields["orders"]["total"]["options"] == {
        "function": "sum",
        "table": "order_lines",
        "via": "order",
        "field": "line_total",
        "scale": 2,
    }
    assert (
        fields["shipments"]["address"]["type"] == "address"
        and fields["shipments"]["address"]["purpose"]
    )
    kanbans = {v["table"]: v["group_by"] for v in data["views"] if v["type"] == "kanban"}
    assert kanbans == {"orders": "status", "shipments": "status"}
    assert {"grid", "kanban", "calendar", "form", "dashboard"} == {v["type"] for v in data["views"]}
    for table in data["tables"]:
        personal = [
            f
            for f in table["fields"]
            if f["type"] in ("phone", "email", "address") or f.get("sensitivity") == "personal"
        ]
        if personal:
            assert table["consent"] and table["erasure"]["action"] == "anonymise"


# --- sample data and totals ---------------------------------------------------------------------


def test_install_with_sample_data_and_every_total_adds_up(world: World) -> None:
    assert world.counts == dict.fromkeys(TABLES, 25)
    lines = world.all("order_lines")
    for line in lines:
        discount = line.fields["discount"] or 0
        expected = line.fields["quantity"] * line.fields["unit_price"] * (100 - discount) / 100
        assert line.fields["line_total"] == line.fields["line_total"].quantize(CENT)
        assert abs(line.fields["line_total"] - expected) <= Decimal("0.005")  # rounded to the cent
    payments = world.all("payments")
    for order in world.all("orders"):
        mine = [line.fields["line_total"] for line in lines if line.fields["order"] == order.id]
        paid = [p.fields["amount"] for p in payments if p.fields["order"] == order.id]
        assert order.fields["line_count"] == len(mine)
        assert order.fields["total"] == sum(mine, Decimal(0)).quantize(CENT)  # 0.00 without lines
        assert order.fields["paid"] == sum(paid, Decimal(0)).quantize(CENT)
        assert order.fields["balance"] == order.fields["total"] - order.fields["paid"]
    assert any(o.fields["line_count"] > 1 for o in world.all("orders"))


def test_a_known_order_totals_and_follows_its_lines(world: World, order: dict[str, Any]) -> None:
    orders = world.store("orders")
    got = orders.get(order["order"]).fields
    assert got["number"] == "SO-000026"  # after the 25 sample orders
    assert [world.store("order_lines").get(i).fields["line_total"] for i in order["lines"]] == [
        Decimal("53.73"),
        Decimal("1200.00"),
    ]
    assert (got["total"], got["paid"], got["balance"]) == (
        Decimal("1253.73"),
        Decimal("1000.00"),
        Decimal("253.73"),
    )
    first = world.store("order_lines").get(order["lines"][0])
    world.store("order_lines", "sam").update(first.id, {"quantity": 10}, version=first.version)
    # 179.10 + 1,200.00, at once
    assert orders.get(order["order"]).fields["total"] == Decimal("1379.10")
    assert world.store("products").get(order["tea"]).fields["units_sold"] == 10 + sum(
        line.fields["quantity"]
        for line in world.all(
            "order_lines", None, {"field": "product", "op": "eq", "value": order["tea"]}
        )
        if line.id != first.id
    )


def test_every_dashboard_chart_adds_up(world: World, order: dict[str, Any]) -> None:
    [dashboard] = [v for v in load_template("orders")["views"] if v["type"] == "dashboard"]
    for chart in dashboard["charts"]:
        groups = world.store(chart.get("table", dashboard["table"]), "fay").aggregate(
            group_by=chart.get("group_by"), metrics=[chart["metric"]], filter=chart.get("filter")
        )
        assert groups, chart["slug"]
    [due] = world.store("orders", "fay").aggregate(
        metrics=["sum:balance"], filter={"field": "id", "op": "eq", "value": order["order"]}
    )
    assert due.metrics["sum:balance"] == Decimal("253.73")


# --- roles ------------------------------------------------------------------------------------


def test_sales_takes_orders_with_customers_in_clear_but_records_no_payment(
    world: World, order: dict[str, Any]
) -> None:
    customer = world.store("customers", "sam").get(order["customer"]).fields
    assert (
        customer["phone"] == "+8613812345678"
        and customer["address"] == "上海市浦东新区世纪大道100号"
    )
    created = world.store("orders", "sam").create({"customer": order["customer"]})
    assert (
        created.fields["status"] == "draft"
        and created.fields["order_date"] == dt.datetime.now(dt.UTC).date()
    )
    assert len(world.all("payments", "sam")) == 26
    with pytest.raises(PermissionDenied):
        world.store("payments", "sam").create({"order": order["order"], "amount": "1"})


def test_the_warehouse_sees_paid_orders_without_amounts_and_no_customers(
    world: World, order: dict[str, Any]
) -> None:
    shipped = {"field": "status", "op": "in", "value": ["paid", "shipped", "delivered"]}
    assert [o.id for o in world.all("orders", "wei")] == [
        o.id for o in world.all("orders", None, shipped)
    ]
    with pytest.raises(NotFound):
        world.store("orders", "wei").get(order["order"])  # a draft
    seen = world.all("orders", "wei")[0].fields
    assert {"total", "paid", "balance"} & set(seen) == set()
    line = world.store("order_lines", "wei").get(order["lines"][0]).fields
    assert {"unit_price", "discount", "line_total", "list_price"} & set(line) == set()
    assert line["quantity"] == 3
    with pytest.raises(PermissionDenied):
        world.store("customers", "wei").query(RecordQuery())
    with pytest.raises(PermissionDenied):
        world.store("payments", "wei").query(RecordQuery())
    order_row = world.store("orders").get(order["order"])
    world.store("orders").update(order_row.id, {"status": "paid"}, version=order_row.version)
    paid = world.store("orders", "wei").get(order["order"])
    moved = world.store("orders", "wei").update(
        paid.id, {"status": "shipped"}, version=paid.version
    )
    assert moved.fields["status"] == "shipped"
    with pytest.raises(PermissionDenied):
        # Out of its rows
        world.store("orders", "wei").update(moved.id, {"status": "draft"}, version=moved.version)
    with pytest.raises(PermissionDenied):
        world.store("orders", "wei").update(moved.id, {"notes": "x"}, version=moved.version)


def test_finance_sees_balances_and_personal_data_masked(
    world: World, order: dict[str, Any]
) -> None:
    customer = world.store("customers", "fay").get(order["customer"]).fields
    assert customer["phone"] == "+86 138****5678" and "address" not in customer
    assert customer["name"] != "王芳"
    assert world.store("orders", "fay").get(order["order"]).fields["balance"] == Decimal("253.73")
    payment = world.store("payments", "fay").create(
        {"order": order["order"], "amount": "253.73", "method": "wechat_pay"}
    )
    assert payment.fields["number"] == "PAY-000027"
    assert world.store("orders", "fay").get(order["order"]).fields["balance"] == Decimal("0.00")
    export = world.store("customers", "fay").export("csv")
    out = io.BytesIO()
    export.write_to(out)
    text = out.getvalue().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 27 and "+8613812345678" not in text and "王芳" not in text
    assert "Default delivery address" not in rows[0]
    shipment = world.store("shipments").create(
        {"order": order["order"], "recipient": "王芳", "address": "上海市"}
    )
    seen = world.store("shipments", "fay").get(shipment.id).fields
    assert {"recipient", "phone", "address"} & set(seen) == set()
    with pytest.raises(PermissionDenied):
        world.store("order_lines", "fay").create(
            {"order": order["order"], "product": order["tea"], "unit_price": "1"}
        )


# --- automations ----------------------------------------------------------------------------------


def test_a_paid_order_gets_a_shipment_and_its_shipping_tells_the_salesperson(
    world: World, order: dict[str, Any]
) -> None:
    row = world.store("orders", "fay").get(order["order"])
    paid = world.store("orders", "fay").update(row.id, {"status": "paid"}, version=row.version)
    mine = {"field": "order", "op": "eq", "value": order["order"]}
    [shipment] = world.all("shipments", "wei", mine)
    assert shipment.fields["status"] == "preparing" and shipment.fields["number"] == "SHP-000026"
    assert [n.record_id for n in notes_from(world, "wei", "prepare_shipment")] == [order["order"]]
    world.store("shipments", "wei").update(
        shipment.id,
        {
            "recipient": "王芳",
            "address": "上海市浦东新区",
            "carrier": "sf",
            "status": "shipped",
            "shipped_on": "2026-03-02",
            "tracking_number": "SF1234567890",
        },
        version=shipment.version,
    )
    assert world.store("shipments", "wei").get(shipment.id).fields["address"] == "上海市浦东新区"
    world.store("orders", "wei").update(paid.id, {"status": "shipped"}, version=paid.version)
    assert [n.record_id for n in notes_from(world, "sam", "tell_salesperson_shipped")] == [
        order["order"]
    ]
    assert notes_from(world, "fay", "tell_salesperson_shipped") == []
    # Not delivered five days later: the warehouse is asked to chase it, once.
    for _ in range(2):
        automations.run_scheduled(world.rb, now=dt.datetime(2026, 3, 8, 9, 0, tzinfo=dt.UTC))
    assert [n.record_id for n in notes_from(world, "wei", "late_delivery")] == [shipment.id]
