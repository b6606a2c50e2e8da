"""The harness proves itself: every catalogued fault, applied by `wirecheck proxy`, makes its checks fail.

One reference server and one proxy in front of it (a keyed pair for the auth faults); the suites run as a
subprocess against ``http://proxy/fault/<name>`` selecting only the checks the fault concerns, two runs at a time.
A fault whose checks pass is a check that would pass a broken server. The benign controls (split reads,
comments, CRLF) and the transparent proxy must pass everything they select.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

from wirecheck.reference_server.faults import load_faults
from wirecheck.suites.serve import ReferenceServer
from wirecheck.suites.serve import running as running_server

from .fault_harness import VENDOR_CHECK_PREFIXES, Run, expected_failures, load_checks, run_all, selection, suite_run

# Faults of vendor profiles run against the emulating servers (test_vendor_selftest.py).
FAULTS = {name: fault for name, fault in load_faults().items() if fault.profile == "reference"}
KEY = "sk-test-one"
WORKERS = int(os.environ.get("WIRECHECK_SELFTEST_WORKERS", "2"))
# For development: WIRECHECK_SELFTEST_FAULTS=a,b runs only those faults (and the transparent run).
ONLY = {n for n in os.environ.get("WIRECHECK_SELFTEST_FAULTS", "").split(",") if n}
DEADLINE = 20.0  # seconds per exchange for ordinary faults (the reference server answers in well under one)
HOSTILE_DEADLINE = 5.0
HOSTILE_WALL = 60.0  # a hostile run (suite start-up + a few deadlines) must end well inside this


def _proxy(upstream: ReferenceServer, *extra: str):
    return running_server("--upstream", upstream.base_url, *extra,
                          command=[sys.executable, "-m", "wirecheck", "proxy"])


class SelfTest:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}  # by fault name; "none" is the transparent run
        self.ids: dict[str, list[str]] = {}
        self.missing: dict[str, list[str]] = {}
        self.wall = 0.0


@pytest.fixture(scope="module")
def selftest(server, keyed_server, tmp_path_factory) -> SelfTest:
    checks = load_checks()
    result = SelfTest()
    out = tmp_path_factory.mktemp("selftest")
    start = time.monotonic()
    with _proxy(server) as proxy, _proxy(keyed_server, "--upstream-api-key", KEY) as keyed_proxy:
        # The transparent run first (it is the longest), then the hostile faults, then the rest.
        runs = []
        if not ONLY or "none" in ONLY:
            # Keyed and --strict: every check, auth and strict-only ones included, must pass a clean server.
            runs.append(suite_run("none", f"{keyed_proxy.base_url}/fault/none", out, ids=None,
                                  deadline=DEADLINE, api_key=KEY, strict=True, timeout=300))
            # The whole suite against a target that never answers must end within a few deadlines.
            runs.append(suite_run("hang-full", f"{proxy.base_url}/fault/hang", out, ids=None,
                                  deadline=HOSTILE_DEADLINE, timeout=120))
        for name, fault in sorted(FAULTS.items(), key=lambda item: (not item[1].hostile, item[0])):
            ids = selection(fault, checks)
            result.ids[name] = ids
            result.missing[name] = [c for c in expected_failures(fault, checks) if c not in checks]
            present = [c for c in ids if c in checks]
            if not present or (ONLY and name not in ONLY):
                continue
            base = keyed_proxy.base_url if fault.auth else proxy.base_url
            runs.append(suite_run(name, f"{base}/fault/{name}", out, ids=present,
                                  strict=fault.strict or any(checks[c].strict for c in present),
                                  deadline=HOSTILE_DEADLINE if fault.hostile else DEADLINE,
                                  api_key=KEY if fault.auth else None, timeout=90 if fault.hostile else 180))
        result.runs = run_all(runs, out, WORKERS)
    result.wall = time.monotonic() - start
    tried = [f for f in FAULTS.values() if not ONLY or f.name in ONLY]
    caught = sum(1 for f in tried if not f.benign and _problems(result, f.name) == [])
    real = sum(1 for f in tried if not f.benign)
    slowest = ", ".join(f"{r.name} {r.wall:.1f}s" for r in sorted(result.runs.values(), key=lambda r: -r.wall)[:4])
    print(f"\nwirecheck self-test: {caught}/{real} faults caught, {len(tried) - real} benign controls, "
          f"{len(result.runs)} suite runs in {result.wall:.1f}s ({WORKERS} at a time; slowest: {slowest})")
    return result


def _problems(st: SelfTest, name: str) -> list[str]:
    fault = FAULTS[name]
    problems = [f"check id {c!r} is named for this fault but no suite registers it (not written yet?)"
                for c in st.missing[name]]
    run = st.runs.get(name)
    if run is None:
        return problems or ["no suite run (no registered check selected)"]
    if run.timed_out:
        return [*problems, f"the suite run did not finish in time ({run.wall:.0f}s):\n{run.tail()}"]
    if fault.hostile and run.wall > HOSTILE_WALL:
        problems.append(f"a hostile fault took {run.wall:.0f}s (> {HOSTILE_WALL:.0f}s): deadlines not enforced")
    if not run.records:
        return [*problems, f"no report written (exit {run.returncode}):\n{run.tail()}"]
    for cid in st.ids[name]:
        results = run.results(cid)
        if not results:
            problems.append(f"{cid}: selected but never ran")
        elif fault.benign and "fail" in results:
            messages = [r["message"] for r in run.records if r["id"] == cid and r["result"] == "fail"]
            problems.append(f"{cid}: fails under a benign control: {messages[0]}")
        elif not fault.benign and "fail" not in results:
            messages = [f"{r['result']}: {r['message']}" for r in run.records if r["id"] == cid]
            problems.append(f"{cid}: not caught ({'; '.join(messages)})")
    return problems


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_caught(selftest: SelfTest, name: str) -> None:
    if ONLY and name not in ONLY:
        pytest.skip("not selected by WIRECHECK_SELFTEST_FAULTS")
    problems = _problems(selftest, name)
    assert not problems, f"fault {name}: " + "\n".join(problems)


def test_no_fault_everything_passes(selftest: SelfTest) -> None:
    if ONLY and "none" not in ONLY:
        pytest.skip("not selected by WIRECHECK_SELFTEST_FAULTS")
    run = selftest.runs["none"]
    assert not run.timed_out, run.tail()
    failed = [f"{r['id']} [{r['path']}]: {r['message']}" for r in run.records if r["result"] == "fail"]
    assert not failed, "through the transparent proxy:\n" + "\n".join(failed)
    assert run.returncode == 0, run.tail()
    passed = {r["id"] for r in run.records if r["result"] == "pass"}
    assert len(passed) >= 60, f"only {len(passed)} checks passed through the transparent proxy"
    assert "auth.enforced" in passed
    # Vendor checks belong to the vendor profiles (test_vendor_selftest.py); everything else must run here.
    unrun = sorted({f"{r['id']}: {r['result']} ({r['message']})" for r in run.records
                    if r["result"] in ("not-run", "not-claimed") and not r["id"].startswith(VENDOR_CHECK_PREFIXES)})
    assert not unrun, "with --strict and a key every check the reference server claims must run:\n" + "\n".join(unrun)


def test_whole_suite_against_a_hanging_target_ends_with_failures(selftest: SelfTest) -> None:
    if ONLY and "none" not in ONLY:
        pytest.skip("not selected by WIRECHECK_SELFTEST_FAULTS")
    run = selftest.runs["hang-full"]
    assert not run.timed_out and run.wall < 2 * HOSTILE_WALL, f"took {run.wall:.0f}s:\n{run.tail()}"
    failed = {r["id"] for r in run.records if r["result"] == "fail"}
    assert len(failed) >= 40 and run.returncode == 1, run.tail()


def test_selftest_stays_fast(selftest: SelfTest) -> None:
    # A guard against runs that hang to their deadline, not a speed target. It scales with the catalogue
    # (about 2.7 s a fault run on 2 cores today; a hanging run costs tens of seconds), plus a fixed part for
    # the whole-suite clean and hanging-target runs, so a run of a few selected faults is judged fairly too.
    slow = sorted(((run.wall, name) for name, run in selftest.runs.items()), reverse=True)[:5]
    budget = 90 + 3.0 * len(selftest.runs)
    assert selftest.wall < budget, f"self-test took {selftest.wall:.0f}s (budget {budget:.0f}s); slowest: {slow}"
