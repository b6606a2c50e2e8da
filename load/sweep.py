"""Service-level objectives and the search for the highest rate that meets them.

An SLO reads ``<metric>_<stat>_ms<=<value>`` (``ttft_p99_ms<=500``, ``tpot_p50_ms<=40``) or
``error_rate<=0.01``. A stage meets its SLOs when every one holds and it had measured requests.
The search doubles the rate from ``start`` until a stage fails (or ``max_rate``), then bisects
between the last pass and the first fail ``steps`` times (vLLM's serve_sla and GuideLLM's sweep do
the same job with other searches).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SLO = re.compile(r"^\s*(ttft|ttfo|ttfb|e2el|tpot|icl|ntpot)_(p50|p90|p95|p99|p99\.9|mean|max)_ms\s*(<=|<)\s*"
                  r"(\d+(?:\.\d+)?)\s*$")
_ERR = re.compile(r"^\s*error_rate\s*(<=|<)\s*(\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class SLO:
    text: str
    metric: str | None      # e.g. "ttft_ms"; None for error_rate
    stat: str | None
    strict: bool
    limit: float

    def holds(self, stage: dict) -> bool:
        if self.metric is None:
            total = stage["requests"]["ok"] + stage["requests"]["error"]
            value = stage["requests"]["error"] / total if total else 1.0
        else:
            summary = stage["metrics"].get(self.metric)
            if not summary or not stage["requests"]["ok"]:
                return False
            value = summary[self.stat]
        return value < self.limit if self.strict else value <= self.limit


def parse_slo(text: str) -> SLO:
    m = _SLO.match(text)
    if m:
        return SLO(text.strip(), f"{m.group(1)}_ms", m.group(2), m.group(3) == "<", float(m.group(4)))
    m = _ERR.match(text)
    if m:
        return SLO(text.strip(), None, None, m.group(1) == "<", float(m.group(2)))
    raise ValueError(f"not an SLO: {text!r} (use e.g. ttft_p99_ms<=500, tpot_p50_ms<=40, error_rate<=0.01)")


def parse_slos(text: str) -> list[SLO]:
    return [parse_slo(part) for part in text.split(",") if part.strip()]


def judge(slos: list[SLO], stage: dict) -> dict[str, bool]:
    return {s.text: s.holds(stage) for s in slos}


class RateSearch:
    """Proposes the next rate from the results so far; ``next_rate`` returns None when done."""

    def __init__(self, start: float, max_rate: float, steps: int = 3) -> None:
        if start <= 0 or max_rate < start:
            raise ValueError("rate search needs 0 < start <= max rate")
        self.start, self.max_rate, self.steps = start, max_rate, steps
        self.probes: list[tuple[float, bool]] = []

    def record(self, rate: float, passed: bool) -> None:
        self.probes.append((rate, passed))

    @property
    def best(self) -> float | None:
        passing = [r for r, ok in self.probes if ok]
        return max(passing) if passing else None

    def next_rate(self) -> float | None:
        if not self.probes:
            return self.start
        fails = [r for r, ok in self.probes if not ok]
        best = self.best
        if not fails:  # still climbing
            last = self.probes[-1][0]
            return None if last >= self.max_rate else min(last * 2, self.max_rate)
        low_fail = min(fails)
        if best is None or best > low_fail:
            return None  # the lowest probe already fails (or results are not monotone): stop
        first_fail = next(i for i, (_, ok) in enumerate(self.probes) if not ok)
        if len(self.probes) - first_fail - 1 >= self.steps:
            return None
        return round((best + low_fail) / 2, 3)
