"""GET /v1/models and GET /v1/models/{model}, with the extra fields Hoonify and CompactifAI document."""

from __future__ import annotations

from typing import Any

import torch
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.loader import LoadedModel
from ..errors import model_not_found

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
        "supports_audio": False,  # CompactifAI's flag: no input_audio parts (a text-only model)
    }


async def list_models(request: Request) -> Response:
    return JSONResponse({"object": "list", "data": [model_object(m) for m in request.app.state.models.values()]})


async def retrieve_model(request: Request) -> Response:
    # {model:path}: ids like "org/model" arrive percent-encoded (%2F) from the openai SDK and decoded here.
    name = request.path_params["model"]
    lm = request.app.state.models.get(name)
    if lm is None:
        raise model_not_found(name)
    return JSONResponse({**model_object(lm), "deprecation": None})
