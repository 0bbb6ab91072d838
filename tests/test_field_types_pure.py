"""Field types number, currency, percent, rating, boolean, selects, date and datetime, without a database.

Each type is specified by the values it accepts (and what they become), the
values it refuses (and the exact message), its stored form, its CSV text,
its mask, its JSON schema, its samples and the definition problems it finds.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from faker import Faker
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from recordbase import fields
from recordbase.fields import Field, FieldValueError, FilterContext
from recordbase.fields.temporal import parse_datetime, relative_range
from sqlalchemy.dialects import postgresql, sqlite

UTC = dt.UTC
CHOICES = [
    {"id": "lead", "label": {"en": "Lead", "zh-CN": "线索"}, "color": "gray"},
    {"id": "qualified", "label": {"zh-CN": "已确认", "en": "Qualified"}, "color": "blue"},
    {"id": "won", "label": "Won, finally", "color": "green"},
    {"id": "lost", "label": "lead", "color": "red"},  # a label equal to another choice's id
]


def make_field(type_name: str, default: Any = None, **options: Any) -> Field:
    definition: dict[str, Any] = {"slug": "x", "type": type_name, "options": options}
    if default is not None:
        definition["default"] = default
    return Field(pk=1, uid="fld1", slug="x", type=fields.get(type_name), definition=definition, table_pk=1)


def parse(f: Field, value: Any) -> Any:
    return f.type.parse(f, value)


def refusal(f: Field, value: Any) -> str:
    with pytest.raises(FieldValueError) as info:
        f.type.parse(f, value)
    return str(info.value)


def stored_round_trip(f: Field, value: Any) -> Any:
    return f.type.from_db(f, f.type.to_db(f, value))


def csv_round_trip(f: Field, value: Any) -> Any:
    return f.type.parse(f, f.type.from_text(f, f.type.to_text(f, value)))


def problems(type_name: str, pointer: str = "/tables/0/fields/0", **definition: Any) -> list[tuple[str, str]]:
    definition = {"slug": "x", "type": type_name, **definition}
    return [(p.pointer, p.message) for p in fields.get(type_name).check_definition(definition, pointer)]


# --- number ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "value", "expected"),
    [
        ({}, 42, 42),
        ({}, -7, -7),
        ({}, "1,234", 1234),
        ({}, " 1234 ", 1234),
        ({}, "+5", 5),
        ({}, "1e3", 1000),
        ({}, 12.5, 13),  # half-up to the scale, even at scale 0
        ({}, Decimal("2.4"), 2),
        ({}, "", None),
        ({}, None, None),
        ({"scale": 2}, "1,234.50", Decimal("1234.50")),
        ({"scale": 2}, 0.1, Decimal("0.10")),  # via str(0.1), not the binary 0.1000000000000000055…
        ({"scale": 2}, 1.005, Decimal("1.01")),  # str(1.005) is "1.005": half-up, not float noise
        ({"scale": 2}, "-0.001", Decimal("0.00")),  # no negative zero
        ({"scale": 2}, ".5", Decimal("0.50")),
        ({"scale": 2}, "3.", Decimal("3.00")),
        ({"scale": 10}, "1e-10", Decimal("0.0000000001")),
        ({"precision": 4, "scale": 2}, "99.99", Decimal("99.99")),
        ({"precision": 18}, 999_999_999_999_999_999, 999_999_999_999_999_999),
        ({"min": 0, "max": 10}, "10", 10),
    ],
)
def test_number_accepts_and_normalises(options: dict[str, Any], value: Any, expected: Any) -> None:
    result = parse(make_field("number", **options), value)
    assert result == expected
    assert type(result) is type(expected)
    if isinstance(expected, Decimal):
        assert str(result) == str(expected) or result.as_tuple().exponent == expected.as_tuple().exponent


@pytest.mark.parametrize(
    ("options", "value", "message"),
    [
        ({}, True, "expected a number, got bool"),
        ({}, [1], "expected a number, got list"),
        ({}, "12abc", "is not a number (expected digits like 1234.50)"),
        ({}, "1,2", "is not a number (expected digits like 1234.50)"),
        ({}, "1.2.3", "is not a number (expected digits like 1234.50)"),
        ({}, "１２", "is not a number (expected digits like 1234.50)"),  # full-width digits
        ({}, "NaN", "is not a number (expected digits like 1234.50)"),
        ({}, "e5", "is not a number (expected digits like 1234.50)"),
        ({}, float("nan"), "must be a finite number"),
        ({}, float("inf"), "must be a finite number"),
        ({}, Decimal("-Infinity"), "must be a finite number"),
        ({}, "1e18", "has more than 18 digits before the decimal point"),
        ({}, "1e999999", "has more than 18 digits before the decimal point"),
        ({"precision": 4, "scale": 2}, "100", "has more than 2 digits before the decimal point"),
        ({"precision": 4, "scale": 2}, "99.995", "has more than 2 digits before the decimal point"),
        ({"precision": 2, "scale": 2}, "1", "must be less than 1 in magnitude"),
        ({"min": 0}, -1, "is less than the minimum, 0"),
        ({"max": 9.5, "scale": 1}, "9.6", "is more than the maximum, 9.5"),
    ],
)
def test_number_refuses(options: dict[str, Any], value: Any, message: str) -> None:
    assert refusal(make_field("number", **options), value) == message


def test_number_messages_never_echo_the_value() -> None:
    assert "secret" not in refusal(make_field("number"), "secret42")
    assert "31415" not in refusal(make_field("number", max=1), 31415)


@pytest.mark.parametrize(
    ("options", "value", "stored"),
    [({}, 1234, 1234), ({"scale": 2}, Decimal("1234.50"), 123450), ({"scale": 3}, Decimal("-0.001"), -1)],
)
def test_number_stores_a_scaled_integer(options: dict[str, Any], value: Any, stored: int) -> None:
    f = make_field("number", **options)
    assert f.type.to_db(f, value) == stored
    assert f.type.from_db(f, stored) == value
    assert isinstance(f.type.sql_type(f), sa.BigInteger)


def test_number_from_db_restores_the_scale() -> None:
    f = make_field("number", scale=2)
    assert str(f.type.from_db(f, 100)) == "1.00"
    assert str(f.type.from_db(f, 0)) == "0.00"
    assert f.type.from_db(f, None) is None


def test_number_json_and_text() -> None:
    whole, money = make_field("number"), make_field("number", scale=2)
    assert whole.type.json_value(whole, 1234) == 1234
    assert money.type.json_value(money, Decimal("1234.50")) == "1234.50"
    assert make_field("number", scale=10).type.json_value(make_field("number", scale=10), Decimal("1E-10")) == "0.0000000001"
    assert money.type.to_text(money, Decimal("1234.50")) == "1234.50"
    assert money.type.to_text(money, None) == ""
    assert money.type.from_text(money, "  ") is None


def test_number_json_schema() -> None:
    assert fields.get("number").json_schema(make_field("number")) == {"type": ["integer", "null"]}
    assert fields.get("number").json_schema(make_field("number", min=0, max=100)) == {
        "type": ["integer", "null"], "minimum": 0, "maximum": 100,
    }
    assert fields.get("number").json_schema(make_field("number", scale=2)) == {
        "type": ["string", "number", "null"], "format": "decimal",
    }


def scaled_decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    limit = Decimal(10 ** (precision - scale)) - Decimal(1).scaleb(-scale)
    return st.decimals(min_value=-limit, max_value=limit, places=scale, allow_nan=False, allow_infinity=False)


@given(st.data(), st.integers(1, 18), st.integers(0, 10))
def test_number_round_trips_through_storage_and_csv(data: st.DataObject, precision: int, scale: int) -> None:
    scale = min(scale, precision)
    f = make_field("number", precision=precision, scale=scale)
    value = parse(f, data.draw(scaled_decimals(precision, scale)))
    assert stored_round_trip(f, value) == value
    assert csv_round_trip(f, value) == value
    assert parse(f, f.type.json_value(f, value)) == value


@given(scaled_decimals(12, 4), scaled_decimals(12, 4))
def test_number_stored_order_is_the_numeric_order(a: Decimal, b: Decimal) -> None:
    f = make_field("number", precision=12, scale=4)
    stored_a, stored_b = f.type.to_db(f, parse(f, a)), f.type.to_db(f, parse(f, b))
    assert (stored_a < stored_b) == (a < b)
    assert (stored_a == stored_b) == (a == b)


@given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
def test_number_reads_floats_by_their_shortest_text(x: float) -> None:
    f = make_field("number", scale=3)
    assert parse(f, x) == Decimal(repr(x)).quantize(Decimal("0.001"), rounding="ROUND_HALF_UP")


def test_number_filter_operands_are_stored_form() -> None:
    f = make_field("number", scale=2)
    assert f.type.parse_filter_value(f, "gt", "1,000.5") == 100050
    assert f.type.parse_filter_value(f, "between", [1, "2.5"]) == [100, 250]
    with pytest.raises(FieldValueError, match="use is_empty"):
        f.type.parse_filter_value(f, "eq", "")


# --- currency and percent ----------------------------------------------------


def test_currency_defaults_to_two_places_and_writes_plain_text() -> None:
    f = make_field("currency", currency="CNY")
    assert parse(f, "1,234.5") == Decimal("1234.50")
    assert f.type.to_db(f, Decimal("1234.50")) == 123450
    assert f.type.to_text(f, Decimal("1234.50")) == "1234.50"


@pytest.mark.parametrize("text", ["¥1,234.50", "￥1234.5", "CNY 1,234.50", "cny1234.50", "$1234.50"])
def test_currency_reads_a_leading_code_or_symbol(text: str) -> None:
    f = make_field("currency", currency="CNY")
    assert parse(f, f.type.from_text(f, text)) == Decimal("1234.50")


def test_currency_keeps_the_sign_before_a_symbol() -> None:
    f = make_field("currency", currency="EUR")
    assert parse(f, "-€5") == Decimal("-5.00")
    assert refusal(f, "5€") == "is not a number (expected digits like 1234.50)"


def test_percent_is_the_percentage_number() -> None:
    f = make_field("percent")
    assert parse(f, 12.5) == Decimal("12.50")
    assert parse(f, f.type.from_text(f, "12.5%")) == Decimal("12.50")
    assert parse(f, "12.5 %") == Decimal("12.50")
    assert f.type.to_text(f, Decimal("12.50")) == "12.50"
    assert f.type.to_db(f, Decimal("12.50")) == 1250
    assert refusal(f, "%") == "is not a number (expected digits like 1234.50)"


# --- rating --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (5, 5), ("3", 3), (4.0, 4), ("", None), (None, None)])
def test_rating_accepts_whole_stars(value: Any, expected: Any) -> None:
    assert parse(make_field("rating"), value) == expected


@pytest.mark.parametrize(
    ("options", "value", "message"),
    [
        ({}, 6, "must be from 0 to 5"),
        ({}, -1, "must be from 0 to 5"),
        ({"max": 10}, 11, "must be from 0 to 10"),
        ({}, 2.5, "is not a whole number of stars"),
        ({}, "2.5", "is not a whole number of stars"),
        ({}, float("nan"), "is not a whole number of stars"),
        ({}, True, "expected a whole number, got bool"),
        ({}, [3], "expected a whole number, got list"),
    ],
)
def test_rating_refuses(options: dict[str, Any], value: Any, message: str) -> None:
    assert refusal(make_field("rating", **options), value) == message


def test_rating_stores_zero_as_zero() -> None:
    f = make_field("rating")
    assert f.type.to_db(f, 0) == 0
    assert stored_round_trip(f, 0) == 0
    assert csv_round_trip(f, 0) == 0
    assert isinstance(f.type.sql_type(f), sa.SmallInteger)
    assert f.type.json_schema(f) == {"type": ["integer", "null"], "minimum": 0, "maximum": 5}


# --- boolean -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True), (False, False), (1, True), (0, False),
        ("true", True), ("FALSE", False), ("Yes", True), ("no", False),
        ("是", True), ("否", False), ("1", True), ("0", False), (" ", None), (None, None),
    ],
)
def test_boolean_accepts(value: Any, expected: Any) -> None:
    assert parse(make_field("boolean"), value) is expected


@pytest.mark.parametrize("value", [2, -1, 1.0, "maybe", "y", [True]])
def test_boolean_refuses(value: Any) -> None:
    assert refusal(make_field("boolean"), value) == "is not yes or no (expected true/false, yes/no, 1/0 or 是/否)"


def test_boolean_storage_text_and_operators() -> None:
    f = make_field("boolean")
    assert isinstance(f.type.sql_type(f), sa.Boolean)
    assert f.type.from_db(f, 1) is True and f.type.from_db(f, 0) is False
    assert [f.type.to_text(f, v) for v in (True, False, None)] == ["true", "false", ""]
    assert csv_round_trip(f, False) is False
    assert f.type.operators == {"eq", "ne", "is_empty", "is_not_empty"}
    assert f.type.json_schema(f) == {"type": ["boolean", "null"]}


# --- single_select ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("lead", "lead"),
        ("Lead", "lead"),
        ("线索", "lead"),
        ("已确认", "qualified"),
        (" Won, finally ", "won"),
        ("lost", "lost"),
        ("", None),
        (None, None),
    ],
)
def test_single_select_accepts_an_id_or_any_label(value: Any, expected: Any) -> None:
    assert parse(make_field("single_select", choices=CHOICES), value) == expected


def test_single_select_prefers_an_id_to_an_equal_label() -> None:
    # "lead" is both the first choice's id and the last choice's label.
    assert parse(make_field("single_select", choices=CHOICES), "lead") == "lead"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("purple", "is not one of the choices: lead, qualified, won, lost"),
        ("LEAD", "is not one of the choices: lead, qualified, won, lost"),  # exact match only
        (3, "expected a choice id or label, got int"),
    ],
)
def test_single_select_refuses(value: Any, message: str) -> None:
    assert refusal(make_field("single_select", choices=CHOICES), value) == message


def test_single_select_lists_at_most_eight_choices() -> None:
    f = make_field("single_select", choices=[{"id": f"c{i}", "label": f"C{i}"} for i in range(10)])
    assert refusal(f, "nope") == "is not one of the choices: c0, c1, c2, c3, c4, c5, c6, c7, ..."


def test_single_select_text_uses_labels_and_round_trips() -> None:
    f = make_field("single_select", choices=CHOICES)
    assert [f.type.to_text(f, v) for v in ("lead", "qualified", "won", "lost", None)] == [
        "Lead", "Qualified", "Won, finally", "lead", "",
    ]
    for choice in CHOICES:
        assert csv_round_trip(f, choice["id"]) == choice["id"]  # "lost" reads back from "lead"
    assert f.type.from_text(f, "qualified") == "qualified"  # ids are read too


def test_single_select_storage_schema_and_sort() -> None:
    f = make_field("single_select", choices=CHOICES)
    assert isinstance(f.type.sql_type(f), sa.String) and f.type.sql_type(f).length == 64
    assert stored_round_trip(f, "won") == "won"
    assert f.type.json_schema(f) == {"type": ["string", "null"], "enum": ["lead", "qualified", "won", "lost", None]}
    col = sa.column("f1", sa.String(64))
    sql = str(f.type.sort_expression(f, col).compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    assert sql == (
        "CASE WHEN (f1 IS NULL) THEN NULL ELSE "
        "CASE f1 WHEN 'lead' THEN 0 WHEN 'qualified' THEN 1 WHEN 'won' THEN 2 WHEN 'lost' THEN 3 ELSE 4 END END"
    )


def test_single_select_filters_by_id_or_label() -> None:
    f = make_field("single_select", choices=CHOICES)
    assert f.type.parse_filter_value(f, "eq", "线索") == "lead"
    assert f.type.parse_filter_value(f, "in", ["Lead", "won"]) == ["lead", "won"]


# --- multi_select ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["won", "lead"], ["lead", "won"]),  # the choices' order
        (["lead", "Lead", "线索"], ["lead"]),  # duplicates removed
        ("won, lead", ["lead", "won"]),
        ("Won, finally, 已确认", ["qualified", "won"]),  # a label with a comma stays whole
        ("lost,Qualified", ["qualified", "lost"]),
        ([], None),
        (["", " "], None),
        ("", None),
        (None, None),
    ],
)
def test_multi_select_accepts(value: Any, expected: Any) -> None:
    assert parse(make_field("multi_select", choices=CHOICES), value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["lead", "purple"], "is not one of the choices: lead, qualified, won, lost"),
        ("lead, purple", "is not one of the choices: lead, qualified, won, lost"),
        ([1], "expected a choice id or label, got int"),
        (5, "expected a list of choices, got int"),
    ],
)
def test_multi_select_refuses(value: Any, message: str) -> None:
    assert refusal(make_field("multi_select", choices=CHOICES), value) == message


def test_multi_select_stores_compact_json() -> None:
    f = make_field("multi_select", choices=CHOICES)
    assert f.type.to_db(f, ["lead", "won"]) == '["lead","won"]'
    assert f.type.from_db(f, '["lead","won"]') == ["lead", "won"]
    assert f.type.to_db(f, None) is None
    assert f.type.json_value(f, ["lead"]) == ["lead"]
    assert f.type.can_be_unique is False


def test_multi_select_text_joins_labels_and_round_trips() -> None:
    f = make_field("multi_select", choices=CHOICES)
    everything = ["lead", "qualified", "won", "lost"]
    assert f.type.to_text(f, everything) == "Lead, Qualified, Won, finally, lead"
    assert csv_round_trip(f, everything) == everything
    assert csv_round_trip(f, ["lost"]) == ["lost"]
    assert f.type.from_text(f, "") is None


def test_multi_select_json_schema() -> None:
    f = make_field("multi_select", choices=CHOICES)
    assert f.type.json_schema(f) == {
        "type": ["array", "null"],
        "items": {"type": "string", "enum": ["lead", "qualified", "won", "lost"]},
        "uniqueItems": True,
    }


def multi_select_sql(op: str, value: Any) -> str:
    f = make_field("multi_select", choices=CHOICES)
    col = sa.column("f1", sa.Text())
    operand = f.type.parse_filter_value(f, op, value)
    ctx = FilterContext(now=dt.datetime(2026, 11, 28, tzinfo=UTC), dialect="sqlite")
    clause = f.type.filter(f, col, op, operand, ctx)
    return str(clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_multi_select_filters_in_sql() -> None:
    like_lead = "f1 LIKE '%' || '\"lead\"' || '%' ESCAPE '/'"
    like_won = "f1 LIKE '%' || '\"won\"' || '%' ESCAPE '/'"
    assert multi_select_sql("eq", ["won", "lead"]) == "f1 = '[\"lead\",\"won\"]'"
    assert multi_select_sql("contains", "Lead") == like_lead
    assert multi_select_sql("contains", ["lead", "won"]) == f"({like_lead}) AND ({like_won})"
    assert multi_select_sql("in", ["lead", "won"]) == f"({like_lead}) OR ({like_won})"
    assert multi_select_sql("not_in", ["lead"]) == "(f1 NOT LIKE '%' || '\"lead\"' || '%' ESCAPE '/') OR f1 IS NULL"
    assert multi_select_sql("not_in", ["lead", "won"]) == f"NOT (({like_lead}) OR ({like_won})) OR f1 IS NULL"
    assert multi_select_sql("is_empty", None) == "f1 IS NULL"


def test_multi_select_filters_on_sqlite() -> None:
    """The LIKE patterns pick the right rows: "lead" does not match "lead_2"."""
    choices = [*CHOICES, {"id": "lead_2", "label": "Lead 2"}]
    f = make_field("multi_select", choices=choices)
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), *f.type.columns(f))
    rows = {1: ["lead"], 2: ["lead", "won"], 3: ["lead_2"], 4: None, 5: ["won", "lost"]}
    ctx = FilterContext(now=dt.datetime(2026, 11, 28, tzinfo=UTC), dialect="sqlite")
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": k, "f1": f.type.to_db(f, v)} for k, v in rows.items()])

        def matching(op: str, value: Any) -> list[int]:
            clause = f.type.filter(f, table.c.f1, op, f.type.parse_filter_value(f, op, value), ctx)
            return list(conn.scalars(sa.select(table.c.id).where(clause).order_by(table.c.id)))

        assert matching("eq", ["won", "lead"]) == [2]
        assert matching("contains", "lead") == [1, 2]
        assert matching("contains", ["lead", "won"]) == [2]
        assert matching("in", ["lead_2", "lost"]) == [3, 5]
        assert matching("not_in", ["lead", "won"]) == [3, 4]
        assert matching("is_empty", None) == [4]
        assert matching("is_not_empty", None) == [1, 2, 3, 5]


# --- choices in definitions --------------------------------------------------------


def test_choice_defaults_must_be_choices() -> None:
    options = {"choices": CHOICES}
    assert problems("single_select", options=options, default="purple") == [
        ("/tables/0/fields/0/default", 'default "purple" is not one of the choices: lead, qualified, won, lost'),
    ]
    assert problems("single_select", options=options, default="线索") == []
    assert problems("multi_select", options=options, default=["lead", "purple"]) == [
        ("/tables/0/fields/0/default", 'default ["lead", "purple"] is not one of the choices: lead, qualified, won, lost'),
    ]
    assert problems("multi_select", options=options, default=["Lead", "won"]) == []
    assert problems("single_select", options=options, default=3) == [
        ("/tables/0/fields/0/default", "default is not a valid single_select: expected a choice id or label, got int"),
    ]


def test_choice_ids_must_be_unique_and_labels_distinct() -> None:
    choices = [{"id": "a", "label": "Same"}, {"id": "a", "label": "Other"}, {"id": "b", "label": {"en": "Same"}}]
    found = fields.get("single_select").check_definition({"slug": "x", "options": {"choices": choices}}, "/f")
    assert [(p.pointer, p.message, p.severity) for p in found] == [
        ("/f/options/choices/1/id", 'choice id "a" is used twice', "error"),
        ("/f/options/choices/2/label", 'label "Same" is also choice 0\'s; the two cannot be told apart in imports', "warning"),
    ]


# --- date ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (dt.date(2024, 5, 1), dt.date(2024, 5, 1)),
        ("2024-05-01", dt.date(2024, 5, 1)),
        ("2024/05/01", dt.date(2024, 5, 1)),
        ("2024/5/1", dt.date(2024, 5, 1)),
        ("2024年5月1日", dt.date(2024, 5, 1)),
        (" 2024年05月01日 ", dt.date(2024, 5, 1)),
        ("2024-02-29", dt.date(2024, 2, 29)),
        ("", None),
        (None, None),
    ],
)
def test_date_accepts(value: Any, expected: Any) -> None:
    assert parse(make_field("date"), value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (dt.datetime(2024, 5, 1, 9, 30), "expected a date without a time"),
        ("2024-05-01T09:30", "is not a date (expected YYYY-MM-DD)"),
        ("01/05/2024", "is not a date (expected YYYY-MM-DD)"),
        ("May 1st", "is not a date (expected YYYY-MM-DD)"),
        ("2023-02-29", "is not a calendar date"),
        ("2024-13-01", "is not a calendar date"),
        (20240501, "expected a date, got int"),
    ],
)
def test_date_refuses(value: Any, message: str) -> None:
    assert refusal(make_field("date"), value) == message


def test_date_storage_json_text_and_mask() -> None:
    f = make_field("date")
    day = dt.date(2024, 5, 1)
    assert isinstance(f.type.sql_type(f), sa.Date)
    assert stored_round_trip(f, day) == day
    assert f.type.from_db(f, "2024-05-01") == day
    assert f.type.json_value(f, day) == "2024-05-01"
    assert f.type.to_text(f, day) == "2024-05-01"
    assert f.type.mask(f, day) == "••••-••-••"
    assert f.type.json_schema(f) == {"type": ["string", "null"], "format": "date"}


@given(st.dates())
def test_date_round_trips(day: dt.date) -> None:
    f = make_field("date")
    assert parse(f, day) == day
    assert stored_round_trip(f, day) == day
    assert csv_round_trip(f, day) == day
    assert parse(f, f.type.json_value(f, day)) == day


def test_date_default_today_resolves_to_utc_today() -> None:
    before = dt.datetime.now(UTC).date()
    resolved = fields.get("date").resolve_default("today")
    assert before <= resolved <= dt.datetime.now(UTC).date()
    assert problems("date", default="today") == []
    assert problems("date", default="2024-05-01") == []
    assert problems("date", default="tomorrow") == [
        ("/tables/0/fields/0/default", "default is not a valid date: is not a date (expected YYYY-MM-DD)"),
    ]


# --- datetime -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T09:30:00Z", dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01T09:30:00+08:00", dt.datetime(2024, 5, 1, 1, 30, tzinfo=UTC)),
        ("2024-05-01 09:30", dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),  # naive: UTC
        ("2024-05-01T09:30:00.1234567Z", dt.datetime(2024, 5, 1, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=UTC)),
        (dt.datetime(2024, 5, 1, 9, 30), dt.datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        (
            dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            dt.datetime(2024, 5, 1, 14, 30, tzinfo=UTC),
        ),
        (dt.date(2024, 5, 1), dt.datetime(2024, 5, 1, tzinfo=UTC)),
        ("", None),
        (None, None),
    ],
)
def test_datetime_accepts_and_normalises_to_utc(value: Any, expected: Any) -> None:
    result = parse(make_field("datetime"), value)
    assert result == expected
    if expected is not None:
        assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday at noon", "is not a date and time (expected ISO 8601, like 2024-05-01T09:30:00+08:00)"),
        ("2024-05-01T25:00", "is not a date and time (expected ISO 8601, like 2024-05-01T09:30:00+08:00)"),
        (1714555800, "expected a date and time, got int"),
        ("0001-01-01T00:00:00+01:00", "is out of the supported range of dates"),
    ],
)
def test_datetime_refuses(value: Any, message: str) -> None:
    assert refusal(make_field("datetime"), value) == message


def test_datetime_storage_json_text_and_mask() -> None:
    f = make_field("datetime")
    moment = dt.datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    assert isinstance(f.type.sql_type(f), fields.get("datetime").sql_type(f).__class__)
    assert type(f.type.sql_type(f)).__name__ == "UTCDateTime"
    assert stored_round_trip(f, moment) == moment
    assert f.type.from_db(f, dt.datetime(2024, 5, 1, 1, 30)) == moment  # naive UTC from SQLite
    assert f.type.json_value(f, moment) == "2024-05-01T01:30:00+00:00"
    assert f.type.to_text(f, moment) == "2024-05-01T01:30:00+00:00"
    assert f.type.mask(f, moment) == "••••-••-•• ••:••"
    assert f.type.json_schema(f) == {"type": ["string", "null"], "format": "date-time"}


offsets = st.builds(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)), st.integers(-14 * 60, 14 * 60))


@given(st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31), timezones=offsets))
def test_datetime_round_trips(moment: dt.datetime) -> None:
    f = make_field("datetime")
    value = parse(f, moment)
    assert value == moment and value.tzinfo is UTC
    assert stored_round_trip(f, value) == value
    assert csv_round_trip(f, value) == value
    assert parse(f, f.type.json_value(f, value)) == value


def test_parse_datetime_is_the_shared_reader() -> None:
    assert parse_datetime("2024-05-01T09:30:00+08:00") == dt.datetime(2024, 5, 1, 1, 30, tzinfo=UTC)
    assert parse_datetime(" ") is None
    with pytest.raises(FieldValueError, match="expected a date and time, got float"):
        parse_datetime(1.5)


def test_datetime_default_now() -> None:
    before = dt.datetime.now(UTC)
    assert before <= fields.get("datetime").resolve_default("now") <= dt.datetime.now(UTC)
    assert problems("datetime", default="now") == []
    assert problems("datetime", default="later") == [
        (
            "/tables/0/fields/0/default",
            "default is not a valid datetime: is not a date and time (expected ISO 8601, like 2024-05-01T09:30:00+08:00)",
        ),
    ]


# --- relative dates -----------------------------------------------------------------------

SATURDAY = dt.date(2026, 11, 28)


@pytest.mark.parametrize(
    ("op", "value", "start", "end"),
    [
        ("today", None, "2026-11-28", "2026-11-29"),
        ("yesterday", None, "2026-11-27", "2026-11-28"),
        ("tomorrow", None, "2026-11-29", "2026-11-30"),
        ("this_week", None, "2026-11-23", "2026-11-30"),
        ("last_week", None, "2026-11-16", "2026-11-23"),
        ("next_week", None, "2026-11-30", "2026-12-07"),
        ("this_month", None, "2026-11-01", "2026-12-01"),
        ("last_month", None, "2026-10-01", "2026-11-01"),
        ("next_month", None, "2026-12-01", "2027-01-01"),
        ("this_year", None, "2026-01-01", "2027-01-01"),
        ("last_year", None, "2025-01-01", "2026-01-01"),
        ("last_n_days", 1, "2026-11-28", "2026-11-29"),
        ("last_n_days", 7, "2026-11-22", "2026-11-29"),
        ("next_n_days", 1, "2026-11-28", "2026-11-30"),
        ("next_n_days", 7, "2026-11-28", "2026-12-06"),
    ],
)
def test_relative_range_on_a_saturday(op: str, value: Any, start: str, end: str) -> None:
    assert relative_range(op, value, SATURDAY) == (dt.date.fromisoformat(start), dt.date.fromisoformat(end))


@pytest.mark.parametrize(
    ("op", "today", "start", "end"),
    [
        ("this_week", "2026-11-23", "2026-11-23", "2026-11-30"),  # a Monday is its week's first day
        ("this_week", "2026-11-29", "2026-11-23", "2026-11-30"),  # a Sunday its last
        ("next_month", "2026-12-31", "2027-01-01", "2027-02-01"),
        ("last_month", "2026-01-15", "2025-12-01", "2026-01-01"),
        ("this_month", "2024-02-29", "2024-02-01", "2024-03-01"),
        ("last_week", "2027-01-02", "2026-12-21", "2026-12-28"),
    ],
)
def test_relative_range_across_boundaries(op: str, today: str, start: str, end: str) -> None:
    bounds = relative_range(op, None, dt.date.fromisoformat(today))
    assert bounds == (dt.date.fromisoformat(start), dt.date.fromisoformat(end))


@pytest.mark.parametrize("type_name", ["date", "datetime"])
def test_relative_filter_values_are_checked(type_name: str) -> None:
    f = make_field(type_name)
    assert f.type.parse_filter_value(f, "today", None) is None
    assert f.type.parse_filter_value(f, "last_n_days", 7) == 7
    assert f.type.parse_filter_value(f, "next_n_days", "3") == 3
    for bad in (0, -1, 2.5, True, None, "a week"):
        with pytest.raises(FieldValueError) as info:
            f.type.parse_filter_value(f, "last_n_days", bad)
        assert str(info.value) == '"last_n_days" needs a whole number of days, 1 or more'
    with pytest.raises(FieldValueError) as info:
        f.type.parse_filter_value(f, "this_week", "2026-11-28")
    assert str(info.value) == '"this_week" takes no value'


@pytest.mark.parametrize(
    ("type_name", "start", "end", "cast"),
    [
        ("date", dt.date(2026, 11, 23), dt.date(2026, 11, 30), "DATE"),
        ("datetime", dt.datetime(2026, 11, 23, tzinfo=UTC), dt.datetime(2026, 11, 30, tzinfo=UTC), "TIMESTAMP WITH TIME ZONE"),
    ],
)
def test_relative_filters_compile_to_a_half_open_range(type_name: str, start: Any, end: Any, cast: str) -> None:
    f = make_field(type_name)
    table = sa.Table("t", sa.MetaData(), *f.type.columns(f))
    # 23:30 on Saturday in UTC-5 is already Sunday in UTC: "today" is the UTC day.
    ctx = FilterContext(now=dt.datetime(2026, 11, 28, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))), dialect="postgresql")
    clause = f.type.filter(f, table.c.f1, "this_week", None, ctx)
    compiled = clause.compile(dialect=postgresql.dialect())
    assert str(compiled) == f"t.f1 >= %(f1_1)s::{cast} AND t.f1 < %(f1_2)s::{cast}"
    assert compiled.params == {"f1_1": start, "f1_2": end}


def test_datetime_relative_filter_on_sqlite() -> None:
    f = make_field("datetime")
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), *f.type.columns(f))
    ctx = FilterContext(now=dt.datetime(2026, 11, 28, 12, tzinfo=UTC), dialect="sqlite")
    moments = {
        1: "2026-11-27T23:59:59.999999Z",
        2: "2026-11-28T00:00:00Z",
        3: "2026-11-28T07:59:00+08:00",  # 23:59 UTC on the 27th
        4: "2026-11-28T23:59:59Z",
        5: "2026-11-29T00:00:00Z",
    }
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": k, "f1": f.type.to_db(f, parse(f, v))} for k, v in moments.items()])
        clause = f.type.filter(f, table.c.f1, "today", None, ctx)
        assert list(conn.scalars(sa.select(table.c.id).where(clause).order_by(table.c.id))) == [2, 4]
        clause = f.type.filter(f, table.c.f1, "last_n_days", 2, ctx)
        assert list(conn.scalars(sa.select(table.c.id).where(clause).order_by(table.c.id))) == [1, 2, 3, 4]


# --- masks, samples and definitions, across the types --------------------------------------

FIELDS = {
    "number": make_field("number"),
    "decimal": make_field("number", scale=3, min=-5, max=5),
    "currency": make_field("currency", currency="CNY"),
    "percent": make_field("percent", max=100),
    "rating": make_field("rating", max=10),
    "boolean": make_field("boolean"),
    "single_select": make_field("single_select", choices=CHOICES),
    "multi_select": make_field("multi_select", choices=CHOICES),
    "date": make_field("date"),
    "datetime": make_field("datetime"),
}
MASKS = {
    "number": "•••", "decimal": "•••", "currency": "•••", "percent": "•••", "rating": "•••",
    "boolean": "•••", "single_select": "•••", "multi_select": "•••",
    "date": "••••-••-••", "datetime": "••••-••-•• ••:••",
}


@pytest.mark.parametrize("name", FIELDS)
@pytest.mark.parametrize("locale", ["zh_CN", "en_US"])
def test_samples_are_deterministic_valid_and_masked(name: str, locale: str) -> None:
    f = FIELDS[name]

    def samples(seed: int) -> list[Any]:
        fake = Faker(locale)
        fake.seed_instance(seed)
        return [f.type.sample(f, fake) for _ in range(20)]

    values = samples(7)
    assert values == samples(7)
    assert values != samples(8) or name == "boolean" and len(set(values)) == 1
    for value in values:
        assert value is not None
        assert parse(f, value) == value
        assert f.type.mask(f, value) == MASKS[name]
        assert f.type.mask(f, value) != value
        assert f.type.to_text(f, value) not in MASKS[name]
    assert f.type.mask(f, None) is None


def test_number_samples_respect_bounds() -> None:
    fake = Faker("en_US")
    fake.seed_instance(1)
    f = make_field("number", scale=2, min=-1.5, max=-1.25)
    values = {f.type.sample(f, fake) for _ in range(200)}
    assert min(values) >= Decimal("-1.50") and max(values) <= Decimal("-1.25")
    assert len(values) == 26  # every cent in the range, eventually
    tiny = make_field("number", precision=2)
    assert all(0 <= tiny.type.sample(tiny, fake) <= 99 for _ in range(50))


@pytest.mark.parametrize("name", FIELDS)
def test_json_schemas_are_valid_and_accept_values(name: str) -> None:
    f = FIELDS[name]
    schema = f.type.json_schema(f)
    Draft202012Validator.check_schema(schema)
    fake = Faker("en_US")
    fake.seed_instance(3)
    validator = Draft202012Validator(schema)
    for _ in range(10):
        validator.validate(f.type.json_value(f, f.type.sample(f, fake)))
    validator.validate(None)


@pytest.mark.parametrize(
    ("type_name", "definition", "expected"),
    [
        ("number", {"default": "abc"}, [("/f/default", "default is not a valid number: is not a number (expected digits like 1234.50)")]),
        ("number", {"default": 11, "options": {"max": 10}}, [("/f/default", "default is not a valid number: is more than the maximum, 10")]),
        ("number", {"default": 5, "options": {"max": 10}}, []),
        ("number", {"options": {"precision": 2, "scale": 3}}, [("/f/options/scale", "scale (3) cannot exceed precision (2)")]),
        ("number", {"options": {"precision": 19}}, [("/f/options/precision", "precision must be a whole number from 1 to 18")]),
        ("number", {"options": {"scale": 11}}, [("/f/options/scale", "scale must be a whole number from 0 to 10")]),
        ("number", {"options": {"min": 5, "max": 1}}, [("/f/options/min", "min cannot be more than max")]),
        ("number", {"options": {"min": "1"}}, [("/f/options/min", "min must be a number")]),
        ("currency", {"options": {}}, [("/f/options/currency", 'currency must be an ISO 4217 code like "CNY" or "EUR"')]),
        ("currency", {"options": {"currency": "usd"}}, [("/f/options/currency", 'currency must be an ISO 4217 code like "CNY" or "EUR"')]),
        ("currency", {"options": {"currency": "USD"}, "default": "1.5"}, []),
        ("percent", {"default": "12.5%"}, []),
        ("rating", {"default": 9}, [("/f/default", "default is not a valid rating: must be from 0 to 5")]),
        ("rating", {"options": {"max": 11}}, [("/f/options/max", "max must be a whole number from 1 to 10")]),
        ("boolean", {"default": "perhaps"}, [("/f/default", "default is not a valid boolean: is not yes or no (expected true/false, yes/no, 1/0 or 是/否)")]),
        ("boolean", {"default": False}, []),
    ],
)
def test_check_definition(type_name: str, definition: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert problems(type_name, pointer="/f", **definition) == expected


def test_operators() -> None:
    order = {"eq", "ne", "in", "not_in", "is_empty", "is_not_empty", "lt", "lte", "gt", "gte", "between"}
    for name in ("number", "currency", "percent", "rating"):
        assert fields.get(name).operators == order
    assert fields.get("single_select").operators == {"eq", "ne", "in", "not_in", "is_empty", "is_not_empty"}
    assert fields.get("multi_select").operators == {"eq", "contains", "in", "not_in", "is_empty", "is_not_empty"}
    relative = {
        "today", "yesterday", "tomorrow", "this_week", "last_week", "next_week", "this_month",
        "last_month", "next_month", "this_year", "last_year", "last_n_days", "next_n_days",
    }
    assert fields.get("date").operators == order | relative
    assert fields.get("datetime").operators == order | relative


@pytest.mark.parametrize("type_name", ["text", "long_text", "email", "url", "phone"])
def test_text_with_a_nul_character_is_refused_on_every_database(type_name):
    assert refusal(make_field(type_name), "a\x00b@example.com") == "contains a NUL character"


@pytest.mark.parametrize("value", [2**63, str(2**64), 0, -1])
def test_record_ids_outside_bigint_are_refused(value):
    with pytest.raises(FieldValueError, match="record id"):
        parse(make_field("link", table="t"), value)
