"""The fault catalogue: every file loads, names a known transform, and names checks the suites register."""

from __future__ import annotations

import pytest

from wirecheck.reference_server.faults import load_faults
from wirecheck.reference_server.faults.catalogue import FAULTS_DIR, CatalogueError, get_fault
from wirecheck.reference_server.faults.transforms import TRANSFORMS

from .fault_harness import expected_failures, load_checks, selection

FAULTS = load_faults()


def test_every_file_loads_and_is_named_after_its_file() -> None:
    files = sorted(p.stem for p in FAULTS_DIR.glob("*.yaml"))
    assert files == sorted(FAULTS)
    assert sorted(p.name for p in FAULTS_DIR.iterdir() if p.suffix != ".yaml" and not p.name.startswith(".")) == []


def test_at_least_thirty_real_faults_and_the_benign_controls() -> None:
    real = [f for f in FAULTS.values() if not f.benign]
    benign = {f.name for f in FAULTS.values() if f.benign}
    assert len(real) >= 30, f"only {len(real)} real faults"
    assert {"benign-split-chunks", "benign-comments", "benign-crlf"} <= benign


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_fault_is_well_formed(name: str) -> None:
    fault = FAULTS[name]
    assert fault.kind in TRANSFORMS and fault.kind != "transport.none"
    assert len(fault.description) > 40, "say what real servers did"
    assert fault.paths, "a fault must concern some API path"
    if fault.hostile:
        assert fault.stage == "transport"
    if fault.benign:
        assert fault.select and not fault.checks


def test_none_is_the_transparent_proxy() -> None:
    assert get_fault("none").kind == "transport.none"
    with pytest.raises(CatalogueError, match="no fault 'nope'"):
        get_fault("nope", FAULTS)


def test_malformed_files_are_refused(tmp_path) -> None:
    (tmp_path / "x-y.yaml").write_text("name: x-y\nsurface: chat\ndescription: d\nchecks: [a.b]\n"
                                       "transform: {kind: no.such}\n")
    with pytest.raises(CatalogueError, match="not a known transform"):
        load_faults(tmp_path)
    (tmp_path / "x-y.yaml").write_text("name: other\n")
    with pytest.raises(CatalogueError, match="equal the file name"):
        load_faults(tmp_path)


def test_every_named_check_is_registered() -> None:
    checks = load_checks()
    missing = {name: [c for c in f.checks if c not in checks] for name, f in FAULTS.items()}
    missing = {name: ids for name, ids in missing.items() if ids}
    assert not missing, f"faults name check ids no suite registers: {missing}"


def test_every_fault_a_check_names_is_catalogued() -> None:
    checks = load_checks()
    unknown = {cid: [f for f in info.faults if f not in FAULTS] for cid, info in checks.items()}
    unknown = {cid: names for cid, names in unknown.items() if names}
    assert not unknown, f"checks name faults missing from fixtures/faults: {unknown}"


def test_every_benign_control_selects_some_checks() -> None:
    checks = load_checks()
    for fault in FAULTS.values():
        ids = selection(fault, checks)
        assert ids, f"{fault.name} selects no registered check"
        if not fault.benign:
            assert set(fault.checks) <= set(expected_failures(fault, checks))
