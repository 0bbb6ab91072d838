"""The planner: ``assign_ids`` and ``diff`` turn two definitions into exact steps, with no database."""

from __future__ import annotations

import re
from typing import Any

from evolution_defs import (
    SEARCHABLE,
    app,
    changed,
    choice,
    field,
    get_field,
    get_table,
    shop,
    table,
    without_ids,
)
from recordbase.plan import Plan, Step, assign_ids, diff

FRESH_FIELD_ID = re.compile(r"^fld[a-z0-9]{12}$")
FRESH_TABLE_ID = re.compile(r"^tbl[a-z0-9]{12}$")
FRESH_CHOICE_ID = re.compile(r"^opt[a-z0-9]{12}$")

INSTALLED = assign_ids(shop(), None)  # what the database holds after installing shop()


def plan_change(definition: dict[str, Any], installed: dict[str, Any] | None = INSTALLED) -> Plan:
    """What ``Recordbase.install`` plans: ids assigned against ``installed``, then diffed."""
    return diff(installed, assign_ids(definition, installed), set(SEARCHABLE))


def items_detail(slug: str, type: str, **more: Any) -> dict[str, Any]:
    return {"table_slug": "items", "slug": slug, "type": type, **more}


# --- installing and re-installing -----------------------------------------------------


def test_new_app_creates_the_app_then_each_table() -> None:
    plan = plan_change(shop(), installed=None)
    assert plan.steps == [
        Step("create_app", detail={"app": "shop"}),
        Step("add_table", "tbl_items", detail={"slug": "items"}),
        Step("add_table", "tbl_vendors", detail={"slug": "vendors"}),
    ]
    assert plan.describe() == ["create app shop", "add table items", "add table vendors"]
    assert plan.definition == INSTALLED
    assert not plan.is_empty


def test_the_same_definition_again_plans_nothing() -> None:
    plan = plan_change(shop())
    assert plan.steps == []
    assert plan.is_empty
    assert plan.describe() == ["nothing to change"]


def test_an_exported_definition_replanned_is_empty() -> None:
    exported = plan_change(without_ids(shop()), installed=None).definition
    assert plan_change(exported, installed=exported).steps == []
    # ...and the hand-written file it came from matches it by slugs and labels.
    assert plan_change(without_ids(shop()), installed=exported).steps == []


def test_step_as_dict_carries_its_text() -> None:
    step = Step(
        "rename_field",
        "tbl_items",
        "fld_name",
        {"table_slug": "items", "old": "name", "new": "title"},
    )
    assert step.as_dict() == {
        "kind": "rename_field",
        "table": "tbl_items",
        "field": "fld_name",
        "detail": {"table_slug": "items", "old": "name", "new": "title"},
        "text": "rename field items.name → title",
    }


# --- tables ---------------------------------------------------------------------------


def test_add_table() -> None:
    plan = plan_change(
        changed(shop(), lambda d: d["tables"].append(table("orders", field("number"))))
    )
    assert plan.steps == [Step("add_table", "tbl_orders", detail={"slug": "orders"})]
    assert plan.describe() == ["add table orders"]


def test_remove_table_goes_to_the_trash() -> None:
    def drop_vendors(d: dict[str, Any]) -> None:
        d["tables"].pop()
        get_table(d, "items")["fields"].pop()  # the link to vendors goes with it

    plan = plan_change(changed(shop(), drop_vendors))
    assert plan.steps == [
        Step("remove_table", "tbl_vendors", detail={"slug": "vendors"}),
        Step("remove_field", "tbl_items", "fld_vendor", items_detail("vendor", "link")),
    ]
    assert plan.describe() == [
        "remove table vendors (to the trash)",
        "remove field items.vendor (to the trash)",
    ]


def test_rename_table_by_id() -> None:
    plan = plan_change(changed(shop(), lambda d: get_table(d, "items").update(slug="products")))
    assert plan.steps == [
        Step("rename_table", "tbl_items", detail={"old": "items", "new": "products"})
    ]
    assert plan.describe() == ["rename table items → products"]


# --- fields ---------------------------------------------------------------------------


def test_add_field() -> None:
    plan = plan_change(
        changed(
            shop(), lambda d: get_table(d, "items")["fields"].append(field("notes", "long_text"))
        )
    )
    assert plan.steps == [
        Step("add_field", "tbl_items", "fld_notes", items_detail("notes", "long_text"))
    ]
    assert plan.describe() == ["add field items.notes (long_text)"]


def test_add_field_without_id_gets_a_fresh_one() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_table(d, "items")["fields"].append(field("notes", id="")))
    )
    [step] = [s for s in plan.steps if s.kind == "add_field"]
    assert FRESH_FIELD_ID.match(step.field or "")
    assert get_field(plan.definition, "items", "notes")["id"] == step.field
    # A new text field feeds the search index only once it has values; no rebuild is planned.
    assert [s.kind for s in plan.steps] == ["add_field"]


def test_remove_field_rebuilds_search_when_it_was_searchable() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_table(d, "items")["fields"].pop(1))
    )  # qty, text
    assert plan.steps == [
        Step("remove_field", "tbl_items", "fld_qty", items_detail("qty", "text")),
        Step("rebuild_search", "tbl_items", detail={"table_slug": "items"}),
    ]
    assert plan.describe() == [
        "remove field items.qty (to the trash)",
        "rebuild the search index of items",
    ]


def test_remove_unsearchable_field_needs_no_rebuild() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_table(d, "items")["fields"].pop(2))
    )  # price, number
    assert plan.steps == [
        Step("remove_field", "tbl_items", "fld_price", items_detail("price", "number"))
    ]


def test_renamed_field_with_its_id_keeps_the_id() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "name").update(slug="title"))
    )
    assert plan.steps == [
        Step(
            "rename_field",
            "tbl_items",
            "fld_name",
            {"table_slug": "items", "old": "name", "new": "title"},
        )
    ]
    assert plan.describe() == ["rename field items.name → title"]
    assert get_field(plan.definition, "items", "title")["id"] == "fld_name"


def test_renamed_slug_without_ids_is_a_remove_and_an_add() -> None:
    """Documented behaviour: without ids only the slug identifies a field, so its data is not carried over."""
    hand_written = changed(
        without_ids(shop()), lambda d: get_field(d, "items", "name").update(slug="title")
    )
    plan = plan_change(hand_written)
    new_id = get_field(plan.definition, "items", "title")["id"]
    assert FRESH_FIELD_ID.match(new_id)
    assert plan.steps == [
        Step("remove_field", "tbl_items", "fld_name", items_detail("name", "text")),
        Step("add_field", "tbl_items", new_id, items_detail("title", "text")),
        Step("rebuild_search", "tbl_items", detail={"table_slug": "items"}),
    ]
    assert plan.describe() == [
        "remove field items.name (to the trash)",
        "add field items.title (text)",
        "rebuild the search index of items",
    ]


def test_rename_and_type_change_together() -> None:
    plan = plan_change(
        changed(
            shop(), lambda d: get_field(d, "items", "qty").update(slug="quantity", type="number")
        )
    )
    assert plan.steps == [
        Step(
            "rename_field",
            "tbl_items",
            "fld_qty",
            {"table_slug": "items", "old": "qty", "new": "quantity"},
        ),
        Step(
            "convert_field",
            "tbl_items",
            "fld_qty",
            items_detail("quantity", "number", old_type="text", new_type="number", why=""),
        ),
        Step("rebuild_search", "tbl_items", detail={"table_slug": "items"}),
    ]


# --- conversions ----------------------------------------------------------------------


def test_type_change_converts_and_rebuilds_search() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "qty").update(type="number"))
    )
    assert plan.steps == [
        Step(
            "convert_field",
            "tbl_items",
            "fld_qty",
            items_detail("qty", "number", old_type="text", new_type="number", why=""),
        ),
        Step("rebuild_search", "tbl_items", detail={"table_slug": "items"}),
    ]
    assert plan.describe() == [
        "convert field items.qty: text → number",
        "rebuild the search index of items",
    ]


def test_number_scale_change_converts() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "price")["options"].update(scale=0))
    )
    assert plan.steps == [
        Step(
            "convert_field",
            "tbl_items",
            "fld_price",
            items_detail(
                "price", "number", old_type="number", new_type="number", why=" (scale changes)"
            ),
        ),
    ]
    assert plan.describe() == ["convert field items.price: number → number (scale changes)"]


def test_precision_change_alone_only_updates_the_definition() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "price")["options"].update(precision=14))
    )
    assert plan.steps == [Step("update_definition")]


def test_link_to_many_converts() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "vendor")["options"].update(many=True))
    )
    assert plan.describe() == ["convert field items.vendor: link → link (many changes)"]


def test_removing_a_choice_converts() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "colour")["options"]["choices"].pop())
    )
    assert plan.steps == [
        Step(
            "convert_field",
            "tbl_items",
            "fld_colour",
            items_detail(
                "colour",
                "single_select",
                old_type="single_select",
                new_type="single_select",
                why=" (choices removed)",
            ),
        ),
    ]
    assert plan.describe() == [
        "convert field items.colour: single_select → single_select (choices removed)"
    ]


def test_adding_a_choice_needs_no_conversion() -> None:
    def add_green(d: dict[str, Any]) -> None:
        get_field(d, "items", "colour")["options"]["choices"].append(choice(None, "Green", "绿"))

    plan = plan_change(changed(shop(), add_green))
    assert plan.steps == [Step("update_definition")]
    assert plan.describe() == ["update labels, options and settings"]
    green = get_field(plan.definition, "items", "colour")["options"]["choices"][2]
    assert FRESH_CHOICE_ID.match(green["id"])


def test_shrinking_max_length_converts() -> None:
    plan = plan_change(
        changed(shop(), lambda d: get_field(d, "items", "name").update(options={"max_length": 10}))
    )
    assert plan.describe() == [
        "convert field items.name: text → text (max_length shrinks)",
        "rebuild the search index of items",
    ]


# --- indexes and labels ---------------------------------------------------------------


def test_making_a_field_unique_creates_a_unique_index() -> None:
    plan = plan_change(changed(shop(), lambda d: get_field(d, "items", "name").update(unique=True)))
    assert plan.steps == [
        Step(
            "change_index",
            "tbl_items",
            "fld_name",
            items_detail("name", "text", action="create", index="unique index", flag="unique"),
        ),
    ]
    assert plan.describe() == ["create unique index on items.name"]


def test_unique_and_indexed_toggled_off() -> None:
    def flagged(d: dict[str, Any]) -> None:
        get_field(d, "items", "name").update(unique=True)
        get_field(d, "items", "qty").update(indexed=True)

    installed = assign_ids(changed(shop(), flagged), None)
    plan = plan_change(shop(), installed=installed)
    assert plan.steps == [
        Step(
            "change_index",
            "tbl_items",
            "fld_name",
            items_detail("name", "text", action="drop", index="unique index", flag="unique"),
        ),
        Step(
            "change_index",
            "tbl_items",
            "fld_qty",
            items_detail("qty", "text", action="drop", index="index", flag="indexed"),
        ),
    ]
    assert plan.describe() == ["drop unique index on items.name", "drop index on items.qty"]


def test_indexed_toggled_on() -> None:
    plan = plan_change(changed(shop(), lambda d: get_field(d, "items", "qty").update(indexed=True)))
    assert plan.describe() == ["create index on items.qty"]


def test_label_only_change_updates_the_definition_only() -> None:
    def relabel(d: dict[str, Any]) -> None:
        d["label"] = {"en": "Shop", "zh-CN": "商店"}
        get_table(d, "items")["label"] = "Products"
        get_field(d, "items", "name")["label"] = "Product name"

    plan = plan_change(changed(shop(), relabel))
    assert plan.steps == [Step("update_definition")]
    assert plan.describe() == ["update labels, options and settings"]
    assert get_field(plan.definition, "items", "name")["label"] == "Product name"


# --- assign_ids -----------------------------------------------------------------------


def test_assign_ids_keeps_existing_ids_by_slug() -> None:
    hand_written = without_ids(shop())
    result = assign_ids(hand_written, INSTALLED)
    assert result == INSTALLED
    assert "id" not in hand_written["tables"][0]  # the input is not modified


def test_assign_ids_gives_new_items_fresh_ids() -> None:
    result = assign_ids(without_ids(shop()), None)
    assert all(FRESH_TABLE_ID.match(t["id"]) for t in result["tables"])
    assert all(FRESH_FIELD_ID.match(f["id"]) for t in result["tables"] for f in t["fields"])
    choices = get_field(result, "items", "colour")["options"]["choices"]
    assert all(FRESH_CHOICE_ID.match(c["id"]) for c in choices)
    ids = [t["id"] for t in result["tables"]] + [
        f["id"] for t in result["tables"] for f in t["fields"]
    ]
    assert len(set(ids)) == len(ids)


def test_assign_ids_matches_choices_by_label() -> None:
    installed = assign_ids(
        app(
            table(
                "items",
                field(
                    "colour",
                    "single_select",
                    options={
                        "choices": [
                            choice("opt_red", "Red", "红"),
                            choice("opt_blue", "Blue", "蓝"),
                        ]
                    },
                ),
            )
        ),
        None,
    )
    # Reordered, one label written with its locales the other way round, one new.
    new = app(
        table(
            "items",
            field(
                "colour",
                "single_select",
                options={
                    "choices": [
                        {"label": {"zh-CN": "蓝", "en": "Blue"}},
                        choice(None, "Red", "红"),
                        choice(None, "Green", "绿"),
                    ]
                },
            ),
        )
    )
    choices = get_field(assign_ids(new, installed), "items", "colour")["options"]["choices"]
    assert [c["id"] for c in choices[:2]] == ["opt_blue", "opt_red"]
    assert FRESH_CHOICE_ID.match(choices[2]["id"])


def test_assign_ids_never_reuses_a_taken_id() -> None:
    # "name" became "title" (keeping its id), and a new field is called "name".
    def swap(d: dict[str, Any]) -> None:
        fields = get_table(d, "items")["fields"]
        get_field(d, "items", "name").update(slug="title")
        fields.append(field("name", id=""))

    result = assign_ids(changed(shop(), swap), INSTALLED)
    assert get_field(result, "items", "title")["id"] == "fld_name"
    new_id = get_field(result, "items", "name")["id"]
    assert FRESH_FIELD_ID.match(new_id)
    plan = diff(INSTALLED, result, set(SEARCHABLE))
    assert plan.steps == [
        Step(
            "rename_field",
            "tbl_items",
            "fld_name",
            {"table_slug": "items", "old": "name", "new": "title"},
        ),
        Step("add_field", "tbl_items", new_id, items_detail("name", "text")),
    ]


def test_assign_ids_never_reuses_a_taken_choice_id() -> None:
    installed = assign_ids(
        app(
            table(
                "items",
                field("colour", "single_select", options={"choices": [choice("opt_red", "Red")]}),
            )
        ),
        None,
    )
    # "Red" is relabelled "Crimson" keeping its id; a new "Red" must not take opt_red.
    new = app(
        table(
            "items",
            field(
                "colour",
                "single_select",
                options={"choices": [choice("opt_red", "Crimson"), choice(None, "Red")]},
            ),
        )
    )
    choices = get_field(assign_ids(new, installed), "items", "colour")["options"]["choices"]
    assert choices[0]["id"] == "opt_red"
    assert FRESH_CHOICE_ID.match(choices[1]["id"])


def test_assign_ids_of_a_table_matched_by_slug_matches_its_fields() -> None:
    result = assign_ids(app(table("items", field("name", id=""), id="")), INSTALLED)
    assert result["tables"][0]["id"] == "tbl_items"
    assert result["tables"][0]["fields"][0]["id"] == "fld_name"
