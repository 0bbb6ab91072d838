"""Personal values never reach an error message, a log line or a database error in clear."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa
from recordbase import Actor, ValidationError, fields
from recordbase.fields import Field, FieldValueError
from recordbase.fields.encrypted import ENCRYPTABLE

SYSTEM = Actor.system("test")
MARKER = "Zhang-San-13812345678"
OPTIONS: dict[str, dict[str, Any]] = {
    "currency": {"currency": "CNY"},
    "single_select": {"choices": [{"id": "a", "label": "A"}]},
    "multi_select": {"choices": [{"id": "a", "label": "A"}]},
    "text": {"max_length": 5},
}
#: Bad input, each carrying the marker somewhere a careless message would repeat it.
BAD_INPUTS = [MARKER, MARKER * 200, [MARKER], {"name": MARKER}, f"{MARKER}@", f"+86 {MARKER}", f"2024-13-45 {MARKER}"]


def make_field(name: str) -> Field:
    definition = {"slug": "x", "type": name, "options": OPTIONS.get(name, {})}
    return Field(pk=1, uid="fld1", slug="x", type=fields.get(name), definition=definition, table_pk=1)


@pytest.mark.parametrize("name", sorted(fields.all_types()))
def test_no_field_type_repeats_a_bad_value_in_its_error(name):
    f = make_field(name)
    for bad in BAD_INPUTS:
        try:
            f.type.parse(f, bad)
        except FieldValueError as exc:
            assert MARKER not in str(exc), (name, str(exc))
            assert "Zhang" not in str(exc)
        if name in ENCRYPTABLE or f.type.searchable:
            for op in sorted(f.type.operators):
                try:
                    f.type.parse_filter_value(f, op, bad)
                except FieldValueError as exc:
                    assert "Zhang" not in str(exc), (name, op, str(exc))


PEOPLE = {"slug": "people", "label": "People", "tables": [{"slug": "people", "label": "People", "fields": [
    {"slug": "name", "label": "Name", "type": "text", "sensitivity": "personal", "purpose": "Address them.",
     "encrypted": False, "unique": True, "options": {"max_length": 40}},
    {"slug": "phone", "label": "Phone", "type": "phone", "unique": True, "purpose": "Call them."},
    {"slug": "born", "label": "Born", "type": "date", "sensitivity": "sensitive", "purpose": "Age checks."},
]}]}


def test_record_errors_and_logs_keep_personal_values_out(rb, caplog):
    rb.install(PEOPLE, SYSTEM)
    store = rb.records(SYSTEM, "people", "people")
    store.create({"name": "Zhang San", "phone": "+8613812345678"})
    caplog.set_level(logging.DEBUG)
    attempts = [
        {"name": "Zhang San"},  # unique name taken
        {"name": "Zhang San" * 10},  # too long
        {"phone": "13812345678"},  # unique phone taken (through the blind index)
        {"phone": "Zhang San 138"},  # not a phone number
        {"born": "Zhang San 1990"},  # not a date
    ]
    for values in attempts:
        with pytest.raises(ValidationError) as refused:
            store.create(values)
        told = str(refused.value) + " ".join(p.message for p in refused.value.problems)
        assert "Zhang" not in told and "13812345678" not in told, told
    assert "Zhang" not in caplog.text and "13812345678" not in caplog.text


def test_database_errors_never_carry_bound_values(rb):
    rb.install(PEOPLE, SYSTEM)
    name = rb.app("people").tables["people"].name
    with pytest.raises(sa.exc.DBAPIError) as failed, rb.write() as conn:
        conn.execute(sa.text(f"INSERT INTO {name} (id, version, created_at, updated_at, nonexistent) VALUES (1, 1, :a, :a, :secret)"),
                     {"a": "2024-01-01", "secret": MARKER})
    assert MARKER not in str(failed.value)
