"""Crash safety: a server killed with SIGKILL keeps every acknowledged write and no half of an import.

A real ``recordbase serve --workers 2`` takes 1,000 creates through the REST
API from a signed-in session (each acknowledged with 201), then a 100,000-row
atomic CSV import with a token; while
the import is being written the whole process group gets SIGKILL. After a
restart the import is wholly absent, every acknowledged create is there with
its values, the audit chain is intact and (SQLite) the file passes
``integrity_check``. No timing is asserted: the test waits for the database
to show the import writing, not for a number of seconds.
"""

from __future__ import annotations

import http.client
import signal
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from recordbase.core import Recordbase
from test_serving import (
    HOST,
    RECORDS,
    SYSTEM,
    WRITER,
    api,
    browser_session,
    server_env,
    servers,
    start_server,
    stop_server,
    writer_app,
)

__all__ = ["servers"]  # the fixture, imported to be used here

IMPORT_ROWS = 100_000
CREATES = 1_000


def import_is_writing(rb: Recordbase, baseline_wal: int) -> bool:
    """Whether an import transaction has written rows that are not committed.

    SQLite: the write-ahead log has grown by megabytes (the transaction's pages
    spill there before it commits). PostgreSQL: another session holds a
    transaction id (it has written) and has been at it for a second.
    """
    if rb.dialect == "sqlite":
        wal = Path(f"{rb.engine.url.database}-wal")
        return wal.exists() and wal.stat().st_size > baseline_wal + 8 * 1024 * 1024
    with rb.engine.connect() as conn:
        return bool(conn.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_xid IS NOT NULL AND now() - xact_start > interval '1 second'"
        )).scalar())


def test_sigkill_during_an_import_keeps_acknowledged_creates_and_no_part_of_the_import(rb, settings, servers):
    token = writer_app(rb)
    env = server_env(settings)
    server = start_server(env, "--no-webhooks")
    servers.append(server)

    acknowledged: dict[int, str] = {}
    lock = threading.Lock()

    # The creates come from a signed-in page session (cookie and CSRF token), the import with the token.
    session = browser_session(server, *WRITER)

    def create(worker: int) -> None:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)  # keep-alive, as a browser would
        try:
            for n in range(CREATES // 8):
                name = f"w{worker}-{n}"
                status, _, body = api(server, "POST", RECORDS, body={"fields": {"name": name, "count": n}},
                                      headers=session, conn=conn)
                assert status == 201, body
                with lock:
                    acknowledged[body["id"]] = name
        finally:
            conn.close()

    threads = [threading.Thread(target=create, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acknowledged) == CREATES

    wal = Path(f"{rb.engine.url.database}-wal")
    baseline = wal.stat().st_size if wal.exists() else 0
    csv = "name,count\n" + "".join(f"imported {i},{i}\n" for i in range(IMPORT_ROWS))
    outcome: dict[str, Any] = {}

    def run_import() -> None:
        try:
            outcome["answer"] = api(server, "POST", RECORDS + "/import?mode=atomic", token, raw=csv.encode(),
                                    headers={"Content-Type": "text/csv"}, timeout=300)
        except OSError as exc:  # the server died under it: no answer, so nothing acknowledged
            outcome["error"] = exc

    importer = threading.Thread(target=run_import)
    importer.start()
    deadline = time.monotonic() + 120
    while not import_is_writing(rb, baseline) and importer.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert importer.is_alive() and "answer" not in outcome, f"the import finished before the server could be killed: {outcome}"
    stop_server(server, signal.SIGKILL)
    importer.join(30)
    assert "error" in outcome and "answer" not in outcome  # never acknowledged

    rb.dispose()  # forget pooled connections to the dead server's database state
    restarted = start_server(env, "--no-webhooks")
    servers.append(restarted)
    status, _, page = api(restarted, "GET", RECORDS + "?page_size=1", token)
    assert status == 200 and page["total"] == CREATES  # the import is wholly absent
    stored = {r.id: r.fields["name"] for r in rb.records(SYSTEM, "ops", "items").stream()}
    assert stored == acknowledged  # every acknowledged create, with its value
    assert rb.verify_audit()[1] is None
    if rb.dialect == "sqlite":
        with rb.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    assert stop_server(restarted) == 0
