"""Rate limits as a vendor documents them: the header family on every response, and 429 with retry-after.

The header names and what each holds come from the profile (`vendor.rate_limits.headers`: "limit rpm",
"remaining rpm", "reset-iso rpm", "active concurrent"), so one check judges every vendor's spelling.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from .accounts import fresh_key
from .judge import envelope_problems, retry_after_problems
from .registry import check, fail
from .target import Target
from .wire import Exchange

ISO_SLACK = timedelta(minutes=5)  # clocks differ; a reset far in the past or beyond the window is wrong


def header_specs(target: Target) -> dict[str, tuple[str, str]]:
    """header name (lower case) -> (measure, window) as the profile documents them."""
    headers = (target.profile.vendor.get("rate_limits") or {}).get("headers") or {}
    return {name.lower(): tuple(spec.split(" ", 1)) for name, spec in headers.items()}  # type: ignore[misc]


def header_problems(target: Target, ex: Exchange, what: str) -> list[str]:
    """Every documented header present, in its documented form, consistent with its limit."""
    got = {k.lower(): v for k, v in ex.headers.items()}
    windows = (target.profile.vendor.get("rate_limits") or {}).get("windows") or {}
    problems: list[str] = []
    values: dict[tuple[str, str], Any] = {}
    for name, (measure, window) in header_specs(target).items():
        value = got.get(name)
        if value is None:
            problems.append(f"{what}: no {name} header (documented on every response)")
            continue
        if measure in ("limit", "remaining", "active"):
            if not value.strip().isdigit():
                problems.append(f"{what}: {name} is {value!r}, not a whole number")
                continue
            values[(measure, window)] = int(value)
        elif measure == "reset-iso":
            problems += _iso_problems(name, value, windows.get(window, {}).get("seconds"), what)
    for (measure, window), number in values.items():
        limit = values.get(("limit", window))
        if measure in ("remaining", "active") and limit is not None and number > limit:
            problems.append(f"{what}: {measure} {window} is {number}, above its limit {limit}")
    return problems


def _iso_problems(name: str, value: str, seconds: Any, what: str) -> list[str]:
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return [f"{what}: {name} is {value!r}, not an ISO 8601 timestamp (the documented form)"]
    if when.tzinfo is None:
        return [f"{what}: {name} {value!r} has no time zone; a timestamp without one is ambiguous"]
    now = datetime.now(timezone.utc)
    horizon = timedelta(seconds=float(seconds)) if seconds else timedelta(days=31)
    if not now - ISO_SLACK <= when <= now + horizon + ISO_SLACK:
        return [f"{what}: {name} {value!r} is not within the window ahead ({horizon})"]
    return []


def _remaining(target: Target, ex: Exchange, counts: str = "requests") -> tuple[str, int] | None:
    """(header, value) of the smallest 'remaining' request window the response reports."""
    windows = (target.profile.vendor.get("rate_limits") or {}).get("windows") or {}
    got = {k.lower(): v for k, v in ex.headers.items()}
    found = [(name, int(got[name])) for name, (measure, window) in header_specs(target).items()
             if measure == "remaining" and windows.get(window, {}).get("counts") == counts
             and got.get(name, "").isdigit()]
    return min(found, key=lambda f: f[1]) if found else None


@check("ratelimit.headers", surface="http", claims=("ratelimit-headers",),
       faults=("hoonify-ratelimit-headers-dropped", "hoonify-ratelimit-reset-duration",
               "hontoni-ratelimit-headers-dropped"),
       rationale="The vendor documents its rate-limit headers on every response; clients pace themselves from "
                 "them (remaining, reset) and dashboards read the limits. Missing headers, or a reset in another "
                 "form than documented (a duration where an ISO 8601 timestamp is promised), break that pacing.")
def test_ratelimit_headers(wire, target) -> None:
    if not header_specs(target):
        pytest.skip("not-claimed: the profile documents no rate-limit headers")
    sent, first = wire.probe()
    if first.status != 200:
        fail(f"{sent} got HTTP {first.status}, not 200", first.evidence())
    body = {"model": target.model, "messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}
    chat = wire.post("chat/completions", body) if "chat" in target.profile.surfaces else first
    missing_model = wire.post("chat/completions", {**body, "model": "wirecheck-no-such-model-7f3a"})
    _, second = wire.probe()
    for what, ex in ((sent, first), ("POST /chat/completions", chat), ("an unknown-model 404", missing_model),
                     (f"a second {sent}", second)):
        problems = header_problems(target, ex, what)
        if problems:
            fail("; ".join(problems[:4]), ex.evidence(*problems))
    before, after = _remaining(target, first), _remaining(target, second)
    if before and after and before[0] == after[0] and not after[1] < before[1]:
        fail(f"{before[0]} went from {before[1]} to {after[1]} across requests in the same window: it does not "
             f"count them", second.evidence())


@check("ratelimit.429-retry-after", surface="http", claims=("retry-after-429", "hontoni.accounts"),
       faults=("hontoni-429-no-retry-after", "hontoni-429-as-500"),
       rationale="Past a limit the vendor documents 429 with retry-after; the SDKs and the vendor's own sample "
                 "code wait exactly that long. A 429 without it, or a limit answered as 500, makes clients hammer "
                 "or give up. Exhausted on a fresh account's key (the lowest plan), so the run's own key is spared.")
def test_ratelimit_429(wire, target) -> None:
    key = fresh_key(wire, target)
    headers = {"Authorization": f"Bearer {key}"}
    sent, ex = wire.probe(headers=headers, auth=False)
    if ex.status != 200:
        fail(f"{sent} with a freshly issued key got HTTP {ex.status}, not 200", ex.evidence())
    remaining = _remaining(target, ex)
    if remaining is None:
        pytest.skip("inconclusive: no remaining-requests header to size the burst by")
    if remaining[1] > 40:
        pytest.skip(f"inconclusive: {remaining[0]} is {remaining[1]}: too many requests to spend in a check")
    for _ in range(remaining[1] + 2):
        sent, ex = wire.probe(headers=headers, auth=False)
        if ex.status != 200:
            break
    if ex.status == 200:
        fail(f"{remaining[1] + 2} requests past {remaining[0]}: {remaining[1]} all got 200; the limit is not "
             f"enforced", ex.evidence())
    if ex.status != 429:
        fail(f"past the limit {sent} got HTTP {ex.status}, not 429", ex.evidence())
    problems = retry_after_problems(ex.status, ex.headers) + envelope_problems(ex.status, ex.content_type, ex.body)
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))
