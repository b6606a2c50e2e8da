"""Run registered stream invariants against a live exchange, turning problems into CheckFailed."""

from __future__ import annotations

import pytest

from .invariants import STREAM_CHECKS, _load
from .registry import fail
from .wire import Exchange


def stream_params(surface: str) -> list:
    """One pytest param per registered invariant of `surface`, carrying its check-id marker."""
    _load()
    return [pytest.param(check_id, id=check_id, marks=pytest.mark.wirecheck(id=check_id))
            for check_id in STREAM_CHECKS.get(surface, {})]


def expect_stream(exchange: Exchange, surface: str, check_id: str) -> None:
    if exchange.error or exchange.timed_out or exchange.status != 200:
        fail(f"no stream to judge: {exchange.describe()}", exchange.evidence())
    problems = STREAM_CHECKS[surface][check_id].fn(exchange.items())
    if problems:
        fail("; ".join(problems[:5]), exchange.evidence(*problems[:20]))
