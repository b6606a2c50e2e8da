"""Emulated rate limits: rolling windows of requests or tokens, a concurrency cap, and the headers that report them.

Which windows exist and how each header is spelled comes from the profile (`vendor.rate_limits`): a header maps
to "<measure> <window>", the measure one of limit, remaining, reset-iso, reset-s, reset-duration, active.
Requests count when admitted; tokens count when a response reports its usage, so a token window can run over by
the size of the last answer, as hosted APIs' do. What is counted stays in its window for `seconds` and then frees
its slot (a sliding window, not one that empties all at once), so no `seconds`-long stretch admits more requests
than the limit and "remaining" is what may be sent right now.

Reset (reset-iso, reset-s, reset-duration) is when the window is wholly empty again, everything counted in it
rolled out; an empty window resets now (0 s). Source: OpenAI's rate-limit guide ("Rate limits in headers",
platform.openai.com/docs/guides/rate-limits) gives x-ratelimit-reset-requests as "the time until the rate limit
(based on requests) resets to its initial state", and Hoonify, which copies OpenAI's header names, calls its
x-ratelimit-reset-requests the "ISO 8601 timestamp when window resets"; Hontoni documents no reset header. When
the next request fits is what a 429's retry-after says. Pure logic with an injectable clock, so tests need no
waiting.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# When --rate-limit is given on a profile that documents no headers: OpenAI's names (reset as a duration, "6s").
OPENAI_HEADERS = {
    "x-ratelimit-limit-requests": "limit rpm",
    "x-ratelimit-remaining-requests": "remaining rpm",
    "x-ratelimit-reset-requests": "reset-duration rpm",
    "x-ratelimit-limit-tokens": "limit tpm",
    "x-ratelimit-remaining-tokens": "remaining tpm",
    "x-ratelimit-reset-tokens": "reset-duration tpm",
}
OPENAI_WINDOWS = {"rpm": {"seconds": 60, "counts": "requests"}, "tpm": {"seconds": 60, "counts": "tokens"}}


def parse_limits(text: str) -> dict[str, int | str]:
    """``"rpm=60,tpm=10000"`` -> {"rpm": 60, "tpm": 10000}; ``plan=standard`` is kept as a string."""
    out: dict[str, int | str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"--rate-limit wants NAME=VALUE pairs separated by commas, got {part!r}")
        name, value = name.strip(), value.strip()
        if name == "plan":
            out[name] = value
            continue
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"--rate-limit {name} must be a whole number, got {value!r}") from None
        if number < 0:
            raise ValueError(f"--rate-limit {name} must not be negative")
        out[name] = number
    return out


@dataclass
class Window:
    """One limit. Requests or tokens count against it for `seconds` after they were counted (a rolling window)."""

    name: str
    counts: str  # requests | tokens | concurrent
    limit: int
    seconds: float = 0.0
    used: int = 0  # running total of the buckets
    # (whole second, amount), oldest first, one per second with activity: memory grows with the window's length
    # in seconds (a month: 2.6 M at most), not with how many requests a load test sends in it.
    buckets: deque[tuple[int, int]] = field(default_factory=deque)

    def roll(self, now: float) -> None:
        """Free what has been counted for `seconds` already."""
        while self.buckets and self.buckets[0][0] + self.seconds <= now:
            self.used -= self.buckets.popleft()[1]

    def count(self, amount: int, now: float) -> None:
        # Rounding up: an amount counted at t goes in the bucket of second ceil(t) and frees at ceil(t) + seconds,
        # so it counts for at least `seconds` (at most one more): no true `seconds`-long interval ever admits more
        # than the limit. A clock that steps back adds to the newest bucket, which frees later: still safe.
        if amount <= 0:
            return
        self.used += amount
        second = math.ceil(now)
        if self.buckets and self.buckets[-1][0] >= second:
            second, held = self.buckets.pop()
            amount += held
        self.buckets.append((second, amount))

    def full(self) -> bool:
        return self.used >= self.limit

    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def frees_at(self, amount: int) -> float | None:
        """When at least `amount` of what is counted will have rolled out; None when that much is not counted."""
        freed = 0
        for second, held in self.buckets:
            freed += held
            if freed >= amount:
                return second + self.seconds
        return None

    def wait(self, now: float) -> int:
        """Whole seconds (at least 1) until a request fits: the total has rolled out to under the limit. A limit of
        0 never admits; it says the window's length."""
        at = self.frees_at(self.used - self.limit + 1)
        return max(1, math.ceil((now + self.seconds if at is None else at) - now))

    def resets_at(self, now: float) -> float:
        """When the window is wholly empty again (the newest bucket rolled out); now when it is empty."""
        return self.buckets[-1][0] + self.seconds if self.buckets else now


@dataclass
class Verdict:
    allowed: bool
    window: str | None = None
    retry_after: int = 0


@dataclass
class Limiter:
    """One key's windows. The emulation keeps one Limiter per API key (limits are "per API key")."""

    windows: dict[str, Window]
    headers: dict[str, str]
    clock: Callable[[], float] = time.time
    active: int = 0

    def admit(self) -> Verdict:
        """Count a request, or say which window refuses it and for how long (whole seconds, at least 1)."""
        now = self._roll()
        waits = {w.name: wait for w in self.windows.values() if (wait := self._wait(w, now))}
        if waits:
            # When several windows are full, name the one that frees last: a client that waits its retry_after
            # and retries then fits every window (concurrency aside, which frees on release, not with time).
            name = max(waits, key=waits.__getitem__)
            return Verdict(False, name, waits[name])
        for w in self.windows.values():
            if w.counts == "requests":
                w.count(1, now)
        self.active += 1
        return Verdict(True)

    def release(self) -> None:
        self.active = max(0, self.active - 1)

    def charge_tokens(self, tokens: int) -> None:
        now = self._roll()
        for w in self.windows.values():
            if w.counts == "tokens":
                w.count(tokens, now)

    def set_limits(self, limits: dict[str, int]) -> None:
        """New limits for some windows (the key's plan or add-on changed), keeping what they have counted."""
        for name, limit in limits.items():
            if name not in self.windows:
                raise ValueError(f"rate limit {name}: this key's windows are {', '.join(self.windows)}")
            if limit < 0:
                raise ValueError(f"rate limit {name} must not be negative")
        for name, limit in limits.items():
            self.windows[name].limit = int(limit)

    def header_values(self) -> dict[str, str]:
        now = self._roll()
        out: dict[str, str] = {}
        for header, spec in self.headers.items():
            measure, _, name = spec.partition(" ")
            w = self.windows.get(name)
            if w is not None:
                out[header] = _measure(measure, w, now, self.active)
        return out

    def _roll(self) -> float:
        now = self.clock()
        for w in self.windows.values():
            w.roll(now)
        return now

    def _wait(self, w: Window, now: float) -> int:
        """Seconds until `w` would admit a request; 0 when it would now."""
        if w.counts == "concurrent":
            return 1 if self.active >= w.limit else 0
        return w.wait(now) if w.full() else 0


def _measure(measure: str, w: Window, now: float, active: int) -> str:
    if measure == "limit":
        return str(w.limit)
    if measure == "remaining":
        return str(max(0, w.limit - active) if w.counts == "concurrent" else w.remaining())
    if measure == "active":
        return str(active)
    if measure == "reset-iso":
        return datetime.fromtimestamp(w.resets_at(now), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if measure == "reset-s":
        return str(max(0, math.ceil(w.resets_at(now) - now)))
    if measure == "reset-duration":
        return f"{max(0.0, w.resets_at(now) - now):.3f}".rstrip("0").rstrip(".") + "s"
    raise ValueError(f"unknown rate-limit header measure {measure!r}")


@dataclass
class LimitSettings:
    """What every key's Limiter is built from: window kinds, limits, header spellings."""

    windows: dict[str, dict[str, Any]]
    limits: dict[str, int]
    headers: dict[str, str]

    def new(self, clock: Callable[[], float] = time.time) -> Limiter:
        made = {name: Window(name, spec.get("counts", "requests"), self.limits[name], float(spec.get("seconds", 0)))
                for name, spec in self.windows.items() if name in self.limits}
        return Limiter(made, self.headers, clock)


def settings(vendor: dict[str, Any], asked: dict[str, int | str] | None) -> LimitSettings | None:
    """Limits for a profile's `vendor` mapping and the --rate-limit the user gave (None: no limits, no headers).

    A vendor that documents rate-limit headers always gets them (with generous emulation defaults); elsewhere
    limits exist only when asked for, reported under OpenAI's header names."""
    spec = vendor.get("rate_limits")
    asked = dict(asked or {})
    if spec is None and not asked:
        return None
    windows = dict(spec["windows"]) if spec else dict(OPENAI_WINDOWS)
    headers = dict(spec["headers"]) if spec else dict(OPENAI_HEADERS)
    limits: dict[str, int] = {k: int(v) for k, v in (spec or {}).get("default", {}).items()}
    plan = asked.pop("plan", None)
    if plan is not None:
        plans = vendor.get("plans") or {}
        if plan not in plans:
            raise ValueError(f"--rate-limit plan={plan}: this profile documents plans {', '.join(plans) or '(none)'}")
        limits.update({k: int(v) for k, v in plans[plan].items() if k in windows})
    unknown = [k for k in asked if k not in windows]
    if unknown:
        raise ValueError(f"--rate-limit {unknown[0]}: this profile's windows are {', '.join(windows)}")
    limits.update({k: int(v) for k, v in asked.items()})
    if not spec:
        # Asked for only one of OpenAI's two windows: the other is effectively unbounded but still reported.
        limits = {name: limits.get(name, 10**9) for name in windows}
    return LimitSettings(windows, limits, headers)
