"""The per-worker health panel: each load-generator process's CPU, event rate against the accuracy
envelope, loop lag, sample count, clock offset and how it ended. Pure: from the workers' metadata
(parts/worker-*.json), their records and their health samples."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from .stats import percentile

ENVELOPE_EVENTS_S = 5500.0  # docs/load.md "Accuracy": token events/s one worker process measures within 1 ms


def events_per_s(records: Sequence[dict]) -> float | None:
    """Token events/s this worker received over the span it was sending and reading."""
    ok = [r for r in records if r.get("n_events")]
    if not ok:
        return None
    start = min(r["send_ns"] for r in records)
    end = max(r["send_ns"] + r["done_ns"] for r in records)
    return sum(r["n_events"] for r in ok) / ((end - start) / 1e9) if end > start else None


def worker_rows(workers: Sequence[dict], records: Sequence[dict], health: Sequence[dict]) -> list[dict]:
    by_rec: dict[str, list[dict]] = defaultdict(list)
    by_health: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        by_rec[r["worker"]].append(r)
    for h in health:
        by_health[h["worker"]].append(h)
    rows = []
    for w in sorted(workers, key=lambda w: (w.get("index", 0), w["worker"])):
        name = w["worker"]
        mine, samples = by_rec.get(name, []), by_health.get(name, [])
        cpu = [h["cpu_pct"] for h in samples if h.get("cpu_pct") is not None]
        lag = [x for h in samples for x in h.get("loop_lag_ms", [])]
        eps = events_per_s(mine)
        clock = w.get("clock") or {}
        rows.append({
            "worker": name, "index": w.get("index"), "status": w.get("status", "ok"),
            "requests": len(mine), "ok": sum(1 for r in mine if r.get("ok")),
            "token_events": sum(r.get("n_events", 0) for r in mine),
            "cpu_pct_mean": sum(cpu) / len(cpu) if cpu else None, "cpu_pct_max": max(cpu, default=None),
            "events_per_s": eps, "envelope_events_per_s": ENVELOPE_EVENTS_S,
            "within_envelope": None if eps is None else eps <= ENVELOPE_EVENTS_S,
            "loop_lag_p99_ms": percentile(lag, 99),
            "clock_offset_ms": clock["offset_ns"] / 1e6 if clock.get("offset_ns") is not None else None,
            "clock_uncertainty_ms": clock["uncertainty_ns"] / 1e6 if clock.get("uncertainty_ns") is not None else None,
            "clock_exchanges": clock.get("exchanges"), "remote": bool(w.get("remote")),
        })
    return rows
