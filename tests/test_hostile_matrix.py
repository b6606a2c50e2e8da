"""Every case of the bad-input matrix (fixtures/hostile/matrix.yaml) against `wirecheck serve` over real HTTP: the
status the case names, in the envelope of its surface, and a server that still answers /health afterwards."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import yaml

from wirecheck.fixtures import FIXTURES_DIR

CASES = yaml.safe_load((FIXTURES_DIR / "hostile" / "matrix.yaml").read_text())["cases"]


def expand(value: Any) -> Any:
    """{repeat: V, times: N} anywhere in a case's JSON becomes N copies of V: big bodies stay small as data."""
    if isinstance(value, dict):
        if set(value) == {"repeat", "times"}:
            return [value["repeat"]] * int(value["times"])
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def send(http: httpx.Client, case: dict[str, Any]) -> httpx.Response:
    path = "/v1/" + case["path"]
    if "form" in case:  # text fields only: httpx would send a urlencoded body for data= without files
        parts = b"".join(f'--x\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                         for k, v in case["form"].items())
        return http.post(path, content=parts + b"--x--\r\n",
                         headers={"content-type": "multipart/form-data; boundary=x"})
    if "raw" in case:
        body = case["raw"].encode() * int(case.get("repeat", 1))
    else:
        body = json.dumps(expand(case["json"])).encode()
    return http.post(path, content=body, headers={"content-type": "application/json"})


def envelope_problems(case: dict[str, Any], r: httpx.Response) -> list[str]:
    try:
        body = r.json()
    except ValueError:
        return [f"not JSON: {r.text[:80]!r}"]
    if case.get("envelope") == "anthropic":
        error = body.get("error") if body.get("type") == "error" else None
    else:
        error = body.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str) or not error.get("type"):
        return [f"not the {case.get('envelope', 'openai')} error envelope: {r.text[:120]!r}"]
    return []


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_bad_input_gets_its_status_in_its_envelope(http: httpx.Client, case: dict[str, Any]) -> None:
    r = send(http, case)
    allowed = case["status"] if isinstance(case["status"], list) else [case["status"]]
    assert r.status_code in allowed, f"{case['name']}: HTTP {r.status_code}: {r.text[:200]}"
    assert not envelope_problems(case, r), envelope_problems(case, r)
    assert http.get("/health").status_code == 200
