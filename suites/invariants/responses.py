"""OpenAI Responses stream invariants (`POST /v1/responses` with `stream: true`).

Minimal but real: framing, event naming, sequence numbers and the single terminal event. Event types we do
not know are accepted (the Responses API keeps adding them, and its SDKs pass unknown ones through).
"""

from __future__ import annotations


from spec.sse import SSEItem

from . import Problems, stream_check
from .common import (capped, event_names_match_types, event_type, short, typed_data_is_json,
                     typed_events)

SURFACE = "responses"
TERMINAL = ("response.completed", "response.failed", "response.incomplete")


@stream_check("responses.stream.data-is-json", surface=SURFACE,
              rationale="Every Responses stream event's data is one JSON object with a string `type`; the openai SDK "
                        "json-decodes each and builds the event union from `type`.")
def data_is_json(items: list[SSEItem]) -> Problems:
    return typed_data_is_json(items)


@stream_check("responses.stream.event-name-matches-type", surface=SURFACE,
              rationale="OpenAI names each Responses event after its data's `type`; clients that dispatch on the "
                        "SSE event name (EventSource listeners, several SDKs) misroute a mismatched event.")
def event_name_matchesevent_type(items: list[SSEItem]) -> Problems:
    return event_names_match_types(items, name_required=False)


@stream_check("responses.stream.sequence-numbers", surface=SURFACE,
              rationale="Every Responses event carries an integer `sequence_number`, strictly increasing; clients "
                        "resume and de-duplicate by it (Open Responses spec; openresponses compliance suite).")
def sequence_numbers(items: list[SSEItem]) -> Problems:
    problems = []
    last: int | None = None
    for n, _, value in typed_events(items, skip_done=True):
        if value is None:
            continue
        seq = value.get("sequence_number")
        if not isinstance(seq, int) or isinstance(seq, bool):
            problems.append(f"event #{n} ({event_type(value)}) has sequence_number {short(seq)}, not an integer")
            continue
        if last is not None and seq <= last:
            problems.append(f"event #{n} has sequence_number {seq} after {last}")
        last = seq
    return capped(problems)


@stream_check("responses.stream.created-first", surface=SURFACE,
              rationale="A Responses stream opens with `response.created` carrying the response id; clients (Codex, "
                        "the openai SDK's stream helper) key the rest of the stream on it.")
def created_first(items: list[SSEItem]) -> Problems:
    evs = typed_events(items, skip_done=True)
    if not evs:
        return ["the stream has no events"]
    kind = event_type(evs[0][2])
    return [] if kind == "response.created" else [f"the first event is {kind or evs[0][1].data[:60]!r}, "
                                                   f"not response.created"]


@stream_check("responses.stream.terminal-event", surface=SURFACE,
              rationale="A Responses stream ends with exactly one response.completed, .failed or .incomplete, as its "
                        "last event; Codex fails the turn with 'stream closed before response.completed' without it "
                        "(ollama #14600, codex #41340).")
def terminal_event(items: list[SSEItem]) -> Problems:
    evs = typed_events(items, skip_done=True)
    terminals = [(n, event_type(v)) for n, _, v in evs if event_type(v) in TERMINAL]
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
    for n, item, value in typed_events(items, skip_done=True):
        if event_type(value) == "error" or item.event == "error":
            message = (value or {}).get("message")
            if not isinstance(message, str) and isinstance((value or {}).get("error"), dict):
                message = value["error"].get("message")  # type: ignore[index]
            problems.append(f"event #{n} is an error: {message!r}" if isinstance(message, str)
                            else f"event #{n} is an error: {item.data[:160]!r}")
    return problems
