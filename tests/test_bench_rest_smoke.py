"""The REST benchmark (workload W) runs end to end at a small size and reports every phase.

A correctness check of ``bench/rest.py`` only: it starts gunicorn on 127.0.0.1
and a stdlib HTTP server, and times depend on the machine, so nothing here
asserts how fast anything is. It uses none of the database fixtures (the
benchmark makes its own throwaway SQLite instance).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parent.parent
PHASES = ["a", "b", "c", "d", "e_rss", "e_startup"]


def test_rest_bench_reports_every_phase_against_its_baseline(tmp_path: Path) -> None:
    out = tmp_path / "tmp.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "platform"), env.get("PYTHONPATH")])
    )
    env["TMPDIR"] = str(tmp_path)  # the benchmark's instance and raw database land here

    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "rest.py"),
            "--rows",
            "1000",
            "--batch",
            "500",
            "--singles",
            "20",
            "--lists",
            "5",
            "--gets",
            "20",
            "--out",
            str(out),
            "--timeout",
            "300",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=420,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["rows"] == 1000
    assert report["database"] == "sqlite"
    assert report["errors"] == 0
    assert report["encrypted_at_rest"] is True
    assert report["encrypted_fields"] == ["email", "phone"]
    assert list(report["phases"]) == PHASES
    assert set(report["targets_met"]) == set(PHASES)
    assert report["floor"]["median_ms"] > 0
    assert report["framework_floor"]["median_ms"] > 0  # a bare Flask route under gunicorn
    assert "Framework floor: a bare Flask route under gunicorn" in done.stdout
    assert report["python"] and report["sqlite"] and report["date"]
    for key, phase in report["phases"].items():
        assert phase["recordbase"] > 0, key
        assert phase["baseline"] > 0, key
        assert phase["ratio"] == round(phase["recordbase"] / phase["baseline"], 3), key
        assert isinstance(phase["met"], bool), key
        assert report["targets_met"][key] == phase["met"]
        # The Markdown table shows the same ratio.
        assert f"| {phase['ratio']:.3f}× |" in done.stdout, key
    assert report["phases"]["a"]["batch"]["n"] == 2
    assert report["phases"]["b"]["n"] == 20
    assert report["phases"]["c"]["n"] == 5
    assert report["phases"]["c"]["page_rows"] == 50
    assert report["phases"]["d"]["n"] == 20
    assert report["phases"]["e_rss"]["workers"]  # one VmHWM per gunicorn worker
    assert (
        "| phase | measure | recordbase | baseline | ratio | target | floor under the stack |"
        in done.stdout
    )
    # The floor under the stack: the engine's own SQL (timed in-process), the bare framework, and
    # the token check with its committed audit entry.
    sql = report["engine_sql"]
    assert sql["bulk_rows_per_s"] > 0
    assert sql["create"]["n"] == 100 and sql["list"]["n"] == 5 and sql["token_audit"]["n"] == 100
    fixed = report["framework_floor"]["median_ms"] + sql["token_audit"]["median_ms"]
    assert report["phases"]["a"]["stack_floor"] == sql["bulk_rows_per_s"]
    assert report["phases"]["b"]["stack_floor"] == pytest.approx(sql["create"]["median_ms"] + fixed)
    assert report["phases"]["c"]["stack_floor"] == pytest.approx(sql["list"]["median_ms"] + fixed)
    assert report["phases"]["d"]["stack_floor"] == pytest.approx(fixed)
    for key in ("a", "b", "c", "d"):
        assert isinstance(report["phases"][key]["stack_floor_meets_target"], bool), key
    for key in ("e_rss", "e_startup"):
        assert "stack_floor" not in report["phases"][key], key
    for row in (
        "| a. bulk insert",
        "| b. single create",
        "| c. list",
        "| d. get by id",
        "| e. peak RSS",
        "| e. start-up",
    ):
        assert row in done.stdout, row
    # The temporary folder (instance, databases, server log) is removed at the end.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("recordbase-rest-")]
