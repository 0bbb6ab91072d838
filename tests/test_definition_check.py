"""App definitions: the meta-schema, the checker's messages and pointers, the gallery CRM."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from recordbase.definition import (
    DEFAULT_SENSITIVITY,
    FIELD_TYPES,
    RESERVED_SLUGS,
    SLUG_RE,
    check_definition,
    is_reserved_slug,
    load_definition_file,
    load_schema,
    new_id,
    pointer,
    sort_problems,
)
from recordbase.errors import Problem

ROOT = Path(__file__).resolve().parents[1]
CRM = ROOT / "schemas" / "gallery" / "crm.json"
BROKEN = sorted((ROOT / "tests" / "definitions" / "broken").glob("*.json"))


def shop(*fields: dict, **extra) -> dict:
    """A minimal valid app with one table ``customers``; ``fields`` are appended after ``name``."""
    return {
        "slug": "shop",
        "label": "Shop",
        "tables": [
            {
                "slug": "customers",
                "label": "Customers",
                "fields": [{"slug": "name", "label": "Name", "type": "text"}, *fields],
            }
        ],
        **extra,
    }


def found(data: dict) -> list[tuple[str, str, str]]:
    return [(p.pointer, p.message, p.severity) for p in check_definition(data)]


# --- the meta-schema ---------------------------------------------------------------------


def test_meta_schema_is_valid_draft_2020_12():
    Draft202012Validator.check_schema(load_schema())


def test_field_types_in_code_match_the_schema():
    assert tuple(load_schema()["$defs"]["field"]["properties"]["type"]["enum"]) == FIELD_TYPES


def test_every_field_type_has_its_own_options_schema():
    assert sorted(load_schema()["$defs"]["options"]) == sorted(FIELD_TYPES)


# --- the gallery CRM ---------------------------------------------------------------------


def test_crm_has_no_problems_at_all():
    data, problems = load_definition_file(CRM)
    assert problems == []
    assert check_definition(data) == []


def test_crm_gives_every_table_field_and_choice_a_stable_id_and_two_languages():
    data, _ = load_definition_file(CRM)
    assert data["slug"] == "crm"
    assert [t["slug"] for t in data["tables"]] == ["companies", "contacts", "deals", "leads", "activities"]
    labelled = [data, *data["tables"], *data["roles"], *data["views"]]
    for table in data["tables"]:
        assert table["id"]
        for f in table["fields"]:
            assert f["id"]
            labelled.append(f)
            for choice in f.get("options", {}).get("choices", []):
                assert choice["id"]
                labelled.append(choice)
    assert all(set(item["label"]) == {"en", "zh-CN"} for item in labelled)


def test_crm_deal_stages_and_views():
    data, _ = load_definition_file(CRM)
    deals = {f["slug"]: f for f in data["tables"][2]["fields"]}
    stages = [c["id"] for c in deals["stage"]["options"]["choices"]]
    assert stages == ["lead", "qualified", "proposal", "won", "lost"]
    assert deals["amount"]["options"] == {"currency": "CNY", "precision": 18, "scale": 2, "min": 0}
    assert deals["number"]["options"]["prefix"] == "DEAL-"
    assert [(v["slug"], v["type"]) for v in data["views"]] == [
        ("open_deals", "grid"),
        ("pipeline", "kanban"),
        ("activity_calendar", "calendar"),
        ("new_contact", "form"),
        ("leads_board", "kanban"),
        ("open_follow_ups", "grid"),
        ("web_enquiry", "form"),
        ("sales_dashboard", "dashboard"),
    ]


# --- the corpus of broken definitions ----------------------------------------------------


def test_the_corpus_is_big_enough():
    assert len(BROKEN) >= 30


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_definition(path: Path):
    case = json.loads(path.read_text(encoding="utf-8"))
    problems = check_definition(case["definition"])
    assert [p.pointer for p in problems] == [e[0] for e in case["expect"]]
    for problem, expected in zip(problems, case["expect"], strict=True):
        assert expected[1] in problem.message
        assert problem.severity == (expected[2] if len(expected) > 2 else "error")


# --- loading files -----------------------------------------------------------------------


def test_load_reports_a_json_syntax_error_with_line_and_column(tmp_path):
    path = tmp_path / "app.json"
    path.write_text(
        '{\n  "slug": "shop",\n  "label": "Shop"\n  "tables": []\n}\n', encoding="utf-8"
    )
    assert load_definition_file(path) == (
        None,
        [Problem("", "invalid JSON at line 4, column 3: Expecting ',' delimiter")],
    )


def test_load_reports_a_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    assert load_definition_file(path) == (None, [Problem("", f"file not found: {path}")])


def test_load_refuses_nan(tmp_path):
    path = tmp_path / "app.json"
    path.write_text('{"version": NaN}', encoding="utf-8")
    assert load_definition_file(path) == (
        None,
        [Problem("", "invalid JSON: NaN is not allowed in JSON; use a number or null")],
    )


def test_load_reports_text_that_is_not_utf8(tmp_path):
    path = tmp_path / "app.json"
    path.write_bytes(b'{"label": "caf\xe9"}')
    assert load_definition_file(path) == (
        None,
        [Problem("", f"{path} is not UTF-8 text (byte 14)")],
    )


def test_load_returns_the_data_unchecked(tmp_path):
    path = tmp_path / "app.json"
    path.write_text('{"slug": "Shop"}', encoding="utf-8")
    assert load_definition_file(path) == ({"slug": "Shop"}, [])


# --- helpers -----------------------------------------------------------------------------


def test_pointer_escapes_per_rfc_6901():
    assert pointer("tables", 0, "permissions", "a/b~c") == "/tables/0/permissions/a~1b~0c"
    assert pointer() == ""


def test_problems_sort_by_pointer_with_numeric_indexes():
    problems = [Problem("/tables/10/slug", "x"), Problem("/tables/2/slug", "y"), Problem("", "z")]
    assert [p.pointer for p in sort_problems(problems)] == ["", "/tables/2/slug", "/tables/10/slug"]


def test_problem_shape():
    problem = check_definition(shop(slug="Shop"))[0]
    assert problem.as_dict() == {
        "pointer": "/slug",
        "message": '"Shop" is not a slug (a lowercase letter, then lowercase letters, digits '
        "or underscores; at most 63 characters)",
        "severity": "error",
    }


@pytest.mark.parametrize("prefix", ["app", "tbl", "fld", "opt"])
def test_new_id(prefix):
    ids = {new_id(prefix) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(prefix + "[a-z0-9]{12}", i) for i in ids)


def test_new_id_refuses_unknown_prefixes():
    with pytest.raises(ValueError, match="unknown id prefix 'row'"):
        new_id("row")


def test_default_sensitivity():
    assert [DEFAULT_SENSITIVITY(t) for t in ("email", "phone", "address")] == ["personal"] * 3
    assert {DEFAULT_SENSITIVITY(t) for t in FIELD_TYPES} - {"personal"} == {"internal"}


def test_slugs_and_reserved_slugs():
    assert SLUG_RE.match("close_date") and not SLUG_RE.match("2fa") and not SLUG_RE.match("a" * 64)
    assert RESERVED_SLUGS >= {"id", "version", "created_at", "deleted_at"}
    assert (
        is_reserved_slug("_row")
        and is_reserved_slug("updated_by")
        and not is_reserved_slug("owner")
    )


# --- cross-checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        {"type": "date", "default": "today"},
        {"type": "date", "default": "2024-02-29"},
        {"type": "datetime", "default": "now"},
        {"type": "datetime", "default": "2024-12-31T09:30:00Z"},
        {"type": "datetime", "default": "2024-12-31 09:30:00+08:00"},
        {"type": "boolean", "default": False},
        {"type": "rating", "default": 3, "options": {"max": 3}},
        {"type": "number", "default": -12, "options": {"min": -20}},
        {"type": "currency", "default": 9.99, "options": {"currency": "EUR"}},
        {"type": "percent", "default": 12.5},
        {"type": "text", "default": "abc", "options": {"max_length": 3}},
        {
            "type": "single_select",
            "default": "金",
            "options": {"choices": [{"id": "gold", "label": {"en": "Gold", "zh-CN": "金"}}]},
        },
        {
            "type": "multi_select",
            "default": ["gold", "Silver"],
            "options": {"choices": [{"id": "gold", "label": "Gold"}, {"label": "Silver"}]},
        },
    ],
)
def test_valid_defaults_pass(field):
    assert found(shop({"slug": "extra", "label": "Extra", **field})) == []


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"type": "date", "default": "2023-02-29"}, 'got "2023-02-29"'),
        ({"type": "datetime", "default": "tomorrow"}, 'must be "now" or a date and time'),
        (
            {"type": "boolean", "default": 0},
            "default of a boolean field must be true or false, got 0",
        ),
        (
            {"type": "rating", "default": 6},
            "default of a rating field must be an integer from 0 to 5, got 6",
        ),
        (
            {"type": "number", "default": True},
            "default of a number field must be a number, got true",
        ),
        ({"type": "number", "default": -1, "options": {"min": 0}}, "default -1 is below min (0)"),
        (
            {"type": "number", "default": 1000, "options": {"precision": 4, "scale": 2}},
            "default 1000 has more than 2 digits before the decimal point",
        ),
        (
            {"type": "text", "default": "abcd", "options": {"max_length": 3}},
            "default is 4 characters long; max_length is 3",
        ),
        ({"type": "url", "default": 5}, "default of a url field must be a string, got 5"),
        (
            {
                "type": "multi_select",
                "default": "gold",
                "options": {"choices": [{"id": "gold", "label": "Gold"}]},
            },
            'default of a multi_select field must be an array of choice ids or labels, got "gold"',
        ),
        ({"type": "created_at", "default": "now"}, "a created_at field cannot have a default"),
    ],
)
def test_invalid_defaults_are_reported_at_the_default(field, message):
    problems = found(shop({"slug": "extra", "label": "Extra", **field}))
    assert len(problems) == 1
    assert problems[0][0] == "/tables/0/fields/1/default"
    assert message in problems[0][1]


def test_explicit_public_email_needs_no_purpose():
    assert (
        found(shop({"slug": "email", "label": "Email", "type": "email", "sensitivity": "public"}))
        == []
    )


def test_explicit_personal_text_needs_a_purpose():
    assert found(
        shop({"slug": "nick", "label": "Nickname", "type": "text", "sensitivity": "personal"})
    ) == [
        (
            "/tables/0/fields/1",
            'personal field "nick" needs a "purpose": say why this data is collected, '
            "in a sentence people can read",
            "error",
        )
    ]


def test_sensitive_field_with_consent_has_no_warning():
    data = shop(
        {
            "slug": "diet",
            "label": "Diet",
            "type": "text",
            "sensitivity": "sensitive",
            "purpose": "Catering.",
        }
    )
    data["tables"][0]["consent"] = {
        "purposes": ["catering"],
        "text": "We note your diet.",
        "version": 1,
    }
    assert found(data) == []


def test_link_may_target_its_own_table():
    link = {"slug": "parent", "label": "Parent", "type": "link", "options": {"table": "customers"}}
    assert found(shop(link)) == []


def test_permissions_need_declared_roles_even_without_a_roles_list():
    data = shop()
    data["tables"][0]["permissions"] = {"staff": {"read": True}}
    assert found(data) == [
        (
            "/tables/0/permissions/staff",
            'role "staff" is not declared in this app\'s "roles"; declared: (none)',
            "error",
        )
    ]


def test_permission_fields_may_name_a_field_by_id():
    data = shop()
    data["tables"][0]["fields"][0]["id"] = "fld_name"
    data["roles"] = [{"slug": "staff", "label": "Staff"}]
    data["tables"][0]["permissions"] = {"staff": {"read": True, "fields": {"fld_name": "read"}}}
    assert found(data) == []


def test_own_rows_accept_a_created_by_owner():
    data = shop({"slug": "creator", "label": "Creator", "type": "created_by"})
    data["roles"] = [{"slug": "staff", "label": "Staff"}]
    data["tables"][0]["permissions"] = {
        "staff": {"read": True, "rows": "own", "owner_field": "creator"}
    }
    assert found(data) == []


def test_filters_accept_system_columns_and_check_operator_values():
    data = shop(views=[])
    data["views"] = [
        {
            "slug": "recent",
            "label": "Recent",
            "table": "customers",
            "type": "grid",
            "sort": ["-created_at"],
            "filter": {
                "and": [
                    {"field": "created_at", "op": "last_n_days", "value": 0},
                    {"field": "name", "op": "is_empty", "value": True},
                    {"field": "name", "op": "eq"},
                    {"field": "id", "op": "in", "value": {"$actor": "customer_ids"}},
                ]
            },
        }
    ]
    assert found(data) == [
        (
            "/views/0/filter/and/0/value",
            'operator "last_n_days" needs a whole number of days (1 or more), got 0',
            "error",
        ),
        ("/views/0/filter/and/1/value", 'operator "is_empty" takes no value', "error"),
        ("/views/0/filter/and/2", 'operator "eq" needs a "value"', "error"),
    ]


def test_kanban_needs_group_by_and_calendar_needs_a_date():
    data = shop({"slug": "joined", "label": "Joined", "type": "date"})
    data["views"] = [
        {"slug": "board", "label": "Board", "table": "customers", "type": "kanban"},
        {
            "slug": "cal",
            "label": "Cal",
            "table": "customers",
            "type": "calendar",
            "date_field": "name",
        },
        {
            "slug": "ok",
            "label": "OK",
            "table": "customers",
            "type": "calendar",
            "date_field": "joined",
        },
    ]
    assert found(data) == [
        ("/views/0", 'a kanban view needs "group_by" naming a single_select field', "error"),
        (
            "/views/1/date_field",
            'date field "name" is a text field; expected a date or datetime field',
            "error",
        ),
    ]


def test_a_broken_table_slug_silences_references_to_missing_tables():
    data = shop({"slug": "order", "label": "Order", "type": "link", "options": {"table": "orders"}})
    assert [p[0] for p in found(data)] == ["/tables/0/fields/1/options/table"]
    data["tables"].append(
        {
            "slug": "Orders!",
            "label": "Orders",
            "fields": [{"slug": "n", "label": "N", "type": "text"}],
        }
    )
    assert [p[0] for p in found(data)] == ["/tables/1/slug"]


def test_every_mistake_is_reported_at_once():
    data = shop(
        {"slug": "a", "label": "", "type": "text"},
        {"slug": "b", "label": "B", "type": "number", "options": {"min": 3, "max": 1}},
    )
    before = copy.deepcopy(data)
    assert [p[0] for p in found(data)] == [
        "/tables/0/fields/1/label",
        "/tables/0/fields/2/options/min",
    ]
    assert data == before  # checking never changes the definition
