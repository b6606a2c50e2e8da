"""Profiles: what a target claims (`spec/profiles/*.yaml`), read by the suites (what to check) and by the reference
server (what to emulate, `wirecheck serve --profile NAME`).

A profile names the surfaces and features a target offers, its auth scheme and paths, and, for a vendor, the wire
facts of that vendor's documents (model ids, headers, statuses, extensions) in its `vendor` mapping. Each fact is
written once, here, with the seed document it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES_DIR = Path(__file__).resolve().parent / "profiles"
DEFAULT_SURFACES = ("chat", "completions", "embeddings", "models")


@dataclass(frozen=True)
class Profile:
    """A target's claims: which surfaces and features it supports. Unclaimed checks report not-claimed."""

    name: str
    surfaces: tuple[str, ...] = DEFAULT_SURFACES
    claims: frozenset[str] = frozenset()
    models: tuple[str, ...] = ()
    embedding_models: tuple[str, ...] = ()
    audio_models: tuple[str, ...] = ()  # speech-to-text models (/v1/audio/transcriptions)
    # Chat models that take image_url parts / input_audio parts; the profile's other models are text-only.
    vision_models: tuple[str, ...] = ()
    audio_input_models: tuple[str, ...] = ()
    # How keys travel: "bearer", "x-api-key" (Anthropic), or both ("bearer+x-api-key": either is accepted).
    auth: str = "bearer"
    # Where the API lives under the host: "/v1" for almost everyone; "" for a vendor serving /chat/completions.
    base_path: str = "/v1"
    key_prefix: str | None = None  # documented key format, e.g. "hoo_"
    auth_required: bool = False  # the vendor always demands a key (no anonymous mode)
    default_model: str | None = None  # served when a request omits `model`
    semantic_status: int = 400  # status for well-formed requests with invalid values (Hoonify documents 422)
    vendor: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def claims_all(self, needed: tuple[str, ...]) -> bool:
        return all(c in self.claims for c in needed)

    @property
    def model_entries(self) -> list[dict[str, Any]]:
        """Every model the vendor documents, as a mapping with at least `id` (plain ids become {id: ...})."""
        return [entry if isinstance(entry, dict) else {"id": entry} for entry in self.raw.get("models", [])]

    @property
    def text_only_models(self) -> tuple[str, ...]:
        """Chat models that claim neither images nor audio: they must refuse media parts."""
        media = set(self.vision_models) | set(self.audio_input_models)
        return tuple(m for m in self.models if m not in media)

    def example_key(self) -> str | None:
        """A key in the documented format, for starting an emulating server and checking it."""
        return self.raw.get("example_key")


def known() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ValueError(f"no profile {name_or_path!r}; known profiles: {', '.join(known())}, or give a YAML path")
    data = yaml.safe_load(path.read_text()) or {}
    models = tuple(m["id"] if isinstance(m, dict) else m for m in data.get("models", []))
    base_path = str(data.get("base_path", "/v1")).rstrip("/")
    return Profile(
        name=data.get("name", path.stem),
        surfaces=tuple(data.get("surfaces", DEFAULT_SURFACES)),
        claims=frozenset(data.get("claims", [])),
        models=models,
        embedding_models=tuple(data.get("embedding_models", [])),
        audio_models=tuple(data.get("audio_models", [])),
        # Listed outright, or flagged per model entry (CompactifAI's documented `supports_audio`; `vision`).
        vision_models=tuple(data.get("vision_models") or _flagged(data, "vision")),
        audio_input_models=tuple(data.get("audio_input_models") or _flagged(data, "supports_audio")),
        auth=data.get("auth", "bearer"),
        base_path=base_path,
        key_prefix=data.get("key_prefix"),
        auth_required=bool(data.get("auth_required", False)),
        default_model=data.get("default_model"),
        semantic_status=int(data.get("semantic_status", 400)),
        vendor=dict(data.get("vendor") or {}),
        raw=data,
    )


def _flagged(data: dict[str, Any], flag: str) -> list[str]:
    return [m["id"] for m in data.get("models", []) if isinstance(m, dict) and m.get(flag) is True]
