"""Smoke tests for the server benchmark: its floor stream's shape, its helpers, and one tiny end-to-end run.

No timing assertions: figures on a shared CI machine say nothing; only that every column is filled.
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from pathlib import Path

from wirecheck.load.bench_server import COLUMNS, Round, per_client, summarize_level, table
from wirecheck.load.floor_server import frames, token_texts
from wirecheck.spec import sse

ROOT = Path(__file__).resolve().parent.parent


async def _collect(n: int, include_usage: bool) -> list[bytes]:
    head = {"id": "chatcmpl-x", "object": "", "created": 0, "model": "tiny", "system_fingerprint": "fp_floor"}
    return [f async for f in frames(head, token_texts(), n, include_usage)]


def test_floor_stream_has_the_servers_chunk_shape() -> None:
    items = sse.parse(b"".join(asyncio.run(_collect(5, True))))
    assert items[-1].is_done
    chunks = [json.loads(i.data) for i in items[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    contents = [c["choices"][0]["delta"]["content"] for c in chunks[1:6]]
    assert len(contents) == 5 and all(contents)
    assert chunks[6]["choices"][0]["finish_reason"] == "length"
    assert chunks[7]["choices"] == [] and chunks[7]["usage"]["completion_tokens"] == 5
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    without_usage = sse.parse(b"".join(asyncio.run(_collect(2, False))))
    assert not any("usage" in json.loads(i.data) for i in without_usage[:-1])


def test_helpers() -> None:
    assert per_client(1, 64) == 64 and per_client(64, 64) == 1 and per_client(32, 50) == 2
    served = [Round(100, 1.0, [0.01, 0.02]), Round(100, 0.5, [0.03])]
    engine = [Round(100, 0.25)]
    floor = [Round(100, 0.1, [0.001])]
    hf = [Round(50, 1.0, [0.04])]
    row = summarize_level(8, {"served": served, "floor": floor, "hf": hf}, engine)
    assert row["served_tok_s"] == 200 and row["engine_tok_s"] == 400 and row["floor_tok_s"] == 1000
    assert row["served_ttft_samples"] == 3 and math.isclose(row["served_ttft_p50_ms"], 20.0)
    assert math.isclose(row["served_over_engine"], 0.5) and math.isclose(row["served_over_floor"], 0.2)
    assert math.isclose(row["served_over_hf"], 4.0) and math.isclose(row["served_ttft_over_hf"], 0.5)
    lines = table([row]).splitlines()
    assert all(label in lines[0] for _, label, _ in COLUMNS) and len(lines) == 2
    without = table([summarize_level(8, {"served": served, "floor": floor}, engine)]).splitlines()[0]
    assert "srv/floor" in without and "srv/hf" not in without  # the baseline's columns only when it ran


def test_the_lean_client_reads_a_chunked_sse_stream() -> None:
    """RawClient against a real Starlette/uvicorn stream (the floor server): tokens from the usage trailer."""
    import os
    import socket
    import time

    import httpx

    from wirecheck.load.bench_server import RawClient, stream_body

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "wirecheck.load.floor_server", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)

        async def two() -> list[tuple[int, float | None]]:
            client = RawClient(f"http://127.0.0.1:{port}")
            try:  # twice on one keep-alive connection
                return [await client.stream(stream_body(i, 7, "tiny")) for i in range(2)]
            finally:
                client.close()

        results = asyncio.run(two())
        assert [tokens for tokens, _ in results] == [7, 7] and all(first and first > 0 for _, first in results)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "wirecheck.load.bench_server", "--concurrency", "1,2", "--tokens", "4",
                           "--requests", "2", "--rounds", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(label in proc.stdout for key, label, _ in COLUMNS if not key.startswith(("hf", "served_over_hf",
                                                                                          "served_ttft_over_hf")))
    result = json.loads(out.read_text())
    assert result["machine"]["cpus"] >= 1
    assert [row["concurrency"] for row in result["levels"]] == [1, 2]
    for row in result["levels"]:
        for key in [k for k, _, _ in COLUMNS if k in row] + ["served_client_cpu_pct", "floor_client_cpu_pct",
                                                             "engine_ttft_p50_ms"]:
            assert row[key] > 0, key
