"""Anthropic Messages stream invariants (`POST /v1/messages` with `stream: true`).

Minimal but real: framing, event naming, the event grammar and content-block indices. Event types and
content-block types we do not know are accepted and left out of the grammar (Anthropic adds new ones, and
its SDKs ignore what they do not know), so real recorded streams with thinking blocks or new deltas pass.
"""

from __future__ import annotations

import json
from typing import Any

from spec.sse import SSEItem

from . import Problems, stream_check
from .common import (capped, data_events, event_names_match_types, event_type, short, typed_data_is_json,
                     typed_events)

SURFACE = "messages"
GRAMMAR = ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
           "message_stop")
# state -> {event type: next state}; `ping` is allowed anywhere and unknown types are skipped.
TRANSITIONS: dict[str, dict[str, str]] = {
    "begin": {"message_start": "message"},
    "message": {"content_block_start": "block", "message_delta": "ending"},
    "block": {"content_block_delta": "block", "content_block_stop": "message"},
    "ending": {"message_delta": "ending", "message_stop": "end"},
    "end": {},
}
RESYNC = {"message_start": "message", "content_block_start": "block", "content_block_delta": "block",
          "content_block_stop": "message", "message_delta": "ending", "message_stop": "end"}


@stream_check("messages.stream.data-is-json", surface=SURFACE,
              rationale="Every Anthropic stream event's data is one JSON object with a string `type`; the anthropic "
                        "SDK json-decodes each one and raises on anything else.")
def data_is_json(items: list[SSEItem]) -> Problems:
    return typed_data_is_json(items)


@stream_check("messages.stream.event-name-matches-type", surface=SURFACE,
              rationale="Anthropic names every event after its data's `type` (`event: message_start` ...); the "
                        "anthropic SDK dispatches on the event name, so an unnamed or misnamed event is dropped.")
def event_name_matchesevent_type(items: list[SSEItem]) -> Problems:
    return event_names_match_types(items, name_required=True)


@stream_check("messages.stream.no-done", surface=SURFACE,
              rationale="Anthropic streams end with `message_stop`, never OpenAI's `data: [DONE]`; clients that "
                        "json-decode every event fail on it.")
def no_done(items: list[SSEItem]) -> Problems:
    count = sum(1 for it in data_events(items) if it.is_done)
    return [f"`data: [DONE]` appears {count} time(s)"] if count else []


@stream_check("messages.stream.event-order", surface=SURFACE,
              rationale="Anthropic's order is message_start, then per content block start/delta*/stop, then "
                        "message_delta and message_stop (ping anywhere); clients finalise usage and stop_reason "
                        "from it and treat a stream without message_stop as failed (agent-os #2608).")
def event_order(items: list[SSEItem]) -> Problems:
    problems = []
    state = "begin"
    for n, _, value in typed_events(items, skip_done=False):
        kind = event_type(value)
        if kind not in GRAMMAR:
            continue  # ping, error, and types we do not know
        nxt = TRANSITIONS[state].get(kind)
        if nxt is None:
            expected = ", ".join(TRANSITIONS[state]) or "nothing"
            problems.append(f"event #{n} is {kind} where {expected} should come")
            nxt = RESYNC[kind]
        state = nxt
    if state != "end":
        if state == "begin":
            problems.append("the stream has no message_start")
        problems.append("the stream ends without message_stop")
    return capped(problems)


@stream_check("messages.stream.block-indices", surface=SURFACE,
              rationale="content_block_start, _delta and _stop of one block share its `index`, and each started "
                        "block is stopped; clients assemble text and tool input by index, so a mismatch "
                        "misattributes or loses content.")
def block_indices(items: list[SSEItem]) -> Problems:
    problems = []
    started: set[Any] = set()
    open_blocks: dict[str, int] = {}  # json(index) -> position of its start
    for n, _, value in typed_events(items, skip_done=False):
        kind = event_type(value)
        if kind not in ("content_block_start", "content_block_delta", "content_block_stop"):
            continue
        index = value.get("index")  # type: ignore[union-attr]
        key = json.dumps(index)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            problems.append(f"event #{n} ({kind}) has index {short(index)}, not a non-negative integer")
            continue
        if kind == "content_block_start":
            if index in started:
                problems.append(f"event #{n} starts block {index} a second time")
            started.add(index)
            open_blocks[key] = n
        elif key not in open_blocks:
            problems.append(f"event #{n} ({kind}) refers to block {index}, which is not open")
        elif kind == "content_block_stop":
            del open_blocks[key]
    for key, n in open_blocks.items():
        problems.append(f"block {key} started at event #{n} is never stopped")
    return capped(problems)


@stream_check("messages.stream.in-band-error", surface=SURFACE,
              rationale="An `event: error` means the message failed after the 200 status; the anthropic SDK raises "
                        "it, clients that check only the status record a failed turn as success (agent-os #2608).")
def in_band_error(items: list[SSEItem]) -> Problems:
    problems = []
    for n, item, value in typed_events(items, skip_done=False):
        if event_type(value) == "error" or item.event == "error":
            error = (value or {}).get("error")
            message = error.get("message") if isinstance(error, dict) else None
            problems.append(f"event #{n} is an error: {message!r}" if isinstance(message, str)
                            else f"event #{n} is an error: {item.data[:160]!r}")
    return problems
