"""Soak `wirecheck serve` with valid and hostile traffic at once, and print what it cost the server.

Started the way a user starts it (a subprocess on a free loopback port, default settings), the server gets, for
`--duration` seconds, all at the same time:

* valid streams: chat completions (plain and under a pydantic-style JSON schema) and Anthropic messages, default
  sampling, small `max_tokens`; a quarter of them hang up after the first event;
* the bad-input matrix (fixtures/hostile/matrix.yaml: every surface, both envelopes, pathological schemas), over
  and over, each answer checked for its status and envelope;

then schemathesis over the whole spec (suites/fuzz.py), positive and negative cases, at least `--fuzz-cases`,
each answer judged against the spec (a phase of its own: generating cases is a core of client CPU).

A warm-up (one pass of each) comes first, so lazily loaded models and first-use caches are in the baseline. It
prints requests by kind and status, every 5xx, time to reject (4xx, p50/p99/max), the server's RSS (server and
engine processes) at start, after warm-up, at peak and at the end, and /health's running and waiting once the
traffic stops; then each target (0 x 5xx, reject p99 < 50 ms, end RSS within 15% of after warm-up, idle at the
end) as met or missed. Exit status 1 when one is missed. Usage:

    python -m wirecheck.load.bench_soak [--duration 120] [--streams 4] [--matrix-workers 2] [--fuzz-cases 5000]
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing
import queue
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import httpx

from wirecheck.load import hostile
from wirecheck.load.bench_server import family, machine_info, ms_percentile

REJECT_P99_MS = 50.0
RSS_GROWTH = 0.15
PERSON = {"properties": {"name": {"title": "Name", "type": "string"}, "age": {"title": "Age", "type": "integer"},
                         "tags": {"items": {"type": "string"}, "title": "Tags", "type": "array"}},
          "required": ["name", "age", "tags"], "title": "Person", "type": "object"}  # pydantic's plain schema


@dataclass
class Tally:
    """What came back, from every thread."""

    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    rejects: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # kind -> seconds
    by_case: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # what -> reject seconds
    server_rejects: list[float] = field(default_factory=list)  # the server's own openai-processing-ms, seconds
    server_errors: list[str] = field(default_factory=list)
    wrong: Counter = field(default_factory=Counter)  # matrix case -> answers with a status or envelope it must not get
    wrong_examples: dict[str, str] = field(default_factory=dict)
    hangups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, status: int, seconds: float, what: str, text: str = "",
            server_ms: str | None = None) -> None:
        with self.lock:
            self.statuses[kind][status] += 1
            if 400 <= status < 500:
                self.rejects[kind].append(seconds)
                self.by_case[f"{kind} {what}"].append(seconds)
                if server_ms is not None and server_ms.isdigit():
                    self.server_rejects.append(int(server_ms) / 1000)
            if status >= 500 or status == 0:
                self.server_errors.append(f"{kind} {what}: HTTP {status} {text[:160]!r}")

    def state(self) -> dict[str, Any]:
        """Plain data, to send from a client process."""
        return {"statuses": {k: dict(v) for k, v in self.statuses.items()},
                "rejects": dict(self.rejects), "by_case": dict(self.by_case), "server_rejects": self.server_rejects,
                "server_errors": self.server_errors, "wrong": dict(self.wrong),
                "wrong_examples": self.wrong_examples, "hangups": self.hangups}

    def merge(self, state: dict[str, Any]) -> None:
        for kind, counts in state["statuses"].items():
            self.statuses[kind].update(counts)
        for kind, samples in state["rejects"].items():
            self.rejects[kind] += samples
        for name, samples in state["by_case"].items():
            self.by_case[name] += samples
        self.server_rejects += state["server_rejects"]
        self.server_errors += state["server_errors"]
        self.wrong.update(state["wrong"])
        self.wrong_examples = {**state["wrong_examples"], **self.wrong_examples}
        self.hangups += state["hangups"]

    def mismatch(self, name: str, problem: str) -> None:
        with self.lock:
            self.wrong[name] += 1
            self.wrong_examples.setdefault(name, problem)


class RssWatch(threading.Thread):
    """The server's resident memory (server and engine processes together), sampled twice a second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        # `_done`, not `_stop`: threading.Thread has a method of that name, which join() calls.
        self.pid, self.peak, self._done = pid, 0.0, threading.Event()

    def now(self) -> float:
        import psutil

        total = 0
        for pid in family(self.pid):
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
        return total / 2**20

    def run(self) -> None:
        while not self._done.wait(0.5):
            self.peak = max(self.peak, self.now())

    def stop(self) -> None:
        self._done.set()


# ---------------------------------------------------------------------------------------------- traffic


def stream_request(i: int) -> tuple[str, dict[str, Any], dict[str, str]]:
    """The i-th valid stream: chat, chat under a JSON schema, or Anthropic messages (default sampling)."""
    text = random.Random(i).choice(["Tell me about rivers.", "Write a haiku.", "What is 2+2?", "Name a colour."])
    if i % 5 == 4:
        return "/v1/messages", {"model": "tiny", "max_tokens": 16, "stream": True,
                                "messages": [{"role": "user", "content": text}]}, {"anthropic-version": "2023-06-01"}
    body: dict[str, Any] = {"model": "tiny", "max_tokens": 16, "stream": True,
                            "messages": [{"role": "user", "content": text}]}
    if i % 4 == 1:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "Person", "schema": PERSON}}
        body["max_tokens"] = 48
    return "/v1/chat/completions", body, {}


def one_stream(http: httpx.Client, i: int, tally: Tally) -> None:
    path, body, headers = stream_request(i)
    hang_up = i % 4 == 3
    start = time.perf_counter()
    try:
        with http.stream("POST", path, json=body, headers=headers) as r:
            if r.status_code != 200:
                r.read()
                tally.add("stream", r.status_code, time.perf_counter() - start, path, r.text)
                return
            for _ in r.iter_raw():
                if hang_up:  # the client goes away mid-stream: the server must free the row
                    with tally.lock:
                        tally.hangups += 1
                    break
        tally.add("stream", 200, time.perf_counter() - start, path)
    except httpx.HTTPError as exc:
        tally.add("stream", 0, time.perf_counter() - start, path, repr(exc))


_BUILT: dict[str, tuple[str, bytes, dict[str, str]]] = {}


def one_case(http: httpx.Client, case: dict[str, Any], tally: Tally, kind: str = "matrix") -> None:
    if case["name"] not in _BUILT:  # built once per client: a 700 KB body is the client's CPU, not the server's
        _BUILT[case["name"]] = hostile.request(case)
    path, content, headers = _BUILT[case["name"]]
    start = time.perf_counter()
    try:
        r = http.post(path, content=content, headers=headers)
    except httpx.HTTPError as exc:
        tally.add(kind, 0, time.perf_counter() - start, case["name"], repr(exc))
        return
    tally.add(kind, r.status_code, time.perf_counter() - start, case["name"], r.text,
              r.headers.get("openai-processing-ms"))
    if r.status_code not in hostile.allowed_statuses(case):
        tally.mismatch(case["name"], f"HTTP {r.status_code} {r.text[:120]!r}")
    for problem in hostile.envelope_problems(case, r.status_code, r.text):
        tally.mismatch(case["name"], problem)


def fuzz(base: str, cases: int, tally: Tally) -> tuple[int, int]:
    """schemathesis over every operation the reference server claims; (cases sent, operations)."""
    from wirecheck.spec.profiles import load_profile
    from wirecheck.suites.fuzz import Fuzzer
    from wirecheck.suites.target import Target
    from wirecheck.suites.wire import Wire

    target = Target(base_url=base + "/v1", api_key=None, profile=load_profile("reference"), model="tiny",
                    embedding_model="tiny", deadline=60.0)
    wire = Wire(target)
    probe = Fuzzer(wire, target, 0)
    operations = len(probe.claimed())
    # Generated cases repeat (each is sent once) and some operations (GET /models) run out of distinct ones:
    # ask for more (measured: 1.6x the target gave 0.8x of it).
    fuzzer = Fuzzer(wire, target, max(1, math.ceil(2.2 * cases / (2 * operations))))
    try:
        campaign = fuzzer.run()
    finally:
        wire.close()
    for sent in campaign.sent:
        ex = sent.exchange
        status = 0 if ex.error or ex.timed_out else ex.status
        tally.add("fuzz", status, ex.elapsed, sent.operation, ex.describe() if not status else ex.body[:160].decode(
            "utf-8", "replace"))
        problems = fuzzer.judge(sent, strict=False)
        for check_id in ("schema.response-conformance", "schema.content-type", "schema.status-documented"):
            if status >= 400 and problems.get(check_id):
                tally.mismatch(f"fuzz {sent.operation} HTTP {status}", f"{check_id}: {problems[check_id][0][:160]}")
    return len(campaign.sent), operations


# ---------------------------------------------------------------------------------------------- running


def _streams(base: str, clients: int, stop: Any, results: Any) -> None:
    tally, counter = Tally(), itertools.count()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=120) as http:
            while not stop.is_set():
                one_stream(http, next(counter), tally)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put(tally.state())


def _matrix(base: str, seed: int, stop: Any, results: Any) -> None:
    tally, cases, order = Tally(), hostile.cases(), random.Random(seed)
    with httpx.Client(base_url=base, timeout=120) as http:
        while not stop.is_set():
            for case in order.sample(cases, len(cases)):
                if stop.is_set():
                    break
                one_case(http, case, tally)
    results.put(tally.state())


def _fuzz(base: str, cases: int, stop: Any, results: Any) -> None:
    tally = Tally()
    sent, operations = fuzz(base, cases, tally)
    results.put({**tally.state(), "fuzz": (sent, operations)})  # merge() ignores the extra key


def soak(base: str, args: argparse.Namespace, tally: Tally) -> dict[str, Any]:
    """The mixed phase, then the schemathesis phase. Each client runs in its own process, so a reject's time is
    the server's and not a busy client's GIL; schemathesis gets a phase of its own because generating cases
    takes a core of client CPU, which on a small machine would be measured as server latency."""
    ctx = multiprocessing.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_streams, args=(base, args.streams, stop, results))] if args.streams else []
    procs += [ctx.Process(target=_matrix, args=(base, seed, stop, results)) for seed in range(args.matrix_workers)]
    start = time.monotonic()

    def over() -> None:
        if time.monotonic() - start >= args.duration:
            stop.set()

    _collect(procs, results, tally, over)
    run: dict[str, Any] = {"seconds": time.monotonic() - start}
    if args.fuzz_cases:
        fuzz_start = time.monotonic()
        fuzzer = ctx.Process(target=_fuzz, args=(base, args.fuzz_cases, stop, results))
        state = _collect([fuzzer], results, tally, lambda: None)
        run["cases"], run["operations"] = state["fuzz"]
        run["fuzz_seconds"] = time.monotonic() - fuzz_start
    return run


def _collect(procs: list[Any], results: Any, tally: Tally, stopping: Callable[[], None]) -> dict[str, Any]:
    """Start `procs`, merge each one's report into `tally` as it comes; `stopping` is polled meanwhile."""
    for proc in procs:
        proc.start()
    last: dict[str, Any] = {}
    pending = len(procs)
    while pending:
        stopping()
        try:
            last = results.get(timeout=0.5)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                raise SystemExit("a load client died without reporting") from None
            continue
        pending -= 1
        tally.merge(last)
    for proc in procs:
        proc.join(timeout=60)
    return last


def warm_up(base: str, tally: Tally, fuzz_cases: int) -> None:
    """Each kind of traffic once, so lazy loads and first-use caches are in the baseline."""
    warm = Tally()
    with httpx.Client(base_url=base, timeout=120) as http:
        for case in hostile.cases():
            one_case(http, case, warm)
        for i in range(8):
            one_stream(http, i, warm)
    if fuzz_cases:
        fuzz(base, min(40, fuzz_cases), warm)
    tally.server_errors += [f"(warm-up) {e}" for e in warm.server_errors]


def settle(base: str, timeout: float = 60.0) -> dict[str, Any]:
    """/health once nothing is running or waiting (or at the timeout)."""
    deadline = time.monotonic() + timeout
    health: dict[str, Any] = {}
    while time.monotonic() < deadline:
        health = httpx.get(base + "/health", timeout=10).json()
        if not health.get("running") and not health.get("waiting"):
            break
        time.sleep(0.5)
    time.sleep(2.0)  # let freed memory settle
    return health


def _reject_row(label: str, samples: list[float]) -> str:
    return (f"  {label:7s} n={len(samples):6d}  p50 {ms_percentile(samples, 50):7.1f}  "
            f"p99 {ms_percentile(samples, 99):7.1f}  max {ms_percentile(samples, 100):7.1f}")


def report(tally: Tally, run: dict[str, Any], rss: dict[str, float], health: dict[str, Any]) -> bool:
    info = machine_info()
    print(f"soak: {run['seconds']:.0f} s of mixed traffic, then schemathesis {run.get('cases', 0)} cases over "
          f"{run.get('operations', 0)} operations in {run.get('fuzz_seconds', 0):.0f} s; on {info['cpus']} CPUs "
          f"({info['cpu_model']}); {tally.hangups} streams hung up")
    print("requests by kind and status:")
    for kind, counts in sorted(tally.statuses.items()):
        shown = "  ".join(f"{status or 'no answer'}: {n}" for status, n in sorted(counts.items()))
        print(f"  {kind:7s} {sum(counts.values()):6d}   {shown}")
    print(f"5xx or no answer: {len(tally.server_errors)}")
    for line in tally.server_errors[:10]:
        print(f"  {line}")
    every = [s for samples in tally.rejects.values() for s in samples]
    print("time to reject (4xx), ms:")
    for kind, samples in sorted({**tally.rejects, "all": every}.items()):
        print(_reject_row(kind, samples))
    print(_reject_row("server", tally.server_rejects)
          + "   (openai-processing-ms: the server's own time to the answer, OpenAI paths)")
    slowest = sorted(tally.by_case.items(), key=lambda kv: -ms_percentile(kv[1], 99))[:6]
    print("  slowest to reject: " + ", ".join(f"{name} p99 {ms_percentile(v, 99):.0f} ms (n={len(v)})"
                                               for name, v in slowest))
    if tally.wrong:
        print(f"wrong status or envelope: {sum(tally.wrong.values())}")
        for name, n in tally.wrong.most_common(10):
            print(f"  {name} x{n}: {tally.wrong_examples[name]}")
    growth = rss["end"] / rss["warm"] - 1
    print(f"RSS MB (server + engine): start {rss['start']:.0f}, after warm-up {rss['warm']:.0f}, "
          f"peak {rss['peak']:.0f}, end {rss['end']:.0f} ({growth:+.1%} vs after warm-up)")
    print(f"at the end: running {health.get('running')}, waiting {health.get('waiting')}")
    targets = [
        ("0 x 5xx", not tally.server_errors),
        (f"reject p99 < {REJECT_P99_MS:.0f} ms", ms_percentile(every, 99) < REJECT_P99_MS),
        (f"end RSS within {RSS_GROWTH:.0%} of after warm-up", growth <= RSS_GROWTH),
        ("running and waiting back to 0", not health.get("running") and not health.get("waiting")),
        ("every answer in its status and envelope", not tally.wrong),
    ]
    for name, met in targets:
        print(f"  [{'met' if met else 'MISSED'}] {name}")
    return all(met for _, met in targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wirecheck.load.bench_soak", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of mixed traffic, at least")
    parser.add_argument("--streams", type=int, default=4, help="concurrent valid-stream clients")
    parser.add_argument("--matrix-workers", type=int, default=2, help="concurrent bad-input clients")
    parser.add_argument("--fuzz-cases", type=int, default=5000, help="schemathesis cases, at least (about)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="an extra `wirecheck serve` argument (repeatable)")
    args = parser.parse_args(argv)

    from wirecheck.suites.serve import ReferenceServer

    server = ReferenceServer("--log-level", "warning", *args.server_arg)
    try:
        server.wait_ready(timeout=300)
        watch = RssWatch(server.proc.pid)
        rss = {"start": watch.now()}
        tally = Tally()
        warm_up(server.base_url, tally, args.fuzz_cases)
        settle(server.base_url)
        rss["warm"] = watch.now()
        watch.peak = rss["warm"]
        watch.start()
        run = soak(server.base_url, args, tally)
        health = settle(server.base_url)
        watch.stop()
        rss["end"] = watch.now()
        rss["peak"] = max(watch.peak, rss["end"])
        return 0 if report(tally, run, rss, health) else 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
