"""Check results: one record per check and client path, written as JSON, Markdown or HTML."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .registry import CHECKS, Evidence


@dataclass
class Record:
    id: str
    surface: str
    path: str  # client path: raw or sdk
    result: str  # pass | fail | not-claimed | inconclusive | not-run
    nodeid: str
    message: str = ""
    rationale: str = ""
    evidence: dict[str, Any] | None = None
    duration: float = 0.0


def _result(report: pytest.TestReport) -> tuple[str, str]:
    if report.passed:
        return "pass", ""
    if report.skipped:
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        for kind in ("not-claimed", "inconclusive", "not-run"):
            if reason.startswith(kind + ":"):
                return kind, reason[len(kind) + 1 :].strip()
        return "not-run", reason
    message = report.longreprtext.strip().splitlines()
    line = next((ln for ln in reversed(message) if ln.startswith("E ")), message[-1] if message else "")
    line = line.removeprefix("E").strip()
    # "suites.registry.CheckFailed: msg" / "AssertionError: msg" -> "msg": the check id already says what.
    head, sep, rest = line.partition(": ")
    if sep and head.rsplit(".", 1)[-1] in ("CheckFailed", "AssertionError"):
        line = rest
    return "fail", line


@dataclass
class Recorder:
    records: list[Record] = field(default_factory=list)
    started: float = field(default_factory=time.time)

    def add(self, check_id: str, nodeid: str, report: pytest.TestReport, evidence: Evidence | None) -> None:
        # Setup errors and skips arrive in the setup phase; a pass or failure in the call phase.
        if report.when == "setup" and report.passed:
            return
        if report.when == "teardown" and report.passed:
            return
        info = CHECKS[check_id]
        result, message = _result(report)
        if report.when != "call" and result == "fail":
            message = f"{report.when} error: {message}"
        path = "sdk" if "[sdk" in nodeid or nodeid.split("::")[-1].startswith("test_sdk") else "raw"
        self.records.append(Record(
            id=check_id, surface=info.surface, path=path, result=result, nodeid=nodeid, message=message,
            rationale=info.rationale, evidence=evidence.as_json() if evidence else None,
            duration=round(report.duration, 3)))

    def counts(self) -> Counter:
        return Counter(r.result for r in self.records)

    def summary_line(self) -> str:
        c = self.counts()
        checks = len({r.id for r in self.records})
        return (f"{checks} checks, {len(self.records)} results: {c['pass']} pass, {c['fail']} fail, "
                f"{c['not-claimed']} not-claimed, {c['inconclusive']} inconclusive, {c['not-run']} not-run")

    def failures(self) -> list[str]:
        return [f"FAIL {r.id} [{r.path}]: {r.message}" for r in self.records if r.result == "fail"]

    def as_json(self) -> dict[str, Any]:
        return {"started": self.started, "finished": time.time(), "summary": dict(self.counts()),
                "checks": [r.__dict__ for r in self.records]}

    def write(self, path: Path) -> None:
        from . import report

        try:
            text = report.render(self.as_json(), path.suffix)
        except ValueError:
            raise pytest.UsageError(f"--report must end in .json, .md or .html, got {path}") from None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
