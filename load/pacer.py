"""Open-loop arrivals: one process-wide pacer hands out absolute send times.

Locust users are closed loop: a slow response delays the next request, so a saturated target is
sampled less often exactly when it is slow (coordinated omission). Here send times come from the
schedule, not from the users: every idle user claims the next slot and sleeps until it. If no user
is free when a slot falls due, the slot is sent late and its lag (send - scheduled) is recorded; the
report's schedule-lag and achieved-rate health checks then show the generator fell behind.
Times are absolute (start + offset), never accumulated sleeps, so timer overshoot does not drift.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

NS = 1_000_000_000


def arrival_offsets(rates: Sequence[float], durations: Sequence[float], arrival: str, seed: int) -> list[int]:
    """Send times in ns from the start for stages of ``rates`` req/s held ``durations`` seconds.

    ``constant`` spaces requests evenly at 1/rate; ``poisson`` draws exponential gaps (mean 1/rate)
    from a seeded generator, so a run is reproducible. Each stage's schedule starts at its own start.
    """
    if arrival not in ("constant", "poisson"):
        raise ValueError(f"arrival must be constant or poisson, not {arrival!r}")
    rng = random.Random(seed)
    out: list[int] = []
    start = 0.0
    for rate, duration in zip(rates, durations):
        end = start + duration
        t = start + (rng.expovariate(rate) if arrival == "poisson" else 0.0)
        while t < end:
            out.append(int(t * NS))
            t += rng.expovariate(rate) if arrival == "poisson" else 1.0 / rate
        start = end
    return out


class Pacer:
    """Hands out the schedule's slots in order; ``claim`` returns None once the schedule is spent."""

    def __init__(self, offsets_ns: list[int], start_ns: int) -> None:
        self._slots = offsets_ns
        self._start = start_ns
        self._next = 0

    def claim(self) -> int | None:
        if self._next >= len(self._slots):
            return None
        slot = self._start + self._slots[self._next]
        self._next += 1
        return slot

    @property
    def issued(self) -> int:
        return self._next
