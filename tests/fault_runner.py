"""Run many suite sessions (one per fault) quickly: `python fault_runner.py JOBS.json RESULTS.json`.

Each job is one `pytest --pyargs wirecheck.suites --target ...` session. Started as `python -m pytest` each would spend
most of its time importing hypothesis, schemathesis and the openai SDK; here one process imports them once and
forks a child per job (at most WORKERS at a time), so every session starts warm yet stays isolated: its own
process, pytest config, plugin state, report file and log. Children that outlive their timeout are killed.
Where fork is unavailable, each job runs as `python -m pytest` instead.

JOBS.json: {"workers": 2, "jobs": [{"name", "args", "log", "cwd", "timeout"}]}
RESULTS.json: {name: {"returncode", "wall", "timed_out"}}
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time


def _preload() -> None:
    """Import, once, what every session would otherwise import again: pytest's own plugins, the third-party
    pytest plugins, the SDKs, the spec, and the suites' modules (jobs run with --assert=plain, so nothing needs
    rewriting; the suites fail through `fail()`, never bare asserts)."""
    import importlib
    from importlib.metadata import entry_points

    from _pytest.config import default_plugins

    for name in default_plugins:
        importlib.import_module("_pytest." + name)
    for ep in entry_points(group="pytest11"):
        try:
            ep.load()
        except Exception:  # noqa: BLE001 - pytest will report a broken plugin itself
            pass
    import httpx  # noqa: F401
    import openai  # noqa: F401

    from wirecheck.spec import loader

    loader.document()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from fault_harness import load_checks

    load_checks()


def _child(job: dict) -> None:
    fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = 3
    try:
        import pytest

        os.chdir(job["cwd"])
        code = int(pytest.main(job["args"]))
    except BaseException as exc:  # noqa: BLE001 - report anything, never return into the parent's loop
        import traceback

        traceback.print_exception(exc)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def run_forked(jobs: list[dict], workers: int) -> dict[str, dict]:
    _preload()
    queue = list(jobs)
    running: dict[int, tuple[dict, float]] = {}
    results: dict[str, dict] = {}
    while queue or running:
        while queue and len(running) < workers:
            job = queue.pop(0)
            sys.stdout.flush()
            pid = os.fork()
            if pid == 0:
                _child(job)
            running[pid] = (job, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        now = time.monotonic()
        if pid == 0:
            for child, (job, start) in list(running.items()):
                if now - start > job["timeout"] and not results.get(job["name"]):
                    os.kill(child, signal.SIGKILL)
                    results[job["name"]] = {"returncode": None, "wall": now - start, "timed_out": True}
            time.sleep(0.02)
            continue
        job, start = running.pop(pid)
        if job["name"] not in results:
            code = os.waitstatus_to_exitcode(status)
            results[job["name"]] = {"returncode": code, "wall": now - start, "timed_out": False}
    return results


def run_spawned(jobs: list[dict], workers: int) -> dict[str, dict]:
    from concurrent.futures import ThreadPoolExecutor

    def one(job: dict) -> tuple[str, dict]:
        start = time.monotonic()
        with open(job["log"], "wb") as log:
            try:
                code = subprocess.run([sys.executable, "-m", "pytest", *job["args"]], stdout=log,
                                      stderr=subprocess.STDOUT, cwd=job["cwd"], timeout=job["timeout"]).returncode
                return job["name"], {"returncode": code, "wall": time.monotonic() - start, "timed_out": False}
            except subprocess.TimeoutExpired:
                return job["name"], {"returncode": None, "wall": time.monotonic() - start, "timed_out": True}

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, jobs))


def main(argv: list[str]) -> int:
    spec = json.loads(open(argv[0]).read())
    jobs, workers = spec["jobs"], int(spec.get("workers", 2))
    results = run_forked(jobs, workers) if hasattr(os, "fork") else run_spawned(jobs, workers)
    with open(argv[1], "w") as out:
        json.dump(results, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
