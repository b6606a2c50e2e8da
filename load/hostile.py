"""The bad-input matrix (fixtures/hostile/matrix.yaml) as requests: expand a case, send it, judge its answer.

Shared by the project's tests (every case in CI) and the soak benchmark (`bench_soak`), which sends them again
and again beside valid traffic. A case names a path under /v1, a body (`json`, `raw` bytes with an optional
`repeat`, or multipart text `form` fields), the status it must get (one or a list) and its `envelope`.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from wirecheck.fixtures import FIXTURES_DIR


def cases() -> list[dict[str, Any]]:
    return yaml.safe_load((FIXTURES_DIR / "hostile" / "matrix.yaml").read_text())["cases"]


def expand(value: Any) -> Any:
    """Generators anywhere in a case's JSON, so that big bodies stay small as data:
    {repeat: V, times: N} is N copies of V; {range: N} the integers 0..N-1, {range: N, prefix: P} the strings
    P0..P(N-1); {keys: N, prefix: P, value: V} an object of N keys P0..P(N-1), each V; {text: S, times: N} the
    string S repeated N times."""
    if isinstance(value, dict):
        if set(value) == {"text", "times"}:
            return str(value["text"]) * int(value["times"])
        if set(value) == {"repeat", "times"}:
            return [expand(value["repeat"])] * int(value["times"])
        if set(value) in ({"range"}, {"range", "prefix"}):
            n = int(value["range"])
            return [f"{value['prefix']}{i}" for i in range(n)] if "prefix" in value else list(range(n))
        if set(value) == {"keys", "prefix", "value"}:
            inner = expand(value["value"])
            return {f"{value['prefix']}{i}": inner for i in range(int(value["keys"]))}
        return {k: expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expand(v) for v in value]
    return value


def request(case: dict[str, Any]) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of a case."""
    path = "/v1/" + case["path"]
    if "form" in case:  # text fields only: a client's data= without files would send a urlencoded body
        parts = b"".join(f'--x\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                         for k, v in case["form"].items())
        return path, parts + b"--x--\r\n", {"content-type": "multipart/form-data; boundary=x"}
    if "raw" in case:
        body = case["raw"].encode() * int(case.get("repeat", 1))
    else:
        body = json.dumps(expand(case["json"])).encode()
    return path, body, {"content-type": "application/json"}


def allowed_statuses(case: dict[str, Any]) -> list[int]:
    return case["status"] if isinstance(case["status"], list) else [case["status"]]


def envelope_problems(case: dict[str, Any], status: int, text: str) -> list[str]:
    """What is wrong with an error answer's envelope (nothing for a 2xx, which is not an error)."""
    if status < 400:
        return []
    try:
        body = json.loads(text)
    except ValueError:
        return [f"not JSON: {text[:80]!r}"]
    if not isinstance(body, dict):
        return [f"not an error object: {text[:80]!r}"]
    if case.get("envelope") == "anthropic":
        error = body.get("error") if body.get("type") == "error" else None
    else:
        error = body.get("error")
    if not isinstance(error, dict) or not isinstance(error.get("message"), str) or not error.get("type"):
        return [f"not the {case.get('envelope', 'openai')} error envelope: {text[:120]!r}"]
    return []
