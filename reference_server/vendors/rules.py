"""What a vendor does to a request before the one engine serves it: pure functions of (vendor, call, body).

Each rule reads its facts from the profile (`spec/profiles/<vendor>.yaml`) and applies only where the profile
documents the feature, so a rule is named for the behaviour, not the vendor. A rule returns the body the surface
will see (model ids resolved to an alias the server holds, vendor-only fields consumed) or raises an APIError in
the vendor's words.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ..errors import APIError, invalid, model_not_found
from .catalogue import fingerprint
from .profile import Vendor


@dataclass
class Call:
    """One API request as the vendor layer sees it."""

    surface: str  # chat | completions | embeddings | messages | responses | models
    headers: dict[str, str]  # lower-cased names
    key: str | None = None
    model: str | None = None  # the id served (after suffixes and defaults)
    response_fields: dict[str, Any] = field(default_factory=dict)  # merged into chat/completions/embeddings objects
    notes: dict[str, Any] = field(default_factory=dict)  # what was resolved (variants), for logs and tests


def prepare(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    for rule in (default_model, variants, known_model, thinking_cap, n_must_be_one, ignored_fields, responses_gate,
                 content_parts, quantization, pools):
        body = rule(vendor, call, body)
    return body


# ------------------------------------------------------------------------------------------- models


def default_model(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Hoziron: "If model is omitted or empty, the platform's default_model is used"."""
    default = vendor.profile.default_model
    if default and not body.get("model"):
        return {**body, "model": default}
    return body


def variants(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Hontoni's model suffixes: `:high`/`:max` set a thinking budget (budget models) or a reasoning effort
    (effort models), `-1m` asks for the extended context, combined as `model:high-1m`. Explicit parameters in the
    request win over the suffix. The request goes on to the served id: the base model, or its extended-context
    alias for -1m (`claude-sonnet-4:high-1m` -> `claude-sonnet-4-1m`, which accepts the larger window)."""
    spec = vendor.profile.vendor.get("variants")
    name = body.get("model")
    if not spec or not isinstance(name, str) or vendor.lists(name):
        return body
    base, extended = name, False
    suffix = spec["context"]["suffix"]
    if base.endswith(suffix):
        base, extended = base[: -len(suffix)], True
    effort = None
    if ":" in base:
        base, _, tag = base.rpartition(":")
        effort = spec["effort"].get(":" + tag)
        if effort is None:
            raise APIError(404, f"The model '{name}' does not exist: unknown variant ':{tag}' (known: "
                                f"{', '.join(spec['effort'])}, {suffix}).", param="model", code="model_not_found")
    if not vendor.lists(base):
        raise model_not_found(name)
    kind = vendor.entry(base).get("kind", "none")
    if effort is not None and kind == "none":
        raise invalid(f"The model '{base}' does not reason, so the variant suffix in '{name}' cannot apply.",
                      param="model", code="model_not_supported")
    call.notes.update(variant=name, base=base, extended_context=extended)
    if effort is not None:
        call.notes.update(_effort_settings(kind, effort, body, call.surface))
    return {**body, "model": vendor.extended_id(base) if extended else base}


def _effort_settings(kind: str, effort: dict[str, Any], body: dict[str, Any], surface: str) -> dict[str, Any]:
    """What the suffix asks for, unless the request says it explicitly (explicit wins)."""
    if kind == "budget":
        explicit = body.get("thinking_budget") is not None or body.get("thinking") is not None
        return {"thinking_budget": None if explicit else effort["thinking_budget"], "explicit": explicit}
    explicit = body.get("reasoning_effort") is not None or (body.get("reasoning") or {}).get("effort") is not None
    return {"reasoning_effort": None if explicit else effort["reasoning_effort"], "explicit": explicit}


def known_model(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """A request naming a model this vendor does not serve (a documented id, or by now its extended-context alias)
    is a 404 before anything else is judged."""
    name = body.get("model")
    if isinstance(name, str) and name and not vendor.serves(name):
        raise model_not_found(name)
    call.model = name if isinstance(name, str) else None
    return body


def thinking_cap(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Hontoni's plan table gives each plan a Thinking Budget (8,000 .. 64,000). A budget above it, from a `:high` /
    `:max` suffix or explicit, is lowered to the cap, not refused: the document says to append the suffixes "to
    any thinking-capable model" on any plan, so `:max` (65,536) on Basic must still answer. Effort models keep
    their effort and think at most the cap's tokens (`reasoning_cap`)."""
    cap = vendor.thinking_cap(call.key) if vendor.profile.vendor.get("plans") else None
    if cap is None:
        return body
    call.notes["thinking_cap"] = cap
    if call.notes.get("thinking_budget") is not None and call.notes["thinking_budget"] > cap:
        call.notes["thinking_budget"] = cap
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    if isinstance(budget, int) and not isinstance(budget, bool) and budget > cap:
        call.notes["thinking_capped"] = budget
        body = {**body, "thinking": {**thinking, "budget_tokens": cap}}  # type: ignore[dict-item]
    explicit = body.get("thinking_budget")
    if isinstance(explicit, int) and not isinstance(explicit, bool) and explicit > cap:
        call.notes["thinking_capped"] = explicit
        body = {**body, "thinking_budget": cap}
    return body


# ------------------------------------------------------------------------------------------- fields


def n_must_be_one(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """CompactifAI: `n` is "Partial (must be 1)": anything else is a clear 400, never a silent single choice."""
    wanted = vendor.profile.vendor.get("n_must_be")
    n = body.get("n")
    if wanted is None or n is None or call.surface not in ("chat", "completions"):
        return body
    if n != wanted:
        raise invalid(f"n must be {wanted} on this API (got {n!r}); send one request per choice.", param="n",
                      code="unsupported_value")
    return body


def ignored_fields(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """CompactifAI: fields documented as "Ignored" are accepted and have no effect, so they are removed before the
    engine (which would otherwise honour them) sees the request."""
    names = (vendor.profile.vendor.get("ignored") or {}).get(call.surface)
    if not names:
        return body
    dropped = [k for k in names if k in body]
    if dropped:
        call.notes["ignored"] = dropped
    return {k: v for k, v in body.items() if k not in set(names)}


def responses_gate(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """CompactifAI: /v1/responses serves only models whose supports_responses is true."""
    flag = vendor.profile.vendor.get("responses_model_flag")
    name = body.get("model")
    if not flag or call.surface != "responses" or not isinstance(name, str) or not name:
        return body
    if not vendor.entry(name).get(flag):
        raise invalid(f"The model '{name}' does not support the Responses API ({flag} is false in GET /v1/models); "
                      f"use /v1/chat/completions or a model with {flag}: true.", param="model",
                      code="model_not_supported")
    return body


def content_parts(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Hoonify: "Today the API rejects content blocks with type image_url" (a clear 400, not a silent drop)."""
    rejected = set(vendor.profile.vendor.get("reject_content_parts") or ())
    messages = body.get("messages")
    if not rejected or call.surface != "chat" or not isinstance(messages, list):
        return body
    for i, message in enumerate(messages):
        parts = message.get("content") if isinstance(message, dict) else None
        if not isinstance(parts, list):
            continue
        for j, part in enumerate(parts):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind in rejected:
                raise invalid(f"Content blocks of type '{kind}' are not supported: no model here takes image "
                              f"input. Send text parts only.", param=f"messages[{i}].content[{j}].type",
                              code="unsupported_content_type")
    return body


def quantization(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Hoonify's `quantization` picks a weights variant (default: the cheapest the model exposes); the one engine
    serves every variant, and system_fingerprint tells them apart (a function of model + quantization + runtime)."""
    spec = vendor.profile.vendor.get("quantization")
    if not spec or call.surface not in ("chat", "embeddings") or not call.model:
        return body
    offered = vendor.quantizations(call.model)
    wanted = body.get(spec["field"])
    if wanted is None:
        wanted = next(q for q in spec["cheapest_first"] if q in offered)
    elif wanted not in spec["values"]:
        raise invalid(f"Invalid value for 'quantization': {wanted!r} is not one of {', '.join(spec['values'])}.",
                      param="quantization", semantic=True)
    elif wanted not in offered:
        raise invalid(f"Model '{call.model}' is not served in quantization '{wanted}'; it offers "
                      f"{', '.join(offered)}.", param="quantization", code="quantization_not_available", semantic=True)
    call.notes["quantization"] = wanted
    call.response_fields["system_fingerprint"] = fingerprint(call.model, wanted, "wirecheck-tiny-engine")
    return {k: v for k, v in body.items() if k != spec["field"]}


def pools(vendor: Vendor, call: Call, body: dict[str, Any]) -> dict[str, Any]:
    """Hoonify's X-Hoonify-Pool pins a pool (na | eu | apac); X-Hoonify-Pool-Fallback says what happens when it is
    dry: strict (the default) answers 503, nearest serves from another pool. `pool` in the response says which."""
    spec = vendor.profile.vendor.get("pools")
    if not spec or call.surface not in ("chat", "embeddings"):
        return body
    pinned = call.headers.get(spec["header"].lower())
    fallback = call.headers.get(spec["fallback_header"].lower(), spec["fallback_default"])
    if pinned is not None and pinned not in spec["values"]:
        raise invalid(f"{spec['header']} must be one of {', '.join(spec['values'])}; got {pinned!r}.",
                      param=spec["header"], code="invalid_pool")
    if fallback not in spec["fallback_values"]:
        raise invalid(f"{spec['fallback_header']} must be one of {', '.join(spec['fallback_values'])}; got "
                      f"{fallback!r}.", param=spec["fallback_header"], code="invalid_pool_fallback")
    live = [p for p in spec["values"] if p not in vendor.dry_pools]
    if pinned is None:
        chosen = live[0] if live else None
    elif pinned not in vendor.dry_pools:
        chosen = pinned
    elif fallback == "strict":
        raise APIError(503, f"Pool '{pinned}' has no capacity for this model right now and "
                            f"{spec['fallback_header']} is strict. Retry later, pin another pool, or send "
                            f"{spec['fallback_header']}: nearest.", code="pool_unavailable",
                       headers={"retry-after": "5"})
    else:
        chosen = _nearest(spec["values"], pinned, live)
    if chosen is None:
        raise APIError(503, "No pool has capacity for this model right now. Retry later.", code="pool_unavailable",
                       headers={"retry-after": "5"})
    call.response_fields[spec["response_field"]] = chosen
    return body


def _nearest(order: list[str], pinned: str, live: list[str]) -> str | None:
    """The live pool closest to the pinned one in the documented order (ties to the earlier)."""
    at = order.index(pinned)
    ranked = sorted(live, key=lambda p: (abs(order.index(p) - at), order.index(p)))
    return ranked[0] if ranked else None


def idempotency_key(vendor: Vendor, call: Call) -> str | None:
    """The X-Hoonify-Idempotency-Key, validated as the UUID the vendor documents (None when absent)."""
    spec = vendor.profile.vendor.get("idempotency")
    if not spec:
        return None
    value = call.headers.get(spec["header"].lower())
    if value is None:
        return None
    try:
        uuid.UUID(value)
    except ValueError:
        raise invalid(f"{spec['header']} must be a UUID; got {value!r}.", param=spec["header"],
                      code="invalid_idempotency_key") from None
    return value
