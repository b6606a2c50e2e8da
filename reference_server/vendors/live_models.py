"""Hontoni's GET /api/models, "Live Model Data": "For the most up-to-date model list and capabilities" (seed 002).

The document does not show its shape, so the emulation answers OpenAI's list shape with what a client choosing a
model needs, one object per documented id:

    {"object": "list", "data": [{"id", "object": "model", "owned_by",
      "context_window",            what this server accepts for the id (the engine's window)
      "extended_context_window",   what `<id>-1m` accepts (vendors/catalogue.py's scale model)
      "pricing": {"input", "output", "reasoning", "cache_read", "cache_write"},   USD per 1M tokens, null where
                                   the document has no price (its "-", a 0 in the profile)
      "capabilities",              the table's Capabilities column
      "reasoning",                 "budget" (thinking budgets), "effort" (reasoning effort) or null
      "variants"}]}                the suffixes that apply to the id

Authenticated like the API (a key as Bearer or X-API-Key); GET only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from ..engine.loader import LoadedModel
from ..errors import APIError
from .profile import Vendor

PRICES = ("input", "output", "reasoning")
CACHE_PRICES = ("cache_read", "cache_write")


def _prices(names: tuple[str, ...], values: Any) -> dict[str, float | None]:
    values = list(values or [])
    return {name: (float(values[i]) if i < len(values) and values[i] else None) for i, name in enumerate(names)}


def live_models(vendor: Vendor, models: Mapping[str, LoadedModel]) -> dict[str, Any]:
    """The body of GET /api/models: every documented id this server holds, with its windows as served here."""
    spec = vendor.profile.vendor.get("variants") or {}
    data = []
    for entry in vendor.profile.model_entries:
        lm = models.get(entry["id"])
        if lm is None:
            continue
        extended = models.get(vendor.extended_id(entry["id"]) or "")
        kind = entry.get("kind") if entry.get("kind") in ("budget", "effort") else None
        suffixes = [*((spec.get("effort") or {}) if kind else ()), vendor.extended_context.get("suffix")]
        data.append({
            "id": entry["id"], "object": "model", "owned_by": entry.get("owned_by", vendor.profile.name),
            "context_window": lm.context_window,
            "extended_context_window": (extended or lm).context_window,
            "pricing": {**_prices(PRICES, entry.get("price")), **_prices(CACHE_PRICES, entry.get("cache_price"))},
            "capabilities": list(entry.get("capabilities") or []),
            "reasoning": kind,
            "variants": [s for s in suffixes if s],
        })
    return {"object": "list", "data": data}


async def respond(scope: Scope, receive: Receive, send: Send, vendor: Vendor,
                  authenticate: Callable[[dict[str, str], bool], Any]) -> None:
    """Answer GET /api/models: 401 without a valid key (`authenticate` is the vendor layer's, which raises it),
    405 for any other method, both in the vendor's error envelope."""
    try:
        authenticate(dict(Headers(scope=scope)), False)  # ASGI header names are lower-case
        if scope["method"] not in ("GET", "HEAD"):
            raise APIError(405, f"Method {scope['method']} is not allowed on {scope['path']}.",
                           headers={"allow": "GET"})
        response = JSONResponse(live_models(vendor, scope["app"].state.models))
    except APIError as error:
        response = error.response(request_id=(scope.get("state") or {}).get("request_id"))
    await response(scope, receive, send)
