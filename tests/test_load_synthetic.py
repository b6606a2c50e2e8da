"""The synthetic-schedule server (ground truth of the accuracy bench): framing, timings, buffer mode.

Timing assertions are deliberately loose: CI runs on two busy cores.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator

import httpx
import pytest

from wirecheck.spec.sse import SSEReader

from .synthetic import synthetic_server


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with synthetic_server(30, 2, 16) as url:
        yield url


def stream(base: str, **body: object) -> tuple[httpx.Headers, list[dict | str], list[bytes]]:
    """POST a streamed chat completion; return headers, decoded event data ([DONE] as str) and raw reads."""
    req = {"model": "synthetic", "messages": [{"role": "user", "content": "hi there"}], "stream": True,
           "stream_options": {"include_usage": True}, **body}
    reader = SSEReader()
    events: list[dict | str] = []
    reads: list[bytes] = []
    with httpx.stream("POST", base + "/v1/chat/completions", json=req, timeout=20) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["transfer-encoding"] == "chunked"
        for raw in r.iter_raw():
            reads.append(raw)
            for item in reader.feed(raw):
                if item.kind == "event":
                    events.append(item.data if item.is_done else json.loads(item.data))
        headers = r.headers
    return headers, events, reads


def check_framing(events: list[dict | str], n_events: int, tokens: int) -> None:
    role, *content, use, done = events
    assert isinstance(role, dict) and role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert len(content) == n_events
    assert all(isinstance(c, dict) and c["choices"][0]["delta"]["content"] for c in content)
    assert content[-1]["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)  # type: ignore[index]
    assert len(text.split()) == tokens
    assert isinstance(use, dict) and use["choices"] == [] and use["usage"]["completion_tokens"] == tokens
    assert done == "[DONE]"


def test_stream_framing_and_timings(base_url: str) -> None:
    headers, events, _ = stream(base_url)
    check_framing(events, 16, 16)
    rid = headers["x-request-id"]
    assert rid.startswith("syn-")
    t = httpx.get(f"{base_url}/debug/timings/{rid}").json()
    sends, deadlines = t["sends_ns"], t["deadlines_ns"]
    assert t["mode"] == "normal" and t["tokens_per_event"] == 1 and t["done"] and t["queued_events"] == 0
    assert len(sends) == len(deadlines) == 16
    assert sends == sorted(sends)
    assert all(s >= d for s, d in zip(sends, deadlines))
    assert [b - a for a, b in zip(deadlines, deadlines[1:])] == [2_000_000] * 15  # absolute schedule
    assert 30e6 <= sends[0] - t["recv_ns"] < 30e6 + 200e6  # generous: CI cores are busy
    assert httpx.get(f"{base_url}/debug/timings").json()[rid] == t
    jitter = httpx.get(f"{base_url}/debug/jitter").json()
    assert jitter["count"] >= 16 and jitter["p50_us"] is not None


def test_per_request_knobs(base_url: str) -> None:
    headers, events, _ = stream(base_url, max_tokens=7, synthetic_tokens_per_event=3, synthetic_itl_ms=1,
                                synthetic_ttft_ms=5)
    check_framing(events, 3, 7)  # 3 + 3 + 1 tokens
    t = httpx.get(f"{base_url}/debug/timings/{headers['x-request-id']}").json()
    assert t["tokens_per_event"] == 3 and len(t["sends_ns"]) == 3
    assert t["deadlines_ns"][1] - t["deadlines_ns"][0] == 3_000_000  # itl * tokens per event


def test_buffer_mode_delivers_everything_in_bursts(base_url: str) -> None:
    headers, events, reads = stream(base_url, max_tokens=40, synthetic_mode="buffer", synthetic_itl_ms=1)
    check_framing(events, 40, 40)
    assert len(reads) < 10  # held and flushed in bulk, not one read per event
    t = httpx.get(f"{base_url}/debug/timings/{headers['x-request-id']}").json()
    assert t["mode"] == "buffer" and len(t["sends_ns"]) == 40  # would-be send times, on schedule


def test_keep_alive_models_health_and_404(base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        models = client.get("/v1/models")
        assert [m["id"] for m in models.json()["data"]] == ["synthetic"]
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/debug/timings/nope").status_code == 404
        ids = {models.headers["x-request-id"], client.get("/health").headers["x-request-id"]}
        assert len(ids) == 2
        body = {"model": "synthetic", "messages": [{"role": "user", "content": "x"}], "max_tokens": 3,
                "synthetic_ttft_ms": 1, "synthetic_itl_ms": 1}
        done = client.post("/v1/chat/completions", json=body).json()
        assert done["choices"][0]["message"]["content"] == " w0 w1 w2"
        assert done["usage"]["completion_tokens"] == 3


def test_bench_accuracy_smoke(tmp_path) -> None:
    """The accuracy bench end to end, tiny: joins every record to the server's stamps (no timing asserts)."""
    if importlib.util.find_spec("locust") is None:  # never import it here: it monkey-patches ssl for gevent
        pytest.skip("locust is not installed")
    from wirecheck.load import bench_accuracy

    out = tmp_path / "acc"
    bench_accuracy.main(["--users", "1", "--duration", "2", "--warmup", "0.5", "--control-users", "1",
                         "--floor-seconds", "1", "--out", str(out)])
    result = json.loads((out / "accuracy.json").read_text())
    assert result["schema"] == "wirecheck.accuracy/1"
    rows = {r["level"]: r for r in result["levels"]}
    assert set(rows) == {"floor: raw x1", "floor: raw x16", "1 users", "1 users buffer-16K", "1 users iter_lines"}
    for row in rows.values():
        assert row["joined"] > 0 and row["failed"] == 0 and row["token_mismatches"] == 0
        assert row["ttft_err_ms"]["abs_p50"] is not None and row["gap_err_ms"]["count"] > 0
    assert [r["kind"] for r in result["levels"]] == ["floor", "floor", "sweep", "control", "control"]
    assert result["server_selfcheck"]["count"] > 0
    assert "events_per_s_per_worker" in result["envelope"]
