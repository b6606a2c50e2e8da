"""Streamed tokens/s and TTFT of `wirecheck serve` against the engine alone and an HTTP floor, in one run.

    python -m wirecheck.load.bench_server [--concurrency 1,8,32,64] [--tokens 64] [--requests 64] [--rounds 2]
                                [--json PATH]

Three targets, measured level by level with the same prompts and greedy params (min_tokens = max_tokens =
`--tokens`, so every stream has exactly that many tokens):

* served: `wirecheck serve` (tiny, CPU) in its own process. At concurrency C, C clients each stream
  ceil(requests / C) chat completions back to back over real HTTP/SSE on loopback (httpx, one pool).
  tokens/s = completion tokens from the usage trailers / wall time of the round. TTFT = request sent to
  the first chunk carrying content.
* engine: the same engine in this process, no HTTP: C tasks generating the same prompts, same counts;
  its TTFT (templating to the first text) is printed below the table, to tell queueing in the engine
  from time spent in HTTP.
* floor: `load.floor_server` in its own process: the same Starlette/uvicorn stack and chunk encoding,
  streaming pre-made tokens with no model, driven by the identical client.

Ratios: served/engine < 1 is what HTTP, SSE, validation and templating cost on top of generation;
served/floor < 1 is what generation (and the request work the floor skips) costs on top of pure HTTP/SSE.
Tokens/s is the best of `--rounds` rounds; TTFT p50/p99 pool every stream of every round (C x
ceil(requests / C) x rounds samples). Rounds interleave served, floor and engine, and only one target
works at a time (the servers idle while the engine runs), but client, server and engine share this
machine's cores: the served and floor figures pay for the client's CPU, the engine's do not. Quote
figures with the machine line this prints, which also says how much CPU other processes and the
hypervisor (steal) took meanwhile: a busy machine makes every figure noisy. The last line gives the
client's CPU per level (% of one core): near 100 the client, not the server, is the limit, which is
usually the case for the floor: then the floor could go faster and served/floor is an upper bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from wirecheck.reference_server.engine.loader import TINY_DIR, load_model
from wirecheck.reference_server.engine.types import SamplingParams
from wirecheck.reference_server.engine.worker import Engine
from wirecheck.reference_server.prompts import chat_prompt
from wirecheck.spec import sse

PROMPTS = ["Echo: red fox", "Weather in Oslo?", "Say hello", "Count to five", "What is 2 + 3?",
           "Echo: blue sky over the sea", "Tell me a story", "Hi there"]

COLUMNS = [("concurrency", "conc", "{:.0f}"), ("served_tok_s", "served tok/s", "{:.0f}"),
           ("served_ttft_p50_ms", "ttft p50", "{:.1f}"), ("served_ttft_p99_ms", "ttft p99", "{:.1f}"),
           ("engine_tok_s", "engine tok/s", "{:.0f}"), ("engine_ttft_p50_ms", "eng p50", "{:.1f}"),
           ("floor_tok_s", "floor tok/s", "{:.0f}"), ("floor_ttft_p50_ms", "floor p50", "{:.1f}"),
           ("served_over_engine", "srv/eng", "{:.2f}"), ("served_over_floor", "srv/floor", "{:.2f}"),
           ("hf_tok_s", "hf tok/s", "{:.0f}"), ("hf_ttft_p50_ms", "hf p50", "{:.1f}"),
           ("served_over_hf", "srv/hf", "{:.2f}"), ("served_ttft_over_hf", "ttft/hf", "{:.2f}")]


def messages(i: int) -> list[dict]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)]}]


@dataclass
class Round:
    tokens: int
    wall_s: float
    ttft_s: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # this process's CPU time: the client's alone in HTTP rounds (the engine thread idles)

    @property
    def tok_s(self) -> float:
        return self.tokens / self.wall_s


def per_client(concurrency: int, requests: int) -> int:
    return max(1, math.ceil(requests / concurrency))


async def closed_loop(concurrency: int, count: int, one: Callable[[int], Awaitable[tuple[int, float | None]]]
                      ) -> Round:
    """C workers each run `count` requests back to back; request i of worker w uses prompt w + i*C."""

    async def worker(w: int) -> list[tuple[int, float | None]]:
        return [await one(w + k * concurrency) for k in range(count)]

    start, cpu = time.perf_counter(), time.process_time()
    results = [r for rs in await asyncio.gather(*(worker(w) for w in range(concurrency))) for r in rs]
    wall = time.perf_counter() - start
    return Round(sum(r[0] for r in results), wall, [r[1] for r in results if r[1] is not None],
                 time.process_time() - cpu)


USAGE_TOKENS = re.compile(rb'"completion_tokens":\s*(\d+)')


class RawClient:
    """One keep-alive HTTP/1.1 connection of a closed-loop worker, as lean as a client can be: it decodes the
    chunked body and looks at bytes, not JSON (the first content, the usage trailer's completion tokens). With
    httpx and json.loads per chunk the client saturated a core before a fast server did (floor 7.1k tok/s at
    64 streams), so every figure above that was the client's."""

    def __init__(self, base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def stream(self, body: dict[str, Any]) -> tuple[int, float | None]:
        """(completion tokens, seconds to the first content) of one streamed chat completion."""
        payload = json.dumps(body).encode()
        request = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: %s\r\ncontent-type: application/json\r\n"
                   b"content-length: %d\r\n\r\n" % (self.host.encode(), len(payload))) + payload
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        start = time.perf_counter()
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"the server answered {head.splitlines()[0]!r}")
        first, tokens, contents = None, None, 0
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                break
            at = data.find(b'"content":"')
            if at >= 0 and data[at + 11:at + 12] != b'"':
                contents += 1
                if first is None:
                    first = time.perf_counter() - start
            if b'"usage":{' in data:
                found = USAGE_TOKENS.search(data)
                tokens = int(found.group(1)) if found else tokens
        return (tokens if tokens is not None else contents), first

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def stream_body(i: int, tokens: int, model: str) -> dict[str, Any]:
    body = {"model": model, "messages": messages(i), "stream": True, "temperature": 0, "max_tokens": tokens,
            "stream_options": {"include_usage": True}}
    if model == "tiny":
        body["min_tokens"] = tokens
    else:  # transformers serve refuses unknown fields (422) but takes generation settings as a JSON string
        body["generation_config"] = json.dumps({"min_new_tokens": tokens})
    return body


async def http_round(target: tuple[str, str], concurrency: int, count: int, tokens: int) -> Round:
    base, model = target
    clients = [RawClient(base) for _ in range(concurrency)]
    try:
        return await closed_loop(concurrency, count,
                                 lambda i: clients[i % concurrency].stream(stream_body(i, tokens, model)))
    finally:
        for client in clients:
            client.close()


async def engine_round(engine: Engine, concurrency: int, count: int, tokens: int) -> Round:
    params = SamplingParams(max_tokens=tokens, min_tokens=tokens, temperature=0)

    async def one(i: int) -> tuple[int, float | None]:
        # Timed from before templating, as the server's TTFT includes it.
        start = time.perf_counter()
        first = None
        stream = engine.generate(chat_prompt(engine.loaded, messages(i), None), params)
        async for batch in stream:
            if first is None and any(event.text for event in batch):
                first = time.perf_counter() - start
        return stream.usage.completion_tokens, first

    return await closed_loop(concurrency, count, one)


def ms_percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000, q, method="linear")) if samples else float("nan")


def summarize_level(concurrency: int, measured: dict[str, list[Round]], engine: list[Round]) -> dict[str, Any]:
    """Best-round tokens/s per target; TTFT percentiles over every stream of every round."""
    targets = {**measured, "engine": engine}
    row: dict[str, Any] = {"concurrency": concurrency}
    for name, rounds in targets.items():
        pooled = [t for r in rounds for t in r.ttft_s]
        row[f"{name}_tok_s"] = max(r.tok_s for r in rounds)
        row[f"{name}_ttft_p50_ms"] = ms_percentile(pooled, 50)
        row[f"{name}_ttft_p99_ms"] = ms_percentile(pooled, 99)
        row[f"{name}_ttft_samples"] = len(pooled)
    for name in measured:
        if name != "served":
            row[f"served_over_{name}"] = row["served_tok_s"] / row[f"{name}_tok_s"]
    row["served_over_engine"] = row["served_tok_s"] / row["engine_tok_s"]
    if "hf" in measured:
        row["served_ttft_over_hf"] = row["served_ttft_p50_ms"] / row["hf_ttft_p50_ms"]
    # Near 100 the client saturates a core, and the HTTP figures are the client's limit, not the server's.
    for name in measured:
        row[f"{name}_client_cpu_pct"] = max(100 * r.cpu_s / r.wall_s for r in targets[name])
    row["rounds_tok_s"] = {name: [r.tok_s for r in rounds] for name, rounds in targets.items()}
    return row


def table(rows: list[dict[str, Any]]) -> str:
    columns = [c for c in COLUMNS if all(c[0] in row for row in rows)]  # the baseline's only when it ran
    widths = [max(len(label), 7) for _, label, _ in columns]
    lines = [" ".join(label.rjust(w) for (_, label, _), w in zip(columns, widths))]
    for row in rows:
        lines.append(" ".join(fmt.format(row[key]).rjust(w) for (key, _, fmt), w in zip(columns, widths)))
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_start": list(os.getloadavg())}


def cpu_ticks(pids: list[int]) -> tuple[int, int, int] | None:
    """(busy ticks of the whole machine, ticks stolen by the hypervisor, ticks of `pids`) from /proc;
    None off Linux. Busy = user + nice + system + irq + softirq (guest time is already inside user)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        ours = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            ours += sum(int(x) for x in stat.rsplit(")", 1)[1].split()[11:13])  # utime, stime
    except (OSError, ValueError):
        return None
    return sum(fields[0:3]) + sum(fields[5:7]), fields[7], ours


def cpu_shares(before: tuple[int, int, int] | None, after: tuple[int, int, int] | None, wall_s: float
               ) -> dict[str, float | None]:
    """% of one core that other processes used, and that the hypervisor stole, meanwhile: busy-machine flags.
    Loopback softirq time is not charged to our processes, so a quiet machine still shows a few %."""
    if before is None or after is None or wall_s <= 0:
        return {"others_cpu_pct": None, "steal_pct": None}
    core_s = os.sysconf("SC_CLK_TCK") * wall_s / 100
    others = (after[0] - before[0]) - (after[2] - before[2])
    return {"others_cpu_pct": max(0.0, others / core_s), "steal_pct": (after[1] - before[1]) / core_s}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spawn(args: list[str], log: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args, "--log-level", "warning"],
                            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def hf_command() -> list[str] | None:
    """`transformers serve --continuous-batching` on the same tiny model (CPU), when it can start here (it needs
    fastapi and accelerate, which wirecheck's dev extra installs)."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("fastapi", "accelerate", "transformers.cli.transformers")):
        return None
    return ["transformers.cli.transformers", "serve", "--continuous-batching", "--host", "127.0.0.1",
            "--device", "cpu", str(TINY_DIR)]


def family(pid: int) -> list[int]:
    """`pid` and its descendants (wirecheck serve's engine process): all of a server's CPU is the server's."""
    import psutil

    try:
        process = psutil.Process(pid)
        return [pid, *(child.pid for child in process.children(recursive=True))]
    except psutil.Error:
        return [pid]


def wait_healthy(proc: subprocess.Popen, port: int, log_path: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = Path(log_path).read_text(errors="replace")[-2000:]
    raise SystemExit(f"server on port {port} did not start:\n{tail}")


async def bench(engine: Engine, bases: dict[str, tuple[str, str]], levels: list[int], tokens: int, requests: int,
                rounds: int) -> list[dict[str, Any]]:
    rows = []
    for level in levels:
        count = per_client(level, requests)
        # Warm code paths and the engine's batch shapes before timing anything. Each round opens its own
        # connections (one per worker, kept alive through the round) well inside uvicorn's keep-alive timeout.
        for base in bases.values():
            await http_round(base, level, 1, min(tokens, 4))
        await engine_round(engine, level, 1, min(tokens, 4))
        measured: dict[str, list[Round]] = {name: [] for name in bases}
        bare = []
        for _ in range(rounds):  # interleaved, so drift in machine load hits every target alike
            for name, base in bases.items():
                measured[name].append(await http_round(base, level, count, tokens))
            bare.append(await engine_round(engine, level, count, tokens))
        rows.append(summarize_level(level, measured, bare))
        print(f"  concurrency {level}: done", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated levels")
    parser.add_argument("--tokens", type=int, default=64, help="completion tokens per stream")
    parser.add_argument("--requests", type=int, default=64,
                        help="streams per round (rounded up to a multiple of the concurrency)")
    parser.add_argument("--rounds", type=int, default=2, help="tokens/s is the best of N rounds per level")
    parser.add_argument("--json", metavar="PATH", help="also write the results here")
    parser.add_argument("--engine", default="process", choices=["process", "thread"],
                        help="`wirecheck serve --engine`: its own process (default) or a thread of the server")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip `transformers serve --continuous-batching` (run when it can start here)")
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]
    commands = {"served": ["wirecheck", "serve", "--device", "cpu", "--engine", args.engine],
                "floor": ["wirecheck.load.floor_server"]}
    models = {"served": "tiny", "floor": "tiny"}
    if not args.no_baseline and (baseline := hf_command()) is not None:
        commands["hf"], models["hf"] = baseline, str(TINY_DIR)
    ports = {name: free_port() for name in commands}
    machine = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        logs = {name: os.path.join(tmp, f"{name}.log") for name in ports}
        procs: dict[str, subprocess.Popen] = {}
        try:
            # Every server starts while the engine loads here: start-up is the slow part on small machines.
            for name, module in commands.items():
                with open(logs[name], "w") as log:
                    procs[name] = spawn([*module, "--port", str(ports[name])], log)
            engine = Engine(load_model("tiny", device="cpu"))
            engine.start()
            for name, proc in procs.items():
                wait_healthy(proc, ports[name], logs[name])
            bases = {name: (f"http://127.0.0.1:{port}", models[name]) for name, port in ports.items()}
            pids = [os.getpid(), *(p for proc in procs.values() for p in family(proc.pid))]
            before, start = cpu_ticks(pids), time.perf_counter()
            try:
                rows = asyncio.run(bench(engine, bases, levels, args.tokens, args.requests, args.rounds))
            except Exception:
                for name, path in logs.items():  # a failed request is usually explained there
                    print(f"--- {name} server log (tail)\n{Path(path).read_text(errors='replace')[-2000:]}",
                          file=sys.stderr)
                raise
            finally:
                engine.close()
            machine.update(cpu_shares(before, cpu_ticks(pids), time.perf_counter() - start))
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(timeout=30)
    import torch

    machine["loadavg_end"] = list(os.getloadavg())
    machine["torch_threads"] = torch.get_num_threads()
    settings = {"levels": levels, "tokens": args.tokens, "requests": args.requests, "rounds": args.rounds,
                "tok_s": "best round", "ttft": "pooled over all rounds"}
    load = " ".join(f"{x:.2f}" for x in machine["loadavg_start"])
    others, steal = machine["others_cpu_pct"], machine["steal_pct"]
    print(f"machine: {machine['cpus']} CPUs ({machine['cpu_model']}), python {machine['python']}, "
          f"torch threads {machine['torch_threads']}, load average at start {load}; during the bench other "
          + ("processes: n/a" if others is None else f"processes used {others:.0f}% of a core, steal {steal:.0f}%"))
    print(f"{args.tokens} tokens/stream, {args.requests}+ streams/round, tok/s best of {args.rounds} rounds, "
          f"TTFT (ms) pooled over all rounds; client, servers and engine share the cores")
    print(table(rows))
    print("engine TTFT p50 / p99 ms (no HTTP): " + ", ".join(
        f"c{r['concurrency']} {r['engine_ttft_p50_ms']:.1f} / {r['engine_ttft_p99_ms']:.1f}" for r in rows))
    print("client CPU, % of one core (served / floor): " + ", ".join(
        f"c{r['concurrency']} {r['served_client_cpu_pct']:.0f} / {r['floor_client_cpu_pct']:.0f}" for r in rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "settings": settings, "levels": rows}, indent=2))


if __name__ == "__main__":
    main()
