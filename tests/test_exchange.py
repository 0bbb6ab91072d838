"""Export and import through the record store: rights, rows, fields, masks, formulas, audit, CLI.

The app is the access-control CRM (``access_defs.py``) with export and import
granted, and one ``sensitive`` field, ``diagnosis``:

- ``manager`` (its region's deals) may export, export sensitive fields and
  import, and sees personal and sensitive data in clear;
- ``rep`` (the deals it owns) may export and import, sees ``phone`` masked,
  ``notes`` hidden, ``amount`` read-only, and may not export ``diagnosis``;
- ``viewer`` reads every deal but may neither export nor import;
- ``dual`` is a rep (export) and a viewer (no export): it exports only its own deal.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from access_defs import (
    APP,
    DEALS,
    DEALS_PERMISSIONS,
    PEOPLE,
    SYSTEM,
    Crm,
    crm_definition,
    make_user,
    seed,
)
from conftest import Cli, clean_env, pg_bin
from factories import INSTALLER, app_definition, field, link, make_app
from faker import Faker
from recordbase import fields as field_types
from recordbase.core import Recordbase
from recordbase.errors import PermissionDenied, QueryError, ValidationError
from recordbase.exchange import (
    Export,
    Omitted,
    neutralise,
    read_csv,
    read_xlsx,
    restore,
    scrub,
)
from recordbase.fields import Field
from recordbase.models import Audit

DIAGNOSES = {1: "asthma", 2: "diabetes", 3: "migraine", 4: "gout", 5: None}
MASKED_PHONE_1 = "+86 138****5678"
AUDIT: sa.Table = Audit.__table__  # type: ignore[assignment]

PERMISSIONS: dict[str, Any] = copy.deepcopy(DEALS_PERMISSIONS)
PERMISSIONS["manager"].update({"export": True, "import": True, "export_sensitive": True})
PERMISSIONS["rep"].update({"export": True, "import": True, "fields": {"amount": "read", "notes": "hidden"}})


def exchange_definition(permissions: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CRM with export/import rights and a sensitive ``diagnosis`` the manager reads in clear."""
    definition = crm_definition(deals_permissions=permissions or PERMISSIONS)
    for role in definition["roles"]:
        if role["slug"] == "manager":
            role["clearance"] = ["public", "internal", "personal", "sensitive"]
    deals = definition["tables"][0]
    deals["fields"].append({
        "id": "fld_deals_diagnosis", "slug": "diagnosis", "label": "Diagnosis", "type": "text",
        "sensitivity": "sensitive", "purpose": "to adapt the meeting room",
    })
    return definition


def seed_exchange(rb: Recordbase, permissions: dict[str, Any] | None = None) -> Crm:
    result = rb.install(exchange_definition(permissions), SYSTEM)
    assert result.applied, result.plan
    crm = Crm(rb, {"system": SYSTEM})
    for person, (roles, attributes) in PEOPLE.items():
        crm.actors[person] = make_user(rb, f"{person}@example.com", roles, **attributes)
    crm.actors["admin"] = make_user(rb, "admin@example.com", is_admin=True)
    crm.deals().create_many([
        {
            "name": name, "region": region, "amount": amount, "phone": phone, "notes": notes,
            "owner": None if owner is None else crm.user_id(owner), "diagnosis": DIAGNOSES[i],
        }
        for i, (name, region, amount, phone, notes, owner) in enumerate(DEALS, start=1)
    ])
    return crm


@pytest.fixture
def crm(rb: Recordbase) -> Crm:
    return seed_exchange(rb)


# --- helpers ---------------------------------------------------------------------------------


def written(export: Export) -> bytes:
    out = io.BytesIO()
    export.write_to(out)
    return out.getvalue()


def table_of(export: Export) -> list[dict[str, Any]]:
    """An export's rows as header → cell (CSV and XLSX) or the record objects (JSON)."""
    data = written(export)
    if export.format == "csv":
        assert data.startswith("\ufeff".encode())
        return list(read_csv(io.BytesIO(data)))
    if export.format == "xlsx":
        return list(read_xlsx(io.BytesIO(data)))
    return [{**r["fields"], "id": r["id"]} for r in json.loads(data)]


def names(rows: list[dict[str, Any]]) -> list[str]:
    return [r.get("Name", r.get("name")) for r in rows]


def audit_entries(rb: Recordbase, action: str) -> list[dict[str, Any]]:
    with rb.read() as conn:
        rows = conn.execute(sa.select(AUDIT).where(AUDIT.c.action == action).order_by(AUDIT.c.id)).mappings().all()
    return [dict(r) for r in rows]


def live_names(crm: Crm) -> list[str]:
    return [r.fields["name"] for r in crm.deals().stream(sort=["id"])]


def csv_file(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        csv.writer(out).writerows(rows)
    return path


# --- rights --------------------------------------------------------------------------------


@pytest.mark.parametrize("person", ["viewer", "nobody", "stranger"])
def test_export_and_import_need_their_rights(crm: Crm, person: str) -> None:
    with pytest.raises(PermissionDenied) as exc:
        crm.deals(person).export("csv")
    assert exc.value.status == 403
    with pytest.raises(PermissionDenied):
        crm.deals(person).import_rows([{"name": "Fig", "region": "east"}])
    assert live_names(crm) == [d[0] for d in DEALS]


def test_without_any_export_or_import_grant_every_role_is_refused(rb: Recordbase) -> None:
    crm = seed(rb)  # the plain access-control CRM: read/create/update/delete only
    for person in ("manager", "rep", "viewer"):
        with pytest.raises(PermissionDenied, match="export"):
            crm.deals(person).export("json")
        with pytest.raises(PermissionDenied, match="import"):
            crm.deals(person).import_rows([{"name": "Fig", "region": "east"}])
    assert crm.deals("admin").export("csv").count == 5


def test_export_needs_read_as_well(rb: Recordbase) -> None:
    permissions = copy.deepcopy(PERMISSIONS)
    permissions["viewer"] = {"export": True, "rows": "all"}  # export without read
    crm = seed_exchange(rb, permissions)
    with pytest.raises(PermissionDenied, match="read"):
        crm.deals("viewer").export("csv")


def test_import_needs_create_as_well(rb: Recordbase) -> None:
    permissions = copy.deepcopy(PERMISSIONS)
    permissions["viewer"] = {"read": True, "import": True, "rows": "all"}
    crm = seed_exchange(rb, permissions)
    with pytest.raises(PermissionDenied, match="create"):
        crm.deals("viewer").import_rows([{"name": "Fig"}])


# --- export: rows, fields, masks ------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_hidden_fields_are_absent_and_masked_fields_masked_in_every_format(crm: Crm, fmt: str) -> None:
    export = crm.deals("rep").export(fmt)
    assert [f.slug for f in export.fields] == ["name", "region", "amount", "phone", "owner"]
    assert export.omitted == [Omitted("diagnosis", "sensitive: exporting it needs the export_sensitive permission")]
    rows = table_of(export)
    assert names(rows) == ["Acme", "Cedar"]  # the rep's own deals
    phone = "Phone" if fmt != "json" else "phone"
    assert rows[0][phone] == MASKED_PHONE_1
    for row in rows:
        assert not {"Notes", "notes", "Diagnosis", "diagnosis"} & set(row)
    if fmt != "xlsx":
        data = written(crm.deals("rep").export(fmt))
        for secret in ("call after lunch", "zebra crossing", "asthma", "migraine", "+8613812345678"):
            assert secret.encode() not in data


MASKED_TYPES = ["number", "currency", "percent", "rating", "boolean", "date", "datetime", "single_select",
                "multi_select", "text", "long_text", "url"]


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_masked_values_of_every_shape_are_exported_as_masks(rb: Recordbase, fmt: str) -> None:
    """A clerk without personal clearance exports personal fields of many types: masks, never values."""
    fields = [field(f"f_{name}", name, sensitivity="personal") for name in MASKED_TYPES]
    definition = app_definition({"items": fields}, roles=[{"slug": "clerk", "label": "Clerk"}])
    definition["tables"][0]["permissions"] = {"clerk": {"read": True, "export": True}}
    assert rb.install(definition, INSTALLER).applied
    user_id = rb.create_user(SYSTEM, "clerk@example.com", None)
    rb.set_roles(SYSTEM, "clerk@example.com", "shop", ["clerk"])
    clerk = rb.actor_for(user_id)
    assert clerk is not None
    values = {
        "f_number": 42, "f_currency": "-12.5", "f_percent": "7.5", "f_rating": 4, "f_boolean": False,
        "f_date": "2026-05-01", "f_datetime": "2026-05-01T09:30:00+08:00", "f_single_select": "a",
        "f_multi_select": ["a", "b"], "f_text": "Wang Fang", "f_long_text": "secret notes", "f_url": "https://private.example.com/x",
    }
    (record,) = rb.records(INSTALLER, "shop", "items").create_many([values])
    ts = rb.app("shop").tables["items"]
    expected = {slug: ts.fields[slug].type.mask(ts.fields[slug], record.fields[slug]) for slug in values}
    (row,) = table_of(rb.records(clerk, "shop", "items").export(fmt))
    if fmt == "json":
        assert {k: v for k, v in row.items() if k != "id"} == expected
    else:
        assert {ts.fields[slug].slug: row[ts.fields[slug].label] for slug in values} == expected
    for slug in ("f_text", "f_long_text", "f_url"):
        assert record.fields[slug] not in json.dumps(row, ensure_ascii=False)


@pytest.mark.parametrize("fmt", ["csv", "json", "xlsx"])
def test_each_exporter_gets_exactly_its_rows(crm: Crm, fmt: str) -> None:
    assert names(table_of(crm.deals("rep").export(fmt))) == ["Acme", "Cedar"]
    assert names(table_of(crm.deals("manager").export(fmt))) == ["Acme", "Birch", "Elm"]
    assert names(table_of(crm.deals("west_manager").export(fmt))) == ["Cedar", "Dune"]
    assert names(table_of(crm.deals("admin").export(fmt))) == [d[0] for d in DEALS]


def test_only_the_roles_granting_export_count(crm: Crm) -> None:
    # dual reads every deal as a viewer, but only its rep role may export: its own deal.
    assert [r.id for r in crm.deals("dual").stream()] == [1, 2, 3, 4, 5]
    export = crm.deals("dual").export("json")
    assert export.count == 1
    assert names(table_of(export)) == ["Dune"]


def test_sensitive_fields_only_with_export_sensitive(crm: Crm) -> None:
    manager = crm.deals("manager").export("csv")
    assert "diagnosis" in [f.slug for f in manager.fields] and manager.omitted == []
    assert [r["Diagnosis"] for r in table_of(manager)] == ["asthma", "diabetes", ""]
    for person in ("admin", "system"):
        assert [r["Diagnosis"] for r in table_of(crm.deals(person).export("csv"))] == ["asthma", "diabetes", "migraine", "gout", ""]
    with pytest.raises(PermissionDenied, match='"diagnosis"') as exc:
        crm.deals("rep").export("csv", fields=["name", "diagnosis"])
    assert [p.pointer for p in exc.value.problems] == ["/fields/1"]
    assert crm.user_id("rep") not in [e["actor_id"] for e in audit_entries(crm.rb, "export")]  # refused: nothing written


def test_chosen_fields_in_order_and_unknown_or_hidden_ones_refused(crm: Crm) -> None:
    export = crm.deals("rep").export("csv", fields="phone,name")
    assert export.headers == ["Phone", "Name"]
    assert table_of(export)[0] == {"Phone": MASKED_PHONE_1, "Name": "Acme"}
    for bad in (["notes"], ["nope"]):
        with pytest.raises(QueryError, match="unknown field"):
            crm.deals("rep").export("csv", fields=bad)


def test_filter_sort_and_search_go_through_the_access_rules(crm: Crm) -> None:
    deals = crm.deals("manager")
    export = deals.export("json", filter={"field": "amount", "op": "gte", "value": 200}, sort=["-amount"])
    assert names(table_of(export)) == ["Elm", "Birch"]
    assert names(table_of(deals.export("csv", search="acme"))) == ["Acme"]
    rep = crm.deals("rep")
    for tree in ({"field": "phone", "op": "eq", "value": "+8613812345678"}, {"field": "notes", "op": "contains", "value": "lunch"}):
        with pytest.raises(QueryError, match="in clear"):
            rep.export("csv", filter=tree)
    with pytest.raises(QueryError, match="in clear"):
        rep.export("csv", sort=["notes"])
    with pytest.raises(ValidationError, match="format"):
        rep.export("pdf")


def test_count_is_known_before_and_after_writing(crm: Crm) -> None:
    export = crm.deals("admin").export("csv", filter={"field": "region", "op": "eq", "value": "east"})
    assert export.count == 3
    crm.deals().delete(1)
    assert export.write_to(io.BytesIO()) == 2
    assert export.count == 2


def test_export_streams_in_chunks(rb: Recordbase) -> None:
    make_app(rb, {"items": [field("name", "text")]})
    items = rb.records(INSTALLER, "shop", "items")
    items.create_many([{"name": f"item {i}"} for i in range(1_234)])
    export = items.export("csv")
    chunks = list(export.chunks())
    assert len(chunks) >= 3
    assert sum(chunk.count("\r\n") for chunk in chunks) == 1_235
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows[0] == ["Name"] and rows[-1] == ["item 1233"]
    data = json.loads("".join(items.export("json").chunks()))
    assert len(data) == 1_234 and data[0]["fields"] == {"name": "item 0"}


# --- formula injection ------------------------------------------------------------------------

FORMULAS = ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)", "\tindent\nline two", "'=already quoted", "plain", "'' two"]


def test_neutralise_and_restore_are_inverse() -> None:
    for text in [*FORMULAS, "'", "''", "", "=", "a=b", "it's"]:
        assert restore(neutralise(text)) == text
    assert neutralise("=1+1") == "'=1+1"
    assert neutralise("plain") == "plain"


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_formulas_are_neutralised_and_numbers_stay_numbers(rb: Recordbase, fmt: str, tmp_path: Path) -> None:
    make_app(rb, {"items": [field("name", "text"), field("amount", "number", options={"scale": 2})]})
    items = rb.records(INSTALLER, "shop", "items")
    items.create_many([{"name": text, "amount": "-12.5"} for text in FORMULAS])
    data = written(items.export(fmt))
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        cells = [row[0] for row in rows[1:]]
        assert all(not c.startswith(("=", "+", "-", "@", "\t")) for c in cells)
        assert cells[0] == "'=HYPERLINK(\"http://x\")"
        assert [row[1] for row in rows[1:]] == ["-12.50"] * len(FORMULAS)
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data)).worksheets[0]
        values = list(sheet.iter_rows(min_row=2))
        assert all(row[0].data_type == "s" for row in values)  # never a formula
        assert values[0][0].value == "'=HYPERLINK(\"http://x\")"
        assert [row[1].value for row in values] == [-12.5] * len(FORMULAS)
    path = tmp_path / f"items.{fmt}"
    path.write_bytes(data)
    report = items.import_rows(path)
    assert report.ok and report.created == len(FORMULAS)
    back = [r.fields for r in items.stream(sort=["id"])][len(FORMULAS):]
    # The tab comes back stripped: a text cell's surrounding blanks are not part of its value (from_text).
    assert [r["name"] for r in back] == [text.strip() for text in FORMULAS]
    assert {r["amount"] for r in back} == {Decimal("-12.50")}


# --- round trip of every type -----------------------------------------------------------------

READ_ONLY = {"autonumber", "created_at", "created_by", "updated_at", "updated_by"}
OPTIONS: dict[str, dict[str, Any]] = {
    "currency": {"currency": "CNY"},
    "single_select": {"choices": [
        {"id": "lead", "label": {"en": "Lead", "zh-CN": "线索"}}, {"id": "won", "label": "Won, finally"}, {"id": "lost", "label": "Lost"},
    ]},
    "multi_select": {"choices": [
        {"id": "red", "label": {"en": "Red", "zh-CN": "红"}}, {"id": "green", "label": "Green"}, {"id": "blue", "label": "Blue, dark"},
    ]},
    "autonumber": {"prefix": "T-", "digits": 4},
}


# Computed fields need sources to compute from; their export and import are in test_computed.py.
COMPUTED = {"formula", "lookup", "rollup"}


def every_type_tables() -> dict[str, list[dict[str, Any]]]:
    fields: list[dict[str, Any]] = []
    for name in sorted(field_types.all_types()):
        if name in COMPUTED:
            continue
        if name == "link":
            fields.append(link("f_link", "targets"))
            fields.append(link("f_links", "targets", many=True))
        elif name == "user":
            fields.append(field("f_user", "user"))
            fields.append(field("f_users", "user", options={"many": True}))
        else:
            options = {"options": OPTIONS[name]} if name in OPTIONS else {}
            fields.append(field(f"f_{name}", name, **options))
    return {"targets": [field("name", "text")], "things": fields}


def sample_rows(rb: Recordbase, things: Any, count: int) -> list[dict[str, Any]]:
    targets = rb.records(INSTALLER, "shop", "targets").create_many([{"name": "t1"}, {"name": "t2"}])
    user = rb.create_user(SYSTEM, "someone@example.com", None)
    other = rb.create_user(SYSTEM, "other@example.com", None)
    file = rb.files.put("合同 content".encode(), "合同.pdf", "application/pdf")
    rows = []
    for i in range(count):
        fake = Faker(["zh_CN", "en_US"][i % 2])
        fake.seed_instance(i)
        values: dict[str, Any] = {}
        for slug, f in things.ts.fields.items():
            kind = f.type.name
            if kind in READ_ONLY:
                continue
            if kind in COMPUTED:
                continue
            if slug == "f_link":
                values[slug] = targets[i % 2].id
            elif slug == "f_links":
                values[slug] = [targets[1].id, targets[0].id]
            elif slug == "f_user":
                values[slug] = user
            elif slug == "f_users":
                values[slug] = [other, user]
            elif kind == "attachment":
                values[slug] = [file]
            else:
                values[slug] = f.type.sample(f, fake)
        rows.append(values)
    rows.append({"f_text": "only text; everything else empty"})
    return rows


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_every_type_survives_export_then_import(rb: Recordbase, fmt: str, tmp_path: Path) -> None:
    make_app(rb, every_type_tables())
    things = rb.records(INSTALLER, "shop", "things")
    originals = things.create_many(sample_rows(rb, things, 4))
    export = things.export(fmt)
    assert {f.type.name for f in export.fields} >= set(field_types.all_types()) - COMPUTED
    path = tmp_path / f"things.{fmt}"
    with path.open("wb") as out:
        export.write_to(out)
    report = things.import_rows(path)
    assert report.ok, report.problems
    assert report.created == len(originals)
    read_only = [h for f, h in zip(export.fields, export.headers, strict=True) if f.type.name in READ_ONLY]
    assert sorted(o.field for o in report.ignored) == sorted(read_only) and len(read_only) == len(READ_ONLY)
    copies = list(things.stream(sort=["id"]))[len(originals):]
    for original, copy_ in zip(originals, copies, strict=True):
        for slug, f in things.ts.fields.items():
            if f.type.name in READ_ONLY:
                continue
            assert copy_.fields[slug] == original.fields[slug], (fmt, slug)


def test_xlsx_keeps_tiny_decimals_long_numbers_and_old_dates(rb: Recordbase, tmp_path: Path) -> None:
    make_app(rb, {"items": [
        field("tiny", "number", options={"scale": 10}), field("big", "number"), field("born", "date"), field("yes", "boolean"),
    ]})
    items = rb.records(INSTALLER, "shop", "items")
    original = items.create({"tiny": "0.0000000001", "big": "123456789012345678", "born": "1850-02-03", "yes": True})
    path = tmp_path / "items.xlsx"
    with path.open("wb") as out:
        items.export("xlsx").write_to(out)
    assert list(read_xlsx(path)) == [{"Tiny": "0.0000000001", "Big": "123456789012345678", "Born": "1850-02-03", "Yes": "true"}]
    assert items.import_rows(path).ok
    (copy_,) = list(items.stream(sort=["id"]))[1:]
    assert copy_.fields == original.fields


# --- import -------------------------------------------------------------------------------


def test_columns_match_labels_or_slugs_in_any_case_and_language(rb: Recordbase) -> None:
    make_app(rb, {"items": [field("name", "text", label={"en": "Name", "zh-CN": "名称"}), field("qty", "number", label="Quantity")]})
    items = rb.records(INSTALLER, "shop", "items")
    report = items.import_rows([{"名称": "螺丝", "QUANTITY": "3"}, {"名称": "nut", "QUANTITY": ""}])
    assert report.ok and report.created == 2 and report.fields == ["name", "qty"]
    report = items.import_rows([{"NAME": "bolt", "qty": "4"}])
    assert report.ok
    assert [(r.fields["name"], r.fields["qty"]) for r in items.stream(sort=["id"])] == [("螺丝", 3), ("nut", None), ("bolt", 4)]


def test_an_unknown_column_is_named_and_nothing_is_written(crm: Crm, tmp_path: Path) -> None:
    path = csv_file(tmp_path / "deals.csv", [["Name", "Region", "Colour"], ["Fig", "east", "red"]])
    for mode in ("atomic", "skip-invalid"):
        report = crm.deals("manager").import_rows(path, mode=mode)
        assert not report.committed and report.created == 0
        assert [str(p) for p in report.problems] == ['row 1, column Colour: unknown column: no field of "deals" has this label or slug']
    report = crm.deals("manager").import_rows(path, mapping={"Colour": None})
    assert report.ok and report.created == 1
    report = crm.deals("manager").import_rows(path, mapping={"Colour": "notes"})
    assert report.ok
    assert crm.deals().query(filter={"field": "notes", "op": "eq", "value": "red"}).total == 1


def test_a_field_the_actor_cannot_see_is_an_unknown_column(crm: Crm) -> None:
    report = crm.deals("rep").import_rows([{"name": "Fig", "region": "east", "diagnosis": "flu"}])
    # The rep writes diagnosis by default (it is not listed in its fields): allowed.
    assert report.ok
    permissions = copy.deepcopy(PERMISSIONS)
    permissions["rep"]["fields"]["diagnosis"] = "hidden"
    crm.rb.install(exchange_definition(permissions), SYSTEM)
    report = crm.deals("rep").import_rows([{"name": "Fig", "region": "east", "diagnosis": "flu"}])
    assert [str(p) for p in report.problems] == ['row 1, column diagnosis: unknown column: no field of "deals" has this label or slug']


def test_atomic_import_with_one_bad_row_writes_nothing(crm: Crm, tmp_path: Path) -> None:
    path = csv_file(tmp_path / "deals.csv", [
        ["Name", "Region", "Amount", "Phone"],
        ["Fig", "east", "10", "13812345678"],
        ["Gum", "east", "ten", ""],
        [],
        ["Hazel", "east", "30", ""],
    ])
    report = crm.deals("manager").import_rows(path)
    assert not report.committed and report.created == 0 and report.skipped == 1 and report.rows == 3
    assert [str(p) for p in report.problems] == ["row 3, column Amount: is not a number (expected digits like 1234.50)"]
    assert live_names(crm) == [d[0] for d in DEALS]


def test_atomic_import_of_several_chunks_rolls_back_every_chunk(rb: Recordbase) -> None:
    make_app(rb, {"items": [field("name", "text", required=True), field("qty", "number")]})
    items = rb.records(INSTALLER, "shop", "items")

    def rows(bad_at: int | None) -> Iterator[dict[str, str]]:
        for i in range(2_500):
            yield {"name": f"item {i}", "qty": "x" if i == bad_at else str(i)}

    report = items.import_rows(rows(2_400))
    assert report.created == 0 and [str(p) for p in report.problems] == ["row 2402, column qty: is not a number (expected digits like 1234.50)"]
    assert items.count() == 0
    report = items.import_rows(rows(None))
    assert report.ok and report.created == 2_500 and items.count() == 2_500


def test_skip_invalid_imports_the_good_rows_and_reports_the_others(crm: Crm, tmp_path: Path) -> None:
    path = csv_file(tmp_path / "deals.csv", [
        ["name", "region", "phone", "amount"],
        ["Fig", "east", "13812345678", "1"],
        ["Gum", "north", "", "2"],
        ["Hazel", "east", "call me", "x"],
        ["Ivy", "west", "", "4"],  # outside the manager's rows
        ["Juniper", "east", "", "5"],
    ])
    report = crm.deals("manager").import_rows(path, mode="skip-invalid")
    assert report.committed and report.created == 2 and report.skipped == 3
    assert [str(p) for p in report.problems] == [
        "row 3, column region: is not one of the choices: east, west",
        "row 4, column phone: is not a phone number",
        "row 4, column amount: is not a number (expected digits like 1234.50)",
        'row 5: this create would put a record outside the rows you may create in "deals"',
    ]
    assert live_names(crm)[5:] == ["Fig", "Juniper"]


def test_problems_found_by_the_store_point_at_row_and_column(rb: Recordbase) -> None:
    make_app(rb, {"items": [field("code", "text", unique=True, label="Code"), field("name", "text", required=True, label="Title")]})
    items = rb.records(INSTALLER, "shop", "items")
    items.create({"code": "A", "name": "first"})
    report = items.import_rows(
        [{"Code": "A", "Title": "dup of existing"}, {"Code": "B", "Title": ""}, {"Code": "C", "Title": "ok"}, {"Code": "C", "Title": "dup in file"}],
        mode="skip-invalid",
    )
    assert sorted(str(p) for p in report.problems) == [
        'row 2, column Code: "code" must be unique; another record has this value',
        'row 3, column Title: "name" is required',
        'row 5, column Code: "code" must be unique; the same value is given twice',
    ]
    assert report.created == 1 and [r.fields["code"] for r in items.stream(sort=["id"])] == ["A", "C"]


def test_a_column_the_actor_may_not_write_is_refused(crm: Crm) -> None:
    with pytest.raises(PermissionDenied, match='"amount"'):
        crm.deals("rep").import_rows([{"Name": "Fig", "Region": "east", "Amount": "5"}])
    with pytest.raises(PermissionDenied, match='"owner"'):
        crm.deals("rep").import_rows([{"Name": "Fig", "Region": "east", "Owner": str(crm.user_id("other_rep"))}])
    assert live_names(crm) == [d[0] for d in DEALS]


def test_a_rep_owns_what_it_imports(crm: Crm) -> None:
    report = crm.deals("rep").import_rows([{"Name": "Fig", "Region": "east"}, {"Name": "Gum", "Region": "west"}])
    assert report.ok and report.created == 2
    assert names(table_of(crm.deals("rep").export("csv"))) == ["Acme", "Cedar", "Fig", "Gum"]


def test_personal_values_never_appear_in_problem_messages(rb: Recordbase) -> None:
    make_app(rb, {"people": [
        field("name", "text"), field("email", "email"), field("phone", "phone"),
        field("secret", "number", sensitivity="sensitive", purpose="a test"),
    ]})
    people = rb.records(INSTALLER, "shop", "people")
    values = {"email": "li.wei-at-example", "phone": "12ab34cd", "secret": "4111-1111"}
    report = people.import_rows([{"name": "Li", **values}], mode="skip-invalid")
    assert [p.column for p in report.problems] == ["email", "phone", "secret"]
    for p in report.problems:
        assert all(v not in p.message for v in values.values())


def test_scrub_withholds_a_personal_value_a_message_repeats() -> None:
    def make(sensitivity: str) -> Field:
        definition = {"slug": "x", "type": "text", "sensitivity": sensitivity}
        return Field(pk=1, uid="f", slug="x", type=field_types.get("text"), definition=definition, table_pk=1)

    message = "'bob@secret' is not valid"
    assert scrub(make("personal"), " bob@secret ", message) == "is not a valid text value (not repeated here: the field holds personal data)"
    assert scrub(make("sensitive"), "bob@secret", message) == "is not a valid text value (not repeated here: the field holds sensitive data)"
    assert scrub(make("internal"), "bob@secret", message) == message
    assert scrub(make("personal"), "not a phone", "is not a phone number") == "is not a valid text value (not repeated here: the field holds personal data)"
    assert scrub(make("personal"), "xy", "is not a phone number") == "is not a phone number"


def test_read_only_columns_of_an_export_are_ignored_on_import(rb: Recordbase) -> None:
    make_app(rb, {"items": [field("name", "text"), field("no", "autonumber"), field("made", "created_at")]})
    items = rb.records(INSTALLER, "shop", "items")
    items.create({"name": "a"})
    rows = list(read_csv(io.BytesIO(written(items.export("csv")))))
    assert rows == [{"Name": "a", "No": "000001", "Made": rows[0]["Made"]}]
    report = items.import_rows(rows)
    assert report.ok and [o.field for o in report.ignored] == ["No", "Made"]
    assert [r.fields["no"] for r in items.stream(sort=["id"])] == ["000001", "000002"]


def test_files_that_cannot_be_read_are_one_clear_error(rb: Recordbase, tmp_path: Path) -> None:
    make_app(rb)
    items = rb.records(INSTALLER, "shop", "items")
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("name\n螺丝\n".encode("gbk"))
    with pytest.raises(ValidationError, match="UTF-8"):
        items.import_rows(gbk)
    fake = tmp_path / "fake.xlsx"
    fake.write_bytes(b"not a zip")
    with pytest.raises(ValidationError, match="XLSX"):
        items.import_rows(fake)
    with pytest.raises(ValidationError, match="mode"):
        items.import_rows([{"name": "a"}], mode="some")
    assert items.count() == 0


def test_a_blank_line_and_the_bom_are_tolerated(rb: Recordbase) -> None:
    make_app(rb)
    items = rb.records(INSTALLER, "shop", "items")
    data = "\ufeffName\r\nscrew\r\n\r\n,\r\nbolt\r\n".encode()
    assert list(read_csv(io.BytesIO(data))) == [{"Name": "screw"}, {}, {"Name": ""}, {"Name": "bolt"}]
    report = items.import_rows(io.BytesIO(data), fmt="csv")
    assert report.ok and report.created == 2 and report.rows == 2


# --- audit ------------------------------------------------------------------------------------


def test_export_and_import_are_audited_without_values(crm: Crm) -> None:
    rb = crm.rb
    export = crm.deals("manager").export("csv", filter={"field": "region", "op": "eq", "value": "east"}, search="acme")
    assert audit_entries(rb, "export") == []  # written when the export is written
    written(export)
    (entry,) = audit_entries(rb, "export")
    fields = ["fld_deals_name", "fld_deals_region", "fld_deals_amount", "fld_deals_phone", "fld_deals_notes",
              "fld_deals_owner", "fld_deals_diagnosis"]
    assert entry["actor_id"] == crm.user_id("manager") and entry["record_id"] is None
    assert entry["changes"] == {
        "format": "csv", "fields": fields, "records": 1, "filter_fields": ["region"], "searched": True, "complete": True,
    }
    report = crm.deals("manager").import_rows([{"Name": "Fig", "Region": "east", "Phone": "13812345678"}, {"Name": "Gum", "Region": "?"}], mode="skip-invalid")
    assert report.created == 1
    (entry,) = audit_entries(rb, "import")
    assert entry["changes"] == {
        "format": "rows", "mode": "skip-invalid", "fields": ["fld_deals_name", "fld_deals_region", "fld_deals_phone"],
        "rows": 2, "created": 1, "skipped": 1, "problems": 1, "committed": True,
    }
    crm.deals("manager").import_rows([{"Name": "Gum", "Region": "?"}])  # atomic, fails: still audited
    entries = audit_entries(rb, "import")
    assert entries[-1]["changes"]["committed"] is False and entries[-1]["changes"]["created"] == 0
    text = json.dumps([e["changes"] for e in audit_entries(rb, "export") + entries], ensure_ascii=False)
    for value in ("east", "acme", "Fig", "Gum", "13812345678", "?"):
        assert value not in text


# --- command line ---------------------------------------------------------------------------


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_export_and_import_from_the_command_line(cli: Cli, engine: Recordbase, tmp_path: Path) -> None:
    crm = seed_exchange(engine)
    done = cli("export", APP, "deals", "--as", "REP@example.com")
    assert done.code == 0, done.err
    rows = list(csv.reader(done.out))
    assert rows == [["Name", "Region", "Amount", "Phone", "Owner"],
                    ["Acme", "East", "100.00", "'" + MASKED_PHONE_1, str(crm.user_id("rep"))],
                    ["Cedar", "West", "300.00", "'+86 137****2222", str(crm.user_id("rep"))]]
    assert done.err == ["left out diagnosis: sensitive: exporting it needs the export_sensitive permission", "exported 2 record(s)"]

    done = cli("export", APP, "deals", "--format", "json", "--fields", "name,amount",
               "--filter", json.dumps({"field": "amount", "op": "gt", "value": 250}))
    assert done.code == 0, done.err
    assert [(r["fields"]["name"], r["fields"]["amount"]) for r in json.loads("\n".join(done.out))] == [
        ("Cedar", "300.00"), ("Dune", "400.00"), ("Elm", "500.00")]

    target = tmp_path / "deals.xlsx"
    done = cli("export", APP, "deals", "--format", "xlsx", "--output", str(target), "--as", "manager@example.com")
    assert done.code == 0 and done.out == [f"exported 3 record(s) to {target}"]
    assert names(list(read_xlsx(target))) == ["Acme", "Birch", "Elm"]

    for args, message in (
        (("--as", "viewer@example.com"), 'no access to table "deals": you may not export its records'),
        (("--as", "nobody-at-all@example.com"), "no user with email nobody-at-all@example.com"),
        (("--format", "xlsx"), "--format xlsx needs --output FILE"),
        (("--filter", "{oops"), "--filter is not JSON"),
        (("--as", "rep@example.com", "--filter", json.dumps({"field": "phone", "op": "eq", "value": "1"})), 'cannot filter by "phone"'),
    ):
        done = cli("export", APP, "deals", *args)
        assert done.code == 1 and any(message in line for line in done.err), (args, done.err)

    source = csv_file(tmp_path / "new.csv", [["Deal", "Region", "Amount"], ["Fig", "east", "12.5"], ["Gum", "east", "many"], ["Hazel", "east", "7"]])
    done = cli("import", APP, "deals", str(source), "--map", "Deal=name", "--as", "manager@example.com")
    assert done.code == 1
    assert done.err == ["row 3, column Amount: is not a number (expected digits like 1234.50)",
                        "error: nothing imported: 1 problem(s) (atomic: every row must be valid)"]
    assert len(live_names(crm)) == 5
    done = cli("import", APP, "deals", str(source), "--map", "Deal=name", "--mode", "skip-invalid", "--as", "manager@example.com")
    assert done.code == 0, done.err
    assert done.out == ["imported 2 record(s), skipped 1 invalid row(s)"]
    assert live_names(crm)[5:] == ["Fig", "Hazel"]
    done = cli("import", APP, "deals", str(source), "--as", "manager@example.com")
    assert done.code == 1 and done.err[0] == 'row 1, column Deal: unknown column: no field of "deals" has this label or slug'
    done = cli("import", APP, "deals", str(target), "--as", "rep@example.com")  # has Amount: the rep may not write it
    assert done.code == 1 and 'you may not write "amount" in "deals"' in done.err[-1]
    done = cli("import", APP, "deals", str(target))  # the system actor: an XLSX round trip
    assert done.code == 0, done.err
    assert live_names(crm)[7:] == ["Acme", "Birch", "Elm"]
    assert [e["changes"]["format"] for e in audit_entries(engine, "import")] == ["csv", "csv", "csv", "xlsx"]
    assert all(e["changes"]["records"] in (2, 3) for e in audit_entries(engine, "export"))


# --- progress and bounded memory ----------------------------------------------------------------


def test_progress_is_reported_per_chunk_of_rows_read(rb: Recordbase) -> None:
    make_app(rb, {"items": [field("name", "text", required=True), field("qty", "number")]})
    items = rb.records(INSTALLER, "shop", "items")
    seen: list[int] = []
    rows = [{"name": f"item {i}", "qty": "x" if i == 1_500 else str(i)} for i in range(2_500)]
    rows.insert(10, {"name": "", "qty": ""})  # a blank row is not counted
    report = items.import_rows(rows, mode="skip-invalid", on_progress=seen.append)
    assert seen == [1_000, 2_000, 2_500] and report.rows == 2_500 and report.created == 2_499


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_large_import_holds_one_chunk_not_the_file(rb: Recordbase, tmp_path: Path) -> None:
    """20,000 rows of ~600 bytes: holding them would take well over 10 MB; a chunk takes ~1 MB."""
    psutil = pytest.importorskip("psutil")
    make_app(rb, {"items": [field("name", "text", required=True), field("qty", "number"),
                            field("email", "email"), field("notes", "long_text")]})
    items = rb.records(INSTALLER, "shop", "items")
    path = tmp_path / "items.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Name", "Qty", "Email", "Notes"])
        for i in range(20_000):
            writer.writerow([f"item number {i}", str(i), f"buyer{i}@example.com", f"note {i:05d} " * 50])
    assert path.stat().st_size > 11 * 1024 * 1024
    # A first import of a few chunks brings the allocator and caches to their working size.
    warm = items.import_rows([{"Name": "warm", "Qty": "1", "Notes": "x" * 550}] * 3_000)
    assert warm.created == 3_000
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    report = items.import_rows(path, on_progress=lambda rows: peak.append(process.memory_info().rss))
    assert report.ok and report.created == 20_000 and len(peak) == 1 + 21
    growth_mb = (max(peak) - before) / (1024 * 1024)
    assert growth_mb < 8, f"RSS grew by {growth_mb:.1f} MB while importing 20,000 rows"


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_command_line_shows_a_progress_bar_only_on_a_terminal(
    cli: Cli, engine: Recordbase, instance: Path, database_url: str, tmp_path: Path
) -> None:
    import pty

    make_app(engine, {"items": [field("name", "text", required=True)]})
    source = csv_file(tmp_path / "items.csv", [["Name"], *[[f"item {i}"] for i in range(2_500)]])
    done = cli("import", "shop", "items", str(source))  # stderr is a pipe: no bar, nothing but the result
    assert done.code == 0 and done.out == ["imported 2500 record(s)"] and done.err == []

    leader, follower = pty.openpty()
    env = clean_env(instance_path=str(instance), database_url=database_url, pg_bin=pg_bin())
    env.update(TERM="xterm", COLUMNS="120")
    pieces: list[bytes] = []

    def read_terminal() -> None:  # read as it is written, so that a full terminal never blocks the bar
        while True:
            try:
                piece = os.read(leader, 65536)
            except OSError:  # the other end is closed: everything has been read
                return
            if not piece:
                return
            pieces.append(piece)

    reader = threading.Thread(target=read_terminal, daemon=True)
    reader.start()
    try:
        with subprocess.Popen(
            [sys.executable, "-m", "recordbase.cli", "import", "shop", "items", str(source)],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=follower, text=True,
        ) as process:
            os.close(follower)
            out, _ = process.communicate(timeout=120)
        reader.join(timeout=10)
    finally:
        os.close(leader)
    assert process.returncode == 0 and out == "imported 2500 record(s)\n"
    shown = b"".join(pieces)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode("utf-8", "replace"))
    assert "importing" in text and "2,500 rows read" in text and "rows/s" in text and "100%" in text
