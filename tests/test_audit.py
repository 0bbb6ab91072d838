"""The audit trail is a hash chain: tampering is detected and named; appends never fork it."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from recordbase import Actor
from recordbase.audit import GENESIS, verify_chain
from recordbase.core import MIGRATIONS

SYSTEM = Actor.system("test")
NOTES = {"slug": "notes", "label": "Notes", "tables": [{"slug": "notes", "label": "Notes", "fields": [
    {"slug": "title", "label": "Title", "type": "text"}]}]}


def busy(rb) -> None:
    rb.install(NOTES, SYSTEM)
    store = rb.records(SYSTEM, "notes", "notes")
    first = store.create({"title": "one"})
    store.create_many([{"title": f"n{i}"} for i in range(5)])
    store.update(first.id, {"title": "uno"}, version=1)
    store.delete(first.id)


def test_every_write_extends_an_intact_chain(rb):
    busy(rb)
    count, broken = rb.verify_audit()
    assert (count, broken) == (9, None)  # install, 1 + 5 creates, update, delete
    with rb.read() as conn:
        rows = conn.execute(sa.text("SELECT id, prev_hash, hash FROM rb_audit ORDER BY id")).all()
    assert rows[0][1] == GENESIS
    assert all(later[1] == earlier[2] for earlier, later in zip(rows, rows[1:], strict=False))


def test_a_changed_entry_is_named_as_the_first_break(rb):
    busy(rb)
    with rb.write() as conn:
        victim = conn.execute(sa.text("SELECT id FROM rb_audit WHERE action = 'update'")).scalar()
        conn.execute(sa.text("UPDATE rb_audit SET actor_name = 'someone else' WHERE id = :id"), {"id": victim})
    _, broken = rb.verify_audit()
    assert (broken.entry_id, broken.reason) == (victim, "its contents were changed after it was written")


def test_a_removed_entry_breaks_the_chain_at_the_next_one(rb):
    busy(rb)
    with rb.write() as conn:
        ids = list(conn.execute(sa.text("SELECT id FROM rb_audit ORDER BY id")).scalars())
        conn.execute(sa.text("DELETE FROM rb_audit WHERE id = :id"), {"id": ids[3]})
    _, broken = rb.verify_audit()
    assert broken.entry_id == ids[4]
    assert "does not follow the entry before it" in broken.reason


def test_concurrent_writers_never_chain_to_the_same_entry(rb):
    rb.install(NOTES, SYSTEM)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            store = rb.records(SYSTEM, "notes", "notes")
            for i in range(15):
                store.create({"title": f"w{n}-{i}"})
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert rb.verify_audit() == (61, None)


def test_entries_written_before_the_chain_existed_are_chained_by_the_migration(settings):
    from recordbase import Recordbase

    rb = Recordbase(settings)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with rb.engine.connect().execution_options(rb_write=True) as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0002")
            conn.execute(sa.text(
                "INSERT INTO rb_audit (at, actor_kind, actor_id, actor_name, action, changes) VALUES "
                "('2026-01-01 00:00:00', 'system', NULL, 'system:old', 'install', '{}'),"
                "('2026-01-02 00:00:00', 'system', NULL, 'system:old', 'install', '{\"v\": 2}')"
            ))
            conn.commit()
        rb.init_db()
        with rb.read() as conn:
            assert verify_chain(conn) is None
        rb.install(NOTES, SYSTEM)
        assert rb.verify_audit() == (3, None)
    finally:
        rb.dispose()


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_audit_verify_and_show_from_the_command_line(cli, engine):
    busy(engine)
    assert cli("audit", "verify").out == ["audit chain intact: 10 entries"]  # init's admin, then busy()
    shown = cli("audit", "show", "--app", "notes", "--record", "1")
    assert [line.split("\t")[3] for line in shown.out] == ["create", "update", "delete"]
    assert shown.out[1].split("\t")[2] == "system:test"
    with engine.write() as conn:
        victim = conn.execute(sa.text("SELECT id FROM rb_audit WHERE action = 'update'")).scalar()
        conn.execute(sa.text("UPDATE rb_audit SET changes = '{}' WHERE id = :id"), {"id": victim})
    broken = cli("audit", "verify")
    assert broken.code == 1
    assert broken.err == [f"error: audit entry {victim}: its contents were changed after it was written"]


PEOPLE = {"slug": "people", "label": "People", "tables": [{"slug": "people", "label": "People", "fields": [
    {"slug": "name", "label": "Name", "type": "text", "sensitivity": "personal", "purpose": "Address them.", "encrypted": False},
    {"slug": "city", "label": "City", "type": "text"}]}]}


def test_personal_values_are_sealed_in_the_trail_and_can_be_erased_without_breaking_it(rb):
    from recordbase.audit import erase_values

    rb.install(PEOPLE, SYSTEM)
    store = rb.records(SYSTEM, "people", "people")
    first = store.create({"name": "李雷", "city": "Hangzhou"})
    store.update(first.id, {"name": "李磊"}, version=1)
    with rb.read() as conn:
        trail = " ".join(str(c) for c in conn.execute(sa.text("SELECT changes FROM rb_audit")).scalars())
    assert "李" not in trail and "Hangzhou" in trail  # personal sealed, public in clear
    with rb.write() as conn:
        assert erase_values(conn, store.ts.pk, [first.id]) == 3  # created, then before and after
    with rb.read() as conn:
        trail = " ".join(str(c) for c in conn.execute(sa.text("SELECT changes FROM rb_audit")).scalars())
    assert "$sealed" not in trail and "$erased" in trail and "Hangzhou" in trail
    assert rb.verify_audit()[1] is None
    # Anything else changed in an entry still breaks the chain, erased values included.
    with rb.write() as conn:
        victim = conn.execute(sa.text("SELECT id FROM rb_audit WHERE action = 'update'")).scalar()
        conn.execute(sa.text("UPDATE rb_audit SET changes = :c WHERE id = :id"),
                     {"c": '{"fields": {}}', "id": victim})
    assert rb.verify_audit()[1].entry_id == victim


@pytest.mark.sqlite_only  # the command line only calls the engine, tested on both databases
def test_audit_show_answers_who_touched_a_field_of_a_record_when(cli, engine):
    engine.install(PEOPLE, SYSTEM)
    store = engine.records(SYSTEM, "people", "people")
    first = store.create({"name": "李雷", "city": "Hangzhou"})
    store.update(first.id, {"city": "Ningbo"}, version=1)
    store.update(first.id, {"name": "李磊"}, version=2)
    store.reveal(first.id, "name", "customer called to check")
    shown = cli("audit", "show", "--app", "people", "--table", "people", "--field", "name", "--record", str(first.id))
    assert shown.code == 0, shown.err
    assert [line.split("\t")[3] for line in shown.out] == ["create", "update", "reveal"]
    assert "李" not in "\n".join(shown.out) and "[sealed]" in shown.out[1]
    assert cli("audit", "show", "--app", "people", "--until", "2000-01-01").out == []
    assert cli("audit", "show", "--field", "name").err == ["error: --table and --field need --app"]


def _reference_canonical(entry) -> str:
    """The canonical form as first defined: serialise the digest form of the changes."""
    import datetime as dt
    import json

    from recordbase.audit import _HASHED, _digest_form

    fields = {key: entry[key] for key in _HASHED}
    fields["changes"] = _digest_form(fields["changes"])
    at = fields["at"]
    fields["at"] = at.astimezone(dt.UTC).isoformat(timespec="microseconds") if isinstance(at, dt.datetime) else at
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def test_the_fast_canonical_form_is_the_defined_one():
    import datetime as dt

    from hypothesis import given, settings
    from hypothesis import strategies as st
    from recordbase.audit import canonical_form

    text = st.text(alphabet=st.characters(codec="utf-8"), max_size=12) | st.sampled_from(['{"$sealed":"x"}', "$sealed", '"', "\\"])
    leaf = st.none() | st.booleans() | st.integers() | text
    sealed = st.builds(lambda v: {"$sealed": v}, st.from_regex(r"v1:[0-9]:[A-Za-z0-9_=-]{0,30}", fullmatch=True) | text | st.integers())
    erased = st.builds(lambda v: {"$erased": v}, st.from_regex(r"[0-9a-f]{64}", fullmatch=True) | st.integers())
    values = st.recursive(leaf | sealed | erased, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=12)

    @settings(max_examples=400, deadline=None)
    @given(values)
    def check(changes):
        entry = {"id": 1, "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "actor_kind": "user", "actor_id": 3,
                 "actor_name": "李雷", "action": "update", "app_id": 1, "table_id": 2, "record_id": 4, "changes": changes}
        assert canonical_form(entry) == _reference_canonical(entry)

    check()
