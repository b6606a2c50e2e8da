"""Checks as named, registered things: a stable id, a rationale, the faults that must make it fail.

A check is a pytest test function decorated with `@check(...)`. The decorator records its metadata here
(for reports, `--list-checks` and the fault self-test) and marks the test so the plugin can map pytest
outcomes to check results: pass, fail, not-claimed (the profile does not claim the feature) or
inconclusive (the target's answer cannot decide it, e.g. output too short to pick a stop string).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., Any])

SURFACES = ("chat", "completions", "embeddings", "models", "errors", "auth", "http", "responses", "messages",
            "audio")


@dataclass(frozen=True)
class CheckInfo:
    id: str
    surface: str
    rationale: str
    faults: tuple[str, ...] = ()
    strict: bool = False  # only run with --strict: matters to pedantic clients only
    claims: tuple[str, ...] = ()  # profile claims the check needs, e.g. ("determinism",)
    paths: tuple[str, ...] = ("raw",)  # client paths it exercises: raw, sdk


CHECKS: dict[str, CheckInfo] = {}


def check(id: str, *, surface: str, rationale: str, faults: tuple[str, ...] | list[str] = (),
          strict: bool = False, claims: tuple[str, ...] | list[str] = (),
          paths: tuple[str, ...] | list[str] = ("raw",)) -> Callable[[F], F]:
    if surface not in SURFACES:
        raise ValueError(f"unknown surface {surface!r} for check {id}")
    info = CheckInfo(id, surface, rationale, tuple(faults), strict, tuple(claims), tuple(paths))
    existing = CHECKS.get(id)
    if existing is not None and existing != info:
        raise ValueError(f"check id {id} registered twice with different metadata")
    CHECKS[id] = info

    def mark(fn: F) -> F:
        return pytest.mark.wirecheck(id=id)(fn)

    return mark


class Inconclusive(Exception):
    """The target's behaviour could not decide this check (reported, never counted as a pass)."""


class NotClaimed(Exception):
    """The profile does not claim what this check needs."""


@dataclass
class Evidence:
    """What a failing check shows: the request, and the offending bytes."""

    request: dict[str, Any] | None = None
    status: int | None = None
    headers: dict[str, str] | None = None
    body: bytes | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self, limit: int = 4000) -> dict[str, Any]:
        body = None
        if self.body is not None:
            body = self.body[:limit].decode("utf-8", errors="replace")
            if len(self.body) > limit:
                body += f"... [{len(self.body) - limit} more bytes]"
        return {"request": self.request, "status": self.status, "headers": self.headers, "body": body,
                "notes": self.notes}


class CheckFailed(AssertionError):
    def __init__(self, message: str, evidence: Evidence | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence


def fail(message: str, evidence: Evidence | None = None) -> None:
    raise CheckFailed(message, evidence)
