"""Pooling a remote worker's batches on the master: its absolute timestamps moved onto the master's clock.

Only absolute times change (a record's ``send_ns``, a health sample's ``t_ns``): the time series, the
stage windows and the arrival lag compare them across machines. Everything else in a record is a
duration measured inside one process (first token, gaps, E2EL, lag from its own schedule) and is
already exact, so it is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def records_on_master_clock(records: Iterable[dict], offset_ns: int) -> list[dict]:
    return [{**r, "send_ns": r["send_ns"] + offset_ns, "clock_offset_ns": offset_ns} for r in records]


def health_on_master_clock(samples: Iterable[dict], offset_ns: int) -> list[dict]:
    return [{**h, "t_ns": h["t_ns"] + offset_ns} for h in samples]


def worker_status(locust_state: str | None, finished: bool) -> str:
    """ok: sent its last batch; missing: locust's master lost its heartbeats; lost: gone without a last batch."""
    if finished:
        return "ok"
    return "missing" if locust_state == "missing" else "lost"


def pooled(batches: Sequence[dict]) -> tuple[list[dict], list[dict]]:
    """(records, health) of a worker's batches in arrival order, each on the clock its batch carried."""
    records: list[dict] = []
    health: list[dict] = []
    for b in batches:
        offset = (b.get("clock") or {}).get("offset_ns") or 0
        records += records_on_master_clock(b.get("records", []), offset)
        health += health_on_master_clock(b.get("health", []), offset)
    return records, health
