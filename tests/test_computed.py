"""Computed fields — formula, lookup, rollup — on both databases: values, filters, sorts, access, checks."""

from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.definition import check_definition
from recordbase.errors import PermissionDenied, QueryError, ValidationError

SYSTEM = Actor.system("test")

ORDERS: dict[str, Any] = {
    "slug": "shop",
    "label": "Shop",
    "roles": [
        {"slug": "clerk", "label": "Clerk", "clearance": ["public", "internal"]},
        {"slug": "manager", "label": "Manager", "clearance": ["public", "internal", "personal"]},
        {"slug": "warehouse", "label": "Warehouse"},
    ],
    "tables": [
        {
            "slug": "customers",
            "label": "Customers",
            "fields": [
                {"slug": "name", "label": "Name", "type": "text"},
                {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Call about orders."},
                {"slug": "city", "label": "City", "type": "text", "sensitivity": "personal", "purpose": "Deliveries.",
                 "encrypted": False},
            ],
            "permissions": {
                "clerk": {"read": True},
                "manager": {"read": True},
            },
        },
        {
            "slug": "orders",
            "label": "Orders",
            "fields": [
                {"slug": "title", "label": "Title", "type": "text"},
                {"slug": "customer", "label": "Customer", "type": "link", "options": {"table": "customers"}},
                {"slug": "discount", "label": "Discount", "type": "percent"},
                {"slug": "placed", "label": "Placed", "type": "date"},
                {"slug": "stage", "label": "Stage", "type": "single_select",
                 "options": {"choices": [{"id": "open", "label": "Open"}, {"id": "paid", "label": "Paid"}]}},
                {"slug": "total", "label": "Total", "type": "rollup",
                 "options": {"table": "lines", "via": "order", "function": "sum", "field": "line_total"}},
                {"slug": "lines_count", "label": "Lines", "type": "rollup",
                 "options": {"table": "lines", "via": "order", "function": "count"}},
                {"slug": "net", "label": "Net", "type": "formula",
                 "options": {"formula": "ROUND(total * (100 - discount) / 100, 2)"}},
                {"slug": "summary", "label": "Summary", "type": "formula",
                 "options": {"formula": "title & \" · \" & TEXT(lines_count) & \" lines\""}},
                {"slug": "age", "label": "Age", "type": "formula", "options": {"formula": "DAYS(TODAY(), placed)", "scale": 0}},
                {"slug": "paid", "label": "Paid?", "type": "formula", "options": {"formula": "stage = \"paid\""}},
                {"slug": "customer_name", "label": "Customer name", "type": "lookup",
                 "options": {"link": "customer", "field": "name"}},
                {"slug": "customer_city", "label": "Customer city", "type": "lookup",
                 "options": {"link": "customer", "field": "city"}},
                {"slug": "customer_phone", "label": "Customer phone", "type": "lookup",
                 "options": {"link": "customer", "field": "phone"}},
                {"slug": "greeting", "label": "Greeting", "type": "formula",
                 "options": {"formula": "\"Dear \" & customer_city"}},
            ],
            "permissions": {
                "clerk": {"read": True, "create": True, "update": True},
                "manager": {"read": True, "create": True, "update": True},
                "warehouse": {"read": True, "fields": {"title": "hidden"}},
            },
        },
        {
            "slug": "lines",
            "label": "Order lines",
            "fields": [
                {"slug": "order", "label": "Order", "type": "link", "options": {"table": "orders", "on_delete": "cascade"}},
                {"slug": "product", "label": "Product", "type": "text"},
                {"slug": "quantity", "label": "Quantity", "type": "number"},
                {"slug": "unit_price", "label": "Unit price", "type": "currency", "options": {"currency": "CNY"}},
                {"slug": "line_total", "label": "Line total", "type": "formula",
                 "options": {"formula": "quantity * unit_price"}},
                {"slug": "secret", "label": "Secret", "type": "boolean"},
            ],
            "permissions": {
                "clerk": {"read": True, "create": True, "update": True, "rows": {"field": "secret", "op": "ne", "value": True}},
                "manager": {"read": True, "create": True, "update": True},
            },
        },
    ],
}


def user(rb: Recordbase, email: str, role: str) -> Actor:
    uid = rb.create_user(SYSTEM, email, "password-123456", display_name=email.split("@")[0])
    rb.set_roles(SYSTEM, email, "shop", [role])
    actor = rb.actor_for(uid)
    assert actor is not None
    return actor


@pytest.fixture
def shop(rb: Recordbase) -> Recordbase:
    rb.install(copy.deepcopy(ORDERS), SYSTEM)
    customers = rb.records(SYSTEM, "shop", "customers")
    orders = rb.records(SYSTEM, "shop", "orders")
    lines = rb.records(SYSTEM, "shop", "lines")
    acme = customers.create({"name": "Acme", "phone": "+8613800138000", "city": "Hangzhou"})
    o1 = orders.create({"title": "First", "customer": acme.id, "discount": "10", "placed": "2026-11-01", "stage": "paid"})
    orders.create({"title": "Empty", "placed": "2026-11-20", "stage": "open"})
    lines.create({"order": o1.id, "product": "Tea", "quantity": 2, "unit_price": "12.50"})
    lines.create({"order": o1.id, "product": "Cups", "quantity": 3, "unit_price": "5.00"})
    lines.create({"order": o1.id, "product": "Hidden", "quantity": 1, "unit_price": "100.00", "secret": True})
    return rb


def test_formula_rollup_and_lookup_values(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    first = orders.get(1)
    values = first.fields
    assert values["total"] == Decimal("140.00")  # 25 + 15 + 100
    assert values["lines_count"] == 3
    assert values["net"] == Decimal("126.00")
    assert values["summary"] == "First · 3 lines"
    assert values["paid"] is True
    assert values["customer_name"] == "Acme"
    assert values["customer_city"] == "Hangzhou"
    assert values["greeting"] == "Dear Hangzhou"
    assert values["customer_phone"] == "+8613800138000"  # decrypted by the phone field's own type
    assert values["age"] == (dt.datetime.now(dt.UTC).date() - dt.date(2026, 11, 1)).days
    empty = orders.get(2).fields
    assert empty["total"] == Decimal("0.00")
    assert empty["lines_count"] == 0
    assert empty["customer_name"] is None
    assert empty["summary"] == "Empty · 0 lines"


def test_values_follow_every_change_to_links_and_linked_values(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    lines = shop.records(SYSTEM, "shop", "lines")
    customers = shop.records(SYSTEM, "shop", "customers")
    line = lines.get(1)
    lines.update(1, {"quantity": 4}, version=line.version)  # 50 instead of 25
    assert orders.get(1).fields["total"] == Decimal("165.00")
    lines.update(2, {"order": 2}, version=lines.get(2).version)  # cups move to the other order
    assert orders.get(1).fields["total"] == Decimal("150.00")
    assert orders.get(2).fields["total"] == Decimal("15.00")
    lines.delete(3)
    assert orders.get(1).fields["lines_count"] == 1
    customers.update(1, {"name": "Acme Ltd"}, version=customers.get(1).version)
    assert orders.get(1).fields["customer_name"] == "Acme Ltd"


def test_filter_and_sort_by_computed_fields(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    page = orders.query(filter={"field": "total", "op": "gt", "value": 100})
    assert [r.id for r in page.records] == [1]
    page = orders.query(filter={"field": "paid", "op": "eq", "value": False})
    assert [r.id for r in page.records] == [2]
    page = orders.query(filter={"field": "summary", "op": "contains", "value": "0 lines"})
    assert [r.id for r in page.records] == [2]
    page = orders.query(filter={"field": "customer_name", "op": "eq", "value": "Acme"})
    assert [r.id for r in page.records] == [1]
    assert [r.id for r in orders.query(sort=["-total"]).records] == [1, 2]
    assert [r.id for r in orders.query(sort=["total"]).records] == [2, 1]
    # Keyset paging over a computed sort key.
    first = orders.query(sort=["-net"], page_size=1)
    second = orders.query(sort=["-net"], page_size=1, cursor=first.next_cursor)
    assert [first.records[0].id, second.records[0].id] == [1, 2]
    assert orders.count(filter={"field": "lines_count", "op": "gte", "value": 1}) == 1


def test_computed_fields_cannot_be_written(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    with pytest.raises(ValidationError) as refused:
        orders.create({"title": "x", "total": 5})
    assert "total" in str(refused.value.problems[0].pointer)


def test_rollups_count_only_the_rows_the_actor_reads(shop: Recordbase) -> None:
    clerk = user(shop, "clerk@example.org", "clerk")
    orders = shop.records(clerk, "shop", "orders")
    first = orders.get(1).fields
    assert first["lines_count"] == 2  # the secret line is outside the clerk's rows
    assert first["total"] == Decimal("40.00")
    assert [r.id for r in orders.query(filter={"field": "total", "op": "gt", "value": 100}).records] == []


def test_a_computed_value_is_masked_like_the_personal_field_it_reads(shop: Recordbase) -> None:
    clerk = user(shop, "clerk@example.org", "clerk")
    manager = user(shop, "manager@example.org", "manager")
    as_clerk = shop.records(clerk, "shop", "orders").get(1).fields
    assert as_clerk["customer_city"] != "Hangzhou" and "Hangzhou" not in str(as_clerk["customer_city"])
    assert "Hangzhou" not in str(as_clerk["greeting"])
    assert as_clerk["customer_name"] == "Acme"  # not personal: in clear
    assert "138" not in str(as_clerk["customer_phone"])
    as_manager = shop.records(manager, "shop", "orders").get(1).fields
    assert as_manager["greeting"] == "Dear Hangzhou"
    assert as_manager["customer_phone"] == "+8613800138000"
    store = shop.records(clerk, "shop", "orders")
    for tree in (
        {"field": "greeting", "op": "contains", "value": "Hang"},
        {"field": "customer_city", "op": "eq", "value": "Hangzhou"},
    ):
        with pytest.raises(QueryError):
            store.query(filter=tree)
    with pytest.raises(QueryError):
        store.query(sort=["greeting"])


def test_hidden_sources_hide_the_computed_field(shop: Recordbase) -> None:
    warehouse = user(shop, "wh@example.org", "warehouse")
    store = shop.records(warehouse, "shop", "orders")
    fields = store.get(1).fields
    assert "title" not in fields
    assert "summary" not in fields  # reads the hidden title
    # No read right on lines or customers: what comes from there is hidden too.
    for slug in ("total", "lines_count", "net", "customer_name", "customer_city", "customer_phone", "greeting"):
        assert slug not in fields, slug
    assert fields["paid"] is True
    with pytest.raises(QueryError):
        store.query(filter={"field": "summary", "op": "contains", "value": "First"})


def test_many_lookup_returns_a_list(rb: Recordbase) -> None:
    definition = copy.deepcopy(ORDERS)
    orders = definition["tables"][1]
    orders["fields"].append({"slug": "tags", "label": "Tags", "type": "link", "options": {"table": "customers", "many": True}})
    orders["fields"].append({"slug": "tag_names", "label": "Tag names", "type": "lookup", "options": {"link": "tags", "field": "name"}})
    rb.install(definition, SYSTEM)
    customers = rb.records(SYSTEM, "shop", "customers")
    a = customers.create({"name": "A"})
    b = customers.create({"name": "B"})
    store = rb.records(SYSTEM, "shop", "orders")
    order = store.create({"title": "x", "tags": [b.id, a.id]})
    assert store.get(order.id).fields["tag_names"] == ["B", "A"]
    assert store.query(filter={"field": "tag_names", "op": "is_not_empty"}).records[0].id == order.id
    with pytest.raises(QueryError):
        store.query(sort=["tag_names"])
    with pytest.raises(QueryError):
        store.query(filter={"field": "tag_names", "op": "eq", "value": "A"})


def test_json_output_of_computed_values(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    ts = orders.ts
    data = orders.get(1).as_json(ts)["fields"]
    assert data["total"] == "140.00"
    assert data["lines_count"] == 3
    assert data["paid"] is True


def _problems(definition: dict[str, Any]) -> dict[str, str]:
    return {p.pointer: p.message for p in check_definition(definition) if p.severity == "error"}


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("title +", "ends too early"),
        ("title * 2", "needs numbers"),
        ("nope + 1", '"nope" is not a field'),
        ("IF(title, 1, 2)", "condition needs a yes/no value"),
        ("FOO(1)", "unknown function FOO"),
        ("__import__(\"os\")", "unexpected"),
    ],
)
def test_formula_errors_carry_the_pointer(formula: str, message: str) -> None:
    definition = copy.deepcopy(ORDERS)
    definition["tables"][1]["fields"][7]["options"]["formula"] = formula  # net
    problems = _problems(definition)
    assert message in problems["/tables/1/fields/7/options/formula"]


def test_cycles_encrypted_sources_and_bad_links_are_refused() -> None:
    definition = copy.deepcopy(ORDERS)
    fields = definition["tables"][1]["fields"]
    fields.append({"slug": "a", "label": "A", "type": "formula", "options": {"formula": "b + 1"}})
    fields.append({"slug": "b", "label": "B", "type": "formula", "options": {"formula": "a + 1"}})
    problems = _problems(definition)
    assert "depends on itself" in problems["/tables/1/fields/16/options/formula"]

    definition = copy.deepcopy(ORDERS)
    definition["tables"][0]["fields"].append({"slug": "dial", "label": "Dial", "type": "formula", "options": {"formula": "\"tel:\" & phone"}})
    problems = _problems(definition)
    assert "encrypted" in problems["/tables/0/fields/3/options/formula"]

    definition = copy.deepcopy(ORDERS)
    definition["tables"][1]["fields"][5]["options"]["via"] = "product"
    problems = _problems(definition)
    assert "link field" in problems["/tables/1/fields/5/options"]

    definition = copy.deepcopy(ORDERS)
    definition["tables"][1]["fields"][5]["required"] = True
    assert "/tables/1/fields/5/required" in _problems(definition)


def test_adding_and_changing_computed_fields_evolves_the_app(shop: Recordbase) -> None:
    definition = shop.export("shop")
    fields = definition["tables"][1]["fields"]
    fields.append({"slug": "double", "label": "Double", "type": "formula", "options": {"formula": "total * 2"}})
    shop.install(definition, SYSTEM)
    orders = shop.records(SYSTEM, "shop", "orders")
    assert orders.get(1).fields["double"] == Decimal("280.00")
    definition = shop.export("shop")
    for f in definition["tables"][1]["fields"]:
        if f["slug"] == "double":
            f["options"]["formula"] = "total * 3"
    shop.install(definition, SYSTEM)
    assert shop.records(SYSTEM, "shop", "orders").get(1).fields["double"] == Decimal("420.00")
    # A stored field turned into a formula: computed from then on.
    definition = shop.export("shop")
    for f in definition["tables"][1]["fields"]:
        if f["slug"] == "title":
            f.update({"type": "formula", "options": {"formula": "\"Order \" & TEXT(discount)"}})
        if f["slug"] == "summary":
            f["options"]["formula"] = "title"
    shop.install(definition, SYSTEM, force=True)
    assert shop.records(SYSTEM, "shop", "orders").get(1).fields["title"] == "Order 10"


def test_export_includes_computed_values_and_import_refuses_them(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    rows = list(orders.stream(fields=["title", "total"]))
    assert rows[0].fields == {"title": "First", "total": Decimal("140.00")}
    with pytest.raises((ValidationError, PermissionDenied)):
        orders.create_many([{"title": "y", "net": 1}])


def test_export_writes_computed_columns_and_import_skips_them(shop: Recordbase, tmp_path: Any) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    export = orders.export("csv", fields=["title", "discount", "net"])
    path = tmp_path / "orders.csv"
    with path.open("wb") as out:
        export.write_to(out)
    text = path.read_text(encoding="utf-8-sig")
    assert "126.00" in text
    report = orders.import_rows(path)
    assert report.ok, report.problems
    assert any("computed" in omitted.reason for omitted in report.ignored)
    assert orders.count() == 4


def test_aggregates_over_computed_fields_and_date_buckets(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    groups = orders.aggregate(group_by=["month:placed"], metrics=["count", "sum:total", "avg:net"])
    assert [(g.values["month:placed"], g.metrics["count"]) for g in groups] == [("2026-11", 2)]
    assert groups[0].metrics["sum:total"] == Decimal("140.00")
    assert groups[0].metrics["avg:net"] == Decimal("126.00")  # the empty order has no discount, so no net
    by_paid = orders.aggregate(group_by=["paid"], metrics=["sum:total"])
    assert {g.values["paid"]: g.metrics["sum:total"] for g in by_paid} == {False: Decimal("0"), True: Decimal("140")}
    weeks = orders.aggregate(group_by=["week:placed"])
    assert [g.values["week:placed"] for g in weeks] == ["2026-10-26", "2026-11-16"]
    quarters = orders.aggregate(group_by=["quarter:placed", "year:placed"])
    assert [(g.values["quarter:placed"], g.values["year:placed"]) for g in quarters] == [("2026-Q4", "2026")]
    with pytest.raises(QueryError):
        orders.aggregate(group_by=["month:title"])
    with pytest.raises(QueryError):
        orders.aggregate(group_by=["fortnight:placed"])
    clerk = user(shop, "clerk@example.org", "clerk")
    with pytest.raises(QueryError):  # masked for the clerk: no group may depend on it
        shop.records(clerk, "shop", "orders").aggregate(group_by=["greeting"])


def test_an_ungrouped_count_counts(shop: Recordbase) -> None:
    orders = shop.records(SYSTEM, "shop", "orders")
    assert [g.metrics for g in orders.aggregate(metrics=["count", "sum:total"])] == [{"count": 2, "sum:total": Decimal("140")}]
    assert orders.aggregate(metrics=["count"], filter={"field": "paid", "op": "eq", "value": True})[0].metrics == {"count": 1}
