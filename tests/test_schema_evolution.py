"""Changing an installed app's definition: data kept, converted, refused or trashed — on both databases."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from evolution_defs import changed, field, get_field, get_table, shop, table
from recordbase.actor import Actor
from recordbase.core import Recordbase
from recordbase.errors import NotFound, PlanRefused, Problem, ValidationError
from recordbase.migrate import apps_t, fields_t, tables_t, trash_t, versions_t
from recordbase.models import Audit

ACTOR = Actor.system("test")
audit_t: sa.Table = Audit.__table__  # type: ignore[assignment]
NOT_A_NUMBER = "is not a number (expected digits like 1234.50)"


# --- helpers ------------------------------------------------------------------------


@pytest.fixture
def shop_rb(rb: Recordbase) -> Recordbase:
    """``rb`` with shop() installed (version 1)."""
    assert rb.install(shop(), ACTOR).applied
    return rb


def records(rb: Recordbase, table_slug: str = "items") -> Any:
    return rb.records(ACTOR, "shop", table_slug)


def read(rb: Recordbase, record_id: int, table_slug: str = "items") -> dict[str, Any]:
    return records(rb, table_slug).get(record_id).fields


def app_version(rb: Recordbase) -> int:
    with rb.read() as conn:
        return conn.execute(sa.select(apps_t.c.version).where(apps_t.c.slug == "shop")).scalar_one()


def physical_tables(rb: Recordbase) -> set[str]:
    return set(sa.inspect(rb.engine).get_table_names())


def rows(rb: Recordbase, statement: Any) -> list[dict[str, Any]]:
    with rb.read() as conn:
        return [dict(r) for r in conn.execute(statement).mappings()]


def trash_entries(rb: Recordbase) -> list[dict[str, Any]]:
    return rows(
        rb,
        sa.select(
            trash_t.c.kind,
            trash_t.c.table_id,
            trash_t.c.field_id,
            trash_t.c.payload,
            trash_t.c.deleted_by,
        ).order_by(trash_t.c.id),
    )


def audit_actions(rb: Recordbase) -> list[str]:
    return [r["action"] for r in rows(rb, sa.select(audit_t.c.action).order_by(audit_t.c.id))]


def qty_as_number(scale: int = 1) -> Any:
    return lambda d: get_field(d, "items", "qty").update(type="number", options={"scale": scale})


# --- renames --------------------------------------------------------------------------


def test_renaming_a_table_and_a_field_keeps_data_and_physical_names(shop_rb: Recordbase) -> None:
    pen = records(shop_rb).create({"name": "Pen", "qty": "3"})
    before = shop_rb.app("shop").table("items")
    physical = (before.name, before.field("name").column_name)

    def rename(d: dict[str, Any]) -> None:
        get_table(d, "items")["slug"] = "products"
        get_field(d, "products", "name")["slug"] = "title"

    result = shop_rb.install(changed(shop(), rename), ACTOR)
    assert result.plan.describe() == [
        "rename table items → products",
        "rename field products.name → title",
    ]
    assert read(shop_rb, pen.id, "products") == {
        "title": "Pen",
        "qty": "3",
        "price": None,
        "colour": None,
        "owner_email": None,
        "vendor": None,
    }
    after = shop_rb.app("shop").table("products")
    assert (after.name, after.field("title").column_name) == physical  # metadata only
    with pytest.raises(NotFound):
        records(shop_rb, "items")
    assert records(shop_rb, "products").query(search="pen").records[0].id == pen.id


def test_renaming_a_linked_table_keeps_the_links(shop_rb: Recordbase) -> None:
    acme = records(shop_rb, "vendors").create({"title": "Acme"})
    pen = records(shop_rb).create({"name": "Pen", "vendor": acme.id})

    def rename(d: dict[str, Any]) -> None:
        get_table(d, "vendors")["slug"] = "suppliers"
        get_field(d, "items", "vendor")["options"]["table"] = "suppliers"

    result = shop_rb.install(changed(shop(), rename), ACTOR)
    assert result.plan.describe() == ["rename table vendors → suppliers"]
    assert read(shop_rb, pen.id)["vendor"] == acme.id


# --- adding and removing fields -------------------------------------------------------


def test_adding_a_field_leaves_existing_rows_intact(shop_rb: Recordbase) -> None:
    pen = records(shop_rb).create({"name": "Pen", "qty": "3"})
    cup = records(shop_rb).create({"name": "Cup"})
    ts = shop_rb.app("shop").table("items")
    with shop_rb.read() as conn:
        before_rows = conn.execute(sa.select(ts.table).order_by(ts.table.c.id)).mappings().all()
        before_sql = (
            conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": ts.name}
            ).scalar()
            if shop_rb.dialect == "sqlite"
            else None
        )

    result = shop_rb.install(
        changed(shop(), lambda d: get_table(d, "items")["fields"].append(field("notes"))), ACTOR
    )

    assert result.plan.describe() == ["add field items.notes (text)"]
    assert read(shop_rb, pen.id) == {
        "name": "Pen",
        "qty": "3",
        "price": None,
        "colour": None,
        "owner_email": None,
        "vendor": None,
        "notes": None,
    }
    assert read(shop_rb, cup.id)["notes"] is None
    new_ts = shop_rb.app("shop").table("items")
    notes_column = new_ts.field("notes").column_name
    with shop_rb.read() as conn:
        after_rows = conn.execute(sa.select(ts.table).order_by(ts.table.c.id)).mappings().all()
        assert [dict(r) for r in after_rows] == [
            dict(r) for r in before_rows
        ]  # same ids, versions, values
        if shop_rb.dialect == "sqlite":
            after_sql = conn.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": ts.name}
            ).scalar()
            assert (
                after_sql == before_sql[:-1] + f", {notes_column} TEXT)"
            )  # ALTER TABLE ADD COLUMN, no rebuild


def test_removing_a_field_hides_its_data_and_trashes_it(shop_rb: Recordbase) -> None:
    pen = records(shop_rb).create({"name": "Pen", "qty": "3"})
    ts = shop_rb.app("shop").table("items")
    qty_pk = ts.field("qty").pk

    result = shop_rb.install(
        changed(shop(), lambda d: get_table(d, "items")["fields"].pop(1)), ACTOR
    )

    assert result.plan.describe() == [
        "remove field items.qty (to the trash)",
        "rebuild the search index of items",
    ]
    assert read(shop_rb, pen.id) == {
        "name": "Pen",
        "price": None,
        "colour": None,
        "owner_email": None,
        "vendor": None,
    }
    assert trash_entries(shop_rb) == [
        {
            "kind": "field",
            "table_id": ts.pk,
            "field_id": qty_pk,
            "deleted_by": "system:test",
            "payload": {"table": "tbl_items", "definition": get_field(shop(), "items", "qty")},
        }
    ]
    assert records(shop_rb).query(search="3").records == []  # gone from search too
    with pytest.raises(ValidationError):
        records(shop_rb).create({"name": "Cup", "qty": "1"})


def test_readding_a_removed_field_by_its_id_revives_its_data(shop_rb: Recordbase) -> None:
    pen = records(shop_rb).create({"name": "Pen", "qty": "333"})
    old_pk = shop_rb.app("shop").table("items").field("qty").pk
    shop_rb.install(changed(shop(), lambda d: get_table(d, "items")["fields"].pop(1)), ACTOR)

    result = shop_rb.install(shop(), ACTOR)

    assert result.plan.describe() == ["add field items.qty (text)"]
    assert read(shop_rb, pen.id)["qty"] == "333"
    assert shop_rb.app("shop").table("items").field("qty").pk == old_pk
    assert trash_entries(shop_rb) == []
    assert [r.id for r in records(shop_rb).query(search="333").records] == [
        pen.id
    ]  # search rebuilt
    assert rows(
        shop_rb, sa.select(fields_t.c.uid, fields_t.c.removed_at).where(fields_t.c.id == old_pk)
    ) == [{"uid": "fld_qty", "removed_at": None}]


def test_readding_a_removed_field_with_another_type_starts_empty(shop_rb: Recordbase) -> None:
    pen = records(shop_rb).create({"name": "Pen", "qty": "3"})
    shop_rb.install(changed(shop(), lambda d: get_table(d, "items")["fields"].pop(1)), ACTOR)

    shop_rb.install(changed(shop(), qty_as_number()), ACTOR)

    assert read(shop_rb, pen.id)["qty"] is None
    assert [e["kind"] for e in trash_entries(shop_rb)] == [
        "field"
    ]  # the text column stays restorable


def test_readding_a_removed_number_with_another_scale_does_not_reinterpret_it(
    shop_rb: Recordbase,
) -> None:
    """The stored integer means 12.34 at scale 2; read at scale 0 it must not become 1234."""
    pen = records(shop_rb).create({"name": "Pen", "price": "12.34"})
    shop_rb.install(changed(shop(), lambda d: get_table(d, "items")["fields"].pop(2)), ACTOR)

    shop_rb.install(
        changed(shop(), lambda d: get_field(d, "items", "price")["options"].update(scale=0)), ACTOR
    )

    assert read(shop_rb, pen.id)["price"] is None


def test_readding_a_removed_single_link_as_many_keeps_the_app_readable(shop_rb: Recordbase) -> None:
    acme = records(shop_rb, "vendors").create({"title": "Acme"})
    pen = records(shop_rb).create({"name": "Pen", "vendor": acme.id})
    shop_rb.install(changed(shop(), lambda d: get_table(d, "items")["fields"].pop()), ACTOR)

    shop_rb.install(
        changed(shop(), lambda d: get_field(d, "items", "vendor")["options"].update(many=True)),
        ACTOR,
    )

    assert read(shop_rb, pen.id)["vendor"] is None


def test_readding_a_removed_table_by_its_id_revives_its_rows(shop_rb: Recordbase) -> None:
    acme = records(shop_rb, "vendors").create({"title": "Acme"})
    pk = shop_rb.app("shop").table("vendors").pk

    def drop(d: dict[str, Any]) -> None:
        d["tables"].pop()
        get_table(d, "items")["fields"].pop()

    shop_rb.install(changed(shop(), drop), ACTOR)
    result = shop_rb.install(shop(), ACTOR)

    assert result.plan.describe() == ["add field items.vendor (link)", "add table vendors"]
    assert shop_rb.app("shop").table("vendors").pk == pk
    assert read(shop_rb, acme.id, "vendors") == {"title": "Acme"}
    assert trash_entries(shop_rb) == []


# --- conversions ----------------------------------------------------------------------


def test_text_to_number_converts_every_value(shop_rb: Recordbase) -> None:
    ids = [
        r.id
        for r in records(shop_rb).create_many(
            [{"name": "A", "qty": "12"}, {"name": "B", "qty": "3.5"}, {"name": "C"}]
        )
    ]
    old_pk = shop_rb.app("shop").table("items").field("qty").pk

    result = shop_rb.install(changed(shop(), qty_as_number()), ACTOR)

    assert result.applied and result.problems == []
    assert [read(shop_rb, rid)["qty"] for rid in ids] == [Decimal("12.0"), Decimal("3.5"), None]
    new_pk = shop_rb.app("shop").table("items").field("qty").pk
    [entry] = trash_entries(shop_rb)
    assert entry["field_id"] == old_pk
    assert entry["payload"] == {
        "table": "tbl_items",
        "replaced_by": new_pk,
        "definition": get_field(shop(), "items", "qty"),
    }
    assert records(shop_rb).count(filter={"field": "qty", "op": "gt", "value": 10}) == 1


def test_a_failed_conversion_refuses_the_whole_change(shop_rb: Recordbase) -> None:
    ok = records(shop_rb).create({"name": "A", "qty": "12"})
    bad = records(shop_rb).create({"name": "B", "qty": "abc"})
    tables_before = physical_tables(shop_rb)
    meta_before = rows(shop_rb, sa.select(tables_t.c.id, tables_t.c.slug).order_by(tables_t.c.id))

    def change(d: dict[str, Any]) -> None:
        qty_as_number()(d)
        get_field(d, "items", "name")["slug"] = "title"
        d["tables"].append(table("orders", field("number")))

    with pytest.raises(PlanRefused) as refused:
        shop_rb.install(changed(shop(), change), ACTOR)

    assert refused.value.message == (
        '1 value(s) of "items.qty" cannot be converted to number; fix them or apply with --force to empty them'
    )
    assert refused.value.problems == [
        Problem(f"/records/{bad.id}/qty", f"'abc' cannot become number: {NOT_A_NUMBER}")
    ]
    # Nothing applied: not the rename, not the new table, not the version.
    assert app_version(shop_rb) == 1
    assert physical_tables(shop_rb) == tables_before
    assert (
        rows(shop_rb, sa.select(tables_t.c.id, tables_t.c.slug).order_by(tables_t.c.id))
        == meta_before
    )
    assert shop_rb.export("shop") == shop()
    assert "orders" not in shop_rb.app("shop").tables
    assert read(shop_rb, ok.id)["qty"] == "12" and read(shop_rb, bad.id)["name"] == "B"
    assert trash_entries(shop_rb) == []
    assert len(rows(shop_rb, sa.select(versions_t.c.version))) == 1


def test_force_empties_unconvertible_values_and_audits_them(shop_rb: Recordbase) -> None:
    ok = records(shop_rb).create({"name": "A", "qty": "12"})
    bad = records(shop_rb).create({"name": "B", "qty": "abc"})
    dropped = Problem(f"/records/{bad.id}/qty", f"'abc' cannot become number: {NOT_A_NUMBER}")

    result = shop_rb.install(changed(shop(), qty_as_number()), ACTOR, force=True)

    assert result.applied
    assert result.problems == [dropped]
    assert read(shop_rb, ok.id)["qty"] == Decimal("12.0")
    assert read(shop_rb, bad.id)["qty"] is None
    [audit] = rows(
        shop_rb,
        sa.select(audit_t.c.actor_name, audit_t.c.changes).where(
            audit_t.c.action == "values_dropped"
        ),
    )
    assert audit == {"actor_name": "system:test", "changes": {"values": [dropped.as_dict()]}}
    assert app_version(shop_rb) == 2


def test_dry_run_reports_the_plan_and_changes_nothing(shop_rb: Recordbase) -> None:
    bad = records(shop_rb).create({"name": "B", "qty": "abc"})
    tables_before = physical_tables(shop_rb)

    def change(d: dict[str, Any]) -> None:
        qty_as_number()(d)
        d["tables"].append(table("orders", field("number")))

    result = shop_rb.install(changed(shop(), change), ACTOR, dry_run=True, force=True)

    assert not result.applied and result.app is None
    assert result.plan.describe() == [
        "convert field items.qty: text → number",
        "rebuild the search index of items",
        "add table orders",
    ]
    assert result.problems == [
        Problem(f"/records/{bad.id}/qty", f"'abc' cannot become number: {NOT_A_NUMBER}")
    ]
    assert app_version(shop_rb) == 1
    assert physical_tables(shop_rb) == tables_before
    assert read(shop_rb, bad.id)["qty"] == "abc"
    assert audit_actions(shop_rb) == ["install", "create"]
    # Without force, a dry run refuses exactly as a real run would.
    with pytest.raises(PlanRefused):
        shop_rb.install(changed(shop(), change), ACTOR, dry_run=True)


def test_dry_run_of_a_new_app_installs_nothing(rb: Recordbase) -> None:
    result = rb.install(shop(), ACTOR, dry_run=True)
    assert result.plan.describe() == ["create app shop", "add table items", "add table vendors"]
    assert not result.applied
    assert rb.list_apps() == []
    assert not any(name.startswith("t") and name[1:].isdigit() for name in physical_tables(rb))


def test_number_scale_change_rescales_stored_values(shop_rb: Recordbase) -> None:
    ids = [
        r.id
        for r in records(shop_rb).create_many(
            [
                {"name": "A", "price": "12.34"},
                {"name": "B", "price": "12.50"},
                {"name": "C", "price": "-0.5"},
            ]
        )
    ]
    result = shop_rb.install(
        changed(shop(), lambda d: get_field(d, "items", "price")["options"].update(scale=0)), ACTOR
    )
    assert result.plan.describe() == ["convert field items.price: number → number (scale changes)"]
    assert [read(shop_rb, rid)["price"] for rid in ids] == [12, 13, -1]  # half-up, away from zero
    ts = shop_rb.app("shop").table("items")
    col = ts.table.c[ts.field("price").column_name]
    assert [r["v"] for r in rows(shop_rb, sa.select(col.label("v")).order_by(ts.table.c.id))] == [
        12,
        13,
        -1,
    ]


def test_removing_a_choice_in_use_is_refused(shop_rb: Recordbase) -> None:
    blue = records(shop_rb).create({"name": "A", "colour": "blue"})
    with pytest.raises(PlanRefused) as refused:
        shop_rb.install(
            changed(shop(), lambda d: get_field(d, "items", "colour")["options"]["choices"].pop()),
            ACTOR,
        )
    assert [p.pointer for p in refused.value.problems] == [f"/records/{blue.id}/colour"]


def test_making_a_field_unique_with_duplicates_is_refused(shop_rb: Recordbase) -> None:
    first = records(shop_rb).create({"name": "Pen"})
    records(shop_rb).create({"name": "Pen"})
    unique = changed(shop(), lambda d: get_field(d, "items", "name").update(unique=True))

    with pytest.raises(PlanRefused) as refused:
        shop_rb.install(unique, ACTOR)

    assert (
        refused.value.message
        == 'cannot make "items.name" unique: 1 value(s) are used more than once'
    )
    assert refused.value.problems == [Problem("/fields/name", "2 records share one value")]
    assert app_version(shop_rb) == 1

    records(shop_rb).update(first.id, {"name": "Pencil"}, version=first.version)
    assert shop_rb.install(unique, ACTOR).plan.describe() == ["create unique index on items.name"]
    with pytest.raises(ValidationError) as invalid:
        records(shop_rb).create({"name": "Pencil"})
    assert [p.pointer for p in invalid.value.problems] == ["/fields/name"]


def test_link_single_to_many_keeps_links(shop_rb: Recordbase) -> None:
    acme, bolt = records(shop_rb, "vendors").create_many([{"title": "Acme"}, {"title": "Bolt"}])
    pen = records(shop_rb).create({"name": "Pen", "vendor": acme.id})
    cup = records(shop_rb).create({"name": "Cup"})

    result = shop_rb.install(
        changed(shop(), lambda d: get_field(d, "items", "vendor")["options"].update(many=True)),
        ACTOR,
    )

    assert result.plan.describe() == ["convert field items.vendor: link → link (many changes)"]
    assert read(shop_rb, pen.id)["vendor"] == [acme.id]
    assert read(shop_rb, cup.id)["vendor"] is None
    updated = records(shop_rb).update(pen.id, {"vendor": [acme.id, bolt.id]}, version=pen.version)
    assert updated.fields["vendor"] == [acme.id, bolt.id]


def test_removing_a_table_trashes_it_and_keeps_its_rows(shop_rb: Recordbase) -> None:
    records(shop_rb, "vendors").create({"title": "Acme"})
    vendors = shop_rb.app("shop").table("vendors")

    def drop(d: dict[str, Any]) -> None:
        d["tables"].pop()
        get_table(d, "items")["fields"].pop()

    shop_rb.install(changed(shop(), drop), ACTOR)

    with pytest.raises(NotFound):
        records(shop_rb, "vendors")
    entries = trash_entries(shop_rb)
    assert [(e["kind"], e["table_id"], e["field_id"]) for e in entries] == [
        ("table", vendors.pk, None),
        ("field", shop_rb.app("shop").table("items").pk, entries[1]["field_id"]),
    ]
    assert entries[0]["payload"] == {"definition": get_table(shop(), "vendors")}
    # The rows stay where they were until the trash is purged.
    assert rows(shop_rb, sa.select(vendors.table.c.id)) == [{"id": 1}]
    assert rows(shop_rb, sa.select(tables_t.c.uid).where(tables_t.c.id == vendors.pk)) == [
        {"uid": f"tbl_vendors~{vendors.pk}"}
    ]


# --- versions -------------------------------------------------------------------------


def test_each_applied_change_writes_a_new_version(shop_rb: Recordbase) -> None:
    second = changed(shop(), lambda d: get_table(d, "items")["fields"].append(field("notes")))
    third = changed(second, lambda d: d.update(label="Our shop"))
    plans = [shop_rb.install(second, ACTOR).plan, shop_rb.install(third, ACTOR).plan]
    assert not shop_rb.install(third, ACTOR).applied  # nothing to change: no new version

    assert app_version(shop_rb) == 3
    versions = rows(
        shop_rb,
        sa.select(
            versions_t.c.version,
            versions_t.c.definition,
            versions_t.c.plan,
            versions_t.c.created_by,
        ).order_by(versions_t.c.version),
    )
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["created_by"] for v in versions] == ["system:test"] * 3
    assert [v["plan"] for v in versions[1:]] == [[s.as_dict() for s in p.steps] for p in plans]
    assert versions[2]["plan"] == [
        {
            "kind": "update_definition",
            "table": None,
            "field": None,
            "detail": {},
            "text": "update labels, options and settings",
        }
    ]
    assert versions[2]["definition"] == shop_rb.export("shop") == plans[1].definition
    assert audit_actions(shop_rb) == ["install", "definition_change", "definition_change"]


# --- privacy --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "value", "shown"),
    [
        ("owner_email", "ann@example.com", "a***@example.com"),
        ("secret", "Zhang Wei", "Z********"),
    ],
)
def test_conversion_errors_mask_personal_values(
    rb: Recordbase, slug: str, value: str, shown: str
) -> None:
    definition = changed(
        shop(),
        lambda d: get_table(d, "items")["fields"].append(
            field("secret", sensitivity="sensitive", purpose="to test masking")
        ),
    )
    rb.install(definition, ACTOR)
    pen = rb.records(ACTOR, "shop", "items").create({"name": "Pen", slug: value})

    with pytest.raises(PlanRefused) as refused:
        rb.install(
            changed(
                definition, lambda d: get_field(d, "items", slug).update(type="number", options={})
            ),
            ACTOR,
        )

    assert refused.value.problems == [
        Problem(f"/records/{pen.id}/{slug}", f"{shown!r} cannot become number: {NOT_A_NUMBER}")
    ]
    assert value not in str(refused.value) + repr(refused.value.problems)
    forced = rb.install(
        changed(
            definition, lambda d: get_field(d, "items", slug).update(type="number", options={})
        ),
        ACTOR,
        force=True,
    )
    audit = rows(rb, sa.select(audit_t.c.changes).where(audit_t.c.action == "values_dropped"))
    assert value not in repr(audit) and value not in repr(forced.problems)


def test_changing_an_exported_definition_leaves_the_installed_app_alone(rb):
    """The export is a copy: editing it before a refused install changes nothing installed."""
    from recordbase import Actor

    actor = Actor.system("test")
    definition = {"slug": "notes", "label": "Notes", "tables": [
        {"slug": "notes", "label": "Notes", "fields": [{"slug": "title", "label": "Title", "type": "text"}]}]}
    rb.install(definition, actor)
    exported = rb.export("notes")
    exported["tables"][0]["fields"][0]["label"] = "Changed"
    exported["tables"][0]["fields"].append({"slug": "bad", "label": "Bad", "type": "nubmer"})
    assert rb.export("notes")["tables"][0]["fields"] == [
        {"id": rb.app("notes").tables["notes"].fields["title"].uid, "slug": "title", "label": "Title", "type": "text"}
    ]
