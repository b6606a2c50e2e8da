"""Emulated rate limits: fixed windows of requests or tokens, a concurrency cap, and the headers that report them.

Which windows exist and how each header is spelled comes from the profile (`vendor.rate_limits`): a header maps
to "<measure> <window>", the measure one of limit, remaining, reset-iso, reset-s, active. Requests count when
admitted; tokens count when a response reports its usage, so a token window can run negative by the size of the
last answer, as hosted APIs' do. Pure logic with an injectable clock, so tests need no waiting.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
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
    name: str
    counts: str  # requests | tokens | concurrent
    limit: int
    seconds: float = 0.0
    used: int = 0
    started: float | None = None

    def roll(self, now: float) -> None:
        if self.seconds and (self.started is None or now >= self.started + self.seconds):
            # Fixed windows aligned to the first request after the last one ended.
            self.started, self.used = now, 0

    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def resets_at(self, now: float) -> float:
        return (self.started if self.started is not None else now) + self.seconds


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
        now = self.clock()
        for w in self.windows.values():
            w.roll(now)
        for w in self.windows.values():
            used = self.active if w.counts == "concurrent" else w.used
            full = used >= w.limit
            if full:
                wait = 1 if w.counts == "concurrent" else max(1, math.ceil(w.resets_at(now) - now))
                return Verdict(False, w.name, wait)
        for w in self.windows.values():
            if w.counts == "requests":
                w.used += 1
        self.active += 1
        return Verdict(True)

    def release(self) -> None:
        self.active = max(0, self.active - 1)

    def charge_tokens(self, tokens: int) -> None:
        now = self.clock()
        for w in self.windows.values():
            if w.counts == "tokens":
                w.roll(now)
                w.used += tokens

    def header_values(self) -> dict[str, str]:
        now = self.clock()
        out: dict[str, str] = {}
        for header, spec in self.headers.items():
            measure, _, name = spec.partition(" ")
            w = self.windows.get(name)
            if w is None:
                continue
            w.roll(now)
            out[header] = _measure(measure, w, now, self.active)
        return out


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
