"""Every formula function and operator, computed by each database on a filled and an empty record.

``formula.py`` compiles a formula to SQL differently for SQLite and PostgreSQL
(MIN/MAX skipping empties, numbers as text, date parts, day counts); these
cases pin down that both give the same values, empties included.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from recordbase.actor import Actor
from recordbase.core import Recordbase

SYSTEM = Actor.system("test")

FILLED = {
    "a": "2.25",
    "b": "-4",
    "t": "乌龙茶",
    "name": "Oolong Tea",
    "d": "2026-05-01",
    "ts": "2026-05-02T12:00:00Z",
    "ok": True,
}

# slug → (formula, value on the filled record, value on the empty record)
CASES: dict[str, tuple[str, Any, Any]] = {
    "neg": ("-a", Decimal("-2.25"), None),
    "arith": ("(a + b) * 2 / 4", Decimal("-0.88"), None),  # -0.875, kept to the field's 2 places
    "div_zero": ("a / (b - b)", None, None),  # no division error: empty
    "min_ab": ("MIN(a, b)", Decimal("-4"), None),
    "max_ab": ("MAX(a, b)", Decimal("2.25"), None),
    "min_one": ("MIN(a)", Decimal("2.25"), None),
    "max_with_literal": ("MAX(a, 10)", Decimal("10"), Decimal("10")),  # an empty argument is skipped
    "abs": ("ABS(b)", Decimal("4"), None),
    "round": ("ROUND(a, 1)", Decimal("2.3"), None),  # 2.25 rounds half up here and in PostgreSQL's numeric
    "concat": ('CONCAT(t, "-", a, "-", ok)', "乌龙茶-2-TRUE", "--"),  # empties join as ""
    "amp": ('t & " " & TEXT(a, 2)', "乌龙茶 2.25", " "),
    "text_date": ("TEXT(d)", "2026-05-01", None),
    "text_datetime": ("TEXT(ts)", "2026-05-02 12:00", None),
    "text_bool": ("TEXT(ok)", "TRUE", None),
    "len": ("LEN(t)", Decimal("3"), None),  # characters, not bytes, on both
    "upper": ("UPPER(name)", "OOLONG TEA", None),
    "lower": ("LOWER(name)", "oolong tea", None),
    "trim": ('TRIM("  " & t & " ")', "乌龙茶", ""),  # (a text field trims what is typed: pad it here)
    "literals": ("IF(ok, TRUE, FALSE)", True, False),  # an empty condition takes the otherwise branch
    "if_no_else": ('IF(ok, "yes")', "yes", None),
    "not": ("NOT(ok)", False, None),
    "and": ("AND(ok, a > 1)", True, None),
    "or": ("OR(ok, a > 100)", True, None),
    "compare_text": ('t <> "红茶"', True, None),
    "isblank_number": ("ISBLANK(a)", False, True),
    "isblank_text": ("ISBLANK(t)", False, True),
    "year": ("YEAR(d)", Decimal("2026"), None),
    "month": ("MONTH(d)", Decimal("5"), None),
    "day": ("DAY(ts)", Decimal("2"), None),
    "days_mixed": ("DAYS(ts, d)", Decimal("1.5"), None),
}
# Formulas whose value depends on the day the test runs: checked in test_today_and_now.
TODAY_CASES = {"days_dates": "DAYS(TODAY(), d)", "now_year": "YEAR(NOW())"}
SCALES = {"days_mixed": 1, "year": 0, "month": 0, "day": 0, "len": 0, "days_dates": 0, "now_year": 0}


def definition() -> dict[str, Any]:
    fields: list[dict[str, Any]] = [
        {"slug": "a", "label": "A", "type": "number", "options": {"scale": 2}},
        {"slug": "b", "label": "B", "type": "number", "options": {"scale": 2}},
        {"slug": "t", "label": "T", "type": "text"},
        {"slug": "name", "label": "Name", "type": "text"},
        {"slug": "d", "label": "D", "type": "date"},
        {"slug": "ts", "label": "TS", "type": "datetime"},
        {"slug": "ok", "label": "OK", "type": "boolean"},
    ]
    formulas = {**{slug: case[0] for slug, case in CASES.items()}, **TODAY_CASES}
    for slug, formula in formulas.items():
        options: dict[str, Any] = {"formula": formula}
        if slug in SCALES:
            options["scale"] = SCALES[slug]
        fields.append({"slug": slug, "label": slug, "type": "formula", "options": options})
    return {"slug": "calc", "label": "Calc", "tables": [{"slug": "rows", "label": "Rows", "fields": fields}]}


@pytest.fixture
def values(rb: Recordbase) -> tuple[dict[str, Any], dict[str, Any]]:
    result = rb.install(definition(), SYSTEM)
    assert result.applied, result.problems
    rows = rb.records(SYSTEM, "calc", "rows")
    filled, empty = rows.create(FILLED), rows.create({})
    return rows.get(filled.id).fields, rows.get(empty.id).fields


def test_each_function_gives_these_values_on_both_databases(values: tuple[dict[str, Any], dict[str, Any]]) -> None:
    filled, empty = values
    got = {slug: (CASES[slug][0], filled[slug], empty[slug]) for slug in CASES}
    assert got == CASES  # one comparison: a failure lists every formula that differs


def test_today_and_now(values: tuple[dict[str, Any], dict[str, Any]]) -> None:
    filled, empty = values
    today = dt.datetime.now(dt.UTC).date()
    assert filled["days_dates"] == (today - dt.date(2026, 5, 1)).days
    assert empty["days_dates"] is None
    assert filled["now_year"] == empty["now_year"] == today.year
