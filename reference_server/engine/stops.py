"""Stop strings matched on decoded text: pure functions, no tokens involved."""

from __future__ import annotations

from collections.abc import Sequence


def find_stop(text: str, stops: Sequence[str], start: int) -> int | None:
    """Earliest position >= start at which any stop string begins, or None."""
    best: int | None = None
    for stop in stops:
        pos = text.find(stop, start)
        if pos != -1 and (best is None or pos < best):
            best = pos
    return best


def releasable(text: str, stops: Sequence[str], start: int) -> int:
    """How far text may be released: up to the longest suffix that could still grow into a stop string.

    Holding back only a real partial match (not a fixed max(len)-1 window) keeps streaming smooth.
    """
    total = len(text)
    cut = total
    for stop in stops:
        for size in range(min(len(stop) - 1, total - start), 0, -1):
            if stop.startswith(text[total - size :]):
                cut = min(cut, total - size)
                break
    return cut
