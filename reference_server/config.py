"""Server settings, filled from the command line (or by tests) before the app is built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .media_source import FetchPolicy

API_KEY_ENV = "WIRECHECK_API_KEY"  # comma-separated; same effect as repeating --api-key


@dataclass
class ServerConfig:
    model: str = "tiny"
    served_model_name: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    api_keys: list[str] = field(default_factory=list)
    max_body_bytes: int = 4 * 1024 * 1024
    max_messages: int = 1024
    max_batch_rows: int = 64
    # Speech to text: "tiny-whisper" (embedded) or a local Whisper directory, and the upload limits.
    speech_model: str = "tiny-whisper"
    max_audio_bytes: int = 25 * 1024 * 1024  # OpenAI's limit
    max_audio_seconds: float = 600.0
    # "process": the engine in its own process (generation and HTTP in parallel); "thread": in this process.
    engine: str = "process"
    # None: a request may ask for as many tokens as the context window leaves.
    max_tokens_limit: int | None = None
    # Vendor emulation (spec/profiles/<name>.yaml); None serves the plain reference server.
    profile: str | None = None
    rate_limit: dict[str, int | str] = field(default_factory=dict)
    balance: float | None = None
    new_account_balance: float = 0.0
    dry_pools: list[str] | None = None
    # Chat image_url parts: data: URLs always; http(s) fetched only when allowed (docs/media.md).
    allow_image_fetch: bool = False
    image_fetch_allow_cidrs: list[str] = field(default_factory=list)  # private networks trusted anyway
    max_image_bytes: int = 20 * 1024 * 1024
    image_fetch_timeout_s: float = 10.0

    @classmethod
    def keys_from_env(cls) -> list[str]:
        return [k.strip() for k in os.environ.get(API_KEY_ENV, "").split(",") if k.strip()]

    def fetch_policy(self) -> FetchPolicy:
        """Where image bytes may come from; a ValueError naming a bad CIDR or limit."""
        from .media_source import FetchPolicy

        return FetchPolicy(allow_fetch=self.allow_image_fetch, allow_cidrs=tuple(self.image_fetch_allow_cidrs),
                           max_bytes=self.max_image_bytes, timeout_s=self.image_fetch_timeout_s)
