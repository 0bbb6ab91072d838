"""Personal and sensitive values are encrypted at rest; equality still works through blind indexes."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from recordbase import Actor, QueryError, Recordbase, Settings, ValidationError

SYSTEM = Actor.system("test")
PHONE, ID_NUMBER, EMAIL = "+8613812345678", "110101199003071234", "wang.fang@example.com"
DEFINITION = {
    "slug": "hr",
    "label": "HR",
    "tables": [{
        "slug": "staff",
        "label": "Staff",
        "consent": {"purposes": ["employment"], "text": "Your data for your contract.", "version": 1},
        "fields": [
            {"slug": "name", "label": "Name", "type": "text", "sensitivity": "personal", "purpose": "Address the employee.", "encrypted": False},
            {"slug": "email", "label": "Email", "type": "email", "purpose": "Contact.", "unique": True},
            {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Contact."},
            {"slug": "id_number", "label": "ID number", "type": "text", "sensitivity": "sensitive", "purpose": "Tax filing."},
            {"slug": "salary", "label": "Salary", "type": "currency", "options": {"currency": "CNY"}, "sensitivity": "sensitive", "purpose": "Payroll."},
            {"slug": "notes", "label": "Notes", "type": "long_text"},
        ],
    }],
}


@pytest.fixture
def staff(rb):
    rb.install(DEFINITION, SYSTEM)
    store = rb.records(SYSTEM, "hr", "staff")
    store.create_many([
        {"name": "王芳", "email": EMAIL, "phone": "138 1234 5678", "id_number": ID_NUMBER, "salary": "18000.50", "notes": "joined 2024"},
        {"name": "John", "email": "john@example.com", "phone": "+8613900001111", "id_number": "310101198001011111", "salary": 9000},
        {"name": "Empty", "email": "empty@example.com"},
    ])
    return store


def raw_values(rb, store, slug: str) -> list[str | None]:
    f = store.ts.fields[slug]
    with rb.read() as conn:
        return list(conn.execute(sa.select(store.table.c[f.column_name]).order_by(store.table.c.id)).scalars())


def test_the_engine_reads_back_what_it_sealed(staff):
    first = staff.get(1).fields
    assert (first["phone"], first["id_number"], str(first["salary"]), first["email"]) == (PHONE, ID_NUMBER, "18000.50", EMAIL)
    assert staff.get(3).fields["phone"] is None


def test_no_clear_value_reaches_the_table_or_its_search_index(rb, staff):
    for slug in ("email", "phone", "id_number", "salary"):
        stored = raw_values(rb, staff, slug)
        assert all(v is None or v.startswith("v1:1:") for v in stored), slug
    assert raw_values(rb, staff, "name")[0] == "王芳"  # encrypted: false, as declared
    with rb.read() as conn:
        bodies = " ".join(conn.execute(sa.text(f"SELECT body FROM {staff.table.name}_search")).scalars())
    assert "13812345678" not in bodies and ID_NUMBER not in bodies and "wang.fang" not in bodies
    assert "王芳" in bodies and "joined" in bodies
    with rb.read() as conn:
        trail = " ".join(str(c) for c in conn.execute(sa.text("SELECT changes FROM rb_audit")).scalars())
    assert "13812345678" not in trail and ID_NUMBER not in trail and "18000" not in trail
    assert "v1:1:" in trail  # the audit keeps the sealed value, as the table does


def test_the_sqlite_file_itself_holds_no_clear_personal_value(rb, staff):
    if rb.dialect != "sqlite":
        pytest.skip(reason="reads the SQLite database file; PostgreSQL is checked column by column above")
    rb.dispose()  # checkpoint and close, so everything is in the files
    database = Path(rb.engine.url.database)
    content = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    for clear in (b"13812345678", ID_NUMBER.encode(), b"wang.fang", b"18000"):
        assert clear not in content
    assert "王芳".encode() in content


def test_equality_filters_work_through_the_blind_index(staff):
    def ids(flt):
        return [r.id for r in staff.query(filter=flt).records]

    assert ids({"field": "phone", "op": "eq", "value": "13812345678"}) == [1]
    assert ids({"field": "email", "op": "in", "value": ["john@example.com", EMAIL]}) == [1, 2]
    assert ids({"field": "id_number", "op": "ne", "value": ID_NUMBER}) == [2, 3]
    assert ids({"field": "salary", "op": "eq", "value": "9000.00"}) == [2]
    assert ids({"field": "phone", "op": "is_empty"}) == [3]
    assert staff.count({"field": "phone", "op": "not_in", "value": ["+8613900001111"]}) == 2


def test_order_ranges_and_substrings_of_encrypted_fields_are_refused_by_name(staff):
    for flt in ({"field": "salary", "op": "gt", "value": 1}, {"field": "phone", "op": "contains", "value": "138"}):
        with pytest.raises(QueryError) as excinfo:
            staff.query(filter=flt)
        assert [p.pointer for p in excinfo.value.problems] == ["/filter/op"]
    with pytest.raises(QueryError, match='cannot sort by "salary": it is encrypted'):
        staff.query(sort=["-salary"])
    assert [r.id for r in staff.query(search="13812345678").records] == []


def test_uniqueness_of_an_encrypted_field_holds_through_the_blind_index(staff):
    with pytest.raises(ValidationError) as excinfo:
        staff.create({"name": "Dup", "email": EMAIL})
    assert excinfo.value.problems[0].message == '"email" must be unique; another record has this value'


def test_switching_encryption_off_and_on_converts_every_value(rb, staff):
    clear = {**DEFINITION, "tables": [{**DEFINITION["tables"][0], "fields": [
        {**f, "encrypted": False} if f["slug"] == "phone" else f for f in DEFINITION["tables"][0]["fields"]]}]}
    assert "convert field staff.phone: phone → phone (encryption changes)" in rb.install(clear, SYSTEM).plan.describe()
    store = rb.records(SYSTEM, "hr", "staff")
    assert raw_values(rb, store, "phone") == [PHONE, "+8613900001111", None]
    rb.install(DEFINITION, SYSTEM)
    store = rb.records(SYSTEM, "hr", "staff")
    assert all(v is None or v.startswith("v1:") for v in raw_values(rb, store, "phone"))
    assert store.get(1).fields["phone"] == PHONE


def test_keys_live_in_a_private_file_or_come_from_the_environment(tmp_path, database_url):
    settings = Settings.from_env(environ={}, instance_path=tmp_path / "a", database_url=database_url, secret_key="x")
    rb = Recordbase(settings)
    keys_file = settings.instance_path / "keys.json"
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    rb.dispose()
    k1, k2, index = (base64.urlsafe_b64encode(os.urandom(32)).decode() for _ in range(3))
    env = {"RECORDBASE_DATA_KEYS": f"1:{k1}", "RECORDBASE_INDEX_KEY": index}
    first = Recordbase(Settings.from_env(environ=env, instance_path=tmp_path / "b", database_url=database_url, secret_key="x"))
    first.init_db()
    first.install(DEFINITION, SYSTEM)
    first.records(SYSTEM, "hr", "staff").create({"name": "A", "email": EMAIL, "phone": PHONE})
    first.dispose()
    assert not (tmp_path / "b" / "keys.json").exists()
    # A second key encrypts new values; values sealed with the first still open.
    env2 = {"RECORDBASE_DATA_KEYS": f"1:{k1},2:{k2}", "RECORDBASE_INDEX_KEY": index}
    second = Recordbase(Settings.from_env(environ=env2, instance_path=tmp_path / "b", database_url=database_url, secret_key="x"))
    try:
        store = second.records(SYSTEM, "hr", "staff")
        newer = store.create({"name": "B", "email": "b@example.com", "phone": "+8613900001111"})
        assert store.get(1).fields["phone"] == PHONE
        assert raw_values(second, store, "phone")[newer.id - 1].startswith("v1:2:")
        assert [r.id for r in store.query(filter={"field": "email", "op": "eq", "value": EMAIL}).records] == [1]
    finally:
        second.dispose()
