"""GET /v1/models and GET /v1/models/{model}, with the extra fields Hoonify and CompactifAI document."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import torch
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.loader import LoadedModel
from ..errors import invalid, model_not_found

_QUANT = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def quantizations(lm: LoadedModel) -> list[str]:
    return [_QUANT.get(lm.dtype, str(lm.dtype).removeprefix("torch."))]


def model_object(lm: LoadedModel) -> dict[str, Any]:
    return {
        "id": lm.id,
        "object": "model",
        "created": lm.created,
        "owned_by": "wirecheck",
        "context_window": lm.context_window,
        "family": getattr(lm.model.config, "model_type", "unknown"),
        "pools": ["local"],
        "quantizations": quantizations(lm),
        "supports_responses": True,  # CompactifAI's flag: POST /v1/responses serves this model
        "supports_audio": "audio" in lm.accepts,  # CompactifAI's flag: chat takes input_audio parts
    }


def anthropic_model_object(lm: LoadedModel) -> dict[str, Any]:
    """Anthropic's ModelInfo: what the anthropic SDK's models.list()/retrieve() parse."""
    created = datetime.fromtimestamp(lm.created, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": lm.id, "display_name": lm.id, "created_at": created, "lifecycle": "active",
            "deprecated_at": None, "retires_at": None, "line": None, "capabilities": None,
            "max_input_tokens": lm.context_window, "max_tokens": lm.context_window}


def wants_anthropic(request: Request) -> bool:
    # The anthropic SDK sends anthropic-version on every request and expects its own model shapes on the
    # same /v1/models paths that the openai SDK reads; no OpenAI client sends that header.
    return "anthropic-version" in request.headers


def anthropic_page(models: list[LoadedModel], query: Any) -> dict[str, Any]:
    """One page of Anthropic's cursor list (limit 1..1000, default 20; after_id / before_id)."""
    ids = [m.id for m in models]
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        raise invalid("limit must be an integer.", param="limit") from None
    if not 1 <= limit <= 1000:
        raise invalid("limit must be between 1 and 1000.", param="limit")
    start, stop = 0, len(ids)
    for key in ("after_id", "before_id"):
        if key in query and query[key] not in ids:
            raise invalid(f"{key} '{query[key]}' is not a model id.", param=key)
    if "after_id" in query:
        start = ids.index(query["after_id"]) + 1
    if "before_id" in query:
        stop = ids.index(query["before_id"])
        start = max(start, stop - limit)
    page = models[start:stop][:limit]
    data = [anthropic_model_object(m) for m in page]
    return {"data": data, "has_more": start + len(page) < stop or ("before_id" in query and start > 0),
            "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}


def _object(request: Request, lm: LoadedModel) -> dict[str, Any]:
    """The model object; an emulated vendor's carries the fields that vendor documents instead of ours."""
    vendor = getattr(request.app.state, "vendor", None)
    if vendor is None:
        return model_object(lm)
    from ..vendors.catalogue import model_fields

    return {"id": lm.id, "object": "model", "created": lm.created, **model_fields(vendor, lm)}


async def list_models(request: Request) -> Response:
    # An emulated vendor lists the ids its document lists; its unlisted aliases (Hontoni's -1m) still serve.
    vendor = getattr(request.app.state, "vendor", None)
    models = [m for m in request.app.state.models.values() if vendor is None or vendor.lists(m.id)]
    if wants_anthropic(request):
        return JSONResponse(anthropic_page(models, request.query_params))
    return JSONResponse({"object": "list", "data": [_object(request, m) for m in models]})


async def retrieve_model(request: Request) -> Response:
    # {model:path}: ids like "org/model" arrive percent-encoded (%2F) from the openai SDK and decoded here.
    name = request.path_params["model"]
    lm = request.app.state.models.get(name)
    if lm is None:
        raise model_not_found(name)
    if wants_anthropic(request):
        return JSONResponse(anthropic_model_object(lm))
    vendor = getattr(request.app.state, "vendor", None)
    if vendor is None:
        return JSONResponse({**model_object(lm), "deprecation": None})
    from ..vendors.catalogue import retrieve_fields

    return JSONResponse({**_object(request, lm), **retrieve_fields(vendor, lm)})
