"""Reading a request body: size limit, JSON parsing, validation against the spec."""

from __future__ import annotations

import json
from typing import Any

import spec
from starlette.requests import Request

from .errors import APIError, invalid


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # chunked bodies declare no length: count as we read
            raise _too_large(limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise invalid(
            "We could not parse the JSON body of your request: " + str(exc) + ". Send a JSON object with "
            "Content-Type: application/json.") from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    return body


def _too_large(limit: int) -> APIError:
    return APIError(413, f"Request body is larger than this server accepts ({limit} bytes).",
                    code="request_too_large")


def validate(component: str, body: dict[str, Any]) -> None:
    """400 naming the offending field when the body breaks the OpenAPI contract."""
    problem = spec.first_error(component, body)
    if problem is not None:
        raise invalid(problem.message, param=problem.param)
