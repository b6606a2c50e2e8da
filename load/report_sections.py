"""The report's figures: run.json, the request records, the time series and the health samples,
turned into the SVG charts of load/charts.py.

Percentile curves (latency vs load) are read from run.json, never recomputed, so the picture and the
tables always agree; only the CDFs and the timeline read raw request records, restricted to each
stage's measured window (warm-up excluded) exactly as run.json counts them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence

from .charts import Band, Bar, Series, bar_chart, cdf_chart, color, line_chart, no_data, time_chart, timeline_chart
from .records import metrics

NS = 1_000_000_000
TIMELINE_MAX = 300


def num(value: object) -> float | None:
    """A number from JSON or a CSV cell ('' and 'None' are missing)."""
    if value is None or value == "" or value == "None" or isinstance(value, bool):
        return None
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def stat(stage: dict, metric: str, key: str) -> float | None:
    summary = (stage.get("metrics") or {}).get(metric)
    return num(summary.get(key)) if summary else None


def run_start_ns(run: dict, requests: Sequence[dict]) -> int:
    """run.json's t0_ns; older files lack it, then the first send stands in."""
    if isinstance(run.get("t0_ns"), int):
        return run["t0_ns"]
    return min((r["send_ns"] for r in requests), default=0)


def bands(run: dict) -> list[Band]:
    return [Band(float(s.get("start_s") or 0.0), float(s.get("end_s") or 0.0), str(s.get("label", s.get("index"))))
            for s in run.get("stages", [])]


def load_axis(stages: Sequence[dict], ramp: bool = False) -> tuple[list[float], str, bool]:
    """x values for 'against load': users or requested rate per stage, else the stage number (also
    for ramps, whose users change within a stage); log when the levels span a factor of 8 or more."""
    for key, label in (("rate", "requested rate (req/s)"), ("users", "users"))[: 0 if ramp else 2]:
        xs = [num(s.get(key)) for s in stages]
        if stages and all(x is not None and x > 0 for x in xs) and len(set(xs)) == len(xs):
            vals = [float(x) for x in xs if x is not None]
            return vals, label, max(vals) / min(vals) >= 8
    return [float(s.get("index", i)) for i, s in enumerate(stages)], "stage", False


def measured(run: dict, requests: Sequence[dict]) -> dict[int, list[dict]]:
    """Request records of each stage sent inside its measured window (after warm-up)."""
    t0 = run_start_ns(run, requests)
    windows = {}
    for s in run.get("stages", []):
        end = float(s.get("end_s") or 0.0)
        window = num(s.get("window_s"))
        start = end - window if window is not None else float(s.get("start_s") or 0.0)
        windows[s.get("index")] = t0 + int(start * NS)
    out: dict[int, list[dict]] = defaultdict(list)
    for r in requests:
        w0 = windows.get(r.get("stage"))
        if w0 is not None and r["send_ns"] >= w0:
            out[r["stage"]].append(r)
    return out


def _vs_load(run: dict, series: Sequence[tuple[str, Callable[[dict], float | None], str | None, bool]],
             title: str, y_label: str) -> str:
    """One 'against load' chart; series are (label, value of a stage, colour, dashed)."""
    stages = run.get("stages", [])
    ramp = any(s.get("ramp_to") for s in (run.get("config") or {}).get("stages") or [])
    xs, x_label, log_x = load_axis(stages, ramp)
    # sorted: an SLO search runs its rates out of order
    lines = [Series(label, sorted((x, get(s)) for x, s in zip(xs, stages) if get(s) is not None),
                    color=col or color(i), dashed=dashed)
             for i, (label, get, col, dashed) in enumerate(series)]
    return line_chart(lines, title=title, x_label=x_label, y_label=y_label, log_x=log_x,
                      x_ticks=xs if len(xs) <= 12 else (), width=350, height=260)


def latency_vs_load(run: dict) -> list[str]:
    return [_vs_load(run, [(f"{name} {q}", lambda s, m=metric, q=q: stat(s, m, q), None, q != "p50")
                              for q in ("p50", "p90", "p99")], f"{name} vs load", "ms")
            for metric, name in (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("e2el_ms", "E2EL"))]


def throughput_vs_load(run: dict) -> list[str]:
    def tp(key: str) -> Callable[[dict], float | None]:
        return lambda s: num((s.get("throughput") or {}).get(key))

    return [_vs_load(run, [("output tok/s", tp("output_tok_s"), None, False)], "Output tokens/s vs load",
                     "tokens/s"),
            _vs_load(run, [("completed req/s", tp("req_s"), None, False),
                              ("sent req/s (achieved)", tp("achieved_rate"), None, True),
                              ("requested req/s", tp("requested_rate"), "#999999", True)],
                     "Requests/s vs load", "req/s"),
            _vs_load(run, [("mean in flight", tp("in_flight_mean"), color(2), False)],
                     "Concurrency reached vs load", "requests in flight")]


def _spread(values: Sequence[float]) -> bool:
    """Log x for a CDF whose body spans more than ~1.5 decades (heavy tails, near-zero gaps)."""
    pos = sorted(v for v in values if v > 0)
    if len(pos) < 2:
        return False
    lo, hi = pos[len(pos) // 100], pos[-1]
    return lo > 0 and hi / lo > 30


def cdfs(run: dict, by_stage: dict[int, list[dict]]) -> list[str]:
    per_stage = []
    for s in run.get("stages", []):
        ms = [metrics(r) for r in by_stage.get(s.get("index"), []) if r.get("ok")]
        per_stage.append((str(s.get("label")), ms))
    charts = []
    for name, pick in (("TTFT", lambda m: [m.ttft_ms]), ("TPOT", lambda m: [m.tpot_ms]),
                       ("inter-chunk gap (ICL)", lambda m: m.icl_ms)):
        samples = [(label, [v for m in ms for v in pick(m) if v is not None]) for label, ms in per_stage]
        pooled = [v for _, vs in samples for v in vs]
        charts.append(cdf_chart(samples, title=f"CDF of {name}", x_label="ms" + (" (log)" if _spread(pooled) else ""),
                                log_x=_spread(pooled), width=350, height=260))
    return charts


def _health_by_worker(health: Sequence[dict], t0: int, key: str) -> list[Series]:
    rows: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for h in health:
        value = h.get(key)
        if key == "loop_lag_ms":
            value = max(value) if value else None
        if value is not None and "t_ns" in h:
            rows[str(h.get("worker"))].append(((h["t_ns"] - t0) / NS, float(value)))
    return [Series(worker, sorted(points), color=color(i)) for i, (worker, points) in enumerate(sorted(rows.items()))]


def over_time(run: dict, timeseries: Sequence[dict], health: Sequence[dict], requests: Sequence[dict]) -> list[str]:
    b = bands(run)
    t = [num(row.get("t_s")) for row in timeseries]

    def col(key: str, scale: float = 1.0) -> list[tuple[float | None, float | None]]:
        out = []
        for x, row in zip(t, timeseries):
            v = num(row.get(key))
            out.append((None if x is None else x + 0.5, None if v is None else v * scale))
        return out

    tokens = time_chart([Series("output tok/s", col("output_tokens"))], b, title="Output tokens/s over time",
                        y_label="tokens/s")
    reqs = time_chart([Series("started/s", col("started"), color=color(0)),
                       Series("completed/s", col("completed"), color=color(2)),
                       Series("errors/s", col("errors"), color="#d7191c"),
                       Series("in flight", col("in_flight"), color=color(6), dashed=True)], b,
                      title="Requests over time", y_label="per second / count")
    ttft = time_chart([Series("TTFT p50", col("ttft_p50_ms"), color=color(0)),
                       Series("TTFT p99", col("ttft_p99_ms"), color=color(1), dashed=True)], b,
                      title="TTFT over time (by first-token second)", y_label="ms")
    t0 = run_start_ns(run, requests)
    cpu_series = _health_by_worker(health, t0, "cpu_pct") or [Series("cpu max", col("cpu_pct_max"))]
    cpu = time_chart(cpu_series, b, title="Load generator CPU per worker", y_label="% of one core")
    lag_series = _health_by_worker(health, t0, "loop_lag_ms") or [Series("loop lag max", col("loop_lag_max_ms"))]
    lag = time_chart(lag_series, b, title="Load generator event-loop lag (max per second)", y_label="ms")
    return [tokens, reqs, ttft, cpu, lag]


def pareto(run: dict) -> str:
    """Per-user speed (1000 / TPOT p50) against total output tokens/s, one labelled point per stage:
    moving right costs moving down; the knee is the useful operating point (vLLM plot_pareto)."""
    found = []
    for s in run.get("stages", []):
        total = num((s.get("throughput") or {}).get("output_tok_s"))
        tpot = stat(s, "tpot_ms", "p50")
        if total is not None and tpot:
            found.append((total, 1000.0 / tpot, str(s.get("label"))))
    found.sort()
    return line_chart([Series("", [(x, y) for x, y, _ in found], labels=[t for *_, t in found])], title="Tokens/s per user vs total tokens/s",
                      x_label="total output tokens/s", y_label="tokens/s per user (1000 / TPOT p50)",
                      width=520, height=280)


def errors_chart(run: dict) -> str:
    stages = run.get("stages", [])
    kinds = sorted({k for s in stages for k in (s.get("errors") or {})})
    if not kinds:
        return no_data("Errors per stage (measured window)", "no errors", width=520, height=120)
    series = [(k, [num((s.get("errors") or {}).get(k)) for s in stages]) for k in kinds]
    return bar_chart([str(s.get("label")) for s in stages], series, title="Errors per stage (measured window)",
                     y_label="requests", width=520, height=280)


def sample(records: Sequence[dict], limit: int = TIMELINE_MAX) -> list[dict]:
    """At most ``limit`` records, evenly spread over the run (deterministic, so reports diff cleanly)."""
    records = sorted(records, key=lambda r: r["send_ns"])
    if len(records) <= limit:
        return list(records)
    return [records[round(i * (len(records) - 1) / (limit - 1))] for i in range(limit)]


def timeline(run: dict, requests: Sequence[dict]) -> str:
    t0 = run_start_ns(run, requests)
    stage_colors = {s.get("index"): color(i) for i, s in enumerate(run.get("stages", []))}
    bars = []
    picked = sample(requests)
    for r in picked:
        def at(key: str) -> float | None:
            v = r.get(key)
            return None if v is None else (r["send_ns"] - t0 + v) / NS
        send = (r["send_ns"] - t0) / NS
        bars.append(Bar(send, at("first_token_ns"), at("last_token_ns"), at("done_ns") or send, bool(r.get("ok")),
                        stage_colors.get(r.get("stage"), color(0))))
    note = f" ({len(picked)} of {len(requests)} requests)" if len(picked) < len(requests) else ""
    return timeline_chart(bars, bands(run), title="Per-request timeline: send → first token → last token" + note)
