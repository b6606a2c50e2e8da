"""Aligning a remote worker's clock to the master's: NTP-style exchanges over locust's message channel.

One exchange: the worker stamps t1 and sends a ping; the master stamps t2 on receipt and t3 as it replies;
the worker stamps t4 on the pong. With symmetric paths, offset (master - worker) = ((t2 - t1) + (t3 - t4)) / 2
and the round trip spent on the wire is (t4 - t1) - (t3 - t2). The true offset lies within half that round
trip of the estimate whatever the asymmetry, so the exchange with the smallest round trip gives the tightest
bound: that one is used, and half its round trip is the reported uncertainty.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WINDOW = 30  # recent exchanges considered: old ones stop counting, so slow clock drift is followed


@dataclass(frozen=True)
class Exchange:
    t1: int  # worker clock, ping sent
    t2: int  # master clock, ping received
    t3: int  # master clock, pong sent
    t4: int  # worker clock, pong received

    @property
    def rtt_ns(self) -> int:
        return max(0, (self.t4 - self.t1) - (self.t3 - self.t2))

    @property
    def offset_ns(self) -> float:
        return ((self.t2 - self.t1) + (self.t3 - self.t4)) / 2


@dataclass(frozen=True)
class Estimate:
    offset_ns: int        # add to a worker timestamp to get the master's clock
    uncertainty_ns: int   # half the round trip of the exchange used
    rtt_ns: int
    exchanges: int

    def as_json(self) -> dict:
        return {"offset_ns": self.offset_ns, "uncertainty_ns": self.uncertainty_ns, "rtt_ns": self.rtt_ns,
                "exchanges": self.exchanges}


def estimate(exchanges: Sequence[Exchange], window: int = WINDOW) -> Estimate | None:
    """The offset from the minimum-round-trip exchange among the last ``window``; None without any."""
    recent = list(exchanges)[-window:]
    if not recent:
        return None
    best = min(recent, key=lambda e: e.rtt_ns)
    return Estimate(offset_ns=round(best.offset_ns), uncertainty_ns=(best.rtt_ns + 1) // 2, rtt_ns=best.rtt_ns,
                    exchanges=len(exchanges))
