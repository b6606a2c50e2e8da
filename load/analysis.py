"""From raw records to run.json: per-stage aggregates, load-generator health and a 1-s time series.

Pure: takes the plan, every request record (all workers pooled), the health samples and the run's
start (epoch ns), returns plain dicts. Requests count for the stage that sent them; requests sent in
a stage's warm-up are kept in requests.jsonl but left out of its figures. Throughput counts what
arrived inside the stage's window, whichever stage sent it.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from .aliases import ALIASES, FORMULAS
from .plan import Plan
from .records import NS_PER_MS, metrics, output_tokens
from .stats import percentile, summarize, unstable_tails
from .sweep import SLO, judge
from .workers import worker_rows

NS = 1_000_000_000
METRICS = ("ttft_ms", "ttfo_ms", "ttfb_ms", "e2el_ms", "tpot_ms", "icl_ms", "ntpot_ms", "tokens_per_event",
           "output_tokens", "schedule_lag_ms")

# (amber above, red above) — research/load.md 6.1, except near-zero gaps. Research suggests red
# above 1 %, but the exact reader on a busy 2-core box running the reference server beside it sees
# 3-13 % (every one a separate read: the server's own bursts), while locust's iter_lines or a
# buffering proxy gives 50-100 %. So amber above 5 %, red above 25 %. A near-zero gap is one under
# a tenth of the typical request's mean gap.
THRESHOLDS = {"cpu": (50.0, 85.0), "loop_lag": (2.0, 10.0), "schedule_lag": (5.0, 50.0),
              "zero_gaps": (0.05, 0.25), "tokens_per_event": (1.5, math.inf)}


def verdict(kind: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    amber, red = THRESHOLDS[kind]
    return "red" if value > red else "amber" if value > amber else "green"


def rate_verdict(ratio: float | None) -> str:
    return "n/a" if ratio is None else "green" if ratio >= 0.98 else "red"


def error_key(record: dict) -> str:
    if record["status"] == 0:
        return "transport"
    if record["status"] == 200:
        return "stream"
    return str(record["status"])


def _overlap(a0: int, a1: int, b0: int, b1: int) -> int:
    return max(0, min(a1, b1) - max(a0, b0))


def _token_arrivals(records: Sequence[dict]) -> list[tuple[int, float]]:
    """(absolute ns, tokens) for every token event of every ok record; an event weighs n_out / events."""
    out = []
    for r in records:
        if not r["ok"] or not r["n_events"]:
            continue
        weight = output_tokens(r) / r["n_events"]
        out.extend((r["send_ns"] + t, weight) for t, _ in r["events"])
    return out


def window(plan: Plan, index: int, t0_ns: int) -> tuple[int, int]:
    """A stage's measurement window in absolute ns: its span minus the warm-up (at most half of it)."""
    stage = plan.stages[index]
    start_s = plan.stage_start(index)
    warm_s = min(plan.warmup_s, stage.duration_s / 2)
    return t0_ns + int((start_s + warm_s) * NS), t0_ns + int((start_s + stage.duration_s) * NS)


def mark_warmup(plan: Plan, records: Sequence[dict], t0_ns: int) -> None:
    """Flag each record sent before its stage's window (kept in requests.jsonl, left out of figures)."""
    starts = [window(plan, i, t0_ns)[0] for i in range(len(plan.stages))]
    for r in records:
        r["warmup"] = r["send_ns"] < starts[min(r["stage"], len(starts) - 1)]


def stage_summary(plan: Plan, index: int, records: Sequence[dict], all_records: Sequence[dict],
                  arrivals: Sequence[tuple[int, float]], health: Sequence[dict], t0_ns: int,
                  slos: Sequence[SLO]) -> dict:
    stage = plan.stages[index]
    start_s = plan.stage_start(index)
    end_s = start_s + stage.duration_s
    w0, w1 = window(plan, index, t0_ns)
    window_s = (w1 - w0) / NS
    mine = [r for r in records if r["stage"] == index]
    measured = [r for r in mine if r["send_ns"] >= w0]
    incomplete = [r for r in measured if (r["error"] or "").startswith("cancelled")]
    ok = [r for r in measured if r["ok"]]
    cancelled = {id(r) for r in incomplete}
    errors = [r for r in measured if not r["ok"] and id(r) not in cancelled]
    per = [metrics(r) for r in ok]
    lags = [m for m in (metrics(r).schedule_lag_ms for r in measured) if m is not None]
    icl = [g for m in per for g in m.icl_ms]
    summaries = {
        "ttft_ms": summarize(m.ttft_ms for m in per if m.ttft_ms is not None),
        "ttfo_ms": summarize(m.ttfo_ms for m in per if m.ttfo_ms is not None),
        "ttfb_ms": summarize(m.ttfb_ms for m in per if m.ttfb_ms is not None),
        "e2el_ms": summarize(m.e2el_ms for m in per if m.e2el_ms is not None),
        "tpot_ms": summarize(m.tpot_ms for m in per if m.tpot_ms is not None),
        "icl_ms": summarize(icl),
        "ntpot_ms": summarize(m.ntpot_ms for m in per if m.ntpot_ms is not None),
        "tokens_per_event": summarize(m.tokens_per_event for m in per if m.tokens_per_event is not None),
        "output_tokens": summarize(m.n_out for m in per),
        "schedule_lag_ms": summarize(lags),
    }
    completed = [r for r in all_records if r["ok"] and w0 <= r["send_ns"] + r["done_ns"] < w1]
    tokens_in_window = sum(w for t, w in arrivals if w0 <= t < w1)
    busy_ns = sum(_overlap(r["send_ns"], r["send_ns"] + r["done_ns"], w0, w1) for r in all_records)
    sent_in_window = sum(1 for r in all_records if w0 <= r["send_ns"] < w1)
    achieved = sent_in_window / window_s if stage.rate is not None and window_s > 0 else None
    ratio = achieved / stage.rate if achieved is not None else None
    server = sum(r["usage_out"] for r in ok if isinstance(r["usage_out"], int))
    events = sum(r["n_events"] for r in ok)
    has_usage = any(isinstance(r["usage_out"], int) for r in ok)
    # "Near zero" is judged against the typical request's mean gap, not the median gap: when most
    # events arrive coalesced the median gap is itself ~0 and would hide them.
    typical = percentile([(r["last_token_ns"] - r["first_token_ns"]) / (r["n_events"] - 1) / NS_PER_MS
                          for r in ok if r["n_events"] >= 2], 50)
    zero_gaps = sum(1 for g in icl if g == 0 or g < 0.1 * (typical or 0)) / len(icl) if icl else None
    stream = plan_stream(plan)
    in_window = [h for h in health if w0 <= h["t_ns"] < w1]
    cpu_by_worker: dict[str, list[float]] = defaultdict(list)
    for h in in_window:
        cpu_by_worker[h["worker"]].append(h["cpu_pct"])
    cpu = max((sum(v) / len(v) for v in cpu_by_worker.values()), default=None)
    loop = percentile([x for h in in_window for x in h.get("loop_lag_ms", [])], 99)
    tpe = (sum(m.n_out for m in per) / events) if events and stream else None
    health_block = {
        "cpu_pct_max": cpu, "loop_lag_p99_ms": loop,
        "schedule_lag_p99_ms": summaries["schedule_lag_ms"]["p99"] if summaries["schedule_lag_ms"] else None,
        "zero_gap_fraction": zero_gaps, "tokens_per_event_mean": tpe, "achieved_over_requested": ratio,
    }
    health_block["verdicts"] = {
        "cpu": verdict("cpu", cpu), "loop_lag": verdict("loop_lag", loop),
        "schedule_lag": verdict("schedule_lag", health_block["schedule_lag_p99_ms"]),
        "zero_gaps": verdict("zero_gaps", zero_gaps), "tokens_per_event": verdict("tokens_per_event", tpe),
        "rate": rate_verdict(ratio),
    }
    out = {
        "index": index, "label": stage.label, "users": stage.users, "rate": stage.rate,
        "start_s": start_s, "end_s": end_s, "window_s": window_s,
        "requests": {"ok": len(ok), "error": len(errors), "warmup": len(mine) - len(measured),
                     "incomplete": len(incomplete)},
        "throughput": {"req_s": len(completed) / window_s if window_s > 0 else None,
                       "output_tok_s": tokens_in_window / window_s if window_s > 0 else None,
                       "requested_rate": stage.rate, "achieved_rate": achieved,
                       "in_flight_mean": busy_ns / (w1 - w0) if w1 > w0 else None},
        "metrics": summaries,
        "tokens": {"server": server if has_usage else None, "client_events": events,
                   "usage_diff_pct": (100.0 * (server - events) / events) if has_usage and events and stream else None},
        "errors": dict(Counter(error_key(r) for r in errors)),
        "error_samples": sorted({r["error"] for r in errors if r["error"]})[:5],
        "health": health_block,
        "slo": None,
    }
    if slos:
        out["slo"] = judge(list(slos), out)
    return out


def plan_stream(plan: Plan) -> bool:
    from .profiles import get_profile
    return get_profile(plan.profile).stream


def warnings_for(plan: Plan, stages: Sequence[dict], records: Sequence[dict]) -> list[str]:
    out: list[str] = []
    for s in stages:
        tails = unstable_tails("ttft_ms", s["metrics"]["ttft_ms"])
        if tails:
            out.append(f"{s['label']}: {tails[0]} (p99 wants >= 1000 requests, p99.9 >= 5000)")
        if not s["requests"]["ok"]:
            out.append(f"{s['label']}: no successful request in the measured window")
        if s["errors"]:
            out.append(f"{s['label']}: errors {s['errors']}; e.g. {'; '.join(s['error_samples'][:2])}")
        bad = [k for k, v in s["health"]["verdicts"].items() if v == "red"]
        if bad:
            out.append(f"{s['label']}: load generator health red ({', '.join(bad)}): figures may be the client's, "
                       "not the target's")
    ok = [r for r in records if r["ok"]]
    stream = plan_stream(plan)
    if stream and ok and not any(isinstance(r["usage_out"], int) for r in ok):
        out.append("the target sent no usage: output tokens are counted as token events")
    short = [r for r in ok if r.get("max_tokens") and output_tokens(r) < r["max_tokens"] - max(0.05 * r["max_tokens"], 1)]
    if stream and short:
        out.append(f"{len(short)} of {len(ok)} requests returned fewer output tokens than max_tokens "
                   f"({plan.output_tokens}); add --extra-body '{{\"min_tokens\": {plan.output_tokens}}}' "
                   "or '{\"ignore_eos\": true}' where the target supports it, for a fixed output length")
    return out


def timeseries(plan: Plan, records: Sequence[dict], arrivals: Sequence[tuple[int, float]],
               health: Sequence[dict], t0_ns: int) -> list[dict]:
    """1-s buckets from the run's start to its last byte."""
    end = max([r["send_ns"] + r["done_ns"] for r in records] + [t0_ns + int(plan.total_s * NS)])
    n = max(1, math.ceil((end - t0_ns) / NS))
    rows = [{"t_s": i, "stage": plan.stage_at(i + 0.5), "started": 0, "completed": 0, "errors": 0,
             "output_tokens": 0.0, "in_flight": 0, "ttft": [], "cpu": defaultdict(list), "lag": 0.0}
            for i in range(n)]

    def bucket(t: int) -> dict | None:
        i = (t - t0_ns) // NS
        return rows[i] if 0 <= i < n else None

    for r in records:
        done = r["send_ns"] + r["done_ns"]
        if (b := bucket(r["send_ns"])) is not None:
            b["started"] += 1
        if (b := bucket(done)) is not None:
            b["completed" if r["ok"] else "errors"] += 1
        if r["first_token_ns"] is not None and (b := bucket(r["send_ns"] + r["first_token_ns"])) is not None:
            b["ttft"].append(r["first_token_ns"] / NS_PER_MS)
        for i in range(max(0, (r["send_ns"] - t0_ns) // NS), min(n, (done - t0_ns) // NS + 1)):
            # in flight at the end of bucket i
            if r["send_ns"] <= t0_ns + (i + 1) * NS < done:
                rows[i]["in_flight"] += 1
    for t, w in arrivals:
        if (b := bucket(t)) is not None:
            b["output_tokens"] += w
    for h in health:
        if (b := bucket(h["t_ns"])) is not None:
            b["cpu"][h["worker"]].append(h["cpu_pct"])
            b["lag"] = max([b["lag"], *h.get("loop_lag_ms", [])])
    out = []
    for b in rows:
        cpu = max((max(v) for v in b["cpu"].values()), default=None)
        out.append({"t_s": b["t_s"], "stage": b["stage"], "started": b["started"], "completed": b["completed"],
                    "errors": b["errors"], "output_tokens": round(b["output_tokens"], 3), "in_flight": b["in_flight"],
                    "ttft_p50_ms": percentile(b["ttft"], 50), "ttft_p99_ms": percentile(b["ttft"], 99),
                    "cpu_pct_max": cpu, "loop_lag_max_ms": b["lag"] if b["cpu"] else None})
    return out


def worker_warnings(rows: Sequence[dict]) -> list[str]:
    out = []
    for w in rows:
        if w["status"] != "ok":
            how = "went missing (locust's master lost its heartbeats)" if w["status"] == "missing" else \
                "stopped without its last batch"
            out.append(f"worker {w['worker']} {how}; its {w['requests']} records sent before then are kept")
        if w["within_envelope"] is False:
            out.append(f"worker {w['worker']} received {w['events_per_s']:.0f} token events/s, above the accuracy "
                       f"envelope ({w['envelope_events_per_s']:.0f}/s per worker): add workers")
    return out


def analyse(plan: Plan, records: Sequence[dict], health: Sequence[dict], t0_ns: int, env: dict,
            slos: Sequence[SLO] = (), workers: Sequence[dict] = ()) -> tuple[dict, list[dict]]:
    """run.json and the time series; flags warm-up records in place. ``workers``: each process's
    parts/worker-*.json (name, index, and for remote workers clock offset and status)."""
    mark_warmup(plan, records, t0_ns)
    arrivals = _token_arrivals(records)
    stages = [stage_summary(plan, i, records, records, arrivals, health, t0_ns, slos)
              for i in range(len(plan.stages))]
    config = {"target": plan.target, "profile": plan.profile, "model": plan.model, "mode": plan.mode,
              "stages": [{"users": s.users, "ramp_to": s.ramp_to} if s.rate is None else {"rate": s.rate}
                         for s in plan.stages],
              "stage_duration_s": plan.stages[0].duration_s, "warmup_s": plan.warmup_s,
              "arrival": plan.arrival if plan.mode == "rate" else None, "workers": plan.workers,
              "distributed": plan.distributed,
              "input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens,
              "extra_body": plan.extra_body, "reader": plan.reader, "slo": [s.text for s in slos]}
    rows = worker_rows(workers, records, health)
    run = {"schema": "wirecheck.load/1", "config": config, "env": env, "t0_ns": t0_ns, "stages": stages,
           "workers": rows, "slo_search": None, "formulas": FORMULAS, "aliases": ALIASES,
           "warnings": warnings_for(plan, stages, records) + worker_warnings(rows)}
    return run, timeseries(plan, records, arrivals, health, t0_ns)
