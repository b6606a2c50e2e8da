"""Streamed tokens/s of `wirecheck serve` against the engine alone, measured in one run.

    python -m load.bench_server [--concurrency 1,8,32] [--tokens 64] [--rounds 2]

For each concurrency level, N clients each stream one chat completion of exactly `--tokens` tokens
(min_tokens = max_tokens, greedy) over real HTTP/SSE on loopback; tokens/s = total completion tokens
(from the usage trailer) / wall time. The baseline is the same engine, in this process, generating the
same prompts with the same concurrency and no HTTP. Ratios < 1 are the serving overhead. Client and
server share this machine's cores, which is part of what is measured: say so when quoting figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import httpx

from reference_server.engine.loader import load_model
from reference_server.engine.types import SamplingParams
from reference_server.engine.worker import Engine
from reference_server.prompts import chat_prompt
from spec import sse

PROMPTS = ["Echo: red fox", "Weather in Oslo?", "Say hello", "Count to five", "What is 2 + 3?",
           "Echo: blue sky over the sea", "Tell me a story", "Hi there"]


def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


async def stream_one(client: httpx.AsyncClient, i: int, tokens: int) -> tuple[int, float]:
    body = {"model": "tiny", "messages": messages(i), "stream": True, "temperature": 0, "max_tokens": tokens,
            "min_tokens": tokens, "stream_options": {"include_usage": True}}
    reader = sse.SSEReader()
    usage = 0
    first = None
    start = time.perf_counter()
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for chunk in r.aiter_raw():
            for item in reader.feed(chunk):
                if item.kind != "event" or item.is_done:
                    continue
                data = json.loads(item.data)
                if first is None and data["choices"] and data["choices"][0]["delta"].get("content"):
                    first = time.perf_counter() - start
                if data.get("usage"):
                    usage = data["usage"]["completion_tokens"]
    return usage, first or 0.0


async def http_level(base: str, concurrency: int, tokens: int) -> tuple[float, float]:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        start = time.perf_counter()
        results = await asyncio.gather(*(stream_one(client, i, tokens) for i in range(concurrency)))
        wall = time.perf_counter() - start
    return sum(r[0] for r in results) / wall, statistics.median(r[1] for r in results)


async def engine_level(engine: Engine, concurrency: int, tokens: int) -> float:
    params = SamplingParams(max_tokens=tokens, min_tokens=tokens, temperature=0)

    async def one(i: int) -> int:
        stream = engine.generate(chat_prompt(engine.loaded, messages(i), None), params)
        async for _ in stream:
            pass
        return stream.usage.completion_tokens

    start = time.perf_counter()
    counts = await asyncio.gather(*(one(i) for i in range(concurrency)))
    return sum(counts) / (time.perf_counter() - start)


def start_server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "reference_server.cli", "serve", "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="best of N rounds per level")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",")]
    proc = start_server(args.port)
    try:
        engine = Engine(load_model("tiny", device="cpu"))
        engine.start()
        rows = []
        for level in levels:
            asyncio.run(http_level(f"http://127.0.0.1:{args.port}", level, 4))  # warm connections and paths
            served = max(asyncio.run(http_level(f"http://127.0.0.1:{args.port}", level, args.tokens))
                         for _ in range(args.rounds))
            # The in-process engine must not compete with the idle server for cores: it is idle between levels.
            bare = max(asyncio.run(engine_level(engine, level, args.tokens)) for _ in range(args.rounds))
            rows.append((level, served[0], served[1] * 1000, bare, served[0] / bare))
        engine.close()
    finally:
        proc.terminate()
    print(f"machine: {os.cpu_count()} CPUs, torch threads {__import__('torch').get_num_threads()}")
    print(f"{'concurrency':>11} {'http tok/s':>11} {'ttft p50 ms':>12} {'engine tok/s':>13} {'ratio':>6}")
    for level, served_tps, ttft, bare, ratio in rows:
        print(f"{level:>11} {served_tps:>11.0f} {ttft:>12.1f} {bare:>13.0f} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
