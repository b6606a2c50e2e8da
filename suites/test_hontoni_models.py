"""Hontoni's live model data and extended context (seed 002, "Models & Pricing", "Live Model Data", "Model
Variants"): GET /api/models agrees with GET /v1/models and the documented prices, and `-1m` really serves a prompt
the base model refuses. Facts from spec/profiles/hontoni.yaml.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from .accounts import account_url
from .expect import expect_object
from .judge import error_field
from .registry import check, fail
from .target import Target
from .wire import Exchange

# The profile's price lists, in the table's column order; a 0 stands for the table's "-" (no price documented).
PRICE_COLUMNS = (("price", ("input", "output", "reasoning")), ("cache_price", ("cache_read", "cache_write")))
FILLER = "Line {}: the quick brown fox jumps over the lazy dog. "
CHARS_PER_TOKEN = 3  # a first estimate on the low side (English is ~4 for most tokenizers): it errs long


def _live(wire, target: Target) -> tuple[Exchange, str]:
    path = target.profile.vendor["accounts"]["models"]
    return wire.get(account_url(target, path)), f"GET {path}"


def _live_models(ex: Exchange, what: str) -> dict[str, dict[str, Any]]:
    """The live list's model objects by id, or a failure saying why there are none."""
    data = expect_object(ex, what).get("data")
    if not isinstance(data, list):
        fail(f"{what}: data is {type(data).__name__}, not a list", ex.evidence())
    return {m["id"]: m for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)}


def _documented_prices(entry: dict[str, Any]) -> list[tuple[str, float]]:
    return [(name, float(value)) for key, names in PRICE_COLUMNS for name, value in zip(names, entry.get(key) or ())
            if value]


def _is_window(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def live_model_problems(model: dict[str, Any], entry: dict[str, Any]) -> list[str]:
    """What is wrong with one /api/models object against the profile's entry for its id (observed vs documented)."""
    problems = []
    if not isinstance(model.get("capabilities"), list):
        problems.append(f"capabilities is {model.get('capabilities')!r}, not a list")
    # The document promises the list and capabilities; prices and windows are judged where the target gives them.
    pricing = model.get("pricing")
    if pricing is not None and not isinstance(pricing, dict):
        problems.append(f"pricing is {pricing!r}, not an object")
    for name, documented in _documented_prices(entry) if isinstance(pricing, dict) else ():
        seen = pricing.get(name)
        if seen is not None and not (isinstance(seen, (int, float))
                                     and math.isclose(seen, documented, rel_tol=1e-9, abs_tol=1e-9)):
            problems.append(f"pricing.{name} is {seen!r}, documented ${documented:.2f} per 1M tokens")
    base, extended = model.get("context_window"), model.get("extended_context_window")
    if any(v is not None and not _is_window(v) for v in (base, extended)):
        problems.append(f"context_window {base!r} / extended_context_window {extended!r} are not positive integers")
    elif _is_window(base) and _is_window(extended) and extended < base:
        problems.append(f"extended_context_window {extended} is smaller than context_window {base}")
    return problems


@check("hontoni.models.live", surface="models", claims=("hontoni.models-live",),
       faults=("hontoni-live-models-missing-capabilities", "hontoni-live-models-stale-prices"),
       rationale="Live Model Data: 'For the most up-to-date model list and capabilities, use the GET /api/models "
                 "endpoint'. Clients pick models and estimate cost from it, so it must list every id GET /v1/models "
                 "lists, each with its capabilities, the prices of the Models & Pricing table (USD per 1M tokens) "
                 "and context windows (the extended one, for -1m, at least the base one).")
def test_live_models(wire, target) -> None:
    listed = expect_object(wire.get("models"), "GET /models").get("data") or []
    ids = [m["id"] for m in listed if isinstance(m, dict) and isinstance(m.get("id"), str)]
    ex, what = _live(wire, target)
    live = _live_models(ex, what)
    missing = [i for i in ids if i not in live]
    if missing:
        fail(f"{what} lacks {len(missing)} of the {len(ids)} ids GET /models lists: {', '.join(missing[:5])}",
             ex.evidence())
    entries = {e["id"]: e for e in target.profile.model_entries}
    for model_id in ids:
        problems = live_model_problems(live[model_id], entries.get(model_id, {}))
        if problems:
            fail(f"{what}, {model_id}: {problems[0]}", ex.evidence(*problems))


def _windows(wire, target: Target, model: str, entry: dict[str, Any]) -> tuple[int, int, str]:
    """(base window, extended window, where they came from): GET /api/models, else the documented ones."""
    ex, what = _live(wire, target)
    item = _live_models(ex, what).get(model, {}) if ex.status == 200 else {}
    base, extended = item.get("context_window"), item.get("extended_context_window")
    if _is_window(base) and _is_window(extended):
        return base, extended, what
    return int(entry["context"]), int(target.profile.vendor["variants"]["context"]["context_window"]), "the document"


def _long_chat(wire, model: str, chars: int) -> Exchange:
    lines, size = [], 0
    while size < chars:
        lines.append(FILLER.format(len(lines)))
        size += len(lines[-1])
    return wire.post("chat/completions", {"model": model, "max_tokens": 1,
                                          "messages": [{"role": "user", "content": "".join(lines)}]})


def _prompt_tokens(ex: Exchange, what: str) -> int:
    usage = expect_object(ex, what).get("usage") or {}
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    if not _is_window(tokens):
        fail(f"{what}: usage.prompt_tokens is {tokens!r}, so the prompt cannot be measured", ex.evidence())
    return tokens


@check("hontoni.variants.extended-context", surface="chat", claims=("hontoni.variants", "hontoni.extended-context"),
       faults=("hontoni-extended-context-ignored", "hontoni-extended-context-refused"),
       rationale="Model Variants: 'Append -1m to request an extended 1M token context window'. A prompt longer "
                 "than the model's own window but within the extended one must be served by '<model>-1m' and "
                 "refused by the base id with a context-length 400, so a tool that switches to -1m for a large "
                 "codebase really gets the larger window, not the base model under another name. On a real "
                 "account this spends up to about 1.5x the base window of input tokens (some 324K for "
                 "claude-sonnet-4) on the -1m request, billed pay-as-you-go.")
def test_extended_context(wire, target) -> None:
    entry = next((e for e in target.profile.model_entries if e.get("context")), None)
    if entry is None:
        pytest.skip("inconclusive: the profile documents no model's context window")
    model = entry["id"]
    extended_id = model + target.profile.vendor["variants"]["context"]["suffix"]
    base, extended, source = _windows(wire, target, model, entry)
    goal = min(base * 3 // 2, (base + extended) // 2)
    if goal <= base:
        pytest.skip(f"inconclusive: {source} gives {extended_id!r} no larger window than {base} tokens")
    chars = goal * CHARS_PER_TOKEN
    what = (f"{extended_id!r} with a prompt of about {goal} tokens (windows from {source}: {base} for "
            f"{model!r}, {extended} for {extended_id!r})")
    tokens = _prompt_tokens(_long_chat(wire, extended_id, chars), what)
    if not base < tokens < extended:  # the estimate missed: scale the prompt to the goal once
        chars = chars * goal // tokens
        tokens = _prompt_tokens(_long_chat(wire, extended_id, chars), what)
    if tokens <= base:
        pytest.skip(f"inconclusive: a prompt of {chars} characters measured {tokens} tokens, within {model!r}'s "
                    f"own {base}-token window")
    refused = _long_chat(wire, model, chars)
    if refused.status != 400:
        fail(f"{model!r} answered a prompt of {tokens} tokens, past its {base}-token window ({source}), with "
             f"HTTP {refused.status}, not a context-length 400: the base id must refuse what only {extended_id!r} "
             f"holds", refused.evidence())
    message = str(error_field(refused.body, "message") or "").lower()
    if error_field(refused.body, "code") != "context_length_exceeded" and not ("context" in message or
                                                                              "token" in message):
        fail(f"{model!r} refused a prompt of {tokens} tokens with a 400 that says nothing of the context length: "
             f"{message[:200]!r}", refused.evidence())
