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
    row = summarize_level(8, served, engine, floor)
    assert row["served_tok_s"] == 200 and row["engine_tok_s"] == 400 and row["floor_tok_s"] == 1000
    assert row["served_ttft_samples"] == 3 and math.isclose(row["served_ttft_p50_ms"], 20.0)
    assert math.isclose(row["served_over_engine"], 0.5) and math.isclose(row["served_over_floor"], 0.2)
    lines = table([row]).splitlines()
    assert all(label in lines[0] for _, label, _ in COLUMNS) and len(lines) == 2


def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "wirecheck.load.bench_server", "--concurrency", "1,2", "--tokens", "4",
                           "--requests", "2", "--rounds", "1", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(label in proc.stdout for _, label, _ in COLUMNS)
    result = json.loads(out.read_text())
    assert result["machine"]["cpus"] >= 1
    assert [row["concurrency"] for row in result["levels"]] == [1, 2]
    for row in result["levels"]:
        for key in [k for k, _, _ in COLUMNS] + ["served_client_cpu_pct", "floor_client_cpu_pct", "engine_ttft_p50_ms"]:
            assert row[key] > 0, key
