"""Stream invariants: pure functions over SSE items, each registered under a check id.

The same functions judge a live stream in the suites and a captured body in `wirecheck lint-stream`, so a
verdict never depends on where the bytes came from. A function returns a list of problems (empty = holds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from wirecheck.spec.sse import SSEItem

from ..registry import CHECKS, CheckInfo

Problems = list[str]
StreamFn = Callable[[list[SSEItem]], Problems]


@dataclass(frozen=True)
class StreamCheck:
    info: CheckInfo
    fn: StreamFn


STREAM_CHECKS: dict[str, dict[str, StreamCheck]] = {}


def stream_check(id: str, *, surface: str, rationale: str, faults: tuple[str, ...] = (), strict: bool = False,
                 claims: tuple[str, ...] = ("stream",)) -> Callable[[StreamFn], StreamFn]:
    """Register a stream invariant; it becomes check `id` on live streams and in lint-stream."""

    def register(fn: StreamFn) -> StreamFn:
        info = CheckInfo(id, surface, rationale, tuple(faults), strict, tuple(claims), ("raw",))
        CHECKS[id] = info
        STREAM_CHECKS.setdefault(surface, {})[id] = StreamCheck(info, fn)
        return fn

    return register


def lint(surface: str, items: list[SSEItem], *, strict: bool = False) -> dict[str, Problems]:
    """Run every registered invariant for `surface`; return {check id: problems} for those that fail."""
    _load()
    failed: dict[str, Problems] = {}
    for check_id, sc in STREAM_CHECKS.get(surface, {}).items():
        if sc.info.strict and not strict:
            continue
        problems = sc.fn(items)
        if problems:
            failed[check_id] = problems
    return failed


def _load() -> None:
    from . import chat, completions, messages, responses  # noqa: F401  (they register on import)
