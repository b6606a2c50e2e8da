"""`wirecheck load --worker`: a locust worker on this machine for a `wirecheck load --master` elsewhere.

It needs nothing but the master's address: the plan comes over locust's channel, and the records go back
the same way (load/distributed.py). A rate search is several locust runs, each with a fresh master; the
master's last message says whether another follows, and then this process starts a new locust worker
that rejoins it. When the master could not know (the next probe depends on the result), the new worker
gives up after ``idle_s`` without a master and this process ends cleanly.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .distributed import MORE_RUNS_EXIT
from .plan import ROLE_ENV
from .runner import LOCUSTFILE


def worker_command(master_host: str, master_port: int) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "--loglevel", "WARNING"]


def run_worker(master_host: str, master_port: int, idle_s: float, quiet: bool = False) -> int:
    runs = 0
    while True:
        with tempfile.TemporaryDirectory(prefix="wirecheck-worker-") as tmp:
            ready = Path(tmp) / "ready"
            env = {**os.environ, ROLE_ENV: "worker", "WIRECHECK_WORKER_READY_FILE": str(ready), "PYTHONUNBUFFERED": "1"}
            if not quiet:
                print(f"wirecheck load: worker joining {master_host}:{master_port}", file=sys.stderr, flush=True)
            proc = subprocess.Popen(worker_command(master_host, master_port), env=env)
            started = time.monotonic()
            try:
                while proc.poll() is None:
                    if runs and not ready.exists() and time.monotonic() - started > idle_s:
                        proc.terminate()  # the search ended after all: no further master came
                        proc.wait(30)
                        return 0
                    time.sleep(0.2)
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
        if proc.returncode != MORE_RUNS_EXIT:
            return proc.returncode
        runs += 1
