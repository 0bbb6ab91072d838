"""Backups taken while writers run hold every acknowledged write, no clear personal value, and restore."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import pg_bin, run_cli
from recordbase import Actor, Recordbase
from recordbase.backup import BackupError, backup, restore
from test_serving import RECORDS, api, server_env, servers, start_server, stop_server, writer_app

__all__ = ["servers"]  # the fixture, imported to be used here

SYSTEM = Actor.system("test")
ID_NUMBER, PHONE = "110101199003071234", "13812345678"
APP = {"slug": "hr", "label": "HR", "tables": [{"slug": "staff", "label": "Staff", "fields": [
    {"slug": "name", "label": "Name", "type": "text"},
    {"slug": "phone", "label": "Phone", "type": "phone", "purpose": "Reach them."},
    {"slug": "id_number", "label": "ID number", "type": "text", "sensitivity": "sensitive", "purpose": "Tax."},
]}]}


def readable_text(rb: Recordbase, path: Path) -> bytes:
    """What the backup holds, as text an attacker could read (a pg_dump archive is decompressed first)."""
    if rb.dialect == "sqlite":
        return path.read_bytes()
    return subprocess.run([f"{pg_bin()}/pg_restore", "--file=-", str(path)], capture_output=True, check=True).stdout


def test_a_backup_taken_under_writes_has_every_acknowledged_write_and_restores(rb, tmp_path):
    rb.install(APP, SYSTEM)
    staff = rb.records(SYSTEM, "hr", "staff")
    staff.create_many([{"name": f"p{i}", "phone": PHONE, "id_number": ID_NUMBER} for i in range(50)])
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        store = rb.records(SYSTEM, "hr", "staff")
        while not stop.is_set():
            acknowledged.append(store.create({"name": "busy", "id_number": ID_NUMBER}).id)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(acknowledged) < 5:
            stop.wait(0.01)
        before = set(acknowledged)  # acknowledged before the backup began
        result = backup(rb, tmp_path / "backup.db", SYSTEM)
    finally:
        stop.set()
        thread.join()
    assert result.size > 0
    content = readable_text(rb, result.path)
    assert ID_NUMBER.encode() not in content and PHONE.encode() not in content
    assert b"v1:1:" in content  # the sealed values are there, the keys are not

    with rb.write() as conn:  # lose everything
        conn.execute(sa.delete(staff.table))
    rb.dispose()
    restore(rb.settings, result.path)
    again = Recordbase(rb.settings)
    try:
        again.init_db()
        ids = {r.id for r in again.records(SYSTEM, "hr", "staff").stream()}
        assert set(range(1, 51)) <= ids and before <= ids
        assert again.records(SYSTEM, "hr", "staff").get(1).fields["id_number"] == ID_NUMBER
        assert again.verify_audit()[1] is None
    finally:
        again.dispose()


def test_a_backup_never_overwrites_and_restore_refuses_what_is_not_a_backup(rb, tmp_path):
    taken = backup(rb, tmp_path / "one.db", SYSTEM).path
    with pytest.raises(BackupError, match="exists"):
        backup(rb, taken, SYSTEM)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError):
        restore(rb.settings, junk)
    with pytest.raises(BackupError, match="no backup at"):
        restore(rb.settings, tmp_path / "missing.db")


def test_backup_and_restore_from_the_command_line(cli, engine, tmp_path):
    engine.install(APP, SYSTEM)
    engine.records(SYSTEM, "hr", "staff").create({"name": "kept", "id_number": ID_NUMBER})
    target = tmp_path / "nightly.backup"
    made = cli("backup", str(target))
    assert made.code == 0, made.err
    assert made.out[0].startswith(f"wrote {target}") and "keys" in made.out[0]
    engine.records(SYSTEM, "hr", "staff").delete(1)
    engine.dispose()
    restored = cli("restore", str(target), "--yes")
    assert restored.code == 0, restored.err
    assert engine.records(SYSTEM, "hr", "staff").get(1).fields["name"] == "kept"
    assert cli("backup", str(target)).err == [f"error: {target} exists; give a new file name"]


def test_a_backup_from_the_command_line_while_a_multi_worker_server_takes_writes(rb, settings, servers, tmp_path):
    """The deployed case: gunicorn workers acknowledge creates while ``recordbase backup`` runs beside them."""
    token = writer_app(rb)
    env = server_env(settings)
    server = start_server(env, "--no-webhooks")
    servers.append(server)
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        while not stop.is_set():
            status, _, body = api(server, "POST", RECORDS, token, {"fields": {"name": f"writer {n}", "count": n}})
            assert status == 201, body
            acknowledged.append(body["id"])

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    try:
        while len(acknowledged) < 30 and all(t.is_alive() for t in threads):
            stop.wait(0.05)
        before = set(acknowledged)  # acknowledged before the backup began
        made = run_cli(("backup", str(tmp_path / "live.backup")), env, tmp_path)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert made.code == 0, made.err
    assert len(before) >= 30
    assert stop_server(server) == 0
    rb.dispose()

    restored = run_cli(("restore", str(tmp_path / "live.backup"), "--yes"), env, tmp_path)
    assert restored.code == 0, restored.err
    again = Recordbase(rb.settings)
    try:
        ids = {r.id for r in again.records(SYSTEM, "ops", "items").stream()}
        assert before <= ids  # writes acknowledged during the backup may or may not be in it
        assert again.verify_audit()[1] is None
        if again.dialect == "sqlite":
            with again.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    finally:
        again.dispose()


def test_an_interrupted_backup_leaves_no_file_that_looks_like_a_backup(rb, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    leftover = folder / ".nightly.db.partial"  # what a killed backup leaves behind
    leftover.write_bytes(b"half a backup")
    taken = backup(rb, folder / "nightly.db", SYSTEM)
    assert sorted(p.name for p in folder.iterdir()) == ["nightly.db"]
    assert taken.size == (folder / "nightly.db").stat().st_size > len(b"half a backup")
