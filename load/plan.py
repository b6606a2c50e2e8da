"""What one load run does: the target, the profile and the stages, as plain data.

The `wirecheck load` process builds a :class:`Plan`, writes it as JSON and hands the path to every
locust process (master and workers) through ``WIRECHECK_LOAD_PLAN``, so all of them agree on the
stage schedule without locust having to forward custom options.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

PLAN_ENV = "WIRECHECK_LOAD_PLAN"
ROLE_ENV = "WIRECHECK_ROLE"  # set by `wirecheck load` for the locust it starts: local | master | worker


@dataclass(frozen=True)
class Stage:
    """One load level held for ``duration_s``: closed loop (``users``), open loop (``rate`` req/s),
    or a linear ramp of users from ``users`` to ``ramp_to``."""

    duration_s: float
    users: int | None = None
    rate: float | None = None
    ramp_to: int | None = None

    @property
    def label(self) -> str:
        if self.rate is not None:
            return f"{self.rate:g} req/s"
        if self.ramp_to is not None:
            return f"{self.users}→{self.ramp_to} users"
        return f"{self.users} user" + ("s" if self.users != 1 else "")


@dataclass(frozen=True)
class Plan:
    target: str                      # base URL without /v1
    profile: str
    model: str
    stages: tuple[Stage, ...]
    out_dir: str
    warmup_s: float = 0.0
    arrival: str = "poisson"         # open loop only: poisson | constant
    workers: int = 1
    api_key: str | None = None
    input_tokens: int = 64
    output_tokens: int = 64
    extra_body: dict = field(default_factory=dict)
    reader: str = "exact"            # exact | locust-iter-lines (negative control only)
    request_timeout_s: float = 120.0
    seed: int = 0
    users_for_rate: int = 0          # idle users that serve the open-loop pacer (0 = derived)
    distributed: bool = False        # workers on other machines (locust --master); they get this plan by message
    more_runs: bool = False          # distributed: another locust run follows (rate-search probes): workers rejoin
    master_bind_host: str = "*"      # distributed: where the locust master listens for workers
    master_bind_port: int = 5557

    @property
    def mode(self) -> str:
        return "rate" if self.stages[0].rate is not None else "users"

    @property
    def total_s(self) -> float:
        return sum(s.duration_s for s in self.stages)

    def stage_at(self, elapsed_s: float) -> int:
        """Index of the stage running ``elapsed_s`` after the start (the last one past the end)."""
        t = 0.0
        for i, stage in enumerate(self.stages):
            t += stage.duration_s
            if elapsed_s < t:
                return i
        return len(self.stages) - 1

    def users_at(self, elapsed_s: float) -> tuple[int, float] | None:
        """(users, spawn rate) for locust's shape at ``elapsed_s``; None once the plan is over.
        Steps spawn at once; a ramp moves linearly; open-loop stages keep a fixed pool of idle users."""
        if elapsed_s >= self.total_s:
            return None
        i = self.stage_at(elapsed_s)
        stage = self.stages[i]
        if stage.rate is not None:
            users = self.users_for_rate or users_for_rate(max(s.rate or 0 for s in self.stages), self.output_tokens)
            return users, float(users)
        if stage.ramp_to is not None:
            frac = (elapsed_s - self.stage_start(i)) / stage.duration_s
            users = round(stage.users + (stage.ramp_to - stage.users) * frac)
            return max(1, users), max(1.0, 2 * (stage.ramp_to - stage.users) / stage.duration_s)
        return stage.users, float(max(stage.users, 1))

    def stage_start(self, index: int) -> float:
        return sum(s.duration_s for s in self.stages[:index])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        data["stages"] = tuple(Stage(**s) for s in data["stages"])
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        return cls.from_json(Path(path).read_text())


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'30s', '2m', '500ms', '45' (seconds) -> seconds."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 2m, 500ms)")
    value = float(m.group(1)) * _UNIT[m.group(2)]
    if value <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    return value


def parse_users(text: str, duration_s: float) -> tuple[Stage, ...]:
    """'1,8,32' -> one stage per count; '1-64' -> one linear ramp."""
    text = text.strip()
    ramp = re.fullmatch(r"(\d+)\s*-\s*(\d+)", text)
    if ramp:
        low, high = int(ramp.group(1)), int(ramp.group(2))
        if low < 1 or high < low:
            raise ValueError(f"--users ramp must be LOW-HIGH with 1 <= LOW <= HIGH: {text!r}")
        return (Stage(duration_s, users=low, ramp_to=high),)
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--users must be counts like 1,8,32 or a ramp like 1-64: {text!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--users needs at least one count >= 1: {text!r}")
    return tuple(Stage(duration_s, users=n) for n in counts)


def parse_rates(text: str, duration_s: float) -> tuple[Stage, ...]:
    """'2,4.5' -> one open-loop stage per rate (requests per second, all workers together)."""
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--rate must be requests/s like 2 or 1,2,4: {text!r}") from None
    if not rates or min(rates) <= 0:
        raise ValueError(f"--rate needs rates > 0: {text!r}")
    return tuple(Stage(duration_s, rate=r) for r in rates)


def users_for_rate(rate: float, output_tokens: int) -> int:
    """Idle users enough to keep an open-loop schedule: a request may take a few seconds on a slow
    target, so allow rate x (2 s + 50 ms/token) in flight, at least 8; the schedule-lag health check
    shows when even that was not enough (coordinated omission made visible, not hidden)."""
    return max(8, int(rate * (2.0 + 0.05 * output_tokens)) + 1)
