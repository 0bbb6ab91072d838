"""Data key rotation: every sealed value moves to a new key, online, and nothing else changes."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from recordbase import Actor, Recordbase, Settings, ValidationError
from recordbase.crypto import KeyError_, KeyRing
from recordbase.keys import read_batch, reseal_batch, rotate, status, write_batch
from recordbase.trash import trash_table

SYSTEM = Actor.system("test")
PHONE, ID_NUMBER, EMAIL = "+8613812345678", "110101199003071234", "wang.fang@example.com"
DEFINITION = {
    "slug": "hr",
    "label": "HR",
    "tables": [{
        "slug": "staff",
        "label": "Staff",
        "fields": [
            {"slug": "name", "label": "Name", "type": "text", "sensitivity": "personal", "purpose": "Address the employee.", "encrypted": False},
            {"slug": "email", "label": "Email", "type": "email", "purpose": "Contact.", "unique": True},
            {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Contact."},
            {"slug": "id_number", "label": "ID number", "type": "text", "sensitivity": "sensitive", "purpose": "Tax filing."},
            {"slug": "salary", "label": "Salary", "type": "currency", "options": {"currency": "CNY"}, "sensitivity": "sensitive", "purpose": "Payroll."},
        ],
    }],
}
ENCRYPTED = ("email", "phone", "id_number", "salary")
ROWS = [
    {"name": "王芳", "email": EMAIL, "phone": "138 1234 5678", "id_number": ID_NUMBER, "salary": "18000.50"},
    {"name": "John", "email": "john@example.com", "phone": "+8613900001111", "id_number": "310101198001011111", "salary": 9000},
    {"name": "Empty", "email": "empty@example.com"},
]
SEALED_VALUES = 9  # non-empty encrypted values in ROWS


def fill(rb: Recordbase):
    rb.install(DEFINITION, SYSTEM)
    store = rb.records(SYSTEM, "hr", "staff")
    store.create_many(ROWS)
    return store


@pytest.fixture
def staff(rb):
    return fill(rb)


def raw_rows(rb, store) -> list[dict]:
    """Every stored column of the table, read with plain SQL."""
    with rb.read() as conn:
        return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {store.table.name} ORDER BY id")).mappings()]


def sealed(rb, store) -> list[str]:
    columns = [store.ts.fields[slug].column_name for slug in ENCRYPTED]
    return [row[c] for row in raw_rows(rb, store) for c in columns if row[c] is not None]


def reads(store) -> list[dict]:
    return [r.fields for r in store.query(page_size=100).records]


def audit_count(rb) -> int:
    return rb.verify_audit()[0]


# --- rotation itself ----------------------------------------------------------------------------


def test_rotation_reseals_every_value_and_changes_nothing_else(rb, staff):
    before, raw_before = reads(staff), raw_rows(rb, staff)
    assert all(v.startswith("v1:1:") for v in sealed(rb, staff))
    result = rotate(rb, batch=2)
    assert (result.added_key, result.key_id, result.reencrypted, result.trash, result.skipped, result.failed) == (True, 2, SEALED_VALUES, 0, 0, [])
    assert result.fields == {"hr.staff.email": 3, "hr.staff.phone": 2, "hr.staff.id_number": 2, "hr.staff.salary": 2}
    values = sealed(rb, staff)
    assert len(values) == SEALED_VALUES and all(v.startswith("v1:2:") for v in values)
    assert not any(v.startswith("v1:1:") for v in values)
    assert reads(rb.records(SYSTEM, "hr", "staff")) == before
    # Only the ciphertext moved: versions, timestamps, blind indexes and clear columns are as they were.
    sealed_columns = {staff.ts.fields[slug].column_name for slug in ENCRYPTED}
    for old, new in zip(raw_before, raw_rows(rb, staff), strict=True):
        assert {k: v for k, v in old.items() if k not in sealed_columns} == {k: v for k, v in new.items() if k not in sealed_columns}


def test_equality_filters_and_uniqueness_work_after_rotation(rb, staff):
    rotate(rb)
    store = rb.records(SYSTEM, "hr", "staff")

    def ids(flt):
        return [r.id for r in store.query(filter=flt).records]

    assert ids({"field": "phone", "op": "eq", "value": "13812345678"}) == [1]
    assert ids({"field": "email", "op": "in", "value": ["john@example.com", EMAIL]}) == [1, 2]
    assert ids({"field": "salary", "op": "eq", "value": "9000.00"}) == [2]
    assert ids({"field": "id_number", "op": "ne", "value": ID_NUMBER}) == [2, 3]
    with pytest.raises(ValidationError, match='"email" must be unique'):
        store.create({"name": "Dup", "email": EMAIL})
    newer = store.create({"name": "New", "email": "new@example.com", "phone": "+8613700000000"})
    assert ids({"field": "phone", "op": "eq", "value": "+8613700000000"}) == [newer.id]


def test_a_second_run_re_encrypts_nothing(rb, staff):
    rotate(rb)
    entries = audit_count(rb)
    again = rotate(rb, new_key=False)
    assert (again.added_key, again.key_id, again.total, again.skipped) == (False, 2, 0, 0)
    assert "nothing to re-encrypt" in again.message
    assert audit_count(rb) == entries  # a run that changed nothing leaves no entry
    assert sorted(rb.keys.data_keys) == [1, 2]
    assert status(rb)["pending"] == 0


def test_status_counts_values_per_key_field_and_trash(rb, staff):
    staff.delete(2)
    before = status(rb)
    assert (before["source"], before["key_ids"], before["primary"]) == ("file", [1], 1)
    assert {(r["table"], r["field"]): r["counts"] for r in before["fields"]} == {
        ("staff", "email"): {"1": 2}, ("staff", "phone"): {"1": 1}, ("staff", "id_number"): {"1": 1}, ("staff", "salary"): {"1": 1},
    }
    assert before["trash"] == [{"app": "hr", "table": "staff", "counts": {"1": 4}}]
    assert (before["totals"], before["pending"]) == ({"1": SEALED_VALUES}, 0)
    rb.keys.add_data_key()
    assert status(rb)["pending"] == SEALED_VALUES
    rotate(rb, new_key=False)
    after = status(rb)
    assert (after["key_ids"], after["primary"], after["totals"], after["pending"]) == ([1, 2], 2, {"1": 0, "2": SEALED_VALUES}, 0)
    assert after["trash"] == [{"app": "hr", "table": "staff", "counts": {"2": 4}}]


# --- a running server, the trash, the audit trail ---------------------------------------------------


def test_a_server_opened_before_the_rotation_keeps_reading_and_writes_under_the_new_key(rb, settings, staff):
    server = Recordbase(settings)  # as the web app would hold it, key 1 only
    writer = Recordbase(settings)  # another worker that only writes
    try:
        served = server.records(SYSTEM, "hr", "staff")
        assert served.get(1).fields["phone"] == PHONE
        writer.records(SYSTEM, "hr", "staff")  # schema cached, keys loaded
        assert sorted(server.keys.data_keys) == [1]
        rotate(rb)
        # Meeting a value under key 2, the server reads keys.json again and carries on.
        assert served.get(1).fields["phone"] == PHONE
        assert [r.id for r in served.query(filter={"field": "id_number", "op": "eq", "value": ID_NUMBER}).records] == [1]
        created = served.create({"name": "Li", "email": "li@example.com", "phone": "+8613600000000"})
        row = raw_rows(rb, staff)[created.id - 1]
        assert row[staff.ts.fields["phone"].column_name].startswith("v1:2:")
        # A worker that reads nothing notices the new keys.json within CHECK_SECONDS.
        time.sleep(KeyRing.CHECK_SECONDS + 0.1)
        other = writer.records(SYSTEM, "hr", "staff").create({"name": "Wu", "email": "wu@example.com"})
        assert raw_rows(rb, staff)[other.id - 1][staff.ts.fields["email"].column_name].startswith("v1:2:")
        assert rb.records(SYSTEM, "hr", "staff").get(other.id).fields["email"] == "wu@example.com"
    finally:
        server.dispose()
        writer.dispose()


def test_a_record_in_the_trash_is_resealed_and_restores_after_rotation(rb, staff):
    before = staff.get(2).fields
    staff.delete(2)
    result = rotate(rb)
    assert (result.reencrypted, result.trash) == (SEALED_VALUES - 4, 4)
    with rb.read() as conn:
        payload = conn.execute(sa.select(trash_table.c.payload).where(trash_table.c.record_id == 2)).scalar_one()
    kept = [payload["row"][staff.ts.fields[slug].column_name] for slug in ENCRYPTED]
    assert all(v.startswith("v1:2:") for v in kept)
    store = rb.records(SYSTEM, "hr", "staff")
    assert store.restore(2).fields == before
    assert store.get(2).fields == before
    assert all(v.startswith("v1:2:") for v in sealed(rb, store))


def test_the_audit_chain_still_verifies_and_keeps_its_values_under_key_1(rb, staff):
    staff.update(1, {"phone": "+8613900002222"}, version=1)
    rotate(rb)
    count, broken = rb.verify_audit()
    assert broken is None
    entries = rb.audit_entries(limit=100_000)
    assert len(entries) == count
    *old, last = entries
    trail = json.dumps([e["changes"] for e in old])
    assert "v1:1:" in trail and "v1:2:" not in trail  # untouched: rewriting them would break the chain
    assert (last["action"], last["actor_kind"], last["record_id"]) == ("keys_rotated", "system", None)
    assert last["changes"] == {"key": 2, "added_key": True, "reencrypted": SEALED_VALUES, "trash": 0, "skipped": 0, "failed": 0}
    # Old keys stay in the ring, so every sealed value of the trail still opens.
    assert sorted(rb.keys.data_keys) == [1, 2]


def test_keys_json_stays_private_and_keeps_every_key(rb, staff):
    path = rb.settings.instance_path / "keys.json"
    first = json.loads(path.read_text())
    rotate(rb)
    rotate(rb)
    after = json.loads(path.read_text())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(after["data_keys"], key=int) == ["1", "2", "3"]
    assert after["data_keys"]["1"] == first["data_keys"]["1"] and after["index_key"] == first["index_key"]
    assert not [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    assert all(v.startswith("v1:3:") for v in sealed(rb, staff))


# --- compare-and-set: a concurrent write is never overwritten ------------------------------------------


def test_a_value_changed_between_read_and_write_keeps_the_new_value(rb, settings, staff):
    rb.keys.add_data_key()
    ts = rb.app("hr").tables["staff"]
    rows = read_batch(rb, ts, 2, 0, 1)
    assert [r["id"] for r in rows] == [1]
    changes = reseal_batch(rb, ts, rows, 2, {})
    assert {c.field.slug for c in changes} == set(ENCRYPTED)
    # Someone else (another process) changes the phone of record 1 meanwhile.
    other = Recordbase(settings)
    try:
        other.records(SYSTEM, "hr", "staff").update(1, {"phone": "+8613911112222"}, version=1)
    finally:
        other.dispose()
    written, skipped = write_batch(rb, ts, changes)
    assert [c.field.slug for c in skipped] == ["phone"]
    assert {c.field.slug for c in written} == {"email", "id_number", "salary"}
    store = rb.records(SYSTEM, "hr", "staff")
    record = store.get(1)
    assert (record.fields["phone"], record.version) == ("+8613911112222", 2)
    rotate(rb, new_key=False)
    assert store.get(1).fields["phone"] == "+8613911112222"
    assert all(v.startswith("v1:2:") for v in sealed(rb, store))


def test_a_concurrent_update_during_a_batched_rotation_is_not_lost(rb, settings, staff):
    """rotate(batch=1) end to end; another engine updates record 1 right after its batch was read."""
    user = Recordbase(settings)  # opened before the rotation, like a running server
    user_store = user.records(SYSTEM, "hr", "staff")
    done: list[int] = []

    def interleave(conn, cursor, statement, parameters, context, executemany):
        if not done and "NOT LIKE" in statement.upper() and statement.lstrip().upper().startswith("SELECT"):
            done.append(1)  # once: the first batch (record 1) has been read, not yet written
            user_store.update(1, {"phone": "+8613933334444", "salary": 20000}, version=1)

    sa.event.listen(rb.engine, "after_cursor_execute", interleave)
    try:
        result = rotate(rb, batch=1)
    finally:
        sa.event.remove(rb.engine, "after_cursor_execute", interleave)
        user.dispose()
    assert done and result.skipped == 2
    store = rb.records(SYSTEM, "hr", "staff")
    record = store.get(1)
    assert (record.fields["phone"], str(record.fields["salary"]), record.version) == ("+8613933334444", "20000.00", 2)
    # Whatever key the other engine sealed its write with, the later sweep brought it to key 2.
    assert all(v.startswith("v1:2:") for v in sealed(rb, store))
    assert status(rb)["pending"] == 0


# --- keys from the environment ------------------------------------------------------------------------


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_keys_from_the_environment_are_rotated_to_the_highest_listed(tmp_path, database_url):
    k1, k2, index = _key(), _key(), _key()

    def engine(data_keys: str) -> Recordbase:
        env = {"RECORDBASE_DATA_KEYS": data_keys, "RECORDBASE_INDEX_KEY": index}
        settings = Settings.from_env(environ=env, instance_path=tmp_path / "instance", database_url=database_url, secret_key="x")
        assert settings.extra["RECORDBASE_DATA_KEYS"] == data_keys
        return Recordbase(settings)

    first = engine(f"1:{k1}")
    try:
        first.init_db()
        store = fill(first)
        before = reads(store)
        entries = audit_count(first)
        nothing = rotate(first)  # cannot add a key to the environment
        assert (nothing.source, nothing.added_key, nothing.key_id, nothing.total) == ("environment", False, 1, 0)
        assert "add a key with a higher id (2:<base64 32-byte key>) to RECORDBASE_DATA_KEYS" in nothing.message
        assert audit_count(first) == entries
        with pytest.raises(ValueError, match="RECORDBASE_DATA_KEYS"):
            first.keys.add_data_key()
    finally:
        first.dispose()
    second = engine(f"1:{k1},2:{k2}")
    try:
        result = rotate(second, batch=1)
        assert (result.added_key, result.key_id, result.reencrypted, result.failed) == (False, 2, SEALED_VALUES, [])
        store = second.records(SYSTEM, "hr", "staff")
        assert all(v.startswith("v1:2:") for v in sealed(second, store))
        assert reads(store) == before
        assert rotate(second).total == 0
        assert status(second)["source"] == "environment" and status(second)["path"] is None
    finally:
        second.dispose()
    assert not (tmp_path / "instance" / "keys.json").exists()


# --- the key ring on its own ----------------------------------------------------------------------------


def test_rings_on_one_keys_json_follow_each_other(tmp_path):
    a = KeyRing.load({}, tmp_path)
    b = KeyRing.load({}, tmp_path)
    assert a.add_data_key() == 2
    sealed_by_a = a.encrypt("hello", "1:f")
    assert sealed_by_a.startswith("v1:2:")
    assert b.decrypt(sealed_by_a, "1:f") == "hello"  # b reads keys.json again, once
    assert b.encrypt("x", "1:f").startswith("v1:2:") and b.primary == 2
    assert b.add_data_key() == 3  # b re-reads the file under its lock: no id is handed out twice
    assert a.decrypt(b.encrypt("y", "1:f"), "1:f") == "y"
    assert sorted(json.loads((tmp_path / "keys.json").read_text())["data_keys"], key=int) == ["1", "2", "3"]
    assert "key_ids=[1, 2, 3]" in repr(b) and a.index_key == b.index_key
    # A ring in a running process keeps its keys if the file goes away; a key it never had stays missing.
    (tmp_path / "keys.json").rename(tmp_path / "moved.json")
    with pytest.raises(KeyError_, match="no data key 9"):
        a.decrypt("v1:9:AAAA", "1:f")
    assert a.decrypt(sealed_by_a, "1:f") == "hello" and a.encrypt("z", "1:f").startswith("v1:3:")


# --- the command line -------------------------------------------------------------------------------------


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_keys_commands(cli, engine, instance: Path):
    store = fill(engine)
    status_text = cli("keys", "status")
    assert status_text.code == 0, status_text.err
    assert status_text.out[0] == f"data keys 1 from {instance.resolve() / 'keys.json'}; key 1 encrypts"
    assert "hr.staff.phone\tkey 1: 2" in status_text.out
    assert status_text.out[-2:] == [f"total\tkey 1: {SEALED_VALUES}", "every value is under the newest key"]
    done = cli("keys", "rotate", "--batch", "2")
    assert done.code == 0, done.err
    assert done.out[:2] == ["added data key 2", f"re-encrypted {SEALED_VALUES} value(s) to key 2 ({SEALED_VALUES} in records, 0 in the trash)"]
    assert "  hr.staff.email: 3" in done.out
    report = json.loads("\n".join(cli("keys", "status", "--format", "json").out))
    assert (report["primary"], report["totals"], report["pending"]) == (2, {"1": 0, "2": SEALED_VALUES}, 0)
    again = cli("keys", "rotate", "--no-new-key")
    assert again.code == 0 and again.out[-1] == "nothing to re-encrypt: every value is sealed under key 2"
    # The engine opened before the rotation reads what the command re-encrypted.
    assert store.get(1).fields["phone"] == PHONE
    assert stat.S_IMODE(os.stat(instance / "keys.json").st_mode) == 0o600
    assert cli("keys", "rotate", "--batch", "0").code != 0
