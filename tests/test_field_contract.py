"""The contract every registered field type keeps, checked for each one.

For every type: a sample survives parse → store → load → CSV text → parse
unchanged; the mask never shows the clear value; every operator the type
declares compiles on SQLite and PostgreSQL; the JSON schema is valid and
accepts the type's own JSON values.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa
from faker import Faker
from jsonschema import Draft202012Validator
from recordbase import fields
from recordbase.fields import Field, FilterContext
from recordbase.fields.base import EMPTY_OPS, RELATIVE_DATE_OPS
from recordbase.schema import system_columns
from sqlalchemy.dialects import postgresql, sqlite

# These types cannot make a sample on their own (the value points at another
# row, an uploaded file, or is set by the engine): they are checked on fixed
# stored values instead. Whether pointed-at rows exist is the record store's
# job, tested against a database in test_records.py.
STORED_EXAMPLES: dict[str, list[Any]] = {
    "link": [7, 12],
    "user": [3, 1],
    "attachment": [json.dumps([{"sha256": "ab" * 32, "name": "合同.pdf", "size": 2048, "content_type": "application/pdf"}])],
    "autonumber": [123, 7],
    "created_at": [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)],
    "updated_at": [dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)],
    "created_by": [4],
    "updated_by": [4],
}
READ_ONLY = {"autonumber", "created_at", "created_by", "updated_at", "updated_by"}

# Options a type cannot do without; other types get none.
OPTIONS: dict[str, dict[str, Any]] = {
    "currency": {"currency": "CNY"},
    "single_select": {
        "choices": [
            {"id": "lead", "label": {"en": "Lead", "zh-CN": "线索"}},
            {"id": "won", "label": "Won, finally"},
            {"id": "lost", "label": "Lost"},
        ]
    },
    "multi_select": {
        "choices": [
            {"id": "red", "label": {"en": "Red", "zh-CN": "红"}},
            {"id": "green", "label": "Green"},
            {"id": "blue", "label": "Blue, dark"},
        ]
    },
}
DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect()}
LOCALES = ["zh_CN", "en_US"]
SEEDS = range(5)
NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)


# Computed types (formula, lookup, rollup) only exist within a table they compute
# from: their contract is tested against real tables in test_computed.py.
TYPES = sorted(name for name, t in fields.all_types().items() if not getattr(t, "computed", False))


def make_field(name: str) -> Field:
    definition = {"slug": "x", "type": name, "options": OPTIONS.get(name, {})}
    return Field(pk=1, uid="fld1", slug="x", type=fields.get(name), definition=definition, table_pk=1)


def samples(f: Field) -> list[Any]:
    """Values as the engine returns them: samples, or loaded fixed stored values."""
    if f.type.name in STORED_EXAMPLES:
        return [f.type.from_db(f, raw) for raw in STORED_EXAMPLES[f.type.name]]
    values = []
    for locale in LOCALES:
        for seed in SEEDS:
            fake = Faker(locale)
            fake.seed_instance(seed)
            values.append(f.type.sample(f, fake))
    return values


@pytest.mark.parametrize("name", TYPES)
def test_values_round_trip(name: str) -> None:
    f = make_field(name)
    t = f.type
    if name in READ_ONLY:
        for raw in STORED_EXAMPLES[name]:
            loaded = t.from_db(f, raw)
            assert isinstance(t.to_text(f, loaded), str) and t.to_text(f, loaded)
            with pytest.raises(fields.FieldValueError):
                t.parse(f, t.json_value(f, loaded))  # set by Recordbase, never by a caller
        return
    for value in samples(f):
        parsed = t.parse(f, value)
        loaded = t.from_db(f, t.to_db(f, parsed))
        assert loaded == parsed
        text = t.to_text(f, loaded)
        assert isinstance(text, str)
        assert t.parse(f, t.from_text(f, text)) == parsed
        assert t.parse(f, t.json_value(f, loaded)) == parsed
    assert t.parse(f, None) is None
    assert t.to_text(f, None) == ""
    assert t.mask(f, None) is None


@pytest.mark.parametrize("name", TYPES)
def test_mask_never_shows_the_clear_value(name: str) -> None:
    f = make_field(name)
    t = f.type
    for value in samples(f):
        if value is None:
            continue
        masked = t.mask(f, value)
        assert masked is not None
        assert masked != value
        assert masked != t.json_value(f, value)
        text = t.to_text(f, value)
        if len(text) > 3:  # one or two characters may survive a partial mask
            assert text not in str(masked)
            assert masked != text


def operand(op: str, value: Any) -> Any:
    """A filter value for ``op``, built from a sample, as a caller would write it."""
    if op in ("last_n_days", "next_n_days"):
        return 3
    if op in RELATIVE_DATE_OPS:
        return None
    if op in ("in", "not_in"):
        return value if isinstance(value, list) else [value]
    if op == "between":
        return [value, value]
    return value


@pytest.mark.parametrize("name", TYPES)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_operator_compiles(name: str, dialect: str) -> None:
    f = make_field(name)
    t = f.type
    value = next(v for v in samples(f) if v is not None)
    columns = [c for c in system_columns() if c.name != "id"] + ([] if t.system else t.columns(f))
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True), *columns)
    col = t.column(f, table)
    column_name = t.column_name if t.system else f.column_name  # type: ignore[attr-defined]
    ctx = FilterContext(now=NOW, dialect=dialect)
    assert t.operators, f"{name} declares no operators"
    for op in sorted(t.operators):
        # Emptiness tests take no value, so they skip parse_filter_value.
        parsed = None if op in EMPTY_OPS else t.parse_filter_value(f, op, operand(op, t.json_value(f, value)))
        stmt = sa.select(table.c.id).where(t.filter(f, col, op, parsed, ctx)).order_by(t.sort_expression(f, col))
        sql = str(stmt.compile(dialect=DIALECTS[dialect]))
        assert f"t.{column_name}" in sql.split("WHERE", 1)[1], f"{name} {op}: {sql}"


@pytest.mark.parametrize("name", TYPES)
def test_json_schema_is_valid_and_accepts_json_values(name: str) -> None:
    f = make_field(name)
    schema = f.type.json_schema(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for value in samples(f):
        validator.validate(f.type.json_value(f, value))
    if not f.type.system:
        validator.validate(None)  # a field that is not required may be empty
