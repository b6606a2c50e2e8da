"""Reading a request body: size limit, JSON parsing, validation against the spec."""

from __future__ import annotations

import json
import re
from typing import Any

from wirecheck import spec
from starlette.requests import Request

from .errors import APIError, invalid

MAX_DEPTH = 100  # nesting levels of a JSON body: deep enough for any tool schema, far from recursion limits


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
    except RecursionError:  # the parser recurses per level; thousands of levels exhaust the stack
        raise _too_deep() from None
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    if depth(body) > MAX_DEPTH:  # everything after this (validation, templating) recurses per level too
        raise _too_deep()
    try:
        # Only a \uD800-\uDFFF escape can make a surrogate (raw UTF-8 cannot hold one): the walk is for those.
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        # A \ud800-\udfff escape without its pair parses, but is no text: tokenizers fail on it.
        raise invalid("The JSON body holds a lone UTF-16 surrogate escape (\\ud800-\\udfff without its pair); "
                      "strings must be valid Unicode.", param=_surrogate_path(body)) from None
    return body


def _surrogate_path(value: Any, path: str = "") -> str | None:
    """Where the first lone surrogate is (a dotted path, itself made printable), or None."""
    if isinstance(value, str):
        return path.encode("utf-8", "backslashreplace").decode("utf-8") if _lone(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        here = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else key)
        found = _surrogate_path(key, here) if isinstance(key, str) else None
        found = found or _surrogate_path(item, here)
        if found:
            return found
    return None


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")


def _lone(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0, ``[]`` 1), without recursion; only containers are stacked,
    so a list of 50,000 strings costs one pass of isinstance checks."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest, stack = 1, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def _too_deep() -> APIError:
    return invalid(f"The JSON body is nested more than {MAX_DEPTH} levels deep; this server accepts at most "
                   f"{MAX_DEPTH}.", code="json_too_deep")


def _too_large(limit: int) -> APIError:
    return APIError(413, f"Request body is larger than this server accepts ({limit} bytes).",
                    code="request_too_large")


def check_messages_bound(body: dict[str, Any], limit: int) -> None:
    """The server's own bound on `messages` (--max-messages), checked before anything walks them."""
    messages = body.get("messages")
    if isinstance(messages, list) and len(messages) > limit:
        raise invalid(f"Too many messages: this server accepts at most {limit}.", param="messages")


def validate(component: str, body: dict[str, Any]) -> None:
    """400 naming the offending field when the body breaks the OpenAPI contract. A top-level list or string
    over its bound is refused first, before the validators walk it."""
    bound = spec.bounds_error(component, body)
    if bound is not None:
        raise invalid(bound.message, param=bound.param, semantic=True)
    if spec.is_valid(component, body):
        return
    problem = spec.first_error(component, body)
    if problem is not None:
        raise invalid(problem.message, param=problem.param, semantic=problem.kind == "value")
