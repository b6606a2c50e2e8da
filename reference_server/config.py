"""Server settings, filled from the command line (or by tests) before the app is built."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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

    @classmethod
    def keys_from_env(cls) -> list[str]:
        return [k.strip() for k in os.environ.get(API_KEY_ENV, "").split(",") if k.strip()]
