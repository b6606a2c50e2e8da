"""Unit tests of the load path's pure parts: plan, pacer, read path, profiles, records, stats, analysis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wirecheck.load.analysis import analyse, verdict
from wirecheck.load.pacer import Pacer, arrival_offsets
from wirecheck.load.plan import Plan, Stage, parse_duration, parse_rates, parse_users
from wirecheck.load.profiles import (get_profile, parse_chat_stream, parse_messages_stream, parse_responses_stream,
                           request_body)
from wirecheck.load.records import metrics, stream_record
from wirecheck.load.stats import summarize
from wirecheck.load.sweep import RateSearch, parse_slo, parse_slos
from wirecheck.load.timing import feed_timed
from wirecheck.spec.sse import encode_json

MS = 1_000_000


def chat_chunk(content: str | None = None, role: bool = False, finish: str | None = None, usage=None) -> dict:
    delta = {"role": "assistant", "content": ""} if role else ({"content": content} if content is not None else {})
    choices = [] if usage else [{"index": 0, "delta": delta, "finish_reason": finish}]
    out = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}
    if usage:
        out["usage"] = usage
    return out


def chat_stream_bytes(n: int = 3) -> list[bytes]:
    parts = [encode_json(chat_chunk(role=True))]
    parts += [encode_json(chat_chunk(f"t{i}")) for i in range(n)]
    parts += [encode_json(chat_chunk(finish="stop")),
              encode_json(chat_chunk(usage={"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n})),
              b"data: [DONE]\n\n"]
    return parts


# ------------------------------------------------------------------------------ plan


def test_durations_and_stage_specs():
    assert parse_duration("30s") == 30 and parse_duration("2m") == 120 and parse_duration("500ms") == 0.5
    assert parse_duration("7") == 7
    for bad in ("", "abc", "0s", "-3s"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [s.users for s in parse_users("1,8,32", 10)] == [1, 8, 32]
    ramp = parse_users("1-64", 10)
    assert len(ramp) == 1 and ramp[0].users == 1 and ramp[0].ramp_to == 64 and ramp[0].label == "1→64 users"
    assert [s.rate for s in parse_rates("2,4.5", 5)] == [2.0, 4.5]
    for bad in ("0", "a,b", "", "8-2"):
        with pytest.raises(ValueError):
            parse_users(bad, 1)
    with pytest.raises(ValueError):
        parse_rates("0", 1)


def test_plan_round_trips_and_finds_stages():
    plan = Plan(target="http://x", profile="chat-stream", model="m", out_dir="/tmp/o",
                stages=(Stage(10, users=1), Stage(5, users=8)), extra_body={"min_tokens": 4})
    again = Plan.from_json(plan.to_json())
    assert again == plan
    assert [plan.stage_at(t) for t in (0, 9.99, 10, 14.9, 99)] == [0, 0, 1, 1, 1]
    assert plan.total_s == 15 and plan.stage_start(1) == 10 and plan.mode == "users"


def test_users_over_time_steps_ramps_and_rate_pools():
    steps = Plan(target="http://x", profile="chat-stream", model="m", out_dir="/o",
                 stages=(Stage(10, users=1), Stage(10, users=8)))
    assert steps.users_at(0) == (1, 1.0) and steps.users_at(12) == (8, 8.0) and steps.users_at(20) is None
    ramp = Plan(target="http://x", profile="chat-stream", model="m", out_dir="/o", stages=(Stage(10, users=1, ramp_to=21),))
    assert [ramp.users_at(t)[0] for t in (0, 5, 9.99)] == [1, 11, 21]
    rate = Plan(target="http://x", profile="chat-stream", model="m", out_dir="/o", output_tokens=64,
                stages=(Stage(5, rate=2.0), Stage(5, rate=10.0)))
    pool = rate.users_at(0)[0]
    assert pool == rate.users_at(7)[0] >= 10 * 2  # sized for the highest rate, the same in every stage


# ------------------------------------------------------------------------------ pacer


def test_constant_arrivals_are_exact_and_per_stage():
    offsets = arrival_offsets([2.0, 4.0], [2.0, 1.0], "constant", seed=0)
    assert [o / 1e9 for o in offsets] == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.25, 2.5, 2.75])


def test_poisson_arrivals_are_seeded_with_the_right_rate():
    a = arrival_offsets([50.0], [200.0], "poisson", seed=7)
    assert a == arrival_offsets([50.0], [200.0], "poisson", seed=7)
    assert a != arrival_offsets([50.0], [200.0], "poisson", seed=8)
    assert len(a) == pytest.approx(10_000, rel=0.05)
    gaps = np.diff(np.array(a)) / 1e9
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.1)  # exponential: CV = 1
    assert all(x < y for x, y in zip(a, a[1:]))
    with pytest.raises(ValueError):
        arrival_offsets([1.0], [1.0], "bursty", 0)


def test_pacer_hands_out_absolute_slots_then_stops():
    pacer = Pacer([0, 10, 20], start_ns=1000)
    assert [pacer.claim(), pacer.claim(), pacer.claim(), pacer.claim()] == [1000, 1010, 1020, None]
    assert pacer.issued == 3


# ------------------------------------------------------------------------------ read path


def test_each_event_is_stamped_by_the_read_that_completed_it():
    body = b"".join(chat_stream_bytes(3))
    # Split every event across two reads: the stamp must be the second read's.
    reads, t = [], 0
    for part in chat_stream_bytes(3):
        t += 10
        reads.append((t, part[:7]))
        t += 1
        reads.append((t, part[7:]))
    timed = feed_timed(reads)
    assert [e[0] for e in timed.events] == [11, 22, 33, 44, 55, 66, 77]
    assert timed.bytes == len(body) and timed.first_byte_ns == 10 and timed.reads == 14
    # One read carrying everything stamps all events alike (coalescing is visible as zero gaps).
    assert {e[0] for e in feed_timed([(5, body)]).events} == {5}


def test_split_at_every_byte_boundary_gives_the_same_events():
    body = b": keep-alive\r\n\r\n" + b"".join(chat_stream_bytes(2))
    whole = [(n, d) for _, n, d in feed_timed([(0, body)]).events]
    for cut in range(1, len(body)):
        split = feed_timed([(0, body[:cut]), (1, body[cut:])]).events
        assert [(n, d) for _, n, d in split] == whole


# ------------------------------------------------------------------------------ profiles


def test_chat_stream_counts_content_not_role_or_usage_chunks():
    events = [(None, json.dumps(chat_chunk(role=True))), (None, json.dumps(chat_chunk("Hi"))),
              (None, json.dumps(chat_chunk(""))), (None, json.dumps({**chat_chunk(), "choices": [
                  {"index": 0, "delta": {"reasoning_content": "hmm"}, "finish_reason": None}]})),
              (None, json.dumps(chat_chunk(" there"))), (None, json.dumps(chat_chunk(finish="stop"))),
              (None, json.dumps(chat_chunk(usage={"prompt_tokens": 3, "completion_tokens": 3}))), (None, "[DONE]")]
    p = parse_chat_stream(events)
    assert p.token_events == [1, 3, 4] and p.content_events == [1, 4]
    assert (p.usage_out, p.usage_in, p.complete, p.error) == (3, 3, True, None)
    assert not parse_chat_stream(events[:-1]).complete
    err = parse_chat_stream([(None, json.dumps({"error": {"message": "boom", "type": "server_error"}}))])
    assert err.error == "server_error: boom"


def test_messages_stream_tokens_usage_and_thinking():
    ev = [("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}),
          ("ping", {"type": "ping"}),
          ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "thinking_delta", "thinking": "so"}}),
          ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                   "delta": {"type": "text_delta", "text": "Hi"}}),
          ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 2}}),
          ("message_stop", {"type": "message_stop"})]
    p = parse_messages_stream([(n, json.dumps(d)) for n, d in ev])
    assert p.token_events == [2, 3] and p.content_events == [3]
    assert (p.usage_in, p.usage_out, p.complete) == (9, 2, True)


def test_responses_stream_tokens_and_terminal_usage():
    ev = [{"type": "response.created", "response": {}}, {"type": "response.output_text.delta", "delta": "a"},
          {"type": "response.output_text.delta", "delta": ""},
          {"type": "response.completed", "response": {"usage": {"input_tokens": 4, "output_tokens": 1}}}]
    p = parse_responses_stream([(e["type"], json.dumps(e)) for e in ev])
    assert p.token_events == [1] and (p.usage_out, p.usage_in, p.complete) == (1, 4, True)
    failed = parse_responses_stream([(None, json.dumps({"type": "response.failed",
                                                        "response": {"error": {"code": "x", "message": "m"}}}))])
    assert failed.complete and failed.error


def test_request_bodies_differ_per_request_and_take_extras():
    chat = get_profile("chat-stream")
    a = request_body(chat, "m", 1, 32, 16, {"min_tokens": 16})
    b = request_body(chat, "m", 2, 32, 16, {})
    assert a["stream"] and a["stream_options"] == {"include_usage": True} and a["min_tokens"] == 16
    assert a["messages"] != b["messages"] and a["max_tokens"] == 16
    assert len(a["messages"][0]["content"].split()) == pytest.approx(32, abs=12)
    assert request_body(get_profile("responses-stream"), "m", 1, 8, 5, {})["max_output_tokens"] == 5
    with pytest.raises(ValueError):
        get_profile("nope")


# ------------------------------------------------------------------------------ records and metrics


def record_from(times_ms: list[float], usage: int | None, t_send: int = 0, send_ns: int = 0, stage: int = 0) -> dict:
    reads = [(t_send + int(t * MS), encode_json(chat_chunk(f"x{i}"))) for i, t in enumerate(times_ms)]
    tail = [encode_json(chat_chunk(usage={"prompt_tokens": 1, "completion_tokens": usage}))] if usage else []
    reads.append((reads[-1][0], b"".join(tail) + b"data: [DONE]\n\n"))
    timed = feed_timed(reads)
    parsed = parse_chat_stream([(n, d) for _, n, d in timed.events])
    return stream_record(profile="chat-stream", stage=stage, worker="w", request_id=None, send_ns=send_ns,
                         lag_ns=None, status=200, headers_ns=MS, timed=timed, parsed=parsed, t_send=t_send,
                         done_ns=int(times_ms[-1] * MS), max_tokens=len(times_ms), error=None)


def test_metrics_follow_the_published_formulas():
    r = record_from([100, 110, 130, 160], usage=None, t_send=5_000)
    m = metrics(r)
    assert (m.ttfb_ms, m.ttft_ms, m.e2el_ms) == (1.0, 100.0, 160.0)
    assert m.tpot_ms == pytest.approx(60 / 3) and m.icl_ms == [10.0, 20.0, 30.0]
    assert m.ntpot_ms == pytest.approx(40.0) and m.tokens_per_event == 1.0
    # Server usage wins over the event count: 8 tokens in 4 events.
    m2 = metrics(record_from([100, 110, 130, 160], usage=8))
    assert m2.n_out == 8 and m2.tpot_ms == pytest.approx(60 / 7) and m2.tokens_per_event == 2.0
    single = metrics(record_from([50], usage=None))
    assert single.tpot_ms is None and single.icl_ms == []


def test_a_stream_without_its_terminal_event_is_an_error():
    timed = feed_timed([(MS, encode_json(chat_chunk("a")))])
    parsed = parse_chat_stream([(n, d) for _, n, d in timed.events])
    r = stream_record(profile="chat-stream", stage=0, worker="w", request_id=None, send_ns=0, lag_ns=None,
                      status=200, headers_ns=0, timed=timed, parsed=parsed, t_send=0, done_ns=MS, max_tokens=4,
                      error=None)
    assert not r["ok"] and "terminal" in r["error"]


# ------------------------------------------------------------------------------ stats


def test_summary_percentiles_are_exact_from_raw_samples():
    s = summarize(range(1, 101))
    assert s["count"] == 100 and s["min"] == 1 and s["max"] == 100 and s["mean"] == 50.5
    assert s["p50"] == 50.5 and s["p99"] == pytest.approx(99.01) and s["p90"] == pytest.approx(90.1)
    assert summarize([]) is None
    # Pooling, never averaging: the p99 of two workers' samples is not the mean of their p99s.
    a, b = list(range(100)), [1000.0] * 10
    assert summarize(a + b)["p99"] != (summarize(a)["p99"] + summarize(b)["p99"]) / 2


# ------------------------------------------------------------------------------ analysis


def test_analysis_windows_throughput_and_health():
    t0 = 10**18
    plan = Plan(target="http://x", profile="chat-stream", model="m", out_dir="/tmp/o", warmup_s=1.0,
                stages=(Stage(4, users=1), Stage(4, users=2)))
    records = []
    for k in range(8):  # one request every 0.5 s in stage 0 (k<8 -> 0..3.5 s), 4 tokens 10 ms apart
        records.append(record_from([20, 30, 40, 50], usage=4, send_ns=t0 + k * 500 * MS, stage=0))
    bad = {**record_from([20], usage=None, send_ns=t0 + 5 * 10**9, stage=1), "ok": False, "status": 429,
           "error": "429: slow down"}
    records.append(bad)
    health = [{"worker": "w", "t_ns": t0 + i * 10**9, "cpu_pct": 90.0, "loop_lag_ms": [0.1, 0.2]} for i in range(8)]
    run, series = analyse(plan, records, health, t0, env={})
    s0, s1 = run["stages"]
    assert s0["requests"] == {"ok": 6, "error": 0, "warmup": 2, "incomplete": 0}
    assert s0["window_s"] == 3.0
    assert s0["throughput"]["req_s"] == pytest.approx(6 / 3)  # completions within [1 s, 4 s)
    assert s0["throughput"]["output_tok_s"] == pytest.approx(24 / 3)
    assert s0["metrics"]["ttft_ms"]["p50"] == pytest.approx(20.0) and s0["metrics"]["icl_ms"]["count"] == 18
    assert s0["tokens"] == {"server": 24, "client_events": 24, "usage_diff_pct": 0.0}
    assert s0["health"]["verdicts"]["cpu"] == "red" and s0["health"]["verdicts"]["loop_lag"] == "green"
    assert s1["requests"]["error"] == 1 and s1["errors"] == {"429": 1} and s1["requests"]["ok"] == 0
    assert any("no successful request" in w for w in run["warnings"])
    assert run["schema"] == "wirecheck.load/1" and run["aliases"] and run["formulas"]
    assert len(series) == 8 and sum(row["started"] for row in series) == 9
    assert series[0]["output_tokens"] == pytest.approx(8.0)


def test_zero_gaps_and_verdict_thresholds():
    assert verdict("cpu", 10) == "green" and verdict("cpu", 60) == "amber" and verdict("cpu", 86) == "red"
    assert verdict("loop_lag", None) == "n/a"
    t0 = 0
    plan = Plan(target="http://x", profile="chat-stream", model="m", out_dir="/tmp/o", stages=(Stage(2, users=1),))
    coalesced = [record_from([10, 10, 10, 20, 20, 20], usage=None, send_ns=t0 + k * 100 * MS) for k in range(10)]
    run, _ = analyse(plan, coalesced, [], t0, env={})
    assert run["stages"][0]["health"]["zero_gap_fraction"] == pytest.approx(0.8)
    assert run["stages"][0]["health"]["verdicts"]["zero_gaps"] == "red"


# ------------------------------------------------------------------------------ SLOs and the rate search


def test_slo_parsing_and_judging():
    slo = parse_slo("ttft_p99_ms<=500")
    assert (slo.metric, slo.stat, slo.limit, slo.strict) == ("ttft_ms", "p99", 500.0, False)
    stage = {"requests": {"ok": 10, "error": 0}, "metrics": {"ttft_ms": {"p99": 400.0}}}
    assert slo.holds(stage) and not parse_slo("ttft_p99_ms<400").holds(stage)
    assert parse_slo("error_rate<=0.01").holds(stage)
    assert not slo.holds({"requests": {"ok": 0, "error": 3}, "metrics": {"ttft_ms": None}})
    assert len(parse_slos("ttft_p99_ms<=500, tpot_p50_ms<=40")) == 2
    for bad in ("ttft<=5", "ttft_p42_ms<=1", "p99<=3"):
        with pytest.raises(ValueError):
            parse_slo(bad)


def test_rate_search_doubles_then_bisects():
    search = RateSearch(1.0, 64.0, steps=2)
    capacity = 5.0
    seen = []
    while (rate := search.next_rate()) is not None:
        seen.append(rate)
        search.record(rate, rate <= capacity)
    assert seen == [1.0, 2.0, 4.0, 8.0, 6.0, 5.0]
    assert search.best == 5.0
    nothing = RateSearch(1.0, 8.0)
    nothing.record(nothing.next_rate(), False)
    assert nothing.next_rate() is None and nothing.best is None
    capped = RateSearch(1.0, 3.0)
    while (rate := capped.next_rate()) is not None:
        capped.record(rate, True)
    assert [r for r, _ in capped.probes] == [1.0, 2.0, 3.0]
