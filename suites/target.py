"""What the suites run against: base URL, credentials, the profile it claims, and deadlines."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from wirecheck.spec.profiles import Profile, load_profile

__all__ = ["Profile", "Target", "load_profile", "normalise_base_url"]


def normalise_base_url(url: str, base_path: str = "/v1") -> tuple[str, str | None]:
    """Accept a base URL with or without the profile's API prefix (a trailing /v1 for almost every target);
    return (API root ending in that prefix, what changed)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"--target must be an http(s) URL, got {url!r}")
    path = parts.path.rstrip("/")
    note = None
    if base_path and not path.endswith(base_path):
        note = f"appended {base_path} to {url!r}"
        path += base_path
    elif url.endswith("/"):
        note = f"removed the trailing slash from {url!r}"
    return urlunsplit((parts.scheme, parts.netloc, path, "", "")), note


@dataclass
class Target:
    base_url: str  # API root: ends in the profile's base path (/v1 for almost every target)
    api_key: str | None
    profile: Profile
    model: str
    embedding_model: str
    strict: bool = False
    # The model the Responses checks use: a vendor may serve /v1/responses for some models only (CompactifAI's
    # supports_responses); empty means `model`.
    responses_model: str = ""
    deadline: float = 30.0  # seconds for any one exchange, streams included
    notes: list[str] = field(default_factory=list)
    # Consecutive exchanges that did not complete: ran out of time, or sent a body past the size cap (an endless
    # one). A target that stops answering would otherwise cost a full deadline per remaining check; past
    # STALL_LIMIT, exchanges fail at once (reported as such).
    stalls: int = 0

    STALL_LIMIT = 3

    def __post_init__(self) -> None:
        self.responses_model = self.responses_model or self.model

    @property
    def unresponsive(self) -> bool:
        return self.stalls >= self.STALL_LIMIT

    def record(self, timed_out: bool) -> None:
        self.stalls = self.stalls + 1 if timed_out else 0

    def not_sent(self) -> str:
        """Why an exchange was failed unsent (once `unresponsive`)."""
        return (f"not sent: the last {self.stalls} exchanges did not complete within the {self.deadline:g}s "
                f"deadline, so the target is treated as unresponsive")

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):  # outside the API base (account endpoints)
            return path
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
