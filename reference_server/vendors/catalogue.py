"""A vendor's model ids, all served by the one loaded model, and the fields its model objects carry.

Each documented id becomes an alias of the loaded model (same weights, same engine), so every surface echoes the
id the client asked for. A documented id's `context_window` is the engine's own (W): advertising a vendor's 128K
window for a model that holds far less would make well-behaved clients fail.

Hontoni's `-1m` ("an extended 1M token context window") is a scale model of the vendor's: `<id>-1m` is one more
alias, unlisted, that accepts round(W x 1,000,000 / documented context) tokens (claude-sonnet-4, 216K documented:
9,481 on the 2,048-token tiny model; gpt-4o, 128K: 16,000), so a prompt between the two windows is served by the
-1m id and refused by the base id, as on the vendor. Only a model whose positions are computed (RoPE) grows: a
learned position table ends at W.

Which media a model's chat accepts comes from the profile's `vision_models` / `audio_input_models` (a model entry's
`vision: true`, our own marker, kept off the wire; CompactifAI's documented `supports_audio: true`, which is on it).
An alias accepts what its profile says and the engine's media adapter can embed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..engine.loader import LoadedModel
from ..surfaces.models import quantizations
from .profile import Vendor


def fingerprint(*parts: str) -> str:
    """A system_fingerprint that is a function of what serves the request (model, variant, runtime)."""
    return "fp_" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:10]


def aliases(vendor: Vendor, lm: LoadedModel, media: frozenset[str] = frozenset()) -> dict[str, LoadedModel]:
    """Every documented id as a variant of `lm` (one grammar compiler for all: they share the tokenizer); `media`
    is what the engine can embed."""
    out: dict[str, LoadedModel] = {}
    profile = vendor.profile
    for entry in profile.model_entries:
        claimed = {"image"} if entry["id"] in profile.vision_models else set()
        claimed |= {"audio"} if entry["id"] in profile.audio_input_models else set()
        accepts = frozenset(claimed) & media
        out[entry["id"]] = lm.variant(entry["id"], fingerprint(entry["id"], lm.fingerprint), accepts)
        extended = vendor.extended_id(entry["id"])
        if extended is not None:
            out[extended] = lm.variant(extended, fingerprint(extended, lm.fingerprint), accepts,
                                       context_window=extended_window(vendor, entry, lm))
    return out


def extended_window(vendor: Vendor, entry: dict[str, Any], lm: LoadedModel) -> int:
    """What `<id>-1m` accepts: the engine's window scaled as the vendor's extended window is to the documented one
    (the engine's own where the profile documents neither, or where the model's positions cannot grow)."""
    documented = entry.get("context")
    extended = vendor.extended_context.get("context_window")
    config = lm.model.config
    rope = any(getattr(config, name, None) is not None for name in ("rope_parameters", "rope_theta"))
    if not (documented and extended and rope):
        return lm.context_window
    return max(lm.context_window, round(lm.context_window * int(extended) / int(documented)))


def model_fields(vendor: Vendor, lm: LoadedModel) -> dict[str, Any]:
    """The fields this vendor documents on a model object, beyond OpenAI's id/object/created/owned_by."""
    entry = vendor.entry(lm.id)
    fields: dict[str, Any] = {"owned_by": entry.get("owned_by", vendor.profile.name)}
    names = vendor.profile.vendor.get("model_fields", {}).get("list", [])
    pools = vendor.profile.vendor.get("pools", {}).get("values", ["local"])
    available = {"family": entry.get("family", getattr(lm.model.config, "model_type", "unknown")),
                 "pools": list(pools), "quantizations": vendor.quantizations(lm.id) or quantizations(lm),
                 "context_window": lm.context_window}
    fields.update({name: available[name] for name in names if name in available})
    for flag in vendor.profile.vendor.get("model_flags", []):
        fields[flag] = bool(entry.get(flag, False))
    if "supports_audio" in fields:  # what chat really takes here (no media adapter beside a --model of one's own)
        fields["supports_audio"] = "audio" in lm.accepts
    return fields


def retrieve_fields(vendor: Vendor, lm: LoadedModel) -> dict[str, Any]:
    names = vendor.profile.vendor.get("model_fields", {}).get("retrieve", [])
    entry = vendor.entry(lm.id)
    return {name: entry.get(name) for name in names}
