"""Shared by the fault catalogue test and the self-test: the registered checks and what each fault must break."""

from __future__ import annotations

import fnmatch
import importlib
import json
import pkgutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wirecheck.reference_server.faults.catalogue import Fault


# Checks of vendor behaviour: claimed by the vendor profiles only, proven by test_vendor_selftest.py.
VENDOR_CHECK_PREFIXES = ("hoonify.", "hontoni.", "hoziron.", "compactifai.", "ratelimit.")


def load_checks() -> dict[str, Any]:
    """Import every suite module (as pytest collection would) and return the check registry."""
    from wirecheck import suites
    from wirecheck.suites import invariants
    from wirecheck.suites.registry import CHECKS

    invariants._load()
    for info in pkgutil.walk_packages(suites.__path__, "wirecheck.suites."):
        if info.name.rsplit(".", 1)[-1].startswith("test_"):
            importlib.import_module(info.name)
    return CHECKS


def expected_failures(fault: Fault, checks: dict[str, Any]) -> list[str]:
    """The check ids that must fail through `fault`: those the fault file names, plus every check that names
    the fault in its own metadata (`@check(..., faults=(...))`)."""
    named = set(fault.checks) | {cid for cid, info in checks.items() if fault.name in info.faults}
    return sorted(named)


def selection(fault: Fault, checks: dict[str, Any]) -> list[str]:
    """The check ids a self-test run selects: the expected failures, or for a benign control its `select`
    patterns (strict-only checks left out: the controls are judged by what every client needs)."""
    if not fault.benign:
        return expected_failures(fault, checks)
    return sorted(cid for cid, info in checks.items()
                  if not info.strict and any(fnmatch.fnmatchcase(cid, p) for p in fault.select))


def marker_expression(ids: list[str]) -> str:
    return " or ".join(f"wirecheck(id='{cid}')" for cid in ids)


RUNNER = Path(__file__).resolve().parent / "fault_runner.py"


@dataclass
class Run:
    name: str
    args: list[str]
    report: Path
    log: Path
    timeout: float
    returncode: int | None = None
    wall: float = 0.0
    timed_out: bool = False
    output: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)

    def results(self, check_id: str) -> list[str]:
        return [r["result"] for r in self.records if r["id"] == check_id]

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def suite_run(name: str, target: str, out: Path, *, ids: list[str] | None, deadline: float,
              api_key: str | None = None, strict: bool = False, timeout: float = 300.0,
              profile: str = "reference") -> Run:
    """One `pytest --pyargs wirecheck.suites --target URL ...` session, reporting to out/<name>.json."""
    report, log = out / f"{name}.json", out / f"{name}.log"
    args = ["--pyargs", "wirecheck.suites", "--target", target, "--profile", profile, "--report", str(report),
            "--deadline", str(deadline), "-p", "no:cacheprovider", "-q", "-o", "addopts=", "--assert=plain"]
    if ids is not None:
        args += ["-m", marker_expression(ids)]
    if api_key:
        args += ["--api-key", api_key]
    if strict:
        args.append("--strict")
    return Run(name, args, report, log, timeout)


def run_all(runs: list[Run], out: Path, workers: int = 2) -> dict[str, Run]:
    """Run the sessions, `workers` at a time, through fault_runner.py; fill in results, logs and reports."""
    jobs = [{"name": r.name, "args": r.args, "log": str(r.log), "cwd": str(out), "timeout": r.timeout}
            for r in runs]
    spec, results = out / "jobs.json", out / "results.json"
    spec.write_text(json.dumps({"workers": workers, "jobs": jobs}))
    budget = sum(r.timeout for r in runs) / max(1, workers) + 60
    subprocess.run([sys.executable, str(RUNNER), str(spec), str(results)], check=True, timeout=budget, cwd=out)
    done = json.loads(results.read_text())
    for run in runs:
        got = done.get(run.name, {"returncode": None, "wall": 0.0, "timed_out": True})
        run.returncode, run.wall, run.timed_out = got["returncode"], got["wall"], got["timed_out"]
        run.output = run.log.read_text(errors="replace") if run.log.is_file() else ""
        if run.report.is_file():
            run.records = json.loads(run.report.read_text())["checks"]
    return {run.name: run for run in runs}
