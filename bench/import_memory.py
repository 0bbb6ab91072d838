"""Import memory benchmark: a large CSV imported through the engine, with its peak memory.

Run ``python bench/import_memory.py [--rows 1000000] [--mode atomic|skip-invalid]``.
It writes an N-row CSV of the benchmark's ``deals`` (``bench/engine.py``: the
same app and the same generated data), installs that app in a temporary SQLite
instance (or ``--database-url``), imports the file with
``RecordStore.import_rows`` and prints the rate in rows per second and the
process's resident memory — before, at its peak while importing (sampled every
50 ms, and at each chunk) and the growth — beside the size of the CSV. An
import holds one chunk of rows at a time, so the growth should stay flat
whatever the file's size; ``bench/README.md`` says how to read it.
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT / "platform", ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))  # runs without PYTHONPATH, as bench/engine.py

from engine import DEFINITION, generate_deals  # noqa: E402
from recordbase import Actor, Recordbase, Settings  # noqa: E402

MB = 1024 * 1024
BATCH = 10_000  # deals generated (and held) at a time while writing the CSV
COLUMNS = ["Name", "Company", "Email", "Phone", "Amount", "Stage", "Close date", "Notes"]
SLUGS = ["name", "company", "email", "phone", "amount", "stage", "close_date", "notes"]


def write_csv(path: Path, rows: int, seed: int = 42) -> None:
    """``rows`` deals as a spreadsheet would save them: a header of labels, then the values."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        left = rows
        while left:
            batch = generate_deals(rng, min(BATCH, left))
            writer.writerows([[deal[slug] or "" for slug in SLUGS] for deal in batch])
            left -= len(batch)


class PeakRss:
    """The process's resident memory, sampled in a background thread until stopped."""

    def __init__(self, interval: float = 0.05) -> None:
        self.process = psutil.Process()
        self.interval = interval
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        return int(self.process.memory_info().rss)

    def sample(self) -> None:
        self.peak = max(self.peak, self.now())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="data rows in the CSV (default 1,000,000)"
    )
    parser.add_argument("--mode", choices=["atomic", "skip-invalid"], default="atomic")
    parser.add_argument(
        "--database-url",
        default=None,
        help="a throwaway database instead of a temporary SQLite file",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (CSV and database)"
    )
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="recordbase-import-"))

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        source = tmp / "deals.csv"
        log(f"writing {args.rows:,} deals to {source}")
        write_csv(source, args.rows)
        csv_mb = source.stat().st_size / MB
        url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
        settings = Settings.from_env(
            environ={}, instance_path=tmp / "instance", database_url=url, secret_key="bench"
        )
        rb = Recordbase(settings)
        try:
            rb.init_db()
            if any(app["slug"] == DEFINITION["slug"] for app in rb.list_apps()):
                raise SystemExit(
                    "the database already has a bench app; give --database-url an empty database"
                )
            actor = Actor.system("bench-import")
            rb.install(DEFINITION, actor)
            store = rb.records(actor, DEFINITION["slug"], "deals")
            # Warm up (compiled statements, field types, the first connection) on a few rows,
            # so the growth below is what the import itself holds.
            store.import_rows(
                iter(
                    [dict(zip(COLUMNS, ["warm-up", "", "", "", "1", "lead", "", ""], strict=True))]
                )
            )
            last = [0, time.perf_counter()]

            with PeakRss() as rss:
                before = rss.now()

                def progress(rows: int) -> None:
                    rss.sample()
                    if rows - last[0] >= 100_000:
                        log(f"  {rows:,} rows read, {rss.now() / MB:,.0f} MB")
                        last[0] = rows

                log(f"importing into {rb.dialect} ({args.mode})")
                start = time.perf_counter()
                report = store.import_rows(source, mode=args.mode, on_progress=progress)
                seconds = time.perf_counter() - start
            if not report.committed or report.created != args.rows:
                raise SystemExit(
                    f"import failed: created {report.created}, problems {[str(p) for p in report.problems[:3]]}"
                )
        finally:
            rb.dispose()
        rate = args.rows / seconds
        print(f"\n{args.rows:,} rows, CSV {csv_mb:,.1f} MB, {rb.dialect}, {args.mode}\n")
        print("| measure | value |")
        print("|---|---|")
        print(f"| import time | {seconds:,.1f} s |")
        print(f"| rate | {rate:,.0f} rows/s |")
        print(f"| CSV size | {csv_mb:,.1f} MB |")
        print(f"| RSS before | {before / MB:,.1f} MB |")
        print(f"| peak RSS while importing | {rss.peak / MB:,.1f} MB |")
        print(f"| growth | {(rss.peak - before) / MB:,.1f} MB |")
    finally:
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
