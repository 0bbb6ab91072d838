"""The engine benchmark runs end to end on a small table and reports every operation.

A correctness check of ``bench/engine.py`` only: times depend on the machine,
so nothing here asserts how fast anything is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = [
    "page_first",
    "page_deep",
    "grid_page",
    "rollup_children",
    "get_by_id",
    "search",
    "create_one",
    "bulk_create_10000",
    "import_csv",
    "add_field",
    "stream_all",
]


def test_bench_writes_every_operation_with_positive_times(tmp_path: Path) -> None:
    out = tmp_path / "tmp.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "platform"), env.get("PYTHONPATH")])
    )
    env["TMPDIR"] = str(tmp_path)  # the benchmark's temporary database lands here

    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), "--rows", "2000", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["rows"] == 2000
    assert report["database"] == "sqlite"
    assert [r["operation"] for r in report["results"]] == OPERATIONS
    for result in report["results"]:
        assert result["engine_s"] > 0, result
        assert result["raw_s"] > 0, result
        assert result["ratio"] == round(result["engine_s"] / result["raw_s"], 3)
    assert report["peak_rss_mb"] > 0
    assert report["bulk_rows_per_s"] > 0
    assert "| page_first |" in done.stdout  # the Markdown table
    # The temporary directory is removed at the end.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("recordbase-bench-")]
