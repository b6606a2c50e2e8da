"""Open-loop arrivals: one process-wide pacer hands out absolute send times.

Locust users are closed loop: a slow response delays the next request, so a saturated target is
sampled less often exactly when it is slow (coordinated omission). Here send times come from the
schedule, not from the users: every idle user claims the next slot and sleeps until it. If no user
is free when a slot falls due, the slot is sent late and its lag (send - scheduled) is recorded; the
report's schedule-lag and achieved-rate health checks then show the generator fell behind.
Times are absolute (start + offset), never accumulated sleeps, so timer overshoot does not drift.
"""

from __future__ import annotations

import math
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
        if arrival == "constant":
            # start + i/rate, not a running sum: summed float steps fall short (20 x 0.05 < 1) and add a slot
            count = math.ceil(duration * rate - 1e-9)
            out += [int((start + i / rate) * NS) for i in range(count)]
        else:
            t = start + rng.expovariate(rate)
            while t < end:
                out.append(int(t * NS))
                t += rng.expovariate(rate)
        start = end
    return out


def share_offsets(rates: Sequence[float], durations: Sequence[float], arrival: str, seed: int, index: int,
                  shares: int) -> list[int]:
    """Worker ``index``'s part of a schedule split over ``shares`` workers, so that together they keep the
    total rate and its shape. Poisson: an independent seeded stream at rate/shares each (superposed
    Poisson processes are Poisson at the summed rate). Constant: every ``shares``-th slot of the one
    schedule, i.e. interval shares/rate phase-shifted by index/shares of it."""
    if not 0 <= index < shares:
        raise ValueError(f"share index {index} outside 0..{shares - 1}")
    if arrival == "poisson":
        return arrival_offsets([r / shares for r in rates], durations, arrival, seed * 1000 + index)
    return arrival_offsets(rates, durations, arrival, seed)[index::shares]


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
