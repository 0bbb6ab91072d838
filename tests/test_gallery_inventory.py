"""The gallery's inventory template (``schemas/gallery/inventory.json``), on both databases.

Installed with its sample data, then used by a buyer (orders stock, told when
it runs low), a salesperson (records sales, sees stock but not purchase
prices), a warehouse clerk (receives and ships, changes nothing else) and the
inventory manager. Stock on hand is a formula over two rollups: what was
received minus what was shipped.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from gallery_helpers import (
    SYSTEM,
    TODAY,
    GalleryApp,
    install_with_sample_data,
    labels_in,
    load_template,
    not_bilingual,
)
from recordbase import automations
from recordbase.collab import list_notifications
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import NotFound, PermissionDenied


def test_the_template_has_no_problem_and_no_warning() -> None:
    assert check_definition(load_template("inventory")) == []


def test_every_text_is_in_english_and_chinese() -> None:
    texts = labels_in(load_template("inventory"))
    assert len(texts) > 100
    assert not_bilingual(texts, filled=True) == []


@pytest.fixture
def inventory(rb: Recordbase) -> Recordbase:
    counts, _ = install_with_sample_data(rb, "inventory")
    assert counts == {"products": 25, "warehouses": 25, "purchases": 25, "sales": 25}
    return rb


class Shop(GalleryApp):
    """A buyer, a salesperson, a warehouse clerk, a manager; one warehouse and a product with a reorder level of 10."""

    app = "inventory"

    def __init__(self, rb: Recordbase) -> None:
        super().__init__(rb)
        self.manager = self.person("manager@example.org", "inventory_manager")
        self.buyer = self.person("buyer@example.org", "buyer")
        self.seller = self.person("seller@example.org", "sales")
        self.clerk = self.person("clerk@example.org", "warehouse")
        self.warehouse = self.store(self.manager, "warehouses").create(
            {"name": "Pudong", "code": "SH-1"}
        )
        self.product = self.store(self.manager, "products").create(
            {
                "name": "Thermos",
                "sku": "TH-500",
                "unit_cost": "40",
                "unit_price": "99",
                "reorder_level": 10,
            }
        )

    def stock(self) -> Any:
        return self.store(SYSTEM, "products").get(self.product.id).fields["stock"]


@pytest.fixture
def shop(inventory: Recordbase) -> Shop:
    return Shop(inventory)


def test_stock_on_hand_is_received_minus_shipped_for_every_sample_product(
    inventory: Recordbase,
) -> None:
    def records(table: str) -> list[Any]:
        return (
            inventory.records(SYSTEM, "inventory", table).query(sort=["id"], page_size=100).records
        )

    purchases, sales = records("purchases"), records("sales")
    assert any(p.fields["status"] == "received" for p in purchases) and any(
        s.fields["status"] == "shipped" for s in sales
    )
    for product in records("products"):
        received = sum(
            p.fields["quantity"]
            for p in purchases
            if p.fields["product"] == product.id and p.fields["status"] == "received"
        )
        shipped = sum(
            s.fields["quantity"]
            for s in sales
            if s.fields["product"] == product.id and s.fields["status"] in ("shipped", "delivered")
        )
        assert (product.fields["purchased"], product.fields["sold"], product.fields["stock"]) == (
            received,
            shipped,
            received - shipped,
        )
        assert product.fields["needs_reorder"] is (
            received - shipped <= product.fields["reorder_level"]
        )
    for p in purchases:
        if p.fields["unit_cost"] is not None:
            assert p.fields["total"] == p.fields["quantity"] * p.fields["unit_cost"]


def test_receiving_and_shipping_move_the_stock_and_low_stock_tells_the_buyers(shop: Shop) -> None:
    rb = shop.rb
    purchase = shop.store(shop.buyer, "purchases").create(
        {
            "product": shop.product.id,
            "warehouse": shop.warehouse.id,
            "supplier": "Hangzhou Steelware",
            "quantity": 30,
            "unit_cost": "40",
            "buyer": shop.buyer.user_id,
        }
    )
    assert (purchase.fields["number"], purchase.fields["total"], shop.stock()) == (
        "PO-000026",
        Decimal("1200.00"),
        0,
    )
    received = shop.store(shop.clerk, "purchases").update(
        purchase.id, {"status": "received"}, version=purchase.version
    )
    assert received.fields["received_on"] == TODAY
    assert shop.stock() == 30
    assert [n.record_id for n in list_notifications(rb, shop.buyer)] == [
        purchase.id
    ]  # "your purchase was received"

    sales = shop.store(shop.seller, "sales")
    big = sales.create(
        {
            "product": shop.product.id,
            "warehouse": shop.warehouse.id,
            "quantity": 15,
            "unit_price": "99",
            "customer": "Zhang Wei",
            "customer_phone": "13812345678",
            "delivery_address": "8 Century Avenue",
        }
    )
    assert shop.stock() == 30  # pending: still on the shelf
    shipped = shop.store(shop.clerk, "sales").update(
        big.id, {"status": "shipped"}, version=big.version
    )
    assert shop.stock() == 15
    assert (
        len(list_notifications(rb, shop.buyer)) == 1
    )  # 15 is above the reorder level: nobody is told
    last = sales.create(
        {"product": shop.product.id, "quantity": 6, "status": "shipped", "customer": "Li Na"}
    )
    assert shop.stock() == 9
    told = list_notifications(rb, shop.buyer)
    assert [n.record_id for n in told[:1]] == [last.id] and len(told) == 2
    assert list_notifications(rb, shop.seller) == [] and list_notifications(rb, shop.clerk) == []
    # A cancelled sale gives the goods back.
    shop.store(shop.seller, "sales").update(
        shipped.id, {"status": "cancelled"}, version=shipped.version
    )
    assert shop.stock() == 24


def test_a_purchase_a_day_late_reminds_its_buyer(shop: Shop) -> None:
    late = shop.store(shop.buyer, "purchases").create(
        {
            "product": shop.product.id,
            "quantity": 5,
            "buyer": shop.buyer.user_id,
            "expected_on": (TODAY - dt.timedelta(days=2)).isoformat(),
        }
    )
    shop.store(shop.buyer, "purchases").create(
        {
            "product": shop.product.id,
            "quantity": 5,
            "buyer": shop.buyer.user_id,
            "status": "received",
            "expected_on": (TODAY - dt.timedelta(days=2)).isoformat(),
        }
    )
    automations.run_scheduled(shop.rb)
    assert [n.record_id for n in list_notifications(shop.rb, shop.buyer)] == [late.id]
    automations.run_scheduled(shop.rb)
    assert len(list_notifications(shop.rb, shop.buyer)) == 1


def test_sales_see_stock_but_never_what_the_goods_cost(shop: Shop) -> None:
    product = shop.store(shop.seller, "products").get(shop.product.id)
    assert "unit_cost" not in product.fields and "stock_value" not in product.fields
    assert product.fields["unit_price"] == Decimal("99.00") and product.fields["stock"] == 0
    purchase = shop.store(SYSTEM, "purchases").create(
        {
            "product": shop.product.id,
            "quantity": 12,
            "unit_cost": "40",
            "supplier": "Hangzhou Steelware",
            "status": "received",
        }
    )
    seen = shop.store(shop.seller, "purchases").get(purchase.id)
    assert {"unit_cost", "total", "supplier"}.isdisjoint(seen.fields) and seen.fields[
        "quantity"
    ] == 12
    assert shop.store(shop.seller, "products").get(shop.product.id).fields["stock"] == 12
    with pytest.raises(PermissionDenied):
        shop.store(shop.seller, "purchases").create({"product": shop.product.id, "quantity": 1})
    with pytest.raises(PermissionDenied):
        shop.store(shop.seller, "products").update(
            product.id, {"unit_price": "1"}, version=product.version
        )


def test_buyers_never_see_customers_and_the_warehouse_changes_only_statuses(shop: Shop) -> None:
    sale = shop.store(shop.seller, "sales").create(
        {
            "product": shop.product.id,
            "quantity": 2,
            "unit_price": "99",
            "customer": "Zhang Wei",
            "customer_phone": "13812345678",
            "delivery_address": "8 Century Avenue",
        }
    )
    assert sale.fields["customer_phone"] == "+8613812345678"  # sales have the personal clearance
    bought = shop.store(shop.buyer, "sales").get(sale.id)
    assert {"customer", "customer_phone", "delivery_address"}.isdisjoint(bought.fields)
    assert bought.fields["quantity"] == 2
    clerk = shop.store(shop.clerk, "sales")
    packing = clerk.get(sale.id)
    assert (
        packing.fields["delivery_address"] == "8 Century Avenue"
        and "unit_price" not in packing.fields
    )
    with pytest.raises(PermissionDenied):
        clerk.update(sale.id, {"quantity": 20}, version=packing.version)
    cancelled = shop.store(shop.seller, "sales").create(
        {"product": shop.product.id, "quantity": 1, "status": "cancelled"}
    )
    with pytest.raises(NotFound):
        clerk.get(cancelled.id)  # nothing to ship: outside the clerk's rows
    with pytest.raises(PermissionDenied):
        shop.store(shop.seller, "sales").reveal(sale.id, "customer_phone", "Calling the customer")


def test_customer_details_are_kept_three_years_with_consent(shop: Shop) -> None:
    from recordbase.retention import run_retention

    sales = shop.store(shop.manager, "sales")
    old = sales.create(
        {
            "product": shop.product.id,
            "quantity": 1,
            "customer": "Zhang Wei",
            "customer_phone": "13812345678",
            "sold_on": (TODAY - dt.timedelta(days=1200)).isoformat(),
            "unit_price": "99",
        }
    )
    sales.give_consent(old.id, ["order_fulfilment"], version="2026-01", channel="shop counter")
    run_retention(shop.rb)
    kept = shop.store(SYSTEM, "sales").get(old.id).fields
    assert (kept["customer"], kept["customer_phone"], kept["quantity"], kept["total"]) == (
        None,
        None,
        1,
        Decimal("99.00"),
    )


def test_the_views_and_dashboard_charts_work_for_the_manager(shop: Shop) -> None:
    for v in load_template("inventory")["views"]:
        if v["type"] in ("grid", "kanban", "calendar"):
            shop.store(shop.manager, v["table"]).query(
                filter=v.get("filter"), sort=v.get("sort"), fields=v.get("fields"), page_size=10
            )
        for c in v.get("charts", []):
            groups = shop.store(shop.manager, c.get("table", v["table"])).aggregate(
                group_by=[c["group_by"]] if "group_by" in c else None,
                metrics=[c.get("metric", "count")],
                filter=c.get("filter"),
            )
            assert groups, c["slug"]
