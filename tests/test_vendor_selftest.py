"""Vendor profiles prove themselves: `wirecheck serve --profile X` passes `pytest --profile X`, and every fault of
profile X, applied by `wirecheck proxy` in front of that emulating server, makes its checks fail.

One emulating server (started the way a user starts it, with the profile's example key) and one proxy per vendor;
the suites run as subprocesses against ``http://proxy/fault/<name>`` with ``--profile X``, two runs at a time.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import ExitStack

import pytest

from wirecheck.reference_server.faults import load_faults
from wirecheck.spec.profiles import load_profile
from wirecheck.suites.serve import running as running_server

from .fault_harness import VENDOR_CHECK_PREFIXES, Run, expected_failures, load_checks, run_all, selection, suite_run

FAULTS = {name: fault for name, fault in load_faults().items() if fault.profile != "reference"}
VENDORS = ("hoonify", "hontoni", "hoziron", "compactifai")
WORKERS = int(os.environ.get("WIRECHECK_SELFTEST_WORKERS", "2"))
DEADLINE = 20.0
# For development: WIRECHECK_SELFTEST_FAULTS=a,b runs only those faults (and their vendors' clean runs).
ONLY = {n for n in os.environ.get("WIRECHECK_SELFTEST_FAULTS", "").split(",") if n}


def _clean(vendor: str) -> str:
    return f"clean-{vendor}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    checks = load_checks()
    out = tmp_path_factory.mktemp("vendor-selftest")
    start = time.monotonic()
    planned: list[Run] = []
    with ExitStack() as stack:
        for vendor in VENDORS:
            if ONLY and not any(FAULTS[n].profile == vendor for n in ONLY if n in FAULTS):
                continue
            key = load_profile(vendor).example_key()
            server = stack.enter_context(running_server("--profile", vendor, "--api-key", key))
            proxy = stack.enter_context(running_server(
                "--upstream", server.base_url, command=[sys.executable, "-m", "wirecheck", "proxy"]))
            # The whole suite, clean: what `pytest --profile <vendor>` runs against the emulation.
            planned.append(suite_run(_clean(vendor), f"{proxy.base_url}/fault/none", out, ids=None, deadline=DEADLINE,
                                     api_key=key, profile=vendor, timeout=300))
            for name, fault in sorted(FAULTS.items()):
                if fault.profile != vendor or (ONLY and name not in ONLY):
                    continue
                ids = [c for c in selection(fault, checks) if c in checks]
                planned.append(suite_run(name, f"{proxy.base_url}/fault/{name}", out, ids=ids, deadline=DEADLINE,
                                         api_key=key, profile=vendor, strict=fault.strict, timeout=180))
        done = run_all(planned, out, WORKERS)
    print(f"\nvendor self-test: {len(done)} suite runs in {time.monotonic() - start:.1f}s")
    return done


@pytest.mark.parametrize("vendor", VENDORS)
def test_emulation_passes_its_profile(runs: dict[str, Run], vendor: str) -> None:
    if _clean(vendor) not in runs:
        pytest.skip("not selected by WIRECHECK_SELFTEST_FAULTS")
    run = runs[_clean(vendor)]
    assert not run.timed_out, run.tail()
    failed = [f"{r['id']}: {r['message']}" for r in run.records if r["result"] == "fail"]
    assert not failed, f"`wirecheck serve --profile {vendor}` fails `pytest --profile {vendor}`:\n" + "\n".join(failed)
    assert run.returncode == 0, run.tail()
    profile = load_profile(vendor)
    own = {r["id"]: r for r in run.records if r["id"].startswith(VENDOR_CHECK_PREFIXES)}
    unproven = [f"{cid}: {r['result']} ({r['message']})" for cid, r in own.items()
                if r["result"] != "pass" and r["result"] != "not-claimed"]
    assert not unproven, "vendor checks that did not pass against their own emulation:\n" + "\n".join(unproven)
    claimed = [c for c in profile.claims if "." in c]
    assert claimed and any(r["result"] == "pass" for r in own.values()), f"no {vendor} check ran"


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_vendor_fault_is_caught(runs: dict[str, Run], name: str) -> None:
    if ONLY and name not in ONLY:
        pytest.skip("not selected by WIRECHECK_SELFTEST_FAULTS")
    fault = FAULTS[name]
    checks = load_checks()
    expected = expected_failures(fault, checks)
    missing = [c for c in expected if c not in checks]
    assert not missing, f"fault {name} names checks no suite registers: {missing}"
    run = runs[name]
    assert not run.timed_out, run.tail()
    assert run.records, f"no report (exit {run.returncode}):\n{run.tail()}"
    for cid in expected:
        results = run.results(cid)
        messages = [f"{r['result']}: {r['message']}" for r in run.records if r["id"] == cid]
        assert results, f"{cid}: selected but never ran"
        assert "fail" in results, f"fault {name} ({fault.profile}) not caught by {cid}: {'; '.join(messages)}"


def test_every_vendor_check_has_a_fault() -> None:
    checks = load_checks()
    faults = load_faults()
    caught = {c for f in faults.values() for c in expected_failures(f, checks)}
    vendor_checks = [c for c in checks if c.startswith(VENDOR_CHECK_PREFIXES) or c in ("chat.min-tokens", "chat.top-k")]
    unproven = [c for c in vendor_checks if c not in caught]
    assert not unproven, f"vendor checks no catalogued fault proves: {unproven}"
