"""What the suites run against: base URL, credentials, the profile it claims, and deadlines."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

PROFILES_DIR = Path(__file__).resolve().parent.parent / "spec" / "profiles"


@dataclass
class Profile:
    """A target's claims: which surfaces and features it supports. Unclaimed checks report not-claimed."""

    name: str
    surfaces: tuple[str, ...] = ("chat", "completions", "embeddings", "models")
    claims: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()
    embedding_models: tuple[str, ...] = ()
    auth: str = "bearer"
    raw: dict[str, Any] = field(default_factory=dict)

    def claims_all(self, needed: tuple[str, ...]) -> bool:
        return all(c in self.claims for c in needed)


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.yaml")))
        raise ValueError(f"no profile {name_or_path!r}; known profiles: {known}, or give a YAML path")
    data = yaml.safe_load(path.read_text()) or {}
    return Profile(
        name=data.get("name", path.stem),
        surfaces=tuple(data.get("surfaces", Profile.surfaces)),
        claims=frozenset(data.get("claims", [])),
        models=tuple(data.get("models", [])),
        embedding_models=tuple(data.get("embedding_models", [])),
        auth=data.get("auth", "bearer"),
        raw=data,
    )


def normalise_base_url(url: str) -> tuple[str, str | None]:
    """Accept a base URL with or without a trailing /v1; return (API root ending in /v1, what changed)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--target must be an http(s) URL, got {url!r}")
    path = parts.path.rstrip("/")
    note = None
    if not path.endswith("/v1"):
        note = f"appended /v1 to {url!r}"
        path += "/v1"
    elif url.endswith("/"):
        note = f"removed the trailing slash from {url!r}"
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), note


@dataclass
class Target:
    base_url: str  # API root, ends in /v1
    api_key: str | None
    profile: Profile
    model: str
    embedding_model: str
    strict: bool = False
    deadline: float = 30.0  # seconds for any one exchange, streams included
    notes: list[str] = field(default_factory=list)
    # Consecutive exchanges that ran out of time. A target that stops answering would otherwise cost a
    # full deadline per remaining check; past STALL_LIMIT, exchanges fail at once (reported as such).
    stalls: int = 0

    STALL_LIMIT = 3

    @property
    def unresponsive(self) -> bool:
        return self.stalls >= self.STALL_LIMIT

    def record(self, timed_out: bool) -> None:
        self.stalls = self.stalls + 1 if timed_out else 0

    def url(self, path: str) -> str:
        return self.base_url + "/" + path.lstrip("/")

    def auth_headers(self, path: str = "") -> dict[str, str]:
        """Credentials for a request to `path` (relative to /v1): Anthropic's paths get the key as `x-api-key`
        with the `anthropic-version` every Anthropic client sends; every other path `Authorization: Bearer`."""
        if is_anthropic_path(path):
            return {"anthropic-version": ANTHROPIC_VERSION, **({"x-api-key": self.api_key} if self.api_key else {})}
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


ANTHROPIC_VERSION = "2023-06-01"  # the version Anthropic's documentation (and most clients) send


def is_anthropic_path(path: str) -> bool:
    path = path.lstrip("/").split("?", 1)[0]
    return path == "messages" or path.startswith("messages/")
