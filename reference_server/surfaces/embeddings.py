"""POST /v1/embeddings: pooled final hidden states, float or base64 (little-endian float32)."""

from __future__ import annotations

import base64
import struct
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wirecheck import spec

from ..engine.embeddings import shorten
from ..engine.loader import LoadedModel
from ..errors import invalid
from ..prompts import encode
from ..request_body import read_json, validate
from .common import check_token_ids, resolve_model, split_inputs, vendor_fields


def encode_base64(vector: list[float]) -> str:
    # Explicit "<": the openai SDK decodes native-endian float32, which is little-endian on every target it runs on.
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def max_total_tokens() -> int:
    return int(spec.document()["components"]["schemas"]["CreateEmbeddingRequest"]["properties"]["input"]
               ["x-wirecheck-max-total-tokens"])


def input_ids(lm: LoadedModel, value: Any) -> list[list[int]]:
    """Token ids per input. Tokenizing stops at the input that takes the sum past the per-request total, so a
    body of megabytes costs at most that total's tokenizing (and never reaches the engine)."""
    out: list[list[int]] = []
    limit, total = max_total_tokens(), 0
    for i, item in enumerate(split_inputs(value, "input")):
        if isinstance(item, str):
            if not item:
                raise invalid(f"input[{i}] is an empty string; embeddings need at least one token.", param="input")
            ids = encode(lm, item, "input")
        else:
            ids = check_token_ids(lm, item, f"input[{i}]", "input")
        if len(ids) > lm.context_window:
            raise invalid(f"input[{i}] is {len(ids)} tokens; this model's maximum context length is "
                          f"{lm.context_window} tokens.", param="input", code="context_length_exceeded")
        total += len(ids)
        if total > limit:
            raise invalid(f"The inputs total more than {limit} tokens (at least {total} by input[{i}]); an embeddings "
                          f"request may take at most {limit} tokens summed over all inputs.", param="input",
                          code="max_tokens_per_request")
        out.append(ids)
    return out


async def create_embedding(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request, state.config.max_body_bytes)
    validate("CreateEmbeddingRequest", body)
    lm = resolve_model(state.models, body)
    dimensions = body.get("dimensions")
    dimensions = None if dimensions is None else int(dimensions)  # 4.0 is a valid integer to JSON Schema
    if dimensions is not None and not 1 <= dimensions <= lm.hidden_size:
        raise invalid(f"dimensions must be between 1 and {lm.hidden_size} for this model.", param="dimensions")
    ids = await run_in_threadpool(input_ids, lm, body["input"])
    vectors = await state.engine.embed(ids)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for i, vector in enumerate(vectors):
        vector = shorten(vector, dimensions)
        data.append({"object": "embedding", "index": i, "embedding": encode_base64(vector) if as_base64 else vector})
    tokens = sum(len(x) for x in ids)
    return JSONResponse({"object": "list", "data": data, "model": lm.id,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}, **vendor_fields(request)})
