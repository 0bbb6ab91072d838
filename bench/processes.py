"""Server processes for the benchmarks that start one (``load.py``, ``rest.py``): a free port and a clean stop.

Both scripts only ever listen and connect on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

HOST = "127.0.0.1"  # loopback only: the benchmarks never talk to another machine


def serve_command(port: int, workers: int, threads: int) -> list[str]:
    """``recordbase serve`` on HOST:port as production runs it (gunicorn), without the webhook sender."""
    return [
        sys.executable,
        "-m",
        "recordbase.cli",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--no-webhooks",
    ]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> None:
    """SIGTERM (gunicorn lets its workers finish), then SIGKILL to the process group if it lingers.

    The process must have been started with ``start_new_session=True``, so its
    group holds it and everything it started (workers, a webhook sender).
    """
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
