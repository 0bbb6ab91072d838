"""Load test: concurrent REST API clients against ``recordbase serve --workers N`` on loopback.

Starts its own server (gunicorn, ``--workers`` processes) on a free port of
127.0.0.1 on a throwaway instance — a temporary SQLite file, a throwaway
PostgreSQL (``--postgres``, pgserver) or a database you give — then runs two
phases, each bounded in time and in requests:

1. **mixed** — ``--clients`` threads, each with its own token, for
   ``--duration`` seconds: create a record, change one of its own records
   with ``If-Match``, read it back. At the end every record is read again and
   must hold exactly what its client was last told (a lost update otherwise).
2. **counter** — the same clients each add 1 to one shared counter
   ``--increments`` times with a conditional PATCH, retrying on 412 with the
   current version the 412 carries. The counter must end at exactly
   clients × increments.

Prints throughput, p50/p95/p99 latency, 5xx answers, "database is locked"
reaching a client, other errors and lost updates per phase, then checks the
audit chain. Exits 1 when any requirement fails (any 5xx, any "locked", any
lost update, a wrong counter, a broken audit chain).

    .venv/bin/python bench/load.py                          # 50 clients, 60 s, 4 workers, SQLite
    .venv/bin/python bench/load.py --postgres               # the same on a throwaway PostgreSQL
    .venv/bin/python bench/load.py --clients 10 --duration 10 --increments 20   # a quick look
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from processes import HOST, free_port, serve_command, stop_process

TABLE = "/api/v1/apps/load/tables/items/records"
APP = {
    "slug": "load",
    "label": "Load test",
    "tables": [
        {
            "slug": "items",
            "label": "Items",
            "fields": [
                {"slug": "name", "label": "Name", "type": "text"},
                {"slug": "count", "label": "Count", "type": "number"},
                {"slug": "notes", "label": "Notes", "type": "long_text"},
            ],
            "permissions": {
                "writer": {"create": True, "read": True, "update": True, "rows": "all"}
            },
        }
    ],
    "roles": [{"slug": "writer", "label": "Writer", "clearance": ["public", "internal"]}],
}


@dataclass
class Tally:
    """What one client saw: latencies (s) and answers."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    locked: int = 0
    connection_errors: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.locked += other.locked
        self.connection_errors += other.connection_errors
        self.errors += other.errors[:5]


class Client:
    """One keep-alive HTTP connection with a bearer token; every call timed and tallied."""

    def __init__(self, port: int, token: str, tally: Tally) -> None:
        self.port, self.token, self.tally = port, token, tally
        self.conn: http.client.HTTPConnection | None = None

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = None if body is None else json.dumps(body).encode()
        sent = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        start = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
            self.conn.request(method, path, body=data, headers=sent)
            response = self.conn.getresponse()
            raw = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            self.tally.connection_errors += 1
            self.tally.errors.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return 0, {}
        self.tally.latencies.append(time.perf_counter() - start)
        self.tally.statuses[status] += 1
        if b"locked" in raw.lower():
            self.tally.locked += 1
        if status >= 500:
            self.tally.errors.append(f"{method} {path}: {status} {raw[:200]!r}")
        try:
            return status, json.loads(raw) if raw else {}
        except ValueError:
            return status, {}


def number(value: Any) -> int:
    """A number field's value as the API gives it (a JSON number or a decimal string)."""
    return int(Decimal(str(value)))


# --- setting up the server ------------------------------------------------------------------


def prepare(env: dict[str, str], clients: int) -> list[str]:
    """Install the app, add a writer and one token per client (in this process, through the engine)."""
    from recordbase import Actor, Recordbase
    from recordbase.config import Settings

    system = Actor.system("load-test")
    rb = Recordbase(Settings.from_env(environ=env))
    try:
        rb.init_db()
        if any(app["slug"] == "load" for app in rb.list_apps()):
            sys.exit("error: the database already has a 'load' app; give a throwaway database")
        rb.install(APP, system)
        rb.create_user(system, "writer@example.org", "load-test-password", display_name="Writer")
        rb.set_roles(system, "writer@example.org", "load", ["writer"])
        return [
            rb.create_token(system, "writer@example.org", name=f"client {i}")[1]
            for i in range(clients)
        ]
    finally:
        rb.dispose()


def start_server(
    env: dict[str, str], port: int, workers: int, threads: int
) -> subprocess.Popen[bytes]:
    log = open(Path(env["RECORDBASE_INSTANCE_PATH"]) / "server.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        serve_command(port, workers, threads),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"error: the server exited ({server.returncode}); see {log.name}")
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    stop_process(server)
    sys.exit("error: the server did not answer /healthz within 60 s")


# --- the phases -------------------------------------------------------------------------------


def mixed_phase(
    port: int, tokens: list[str], duration: float, max_requests: int
) -> tuple[Tally, float, int, int]:
    """Create, update, read for ``duration`` s; returns the tally, elapsed time, records checked, lost updates."""
    tallies = [Tally() for _ in tokens]
    known: list[dict[int, tuple[int, int]]] = [
        {} for _ in tokens
    ]  # id -> (count, version) as last acknowledged
    per_client = max(1, max_requests // len(tokens))
    deadline = time.monotonic() + duration

    def work(i: int) -> None:
        client, mine, rng = Client(port, tokens[i], tallies[i]), known[i], random.Random(i)
        calls = 0
        while time.monotonic() < deadline and calls < per_client:
            status, body = client.call(
                "POST",
                TABLE,
                {
                    "fields": {
                        "name": f"client {i} #{calls}",
                        "count": 0,
                        "notes": "负载测试 load test",
                    }
                },
            )
            calls += 1
            if status == 201:
                mine[body["id"]] = (0, body["version"])
            if not mine:
                continue
            rid = rng.choice(list(mine))
            count, version = mine[rid]
            status, body = client.call(
                "PATCH",
                f"{TABLE}/{rid}",
                {"fields": {"count": count + 1}},
                {"If-Match": f'"{version}"'},
            )
            calls += 1
            if status == 200:
                mine[rid] = (count + 1, body["version"])
            client.call("GET", f"{TABLE}/{rid}")
            calls += 1

    started = time.monotonic()
    run_threads(work, len(tokens))
    elapsed = time.monotonic() - started
    # Every record must hold what its client was last told: nobody else writes it.
    checker, lost, checked = Client(port, tokens[0], Tally()), 0, 0
    for mine in known:
        for rid, (count, version) in mine.items():
            status, body = checker.call("GET", f"{TABLE}/{rid}")
            checked += 1
            if (
                status != 200
                or number(body["fields"]["count"]) != count
                or body["version"] != version
            ):
                lost += 1
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, elapsed, checked, lost


def counter_phase(
    port: int, tokens: list[str], increments: int, timeout: float, max_requests: int
) -> tuple[Tally, float, int, int, int]:
    """Each client adds 1 to one counter ``increments`` times (conditional PATCH, retry on 412).

    Returns the tally, elapsed time, increments acknowledged, retries (412s) and the final counter.
    """
    setup = Client(port, tokens[0], Tally())
    status, body = setup.call("POST", TABLE, {"fields": {"name": "counter", "count": 0}})
    if status != 201:
        sys.exit(f"error: cannot create the counter ({status} {body})")
    counter = f"{TABLE}/{body['id']}"
    tallies = [Tally() for _ in tokens]
    done = [0] * len(tokens)
    retries = [0] * len(tokens)
    per_client = max(1, max_requests // len(tokens))
    deadline = time.monotonic() + timeout

    def work(i: int) -> None:
        client, rng, calls = Client(port, tokens[i], tallies[i]), random.Random(1000 + i), 0
        status, current = client.call("GET", counter)
        calls += 1
        misses = 0
        while done[i] < increments and time.monotonic() < deadline and calls < per_client:
            if status not in (200, 412) or not current.get("fields"):
                status, current = client.call("GET", counter)
                calls += 1
                continue
            value, version = number(current["fields"]["count"]), current["version"]
            status, answer = client.call(
                "PATCH", counter, {"fields": {"count": value + 1}}, {"If-Match": f'"{version}"'}
            )
            calls += 1
            if status == 200:
                done[i] += 1
                misses = 0
                current = answer
            elif status == 412:
                retries[i] += 1
                misses += 1
                current = answer.get("current") or {}
                # Jittered exponential backoff in units of the last answer's time, so 50 clients
                # racing for one row spread out instead of all retrying at once (each retry costs
                # the server a request).
                time.sleep(
                    rng.uniform(0, min(2.0, client.tally.latencies[-1] * 2 ** min(misses, 6)))
                )

    started = time.monotonic()
    finished = threading.Event()

    def progress() -> None:
        while not finished.wait(15):
            print(
                f"  counter: {sum(done):,} of {len(tokens) * increments:,} increments, {sum(retries):,} retries, "
                f"{time.monotonic() - started:.0f} s",
                file=sys.stderr,
            )

    threading.Thread(target=progress, daemon=True).start()
    run_threads(work, len(tokens))
    finished.set()
    elapsed = time.monotonic() - started
    status, body = Client(port, tokens[0], Tally()).call(
        "GET", counter
    )  # a fresh connection: the first one idled out
    final = number(body["fields"]["count"]) if status == 200 else -1
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, elapsed, sum(done), sum(retries), final


def run_threads(target: Any, n: int) -> None:
    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


# --- reporting --------------------------------------------------------------------------------


def summary(name: str, tally: Tally, elapsed: float, **extra: Any) -> dict[str, Any]:
    lat = sorted(tally.latencies)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [0.0] * 99
    return {
        "phase": name,
        "requests": len(lat),
        "seconds": round(elapsed, 1),
        "requests_per_s": round(len(lat) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(q[49] * 1000, 1),
        "p95_ms": round(q[94] * 1000, 1),
        "p99_ms": round(q[98] * 1000, 1),
        "statuses": dict(sorted(tally.statuses.items())),
        "server_errors": sum(n for s, n in tally.statuses.items() if s >= 500),
        "locked": tally.locked,
        "connection_errors": tally.connection_errors,
        "first_errors": tally.errors[:5],
        **extra,
    }


def print_table(rows: list[dict[str, Any]], title: str, file: Any = None) -> None:
    out = file or sys.stdout
    print(f"\n{title}\n", file=out)
    print(
        "| phase | requests | req/s | p50 | p95 | p99 | 5xx | locked | other errors | answers | result |",
        file=out,
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|", file=out)
    for r in rows:
        answers = ", ".join(f"{s}: {n}" for s, n in r["statuses"].items())
        print(
            f"| {r['phase']} | {r['requests']:,} | {r['requests_per_s']:,} | {r['p50_ms']} ms | {r['p95_ms']} ms "
            f"| {r['p99_ms']} ms | {r['server_errors']} | {r['locked']} | {r['connection_errors']} | {answers} | {r['result']} |",
            file=out,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of the mixed phase")
    parser.add_argument("--increments", type=int, default=200, help="counter increments per client")
    parser.add_argument(
        "--counter-timeout",
        type=float,
        default=600.0,
        help="seconds the counter phase may take at most",
    )
    parser.add_argument(
        "--max-requests", type=int, default=2_000_000, help="requests per phase at most"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a throwaway database (default: a temporary SQLite file)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a throwaway PostgreSQL (pgserver) for the run",
    )
    parser.add_argument("--out", default=None, help="also write the results as JSON")
    args = parser.parse_args(argv)
    # Stopped from outside: unwind through the finally blocks, which stop the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="recordbase-load-") as scratch, ExitStack() as cleanup:
        url = args.database_url
        if args.postgres:
            import pgserver  # a test dependency

            pg = pgserver.get_server(Path(scratch) / "pgdata", cleanup_mode="stop")
            cleanup.callback(pg.cleanup)
            url = pg.get_uri()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDBASE_")}
        env.update(
            {
                "RECORDBASE_INSTANCE_PATH": str(Path(scratch) / "instance"),
                "RECORDBASE_SECRET_KEY": "load-test",
                # Every client shares 127.0.0.1: lift the per-address and per-token API limits for the run.
                "RECORDBASE_RATE_LIMIT": "10000000/minute",
                "RECORDBASE_RATE_LIMIT_IP": "10000000/minute",
            }
        )
        if url:
            env["RECORDBASE_DATABASE_URL"] = url
        Path(env["RECORDBASE_INSTANCE_PATH"]).mkdir()
        tokens = prepare(env, args.clients)
        port = free_port()
        server = start_server(env, port, args.workers, args.threads)
        database = "PostgreSQL" if url and "postgres" in url else "SQLite"
        print(
            f"{database}, {args.workers} workers × {args.threads} threads, {args.clients} clients, "
            f"http://{HOST}:{port}",
            file=sys.stderr,
        )
        try:
            tally, elapsed, checked, lost = mixed_phase(
                port, tokens, args.duration, args.max_requests
            )
            mixed = summary(
                "mixed: create, update (If-Match), read",
                tally,
                elapsed,
                records_checked=checked,
                lost_updates=lost,
            )
            mixed_ok = not (
                mixed["server_errors"] or mixed["locked"] or mixed["connection_errors"] or lost
            )
            mixed["result"] = "ok" if mixed_ok else f"FAILED ({lost} lost updates)"
            print_table(
                [mixed], "mixed phase", file=sys.stderr
            )  # now, in case the counter phase is cut short
            tally, elapsed, acknowledged, retries, final = counter_phase(
                port, tokens, args.increments, args.counter_timeout, args.max_requests
            )
            expected = args.clients * args.increments
            counter = summary(
                f"counter: {args.clients} × {args.increments} conditional increments",
                tally,
                elapsed,
                acknowledged=acknowledged,
                retries_412=retries,
                final=final,
                expected=expected,
            )
        finally:
            stop_process(server)
        from recordbase import Recordbase
        from recordbase.config import Settings

        rb = Recordbase(Settings.from_env(environ=env))
        try:
            audit_entries, broken = rb.verify_audit()
        finally:
            rb.dispose()

    counter_ok = final == expected == acknowledged and not (
        counter["server_errors"] or counter["locked"] or counter["connection_errors"]
    )
    counter["result"] = f"counter {final:,} of {expected:,}" + ("" if counter_ok else " FAILED")
    rows = [mixed, counter]
    print_table(
        rows,
        f"{database}, {args.workers} workers × {args.threads} threads, {args.clients} clients, "
        f"{args.duration:g} s mixed phase",
    )
    print(
        f"\nmixed phase: {checked:,} records read back, {lost} lost updates; counter phase: "
        f"{retries:,} retries on 412; audit chain: {audit_entries:,} entries, "
        f"{'intact' if broken is None else f'BROKEN ({broken})'}"
    )
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {
                    "database": database,
                    "workers": args.workers,
                    "threads": args.threads,
                    "clients": args.clients,
                    "phases": rows,
                    "audit_intact": broken is None,
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if mixed_ok and counter_ok and broken is None else 1


if __name__ == "__main__":
    sys.exit(main())
