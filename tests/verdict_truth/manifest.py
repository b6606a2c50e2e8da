"""Verdict-truth manifests: load one, and compare a suite report with what it expects to fail."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Expected:
    """A failure the manifest says is true, and why."""

    check_id: str
    observed: str  # what the target sent: status, bytes, fields
    contract: str  # what OpenAI / Anthropic / the SDK does instead, with its source
    # A real defect that shows only on some runs (it depends on timing): its passing is no news, but it must
    # still be classified, so its failing is not a new finding either.
    intermittent: bool = False


@dataclass(frozen=True)
class Run:
    name: str
    args: tuple[str, ...]
    failures: dict[str, Expected] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    path: Path
    target: dict[str, Any]
    runs: tuple[Run, ...]

    def run(self, name: str) -> Run:
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"{self.path.name} has no run {name!r} (runs: {', '.join(r.name for r in self.runs)})")


class ManifestError(ValueError):
    pass


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value.split()) < 3:
        raise ManifestError(f"{where} must say in words what it claims, not {value!r}")
    return " ".join(value.split())


def load(path: Path | str, known_checks: set[str] | None = None) -> Manifest:
    """A manifest; every expected failure needs `observed` and `contract`, and (given `known_checks`) must name a
    registered check."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("target"), dict) or not data.get("runs"):
        raise ManifestError(f"{path.name}: needs a `target` mapping and a list of `runs`")
    runs = []
    for i, raw in enumerate(data["runs"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        if not isinstance(name, str) or not name:
            raise ManifestError(f"{path.name}: run {i} has no name")
        failures = {}
        for check_id, why in (raw.get("failures") or {}).items():
            where = f"{path.name}: run {name}: {check_id}"
            if known_checks is not None and check_id not in known_checks:
                raise ManifestError(f"{where}: no such check is registered")
            if not isinstance(why, dict):
                raise ManifestError(f"{where}: needs `observed` and `contract`")
            failures[check_id] = Expected(check_id, _text(why.get("observed"), f"{where}.observed"),
                                          _text(why.get("contract"), f"{where}.contract"),
                                          bool(why.get("intermittent", False)))
        runs.append(Run(name, tuple(str(a) for a in raw.get("args") or ()), failures))
    if len({r.name for r in runs}) != len(runs):
        raise ManifestError(f"{path.name}: run names repeat")
    return Manifest(path, data["target"], tuple(runs))


def report_results(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Check id -> its records (one per client path) in a suite report (`--report X.json`)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for record in report.get("checks", []):
        out.setdefault(record["id"], []).append(record)
    return out


def failing(report: dict[str, Any]) -> set[str]:
    return {cid for cid, records in report_results(report).items() if any(r["result"] == "fail" for r in records)}


def compare(run: Run, report: dict[str, Any]) -> list[str]:
    """What differs between the run's expected failures and the report, one sentence each (empty: they agree)."""
    results = report_results(report)
    problems = []
    for cid in sorted(failing(report) - set(run.failures)):
        message = next(r["message"] for r in results[cid] if r["result"] == "fail")
        problems.append(f"{cid} fails but the manifest does not expect it (a new false positive, or a new defect "
                        f"to classify): {message}")
    for cid in sorted(cid for cid in set(run.failures) - failing(report) if not run.failures[cid].intermittent):
        seen = ", ".join(f"{r['result']}: {r['message']}" if r["message"] else r["result"]
                         for r in results.get(cid, [])) or "never ran"
        problems.append(f"{cid} is expected to fail ({run.failures[cid].observed}) but did not ({seen})")
    return problems


def compare_files(manifest: Path | str, run_name: str, report: Path | str) -> list[str]:
    return compare(load(manifest).run(run_name), json.loads(Path(report).read_text()))
