"""Every case of the bad-input matrix (fixtures/hostile/matrix.yaml) against `wirecheck serve` over real HTTP: the
status the case names, in the envelope of its surface, and a server that still answers /health afterwards."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from wirecheck.load import hostile

CASES = hostile.cases()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_gets_its_status_in_its_envelope(http: httpx.Client, case: dict[str, Any]) -> None:
    path, body, headers = hostile.request(case)
    r = http.post(path, content=body, headers=headers)
    assert r.status_code in hostile.allowed_statuses(case), f"{case['name']}: HTTP {r.status_code}: {r.text[:200]}"
    problems = hostile.envelope_problems(case, r.status_code, r.text)
    assert not problems, problems
    assert http.get("/health").status_code == 200


def test_generators_expand_as_documented() -> None:
    assert hostile.expand({"repeat": "x", "times": 3}) == ["x", "x", "x"]
    assert hostile.expand({"range": 3}) == [0, 1, 2]
    assert hostile.expand({"text": "ab", "times": 3}) == "ababab"
    assert hostile.expand({"a": {"range": 2, "prefix": "v"}}) == {"a": ["v0", "v1"]}
    assert hostile.expand({"keys": 2, "prefix": "p", "value": {"type": "string"}}) == {
        "p0": {"type": "string"}, "p1": {"type": "string"}}
