"""Chat completions stream invariants (OpenAI `chat.completion.chunk` SSE)."""

from __future__ import annotations

import json
from typing import Any

from spec.sse import SSEItem

from . import Problems, stream_check


def chunks(items: list[SSEItem]) -> list[dict[str, Any]]:
    """Decoded JSON chunks before [DONE]; undecodable data is a separate check's business."""
    out = []
    for item in items:
        if item.kind != "event" or not item.has_data or item.is_done:
            continue
        try:
            value = json.loads(item.data)
        except ValueError:
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


@stream_check("chat.stream.done-sentinel", surface="chat", faults=("missing-done",),
              rationale="OpenAI ends chat streams with `data: [DONE]`; many clients (and the openai SDK's "
                        "HTTP/1.1 drain) wait for it, and a stream without it can look truncated.")
def done_sentinel(items: list[SSEItem]) -> Problems:
    events = [it for it in items if it.kind == "event" and it.has_data]
    if not events or not events[-1].is_done:
        return ["the stream does not end with `data: [DONE]`"]
    if sum(1 for it in events if it.is_done) > 1:
        return ["`data: [DONE]` appears more than once"]
    return []


@stream_check("chat.stream.data-is-json", surface="chat", faults=("keepalive-as-data",),
              rationale="The openai SDK json-decodes every data field except [DONE]: a non-JSON data event "
                        "(e.g. a keep-alive sent as `data: ping`) raises JSONDecodeError in the client.")
def data_is_json(items: list[SSEItem]) -> Problems:
    problems = []
    for item in items:
        if item.kind != "event" or item.is_done:
            continue
        if not item.has_data:
            problems.append(f"an event without data (event: {item.event!r}) is dispatched as empty JSON: {item.raw!r}")
            continue
        try:
            json.loads(item.data)
        except ValueError:
            problems.append(f"data is not JSON: {item.data[:80]!r}")
    return problems
