"""Functional smoke of the load path: real `wirecheck serve`, real locust, real files. No timing
assertions (CI has two busy cores): only that every part runs and writes what it promises."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from wirecheck.load.profiles import PROFILES, auth_headers, request_body
from wirecheck.load.records import metrics, stream_record
from wirecheck.load.timing import feed_timed
from wirecheck.suites.serve import ReferenceServer


@pytest.fixture(scope="module")
def server():
    srv = ReferenceServer()
    srv.wait_ready()
    yield srv
    srv.stop()


def wirecheck_load(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wirecheck", "load", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout)


def read_run(out: Path) -> tuple[dict, list[dict]]:
    run = json.loads((out / "run.json").read_text())
    requests = [json.loads(line) for line in (out / "requests.jsonl").read_text().splitlines()]
    return run, requests


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_speaks_to_the_reference_server(server, name):
    """Each profile's request is accepted and its response parses into a complete, ok record."""
    profile = PROFILES[name]
    body = request_body(profile, "tiny", 1, 16, 16, {})  # Responses: max_output_tokens >= 16
    t_send = time.perf_counter_ns()
    with httpx.stream("POST", server.base_url + profile.path, json=body, headers=auth_headers(profile, None),
                      timeout=60) as r:
        assert r.status_code == 200, r.read()
        chunks = [(time.perf_counter_ns(), c) for c in r.iter_raw()]
    if profile.stream:
        timed = feed_timed(chunks)
        parsed = profile.parse_stream([(n, d) for _, n, d in timed.events])
        record = stream_record(profile=name, stage=0, worker="t", request_id=None, send_ns=0, lag_ns=None,
                               status=200, headers_ns=0, timed=timed, parsed=parsed, t_send=t_send,
                               done_ns=chunks[-1][0] - t_send, max_tokens=16, error=None)
        assert record["ok"], record["error"]
        assert record["n_events"] >= 1 and record["usage_out"] >= 1 and record["usage_in"] >= 1
        assert metrics(record).ttft_ms > 0
    else:
        parsed = profile.parse_body(json.loads(b"".join(c for _, c in chunks)))
        assert parsed.complete and parsed.usage_in >= 1


def test_closed_loop_run_writes_every_file(server, tmp_path):
    out = tmp_path / "run"
    done = wirecheck_load("--target", server.base_url, "--users", "1,2", "--duration", "3s", "--output-tokens", "8",
                          "--extra-body", '{"min_tokens": 8}', "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    run, requests = read_run(out)
    assert run["schema"] == "wirecheck.load/1" and run["config"]["model"] == "tiny"
    assert [s["label"] for s in run["stages"]] == ["1 user", "2 users"]
    for stage in run["stages"]:
        assert stage["requests"]["ok"] > 0 and stage["requests"]["error"] == 0
        assert stage["metrics"]["ttft_ms"]["p50"] > 0 and stage["throughput"]["output_tok_s"] > 0
        # A chunk may carry two tokens (the server holds back a split UTF-8 character).
        assert stage["tokens"]["server"] == 8 * stage["requests"]["ok"] >= stage["tokens"]["client_events"]
    assert {r["stage"] for r in requests} == {0, 1} and all(r["ok"] for r in requests)
    assert all(r["usage_out"] == 8 and 1 <= r["n_events"] <= 8 and r["request_id"] for r in requests)
    with (out / "stages.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 and float(rows[1]["ttft_ms_p50"]) > 0
    with (out / "timeseries.csv").open() as f:
        series = list(csv.DictReader(f))
    assert len(series) >= 6 and sum(int(r["started"]) for r in series) == len(requests)
    assert (out / "health.jsonl").read_text().strip() and (out / "report.html").exists()
    assert "TTFT p50" in done.stdout


def test_open_loop_with_two_worker_processes_pools_their_records(server, tmp_path):
    out = tmp_path / "rate"
    done = wirecheck_load("--target", server.base_url + "/v1", "--rate", "6", "--arrival", "constant",
                          "--workers", "2", "--duration", "4s", "--output-tokens", "4", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    run, requests = read_run(out)
    assert len({r["worker"] for r in requests}) == 2
    assert all(r["lag_ns"] is not None for r in requests)
    stage = run["stages"][0]
    assert stage["rate"] == 6.0 and stage["throughput"]["achieved_rate"] > 0
    assert stage["metrics"]["schedule_lag_ms"]["count"] > 0


def test_rate_search_probes_and_pools(server, tmp_path):
    out = tmp_path / "search"
    done = wirecheck_load("--target", server.base_url, "--slo", "ttft_p99_ms<=600000", "--max-rate", "2",
                          "--duration", "2s", "--output-tokens", "4", "--out", str(out), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    run, requests = read_run(out)
    assert run["config"]["mode"] == "sweep"
    assert run["slo_search"]["probes"] == [{"rate": 1.0, "pass": True}, {"rate": 2.0, "pass": True}]
    assert run["slo_search"]["best_rate"] == 2.0 and len(run["stages"]) == 2
    assert {r["stage"] for r in requests} <= {0, 1}


def test_errors_are_counted_not_fatal(tmp_path):
    srv = ReferenceServer("--api-key", "right")
    srv.wait_ready()
    try:
        out = tmp_path / "auth"
        done = wirecheck_load("--target", srv.base_url, "--model", "tiny", "--api-key", "wrong", "--users", "1",
                              "--duration", "2s", "--out", str(out))
    finally:
        srv.stop()
    assert done.returncode == 3, done.stdout + done.stderr  # no request succeeded
    run, requests = read_run(out)
    assert requests and all(r["status"] == 401 and not r["ok"] for r in requests)
    assert run["stages"][0]["errors"].get("401")


def test_unreachable_target_is_a_clear_usage_error(tmp_path):
    done = wirecheck_load("--target", "http://127.0.0.1:9", "--out", str(tmp_path / "x"))
    assert done.returncode == 2 and "could not list models" in done.stderr
    bad = wirecheck_load("--users", "0", "--target", "http://127.0.0.1:9", "--model", "m", "--out", str(tmp_path))
    assert bad.returncode == 2 and "--users" in bad.stderr
