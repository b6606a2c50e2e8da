"""Exact summary statistics from raw samples.

Percentiles are computed from every sample (numpy's ``linear`` method, i.e. the Hyndman–Fan type 7
estimator that numpy, vLLM bench and AIPerf use), never from histograms and never by averaging the
percentiles of parts: samples from all workers are pooled first. Locust's own stats bucket to 1 ms
below 100 ms, which is a 5–20 % error on 5–20 ms gaps; these do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p95", 95.0), ("p99", 99.0),
                                              ("p99.9", 99.9))

# Below these counts a tail percentile is mostly noise (AIPerf's guidance); the report says so.
STABLE_COUNT = {"p99": 1000, "p99.9": 5000}


def summarize(samples: Iterable[float]) -> dict[str, float | int] | None:
    """count, mean, std, min, p50, p90, p95, p99, p99.9, max; None when there is no sample."""
    values = np.fromiter(samples, dtype=np.float64)
    if values.size == 0:
        return None
    cuts = np.percentile(values, [q for _, q in PERCENTILES], method="linear")
    out: dict[str, float | int] = {"count": int(values.size), "mean": float(values.mean()),
                                   "std": float(values.std()), "min": float(values.min())}
    out.update({name: float(v) for (name, _), v in zip(PERCENTILES, cuts)})
    out["max"] = float(values.max())
    return out


def percentile(samples: Sequence[float], q: float) -> float | None:
    """One exact percentile (0..100) or None for no samples."""
    if not samples:
        return None
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q, method="linear"))


def unstable_tails(name: str, summary: dict | None) -> list[str]:
    """Warnings for tail percentiles taken from too few samples."""
    if not summary:
        return []
    return [f"{name} {tail} from {summary['count']} samples (< {need}): treat as indicative"
            for tail, need in STABLE_COUNT.items() if summary["count"] < need]
