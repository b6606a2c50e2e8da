"""Distributed load runs (locust's master/worker mode): the pure parts (clock offsets, schedule shares,
record merging) and real runs: a `wirecheck load --master` and `--worker` processes on loopback against the
synthetic server, whose own send stamps are the ground truth. No timing assertions: counts, exact
percentiles, and the clock bound (the processes share one clock here, so the true offset is 0)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from wirecheck.load.clock import Exchange, estimate
from wirecheck.load.command import run_load
from wirecheck.load.merge import health_on_master_clock, pooled, records_on_master_clock, worker_status
from wirecheck.load.pacer import arrival_offsets, share_offsets
from wirecheck.load.records import metrics
from wirecheck.load.search import last_probe
from wirecheck.load.sweep import RateSearch
from wirecheck.load.workers import worker_rows

from .synthetic import synthetic_server

MS = 1_000_000


# ------------------------------------------------------------------------------ clock offsets


def exchange(offset: int, t1: int, up: int, down: int, hold: int = 10_000) -> Exchange:
    """One ping/pong with the master's clock ``offset`` ahead, ``up``/``down`` ns on the wire each way."""
    t2 = t1 + up + offset
    return Exchange(t1, t2, t2 + hold, t1 + up + hold + down)


def test_offset_comes_from_the_lowest_round_trip_and_bounds_the_truth():
    offset = 7_000_000
    ex = [exchange(offset, 0, 900_000, 100_000), exchange(offset, 10 * MS, 50_000, 30_000),
          exchange(offset, 20 * MS, 400_000, 2_000_000)]
    est = estimate(ex)
    assert est.rtt_ns == 80_000 and est.uncertainty_ns == 40_000 and est.exchanges == 3
    assert est.offset_ns == offset + (50_000 - 30_000) // 2  # asymmetry shows up, inside the bound
    for e in ex:  # whatever the exchange, the truth is within half its round trip
        assert abs(e.offset_ns - offset) <= e.rtt_ns / 2
    assert estimate([]) is None


def test_offset_follows_drift_through_its_window():
    old = [exchange(1_000, i * MS, 10_000, 10_000) for i in range(5)]  # very tight, but old
    new = [exchange(5_000, (10 + i) * MS, 60_000, 60_000) for i in range(30)]
    assert estimate(old + new, window=30).offset_ns == 5_000
    assert estimate(old + new, window=35).offset_ns == 1_000


# ------------------------------------------------------------------------------ schedule shares


def test_constant_shares_interleave_into_the_single_machine_schedule():
    rates, durations = [10.0, 30.0], [3.0, 2.0]
    whole = arrival_offsets(rates, durations, "constant", 0)
    parts = [share_offsets(rates, durations, "constant", 0, k, 3) for k in range(3)]
    assert sorted(t for p in parts for t in p) == whole and len(whole) == 90
    assert parts[1][0] - parts[0][0] == 100 * MS  # worker k is phase-shifted by k/N of its own interval
    assert share_offsets(rates, durations, "constant", 0, 0, 1) == whole


def test_poisson_shares_superpose_to_the_total_rate():
    rate, duration, n = 40.0, 500.0, 4
    parts = [share_offsets([rate], [duration], "poisson", 3, k, n) for k in range(n)]
    assert len({tuple(p[:5]) for p in parts}) == n  # independent streams, not copies
    merged = sorted(t for p in parts for t in p)
    assert abs(len(merged) / duration / rate - 1) < 0.02
    gaps = np.diff(merged) / 1e9
    assert abs(gaps.mean() * rate - 1) < 0.02 and abs(gaps.std() / gaps.mean() - 1) < 0.05  # exponential: cv 1
    with pytest.raises(ValueError):
        share_offsets([rate], [duration], "poisson", 3, 4, 4)


# ------------------------------------------------------------------------------ merging


def test_only_absolute_times_move_onto_the_master_clock():
    rec = {"send_ns": 1_000, "first_token_ns": 50, "events": [[50, 1], [60, 1]], "done_ns": 70, "lag_ns": 3,
           "worker": "w"}
    moved = records_on_master_clock([rec], -400)[0]
    assert moved["send_ns"] == 600 and moved["clock_offset_ns"] == -400
    assert {k: moved[k] for k in rec if k != "send_ns"} == {k: rec[k] for k in rec if k != "send_ns"}
    assert health_on_master_clock([{"t_ns": 10, "cpu_pct": 5}], 5) == [{"t_ns": 15, "cpu_pct": 5}]
    batches = [{"clock": {"offset_ns": 10}, "records": [rec], "health": []},
               {"clock": None, "records": [rec], "health": [{"t_ns": 1}]}]
    records, health = pooled(batches)
    assert [r["send_ns"] for r in records] == [1_010, 1_000] and health == [{"t_ns": 1}]
    assert worker_status("running", True) == "ok" and worker_status("missing", False) == "missing"
    assert worker_status(None, False) == "lost"


def test_worker_rows_report_envelope_clock_and_status():
    recs = [{"worker": "a:1", "send_ns": 0, "done_ns": 1_000_000_000, "n_events": 8000, "ok": True},
            {"worker": "b:2", "send_ns": 0, "done_ns": 2_000_000_000, "n_events": 100, "ok": True}]
    health = [{"worker": "a:1", "t_ns": 1, "cpu_pct": 90.0, "loop_lag_ms": [1.0, 3.0]}]
    workers = [{"worker": "a:1", "index": 0, "remote": True, "status": "ok",
                "clock": {"offset_ns": 2_500_000, "uncertainty_ns": 100_000}},
               {"worker": "b:2", "index": 1, "remote": True, "status": "missing", "clock": None}]
    a, b = worker_rows(workers, recs, health)
    assert a["events_per_s"] == 8000 and a["within_envelope"] is False and a["cpu_pct_max"] == 90.0
    assert a["clock_offset_ms"] == 2.5 and a["clock_uncertainty_ms"] == 0.1
    assert b["status"] == "missing" and b["events_per_s"] == 50 and b["clock_offset_ms"] is None


def test_rate_search_tells_workers_when_no_probe_follows():
    s = RateSearch(1, 4, steps=1)
    assert not last_probe(s, 1)
    s.record(1, True)
    s.record(2, True)
    assert not last_probe(s, 4)  # at the top: passing ends it, failing bisects
    s.record(4, False)
    assert last_probe(s, 3)  # the one bisection allowed


# ------------------------------------------------------------------------------ CLI


@pytest.mark.parametrize("argv, message", [
    (["--worker", "--master-host", "h", "--users", "3"], "drop --users"),
    (["--worker"], "needs --master-host"),
    (["--master", "--workers", "2", "--target", "http://127.0.0.1:9"], "--expect-workers"),
    (["--master", "--expect-workers", "0"], "--expect-workers must be >= 1"),
    (["--worker", "--master-host", "h", "--master-port", "70000"], "1..65535"),
])
def test_bad_distributed_flags_are_usage_errors(argv, message, capsys):
    assert run_load(argv) == 2
    assert message in capsys.readouterr().err


def test_conflicting_roles_exit_2():
    done = subprocess.run([sys.executable, "-m", "wirecheck", "load", "--master", "--worker"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2 and "not allowed" in done.stderr and "Traceback" not in done.stderr


# ------------------------------------------------------------------------------ real runs


@pytest.fixture(scope="module")
def synthetic() -> Iterator[str]:
    with synthetic_server(20, 4, 12) as url:
        yield url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "wirecheck", "load", "--quiet", *args]


def master(url: str, port: int, out: Path, workers: int, *load: str) -> subprocess.Popen:
    return subprocess.Popen(load_cmd("--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
                                     "--master-bind-port", str(port), "--target", url, "--model", "synthetic",
                                     "--output-tokens", "12", "--out", str(out), *load),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def worker(port: int, host: str = "127.0.0.1", prefix: tuple[str, ...] = ()) -> subprocess.Popen:
    return subprocess.Popen([*prefix, *load_cmd("--worker", "--master-host", host, "--master-port", str(port))],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL) if proc.pid else None
        out, _ = proc.communicate()
        raise AssertionError(f"process did not end:\n{out[-3000:]}") from None
    return out


def read_out(out: Path) -> tuple[dict, list[dict]]:
    run = json.loads((out / "run.json").read_text())
    return run, [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]


def check_exact_percentiles(run: dict, requests: list[dict]) -> None:
    """run.json's figures are the percentiles of every raw sample from every worker, recomputed here."""
    ok = [r for r in requests if r["ok"] and not r["warmup"] and r["stage"] == 0]
    per = [metrics(r) for r in ok]
    figures = run["stages"][0]["metrics"]
    samples = {"ttft_ms": [m.ttft_ms for m in per], "e2el_ms": [m.e2el_ms for m in per],
               "tpot_ms": [m.tpot_ms for m in per], "icl_ms": [g for m in per for g in m.icl_ms]}
    for name, values in samples.items():
        assert figures[name]["count"] == len(values)
        for stat, q in (("p50", 50), ("p90", 90), ("p99", 99)):
            assert figures[name][stat] == pytest.approx(float(np.percentile(values, q, method="linear")), rel=1e-12)


def test_master_and_two_workers_pool_every_raw_sample(synthetic, tmp_path):
    httpx.post(synthetic + "/debug/reset")
    out, port = tmp_path / "dist", free_port()
    m = master(synthetic, port, out, 2, "--rate", "24", "--arrival", "constant", "--duration", "5s", "--warmup", "1s")
    workers = [worker(port) for _ in range(2)]
    log = finish(m)
    assert m.returncode == 0, log
    for w in workers:  # told no further run follows: they end on their own
        assert finish(w, 60) is not None and w.returncode == 0
    run, requests = read_out(out)
    assert len({r["worker"] for r in requests}) == 2 and run["config"]["distributed"] is True
    # The schedule holds: 24/s for 5 s split over two workers is 120 sends, whatever each worker did.
    assert abs(len(requests) - 120) <= 0.02 * 120
    assert abs(run["stages"][0]["health"]["achieved_over_requested"] - 1) <= 0.02
    # Every request the server saw came back to the master with its sample, exact token counts.
    timings = httpx.get(synthetic + "/debug/timings", timeout=30).json()
    assert {r["request_id"] for r in requests} == set(timings)
    assert all(r["ok"] and r["n_events"] == len(timings[r["request_id"]]["sends_ns"]) == 12 for r in requests)
    check_exact_percentiles(run, requests)
    rows = run["workers"]
    assert len(rows) == 2 and {w["status"] for w in rows} == {"ok"} and all(w["remote"] for w in rows)
    for w in rows:  # one machine, one clock: the true offset is 0 and must lie inside the reported bound
        assert w["clock_exchanges"] >= 10
        assert abs(w["clock_offset_ms"]) <= w["clock_uncertainty_ms"] + 0.05
    assert "Load generators" in (out / "report.html").read_text()


def test_a_killed_worker_is_reported_and_its_samples_kept(synthetic, tmp_path):
    out, port = tmp_path / "kill", free_port()
    m = master(synthetic, port, out, 2, "--users", "4", "--duration", "10s", "--warmup", "1s")
    workers = [worker(port) for _ in range(2)]
    victim = workers[1]
    deadline = time.monotonic() + 60
    name = None
    while time.monotonic() < deadline and name is None:  # wait until its first batch reached the master
        import psutil
        kids = psutil.Process(victim.pid).children()
        if kids:
            candidate = f"{socket.gethostname()}:{kids[0].pid}".replace(":", "_")
            part = out / "parts" / f"requests-{candidate}.jsonl"
            if part.exists() and part.read_text().count("\n") >= 3:
                name = candidate
        time.sleep(0.2)
    assert name is not None, "the victim never sent a batch"
    kept = (out / "parts" / f"requests-{name}.jsonl").read_text().count("\n")
    os.killpg(victim.pid, signal.SIGKILL)
    log = finish(m)
    assert m.returncode == 0, log
    finish(workers[0], 60)
    run, requests = read_out(out)
    by_name = {w["worker"].replace(":", "_"): w for w in run["workers"]}
    assert by_name[name]["status"] == "missing" and by_name[name]["requests"] >= kept
    assert sum(1 for r in requests if r["worker"].replace(":", "_") == name) >= kept
    assert [w["status"] for n, w in by_name.items() if n != name] == ["ok"]
    assert any("went missing" in w for w in run["warnings"])


NETNS_SCRIPT = r"""
set -e
trap 'kill $NS1 $NS2 $SRV $W1 $W2 2>/dev/null || true' EXIT
ip link set lo up
for i in 1 2; do
  unshare -n sleep 300 >/dev/null 2>&1 & eval "NS$i=\$!"
done
sleep 0.3
for i in 1 2; do
  eval "NS=\$NS$i"
  ip link add "va$i" type veth peer name vb netns "$NS"
  ip addr add "10.77.$i.1/24" dev "va$i"; ip link set "va$i" up
  nsenter -t "$NS" -n sh -c "ip link set lo up; ip addr add 10.77.$i.2/24 dev vb; ip link set vb up;
                             ip route add default via 10.77.$i.1"
done
"$PY" -m wirecheck.load.synthetic_server --host 0.0.0.0 --port 0 --ttft-ms 20 --itl-ms 4 --tokens 12 > "$TMP/srv" 2>&1 &
SRV=$!
while ! grep -q listening "$TMP/srv"; do sleep 0.1; done
PORT=$(awk '{print $NF}' "$TMP/srv" | sed 's/.*://')
for i in 1 2; do
  eval "NS=\$NS$i"
  nsenter -t "$NS" -n "$PY" -m wirecheck load --quiet --worker --master-host 10.77.1.1 --master-port 5557 \
    > "$TMP/worker$i.log" 2>&1 &
  eval "W$i=\$!"
done
"$PY" -m wirecheck load --quiet --master --expect-workers 2 --target "http://10.77.1.1:$PORT" --model synthetic \
  --rate 20 --arrival constant --duration 4s --warmup 1s --output-tokens 12 --out "$TMP/out" > "$TMP/master.log" 2>&1 \
  && echo "master rc 0" || echo "master failed"
"$PY" -c "import httpx,sys; print(len(httpx.get(sys.argv[1]).json()))" "http://10.77.1.1:$PORT/debug/timings" \
  > "$TMP/server_count"
wait $W1 $W2 || true
"""


def can_unshare() -> str | None:
    if shutil.which("unshare") is None or shutil.which("ip") is None or shutil.which("nsenter") is None:
        return "unshare, nsenter or ip is not installed"
    done = subprocess.run(["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"no unprivileged network namespaces here: {done.stderr.strip()}"


@pytest.mark.skipif(bool(can_unshare()), reason=can_unshare() or "")
def test_workers_in_their_own_network_namespaces(tmp_path):
    """Each worker in its own network namespace (no shared loopback, own veth link to the master's), made by
    `unshare -rn` without privileges: the master reaches them only over the network, the target too."""
    env = {**os.environ, "PY": sys.executable, "TMP": str(tmp_path)}
    done = subprocess.run(["unshare", "-rn", "--fork", "sh", "-c", NETNS_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=150)
    logs = "\n".join(p.read_text()[-1500:] for p in tmp_path.glob("*.log"))
    assert "master rc 0" in done.stdout, done.stdout + done.stderr + logs
    run, requests = read_out(tmp_path / "out")
    assert len({r["worker"] for r in requests}) == 2 and abs(len(requests) - 80) <= 0.02 * 80
    assert int((tmp_path / "server_count").read_text()) == len(requests) and all(r["ok"] for r in requests)
    check_exact_percentiles(run, requests)
    for w in run["workers"]:
        assert w["status"] == "ok" and abs(w["clock_offset_ms"]) <= w["clock_uncertainty_ms"] + 0.05
