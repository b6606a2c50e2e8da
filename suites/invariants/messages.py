"""Anthropic Messages stream invariants (`POST /v1/messages` with `stream: true`).

Minimal but real: framing, event naming, the event grammar and content-block indices. Event types and
content-block types we do not know are accepted and left out of the grammar (Anthropic adds new ones, and
its SDKs ignore what they do not know), so real recorded streams with thinking blocks or new deltas pass.
"""

from __future__ import annotations

import json
from typing import Any

from wirecheck.spec.sse import SSEItem

from . import Problems, stream_check
from .common import (capped, data_events, event_names_match_types, event_type, is_int, short, typed_data_is_json,
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


@stream_check("messages.stream.data-is-json", surface=SURFACE, faults=("messages-keepalive-as-data",),
              rationale="Every Anthropic stream event's data is one JSON object with a string `type`; the anthropic "
                        "SDK json-decodes each one and raises on anything else.")
def data_is_json(items: list[SSEItem]) -> Problems:
    return typed_data_is_json(items)


@stream_check("messages.stream.event-name-matches-type", surface=SURFACE, faults=("messages-unnamed-events",),
              rationale="Anthropic names every event after its data's `type` (`event: message_start` ...); the "
                        "anthropic SDK dispatches on the event name, so an unnamed or misnamed event is dropped.")
def event_name_matches_type(items: list[SSEItem]) -> Problems:
    return event_names_match_types(items, name_required=True)


@stream_check("messages.stream.no-done", surface=SURFACE, faults=("messages-done-appended",),
              rationale="Anthropic streams end with `message_stop`, never OpenAI's `data: [DONE]`; clients that "
                        "json-decode every event fail on it.")
def no_done(items: list[SSEItem]) -> Problems:
    count = sum(1 for it in data_events(items) if it.is_done)
    return [f"`data: [DONE]` appears {count} time(s)"] if count else []


@stream_check("messages.stream.event-order", surface=SURFACE, faults=("messages-missing-stop",),
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


@stream_check("messages.stream.block-indices", surface=SURFACE, faults=("messages-block-index-shifted",),
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


@stream_check("messages.stream.in-band-error", surface=SURFACE, faults=("messages-error-midstream",),
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


# ------------------------------------------------------------------------------------- usage, stop_reason

STOP_REASONS = ("end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal")
COUNTED_DELTAS = {"text_delta": "text", "input_json_delta": "partial_json"}  # deltas that carry >= 1 token


def _of_type(items: list[SSEItem], kind: str) -> list[tuple[int, dict[str, Any]]]:
    return [(n, value) for n, _, value in typed_events(items) if value is not None and event_type(value) == kind]


@stream_check("messages.stream.start-usage", surface=SURFACE, faults=("messages-start-no-input-tokens",),
              rationale="message_start carries message.usage with the real input_tokens (> 0): Claude Code sizes its "
                        "context window from it, and a 0 there (SGLang, z.ai, Vercel's gateway) disables "
                        "auto-compaction (sglang #20678).")
def start_usage(items: list[SSEItem]) -> Problems:
    problems = []
    for n, value in _of_type(items, "message_start"):
        message = value.get("message")
        usage = message.get("usage") if isinstance(message, dict) else None
        tokens = usage.get("input_tokens") if isinstance(usage, dict) else None
        if not (is_int(tokens) and tokens >= 0):
            problems.append(f"event #{n} (message_start) has message.usage.input_tokens {short(tokens)}, not an "
                            f"integer")
        elif tokens == 0:
            problems.append(f"event #{n} (message_start) reports input_tokens 0: the prompt's real size belongs "
                            f"here, clients do not wait for message_delta")
    return problems


@stream_check("messages.stream.usage-cumulative", surface=SURFACE, faults=("messages-usage-not-cumulative",),
              rationale="message_delta's usage.output_tokens is cumulative (the whole answer so far, never a "
                        "per-event count): clients take the last one as the turn's total, so a per-chunk count "
                        "under-bills and a summing gateway double-counts (envoy ai-gateway #2239).")
def usage_cumulative(items: list[SSEItem]) -> Problems:
    problems = []
    deltas = 0  # text and tool-input deltas so far: each carries at least one output token
    last: int | None = None
    for n, _, value in typed_events(items):
        kind = event_type(value)
        if kind == "content_block_delta":
            delta = value.get("delta")  # type: ignore[union-attr]
            field = COUNTED_DELTAS.get(delta.get("type")) if isinstance(delta, dict) else None
            deltas += bool(field and delta.get(field))
        if kind != "message_delta":
            continue
        usage = value.get("usage")  # type: ignore[union-attr]
        tokens = usage.get("output_tokens") if isinstance(usage, dict) else None
        if not (is_int(tokens) and tokens >= 0):
            problems.append(f"event #{n} (message_delta) has usage.output_tokens {short(tokens)}, not an integer")
            continue
        if last is not None and tokens < last:
            problems.append(f"event #{n} (message_delta) reports output_tokens {tokens} after {last}: the count "
                            f"must be cumulative")
        if tokens < deltas:
            problems.append(f"event #{n} (message_delta) reports output_tokens {tokens} after {deltas} text/tool "
                            f"deltas: a per-event count, not the answer's cumulative total")
        last = tokens
    return problems


def _tool_blocks(items: list[SSEItem]) -> dict[Any, tuple[int, dict[str, Any], str]]:
    """index -> (start position, the content_block_start block, concatenated partial_json) of tool_use blocks."""
    blocks: dict[Any, tuple[int, dict[str, Any], str]] = {}
    for n, _, value in typed_events(items):
        kind = event_type(value)
        index = json.dumps(value.get("index")) if value else None
        if kind == "content_block_start":
            block = value.get("content_block")  # type: ignore[union-attr]
            if isinstance(block, dict) and block.get("type") == "tool_use":
                blocks[index] = (n, block, "")
        elif kind == "content_block_delta" and index in blocks:
            delta = value.get("delta")  # type: ignore[union-attr]
            if isinstance(delta, dict) and delta.get("type") == "input_json_delta":
                start, block, text = blocks[index]
                piece = delta.get("partial_json")
                blocks[index] = (start, block, text + (piece if isinstance(piece, str) else ""))
    return blocks


def tool_inputs(items: list[SSEItem]) -> list[tuple[dict[str, Any], str]]:
    """(content_block_start block, concatenated partial_json) of every streamed tool_use block, in order."""
    return [(block, text) for _, block, text in _tool_blocks(items).values()]


@stream_check("messages.stream.stop-reason", surface=SURFACE, faults=("messages-tool-end-turn",),
              rationale="message_delta carries a known stop_reason, `tool_use` exactly when the message has tool_use "
                        "blocks, and stop_sequence exactly when it is `stop_sequence`: agent loops run tools only on "
                        "tool_use and treat end_turn as the final answer.")
def stop_reason(items: list[SSEItem]) -> Problems:
    problems = []
    reasons = []
    for n, value in _of_type(items, "message_delta"):
        delta = value.get("delta")
        if not isinstance(delta, dict):
            problems.append(f"event #{n} (message_delta) has delta {short(delta)}, not an object")
            continue
        reason, sequence = delta.get("stop_reason"), delta.get("stop_sequence")
        reasons.append(reason)
        if reason is not None and reason not in STOP_REASONS:
            problems.append(f"event #{n} (message_delta) has stop_reason {short(reason)}, not one of "
                            f"{', '.join(STOP_REASONS)}")
        if (reason == "stop_sequence") != isinstance(sequence, str):
            problems.append(f"event #{n} (message_delta) has stop_reason {short(reason)} with stop_sequence "
                            f"{short(sequence)}")
    final = next((r for r in reversed(reasons) if r is not None), None)
    if reasons and final is None:
        problems.append("no message_delta carries a stop_reason")
    tools = _tool_blocks(items)
    if final is not None and (final == "tool_use") != bool(tools):
        problems.append(f"stop_reason is {short(final)} although the message has {len(tools)} tool_use block(s)"
                        if tools else "stop_reason is \"tool_use\" but the message has no tool_use block")
    return problems


@stream_check("messages.stream.tool-use-blocks", surface=SURFACE, faults=("messages-partial-json-broken",
                                                                          "messages-input-in-start"),
              rationale="A streamed tool_use block starts with id, name and `input: {}`, and its input_json_delta "
                        "partial_json pieces concatenate to one JSON object: vLLM's pieces did not (vllm #34887), "
                        "input sent whole in content_block_start is lost by clients that build it from deltas.")
def tool_use_blocks(items: list[SSEItem]) -> Problems:
    problems = []
    for index, (n, block, text) in _tool_blocks(items).items():
        for key in ("id", "name"):
            if not isinstance(block.get(key), str) or not block[key]:
                problems.append(f"event #{n} starts tool_use block {index} with {key} {short(block.get(key))}")
        if block.get("input") != {}:
            problems.append(f"event #{n} starts tool_use block {index} with input {short(block.get('input'))}, not "
                            f"{{}}: the input belongs in input_json_delta events")
        try:
            parsed = json.loads(text or "{}")
        except ValueError as exc:
            problems.append(f"tool_use block {index}: its partial_json pieces concatenate to invalid JSON "
                            f"({exc.msg} at {exc.pos}): {text[:120]!r}")
            continue
        if not isinstance(parsed, dict):
            problems.append(f"tool_use block {index}: its input is {short(parsed)}, not a JSON object")
    return problems
