"""OpenAI Responses stream invariants (`POST /v1/responses` with `stream: true`).

Minimal but real: framing, event naming, sequence numbers and the single terminal event. Event types we do
not know are accepted (the Responses API keeps adding them, and its SDKs pass unknown ones through).
"""

from __future__ import annotations

import json
from typing import Any

from spec.sse import SSEItem

from . import Problems, stream_check
from .common import capped, data_events, short

SURFACE = "responses"
TERMINAL = ("response.completed", "response.failed", "response.incomplete")


def events(items: list[SSEItem]) -> list[tuple[int, SSEItem, dict[str, Any] | None]]:
    """(position, item, decoded object or None) of every data event except [DONE]; positions count from 1."""
    out = []
    for n, item in enumerate((it for it in data_events(items) if not it.is_done), start=1):
        try:
            value = json.loads(item.data)
        except ValueError:
            value = None
        out.append((n, item, value if isinstance(value, dict) else None))
    return out


def _type(value: dict[str, Any] | None) -> str | None:
    kind = value.get("type") if value else None
    return kind if isinstance(kind, str) else None


@stream_check("responses.stream.data-is-json", surface=SURFACE,
              rationale="Every Responses stream event's data is one JSON object with a string `type`; the openai SDK "
                        "json-decodes each and builds the event union from `type`.")
def data_is_json(items: list[SSEItem]) -> Problems:
    problems = []
    for n, item, value in events(items):
        if value is None:
            problems.append(f"event #{n} data is not a JSON object: {item.data[:80]!r}")
        elif _type(value) is None:
            problems.append(f"event #{n} has no string `type`: {item.data[:80]!r}")
    return capped(problems)


@stream_check("responses.stream.event-name-matches-type", surface=SURFACE,
              rationale="OpenAI names each Responses event after its data's `type`; clients that dispatch on the "
                        "SSE event name (EventSource listeners, several SDKs) misroute a mismatched event.")
def event_name_matches_type(items: list[SSEItem]) -> Problems:
    problems = []
    for n, item, value in events(items):
        kind = _type(value)
        if kind is not None and item.event and item.event != kind:
            problems.append(f"event #{n} ({kind}) is named `event: {item.event}`")
    return capped(problems)


@stream_check("responses.stream.sequence-numbers", surface=SURFACE,
              rationale="Every Responses event carries an integer `sequence_number`, strictly increasing; clients "
                        "resume and de-duplicate by it (Open Responses spec; openresponses compliance suite).")
def sequence_numbers(items: list[SSEItem]) -> Problems:
    problems = []
    last: int | None = None
    for n, _, value in events(items):
        if value is None:
            continue
        seq = value.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(f"event #{n} ({_type(value)}) has sequence_number {short(seq)}, not an integer")
            continue
        if last is not None and seq <= last:
            problems.append(f"event #{n} has sequence_number {seq} after {last}")
        last = seq
    return capped(problems)


@stream_check("responses.stream.created-first", surface=SURFACE,
              rationale="A Responses stream opens with `response.created` carrying the response id; clients (Codex, "
                        "the openai SDK's stream helper) key the rest of the stream on it.")
def created_first(items: list[SSEItem]) -> Problems:
    evs = events(items)
    if not evs:
        return ["the stream has no events"]
    kind = _type(evs[0][2])
    return [] if kind == "response.created" else [f"the first event is {kind or evs[0][1].data[:60]!r}, "
                                                   f"not response.created"]


@stream_check("responses.stream.terminal-event", surface=SURFACE,
              rationale="A Responses stream ends with exactly one response.completed, .failed or .incomplete, as its "
                        "last event; Codex fails the turn with 'stream closed before response.completed' without it "
                        "(ollama #14600, codex #41340).")
def terminal_event(items: list[SSEItem]) -> Problems:
    evs = events(items)
    terminals = [(n, _type(v)) for n, _, v in evs if _type(v) in TERMINAL]
    if not terminals:
        return [f"no terminal event ({', '.join(TERMINAL)})"]
    problems = []
    if len(terminals) > 1:
        problems.append(f"{len(terminals)} terminal events: "
                        + ", ".join(f"{kind} (event #{n})" for n, kind in terminals[:4]))
    n, kind = terminals[-1]
    if n != evs[-1][0]:
        problems.append(f"{kind} (event #{n}) is followed by {evs[-1][0] - n} more event(s)")
    return problems


@stream_check("responses.stream.in-band-error", surface=SURFACE,
              rationale="An `error` event (`{\"type\": \"error\", \"message\", ...}`) means the response failed after "
                        "the 200 status; SDKs raise it, status-only clients miss it (ogx #5224, openai-node #2021).")
def in_band_error(items: list[SSEItem]) -> Problems:
    problems = []
    for n, item, value in events(items):
        if _type(value) == "error" or item.event == "error":
            message = (value or {}).get("message")
            if not isinstance(message, str) and isinstance((value or {}).get("error"), dict):
                message = value["error"].get("message")  # type: ignore[index]
            problems.append(f"event #{n} is an error: {message!r}" if isinstance(message, str)
                            else f"event #{n} is an error: {item.data[:160]!r}")
    return problems
