"""How accurate is `wirecheck load`, and up to what load? Measured against a synthetic server's own send stamps.

    python -m wirecheck.load.bench_accuracy [--quick] [--out accuracy-out] [--users 1,4,16,32,64,128] [--duration 10]
        [--distributed N]

With ``--distributed N`` every sweep level runs twice in the same invocation: once as usual (one locust
process) and once as a distributed run, ``wirecheck load --master`` with N ``wirecheck load --worker``
processes (locust's master/worker mode, every sample sent to the master over locust's messages), and the
distributed errors are printed as ratios against the single-process ones.

Ground truth is load/synthetic_server.py: every token event is written on an absolute schedule and stamped
with perf_counter_ns right after its write call. Each requests.jsonl record (joined by ``x-request-id``)
is compared with its server timings (research/load.md 6.3):

  ttft_err = client_ttft - server_ttft,  server_ttft = sends[0] - recv
      client_ttft runs from the client's send, server_ttft from the server's full read of the request, so
      the residual also holds the client's own request path (its HTTP stack before the write), loopback
      transit both ways and the read: all part of what a client measures; never negative in principle.
      Split on the monotonic clock client and server share: req path (t_send -> server read) and first
      token path (server write -> client stamp).
  gap_err_i = (t_i - t_(i-1)) - (sends_i - sends_(i-1))   for token events i >= 1
  zero gap  = a client gap under 10 % of the server's gap (reads that coalesced events)
  tokens    = the client's token events == the server's sends, and usage == max_tokens

The server runs pinned to one CPU and the load generator (locust, inheriting this process's affinity)
to the others when there is more than one. First come two "floor" rows: the same errors for a minimal
raw-socket asyncio client at 1 and 16 streams, i.e. what this machine and server allow any client; the
16-stream one is also the server's self-check (p99 |send - deadline| < 0.5 ms wanted). The server's
lateness is reported per level too: whether the ground truth kept its schedule, not how wrong the
client is (errors are against the real send stamps). The envelope is the highest token events/s per
worker process at which median |ttft_err| <= 1 ms and median |gap_err| <= 0.5 ms held. Two negative
controls must show LARGE errors: the server in buffer mode (a 16 KB buffering proxy; truth = would-be
send times) and locust's ``FastHttpSession.iter_lines`` reader. Figures from a shared machine are
indicative; the table says how many CPUs there were and the load average at each level.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from wirecheck.spec.sse import SSEReader

from .stats import percentile

NS_MS = 1e6
TTFT_MEDIAN_MS, GAP_MEDIAN_MS = 1.0, 0.5  # the envelope's criteria
TTFT_P99_MS, GAP_P99_MS, ZERO_GAP_MAX = 5.0, 2.0, 0.001  # the full acceptance targets (research 6.3)
SERVER_P99_US = 500.0  # precondition: the ground truth keeps its own schedule
DEFINITIONS = {
    "ttft_err_ms": "client first_token_ns - (server sends[0] - server recv); includes loopback transit and parse",
    "gap_err_ms": "(client t_i - t_(i-1)) - (server sends_i - sends_(i-1)), token events i >= 1",
    "zero_gap_fraction": "client gaps under 10% of the matching server gap",
    "token_mismatches": "requests whose token events differ from the server's sends, or usage != max_tokens",
    "server_late_us": "server |send - deadline|: whether the ground truth kept its schedule",
    "events_per_s_per_worker": "token events/s received between warmup end and the last send, one worker",
}


@dataclass(frozen=True)
class Level:
    name: str
    users: int
    reader: str = "exact"
    mode: str = "normal"  # the synthetic server's mode for these requests
    distributed: int = 0  # remote-mode workers (wirecheck load --master / --worker); 0 = one local process

    @property
    def control(self) -> bool:
        return self.reader != "exact" or self.mode != "normal"


# -- the synthetic server ------------------------------------------------------------------------------


def cpu_split() -> tuple[set[int] | None, set[int] | None]:
    """(server CPUs, client CPUs): the last allowed CPU for the server, the rest for the generator."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


@contextlib.contextmanager
def synthetic_server(ttft_ms: float, itl_ms: float, tokens: int, cpus: set[int] | None,
                     busy_poll: bool = False) -> Iterator[str]:
    cmd = [sys.executable, "-m", "wirecheck.load.synthetic_server", "--port", "0", "--ttft-ms", str(ttft_ms),
           "--itl-ms", str(itl_ms), "--tokens", str(tokens)] + (["--busy-poll"] if busy_poll else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        if cpus:
            os.sched_setaffinity(proc.pid, cpus)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"synthetic server did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _raw_client(host: str, port: int, request: bytes, until: float, epoch_ns: int, out: list[dict]) -> None:
    """One closed-loop keep-alive client on a raw socket: stamps each read, parses no JSON. Its records
    have the requests.jsonl shape that join()/errors() read; the first is warm-up (it opened the socket)."""
    reader, writer = await asyncio.open_connection(host, port)
    first = True
    try:
        while time.monotonic() < until:
            t_send = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            rid = next(ln.split(b":", 1)[1].strip().decode() for ln in head.split(b"\r\n")
                       if ln.lower().startswith(b"x-request-id:"))
            sse, events, tail = SSEReader(), [], b""
            while not tail.endswith(b"0\r\n\r\n"):  # the last chunk; the chunk-size lines between events
                data = await reader.read(65536)  # read as unknown SSE fields, which the parser ignores
                t = time.perf_counter_ns() - t_send
                if not data:
                    return
                tail = (tail + data)[-8:]
                events += [[t, 1] for item in sse.feed(data) if '"content":" w' in item.data]
            out.append({"request_id": rid, "send_ns": t_send + epoch_ns, "ok": True, "warmup": first,
                        "first_token_ns": events[0][0] if events else None, "events": events,
                        "n_events": len(events), "usage_out": None})
            first = False
    finally:
        writer.close()


def floor_level(url: str, streams: int, duration_s: float, tokens: int) -> dict:
    """The rig's own floor: the same errors for a minimal raw-socket client at ``streams`` concurrent
    streams. It shows this machine and the server, not `wirecheck load`; its server jitter is the
    precondition (p99 |send - deadline| < 0.5 ms)."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"model": "synthetic", "stream": True, "max_tokens": tokens}).encode()
    request = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    httpx.post(url + "/debug/reset")
    loadavg = os.getloadavg()[0]
    epoch = time.time_ns() - time.perf_counter_ns()
    records: list[dict] = []

    async def run() -> None:
        until = time.monotonic() + duration_s
        await asyncio.gather(*(_raw_client(host, int(port), request, until, epoch, records) for _ in range(streams)))

    asyncio.run(run())
    jitter = httpx.get(url + "/debug/jitter").json()
    timings = httpx.get(url + "/debug/timings", timeout=60).json()
    pairs = join(records, timings, epoch, 0.0)
    return {"level": f"floor: raw x{streams}", "kind": "floor", "users": streams, "reader": "raw-socket",
            "mode": "normal", "control": False, "loadavg_1m": loadavg, "requests": len(records), "failed": 0,
            "events_per_s_per_worker": events_per_s(records, 0.0), "client_cpu_pct_max": None,
            "server_jitter_us": jitter,
            "server_ok": jitter["p99_us"] is not None and jitter["p99_us"] < SERVER_P99_US,
            **errors(pairs, tokens), **paths(pairs, epoch)}


# -- one load level --------------------------------------------------------------------------------------


def run_level(url: str, level: Level, out: Path, duration_s: float, warmup_s: float, ttft_ms: float,
              itl_ms: float, tokens: int) -> dict:
    """One `wirecheck load` run at ``level``; its records joined with the server's stamps."""
    from .command import run_load  # imported late: a missing or broken load command fails only step 2

    httpx.post(url + "/debug/reset")
    extra = {"synthetic_ttft_ms": ttft_ms, "synthetic_itl_ms": itl_ms}
    if level.mode != "normal":
        extra["synthetic_mode"] = level.mode
    argv = ["--target", url, "--profile", "chat-stream", "--users", str(level.users), "--duration",
            f"{duration_s}s", "--warmup", f"{warmup_s}s", "--out", str(out), "--model", "synthetic",
            "--output-tokens", str(tokens), "--extra-body", json.dumps(extra), "--reader", level.reader, "--quiet"]
    workers: list[subprocess.Popen] = []
    if level.distributed:
        port = _free_port()
        argv += ["--master", "--expect-workers", str(level.distributed), "--master-bind-host", "127.0.0.1",
                 "--master-bind-port", str(port)]
        workers = [subprocess.Popen([sys.executable, "-m", "wirecheck", "load", "--quiet", "--worker", "--master-host",
                                     "127.0.0.1", "--master-port", str(port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for _ in range(level.distributed)]
    loadavg = os.getloadavg()[0]
    epoch = time.time_ns() - time.perf_counter_ns()  # the worker's epoch offset, to within microseconds
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):  # its summary is not ours
            rc = run_load(argv)
    finally:
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
    if rc not in (0, 1):
        raise RuntimeError(f"wirecheck load exited {rc} at level {level.name}:\n{log.getvalue()[-3000:]}")
    records = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines() if line.strip()]
    timings = httpx.get(url + "/debug/timings", timeout=60).json()
    run = json.loads((out / "run.json").read_text())
    pairs = join(records, timings, epoch, warmup_s)
    stage = run["stages"][0] if run.get("stages") else {}
    eps = events_per_s(records, warmup_s)
    return {"level": level.name, "kind": "control" if level.control else "distributed" if level.distributed else "sweep",
            "users": level.users, "workers": level.distributed or 1,
            "reader": level.reader, "mode": level.mode, "control": level.control, "loadavg_1m": loadavg,
            "requests": len(records),
            "failed": sum(1 for r in records if not r.get("ok") and not str(r.get("error")).startswith("cancelled")),
            "events_per_s_per_worker": eps / (level.distributed or 1) if eps else eps,
            "clock": [{"worker": w["worker"], "offset_ms": w.get("clock_offset_ms"),
                       "uncertainty_ms": w.get("clock_uncertainty_ms"), "status": w.get("status")}
                      for w in run.get("workers", [])] if level.distributed else None,
            "client_cpu_pct_max": (stage.get("health") or {}).get("cpu_pct_max"),
            "generator_verdicts": (stage.get("health") or {}).get("verdicts"),
            **errors(pairs, tokens), **paths(pairs, epoch)}


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def distributed_ratios(rows: Sequence[dict]) -> list[dict]:
    """Each distributed level's errors against the single-process level of the same users, same invocation."""
    single = {r["users"]: r for r in rows if r["kind"] == "sweep"}
    out = []
    for d in (r for r in rows if r["kind"] == "distributed"):
        s = single.get(d["users"])
        if s is None:
            continue

        def ratio(metric: str, stat: str) -> float | None:
            a, b = d[metric][stat], s[metric][stat]
            return a / b if a is not None and b else None
        out.append({"users": d["users"], "workers": d["workers"], "passes": passes(d), "single_passes": passes(s),
                    "ttft_err_p50_ms": [s["ttft_err_ms"]["abs_p50"], d["ttft_err_ms"]["abs_p50"]],
                    "gap_err_p50_ms": [s["gap_err_ms"]["abs_p50"], d["gap_err_ms"]["abs_p50"]],
                    "ttft_err_p99_ms": [s["ttft_err_ms"]["abs_p99"], d["ttft_err_ms"]["abs_p99"]],
                    "ratio_ttft_p50": ratio("ttft_err_ms", "abs_p50"), "ratio_gap_p50": ratio("gap_err_ms", "abs_p50"),
                    "ratio_ttft_p99": ratio("ttft_err_ms", "abs_p99"), "ratio_gap_p99": ratio("gap_err_ms", "abs_p99"),
                    "token_mismatches": d["token_mismatches"], "joined": [s["joined"], d["joined"]]})
    return out


def join(records: Sequence[dict], timings: dict[str, dict], epoch_ns: int, warmup_s: float) -> list[tuple[dict, dict]]:
    """(record, server timing) for ok records past the warmup. By request id; records without one (the
    iter_lines reader cannot see headers) by send time: the earliest unused request the server read
    after the client's send (CLOCK_MONOTONIC is shared across processes on one machine)."""
    ok = sorted((r for r in records if r.get("ok")), key=lambda r: r["send_ns"])
    if not ok:
        return []
    start = ok[0]["send_ns"] + warmup_s * 1e9
    by_recv = sorted(timings.items(), key=lambda kv: kv[1]["recv_ns"])
    used: set[str] = set()
    pairs = []
    cursor = 0
    for rec in ok:
        rid = rec.get("request_id")
        if rid is None:  # time match; 1 ms slack for the epoch offset's own error
            send_mono = rec["send_ns"] - epoch_ns - 1_000_000
            while cursor < len(by_recv) and (by_recv[cursor][1]["recv_ns"] < send_mono or by_recv[cursor][0] in used):
                cursor += 1
            rid = by_recv[cursor][0] if cursor < len(by_recv) else None
        timing = timings.get(rid) if rid else None
        if timing is None or rid in used:
            continue
        used.add(rid)
        if not rec.get("warmup", rec["send_ns"] < start):  # the load command's flag when it sets one
            pairs.append((rec, timing))
    return pairs


def errors(pairs: Sequence[tuple[dict, dict]], tokens: int) -> dict:
    """Error statistics (ms) of client timings against the server's stamps; see the module docstring."""
    ttft, gaps, late = [], [], []
    zero = mismatched = queued = 0
    for rec, t in pairs:
        sends = t["sends_ns"]
        late += [s - d for s, d in zip(sends, t["deadlines_ns"])]
        queued += t.get("queued_events", 0)
        client = [e[0] for e in rec["events"]]
        complete = len(sends) == len(t["deadlines_ns"])  # the server sent its whole schedule
        if len(client) != len(sends) or rec.get("usage_out") not in (None, tokens) or not complete:
            mismatched += 1
        if not client or not sends:
            continue
        ttft.append((rec["first_token_ns"] - (sends[0] - t["recv_ns"])) / NS_MS)
        for i in range(1, min(len(client), len(sends))):
            c_gap, s_gap = client[i] - client[i - 1], sends[i] - sends[i - 1]
            gaps.append((c_gap - s_gap) / NS_MS)
            zero += c_gap < 0.1 * s_gap
    late_us = [abs(x) / 1e3 for x in late]
    return {"joined": len(pairs), "ttft_err_ms": err_summary(ttft), "gap_err_ms": err_summary(gaps),
            "zero_gap_fraction": zero / len(gaps) if gaps else None, "token_mismatches": mismatched,
            "server_late_us": {"p50": _pct(late_us, 50), "p99": _pct(late_us, 99)},
            "server_queued_events": queued}


def paths(pairs: Sequence[tuple[dict, dict]], epoch_ns: int) -> dict:
    """Where the TTFT error sits, on the monotonic clock client and server share: the request path
    (client t_send -> server has read the request) and the first token's response path (server write ->
    client stamp). Diagnostic only: the epoch offset carries a few microseconds of error."""
    req, resp = [], []
    for rec, t in pairs:
        send = rec["send_ns"] - epoch_ns
        req.append((t["recv_ns"] - send) / NS_MS)
        if rec.get("first_token_ns") is not None and t["sends_ns"]:
            resp.append((send + rec["first_token_ns"] - t["sends_ns"][0]) / NS_MS)
    return {"request_path_ms": {"p50": _pct(req, 50), "p99": _pct(req, 99)},
            "first_token_path_ms": {"p50": _pct(resp, 50), "p99": _pct(resp, 99)}}


def err_summary(values: Sequence[float]) -> dict:
    """Median and p99 of |error|, plus the signed median (the bias) and the count."""
    ab = [abs(v) for v in values]
    return {"count": len(values), "abs_p50": _pct(ab, 50), "abs_p99": _pct(ab, 99), "signed_p50": _pct(values, 50)}


def _pct(values: Sequence[float], q: float) -> float | None:
    return percentile(values, q) if values else None


def events_per_s(records: Sequence[dict], warmup_s: float) -> float | None:
    """Token events/s the client received between the end of warmup and the last send (one worker)."""
    ok = [r for r in records if r.get("ok")]
    if not ok:
        return None
    start = min(r["send_ns"] for r in ok) + warmup_s * 1e9
    end = max(r["send_ns"] for r in ok)
    if end <= start:
        return None
    n = sum(1 for r in ok for e in r["events"] if start <= r["send_ns"] + e[0] < end)
    return n / ((end - start) / 1e9)


# -- verdicts and output ------------------------------------------------------------------------------


def passes(row: dict, full: bool = False) -> bool:
    """Envelope criteria (medians); with ``full``, the p99, zero-gap and token targets too."""
    t, g = row["ttft_err_ms"], row["gap_err_ms"]
    if t["abs_p50"] is None or g["abs_p50"] is None or row["token_mismatches"] or row["failed"]:
        return False
    ok = t["abs_p50"] <= TTFT_MEDIAN_MS and g["abs_p50"] <= GAP_MEDIAN_MS
    if full:
        ok = ok and t["abs_p99"] <= TTFT_P99_MS and g["abs_p99"] <= GAP_P99_MS and \
            (row["zero_gap_fraction"] or 0.0) <= ZERO_GAP_MAX
    return ok


def envelope(rows: Sequence[dict]) -> dict:
    good = [r for r in rows if r["kind"] == "sweep" and passes(r) and r["events_per_s_per_worker"]]
    full = [r for r in good if passes(r, full=True)]
    best = max(good, key=lambda r: r["events_per_s_per_worker"], default=None)
    best_full = max(full, key=lambda r: r["events_per_s_per_worker"], default=None)
    return {"events_per_s_per_worker": best and best["events_per_s_per_worker"], "at_users": best and best["users"],
            "full_targets_events_per_s_per_worker": best_full and best_full["events_per_s_per_worker"],
            "criteria": f"median |ttft_err| <= {TTFT_MEDIAN_MS} ms and median |gap_err| <= {GAP_MEDIAN_MS} ms, "
                        "every token counted, no failed request",
            "full_criteria": f"also p99 |ttft_err| <= {TTFT_P99_MS} ms, p99 |gap_err| <= {GAP_P99_MS} ms, "
                             f"zero gaps <= {ZERO_GAP_MAX:.1%}"}


def _f(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def table(rows: Sequence[dict]) -> str:
    head = (f"{'level':<22}{'ev/s/wkr':>9}{'cpu%':>5}{'load':>5}{'reqs':>5}{'TTFT err p50':>13}{'p99':>8}"
            f"{'req/resp p50':>13}{'gap err p50':>12}{'p99':>8}{'zero-gap':>9}{'tok!=':>6}{'srv late p99':>13}"
            "  verdict")
    lines = [head, "-" * len(head)]
    for r in rows:
        t, g = r["ttft_err_ms"], r["gap_err_ms"]
        ok = passes(r)
        verdict = ("UNEXPECTED (control passed)" if ok else "FAIL-as-expected") if r["control"] else \
            ("pass" + (" (full)" if passes(r, full=True) else "") if ok else "FAIL")
        if r["kind"] == "floor":
            verdict = f"rig floor, not ours ({verdict})"
        split = f"{_f(r['request_path_ms']['p50'])}/{_f(r['first_token_path_ms']['p50'])}"
        late = r["server_late_us"]["p99"]
        lines.append(f"{r['level']:<22}{_f(r['events_per_s_per_worker'], '.0f'):>9}"
                     f"{_f(r['client_cpu_pct_max'], '.0f'):>5}{r['loadavg_1m']:>5.1f}{r['joined']:>5}"
                     f"{_f(t['abs_p50']):>13}{_f(t['abs_p99']):>8}{split:>13}{_f(g['abs_p50'], '.3f'):>12}"
                     f"{_f(g['abs_p99'], '.3f'):>8}{_f(r['zero_gap_fraction'], '.1%'):>9}{r['token_mismatches']:>6}"
                     f"{_f(late and late / 1e3, '.1f') + ' ms':>13}  {verdict}")
    return "\n".join(lines)


def environment(server_cpus: set[int] | None, client_cpus: set[int] | None) -> dict:
    cpu_model = None
    with contextlib.suppress(OSError):
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                          if ln.startswith("model name")), None)
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "python": platform.python_version(),
            "platform": platform.platform(), "loadavg_at_start": os.getloadavg(),
            "server_cpus": sorted(server_cpus) if server_cpus else None,
            "client_cpus": sorted(client_cpus) if client_cpus else None,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m wirecheck.load.bench_accuracy", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short subset: users 1,4,32 for 5 s each")
    p.add_argument("--users", help="concurrency sweep (default: 1,4,16,32,64,128; quick: 1,4,32)")
    p.add_argument("--duration", type=float, help="seconds per level (default: 10; quick: 5)")
    p.add_argument("--warmup", type=float, help="seconds left out at the start of each level (default: 2; quick: 1)")
    p.add_argument("--ttft-ms", type=float, default=50.0)
    p.add_argument("--itl-ms", type=float, default=5.0)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--floor-seconds", type=float, help="seconds per raw-client floor row (default: 3)")
    p.add_argument("--control-users", type=int, default=4, help="users in the negative controls (default: 4)")
    p.add_argument("--no-controls", action="store_true", help="skip the negative controls")
    p.add_argument("--busy-poll", action="store_true",
                   help="the server spins instead of idling (no wake-up latency in the ground truth); wants a "
                        "machine with CPUs to spare: on a shared 2-vCPU VM it made no difference or worse")
    p.add_argument("--distributed", type=int, default=0, metavar="N",
                   help="also run each sweep level as `wirecheck load --master` + N `--worker` processes and print "
                        "its errors as ratios against the single-process run")
    p.add_argument("--out", default="accuracy-out", help="folder for accuracy.json and each level's run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    users = [int(u) for u in (args.users or ("1,4,32" if args.quick else "1,4,16,32,64,128")).split(",")]
    duration = args.duration or (5.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    floor_s = args.floor_seconds if args.floor_seconds is not None else min(duration, 3.0)
    if args.distributed < 0:
        print("--distributed must be >= 0", file=sys.stderr)
        return 2
    levels = [Level(f"{u} users", u) for u in users]
    if args.distributed:
        levels += [Level(f"{u} users, {args.distributed} remote wkrs", u, distributed=args.distributed) for u in users]
    if not args.no_controls:
        levels += [Level(f"{args.control_users} users buffer-16K", args.control_users, mode="buffer"),
                   Level(f"{args.control_users} users iter_lines", args.control_users, reader="locust-iter-lines")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server_cpus, client_cpus = cpu_split()
    own = os.sched_getaffinity(0)
    result: dict = {"schema": "wirecheck.accuracy/1", "env": environment(server_cpus, client_cpus),
                    "config": {"ttft_ms": args.ttft_ms, "itl_ms": args.itl_ms, "tokens": args.tokens,
                               "duration_s": duration, "warmup_s": warmup, "users": users, "workers": 1,
                               "server_busy_poll": args.busy_poll and bool(server_cpus)},
                    "definitions": DEFINITIONS}
    try:
        busy = args.busy_poll and bool(server_cpus)
        with synthetic_server(args.ttft_ms, args.itl_ms, args.tokens, server_cpus, busy_poll=busy) as url:
            if client_cpus:
                os.sched_setaffinity(0, client_cpus)  # locust inherits it
            rows = [floor_level(url, n, floor_s, args.tokens) for n in (1, 16)]
            check = rows[-1]["server_jitter_us"]
            result["server_selfcheck"] = {**check, "streams": 16, "ok": rows[-1]["server_ok"]}
            print(f"server self-check (16 raw streams): |send - deadline| p50 {_f(check['p50_us'], '.0f')} us, "
                  f"p99 {_f(check['p99_us'], '.0f')} us -> "
                  f"{'ok' if rows[-1]['server_ok'] else 'NOT MET (< 500 us wanted)'}", file=sys.stderr)
            with tempfile.TemporaryDirectory(prefix="wirecheck-accuracy-") as tmp:
                for i, level in enumerate(levels):
                    print(f"level {i + 1}/{len(levels)}: {level.name}", file=sys.stderr, flush=True)
                    rows.append(run_level(url, level, Path(tmp) / f"level-{i}", duration, warmup, args.ttft_ms,
                                          args.itl_ms, args.tokens))
    finally:
        os.sched_setaffinity(0, own)
    result["levels"] = rows
    result["envelope"] = envelope(rows)
    result["distributed"] = distributed_ratios(rows) if args.distributed else None
    (out / "accuracy.json").write_text(json.dumps(result, indent=2) + "\n")
    env = result["env"]
    print(f"\naccuracy of `wirecheck load` (1 worker) vs synthetic server (TTFT {args.ttft_ms:g} ms, ITL "
          f"{args.itl_ms:g} ms, {args.tokens} tokens); {env['cpus']} CPUs ({env['cpu_model']}), server on "
          f"{env['server_cpus']}, generator on {env['client_cpus']}, load avg at start "
          f"{env['loadavg_at_start'][0]:.2f}; errors in ms")
    print(table(rows))
    print("load: 1-min load average at the level's start; req/resp p50: client send -> server read, and server "
          "write -> client stamp of the first token (ms, shared monotonic clock); srv late: the server's own p99 "
          "|send - deadline|; bias of TTFT err is in accuracy.json (signed_p50)")
    e = result["envelope"]
    print(f"\nenvelope: {_f(e['events_per_s_per_worker'], '.0f')} token events/s per worker ({e['criteria']}); "
          f"with the full targets: {_f(e['full_targets_events_per_s_per_worker'], '.0f')}")
    print(f"wrote {out / 'accuracy.json'}")
    if result["distributed"]:
        print(f"\ndistributed (1 master + {args.distributed} worker processes, locust --master/--worker) vs one "
              "process, same invocation: median/p99 |error| in ms, distributed/single ratio")
        print(f"{'users':>6}{'TTFT p50 1p -> dist':>22}{'ratio':>7}{'gap p50 1p -> dist':>22}{'ratio':>7}"
              f"{'TTFT p99 ratio':>15}{'gap p99 ratio':>14}  within envelope")
        for d in result["distributed"]:
            t, g = d["ttft_err_p50_ms"], d["gap_err_p50_ms"]
            print(f"{d['users']:>6}{_f(t[0]) + ' -> ' + _f(t[1]):>22}{_f(d['ratio_ttft_p50']):>7}"
                  f"{_f(g[0], '.3f') + ' -> ' + _f(g[1], '.3f'):>22}{_f(d['ratio_gap_p50']):>7}"
                  f"{_f(d['ratio_ttft_p99']):>15}{_f(d['ratio_gap_p99']):>14}  "
                  f"{'yes' if d['passes'] else 'NO'} (single: {'yes' if d['single_passes'] else 'no'})")
    unexpected = [r["level"] for r in rows if r["control"] and passes(r)]
    if unexpected:
        print(f"UNEXPECTED: negative controls passed: {', '.join(unexpected)} (the bench could not have gone red)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
