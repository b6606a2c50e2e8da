"""Responses streams (`POST /v1/responses` with `stream: true`): every registered Responses stream invariant
against a live text stream and a live function-call stream of the target, plus the checks that need the
live exchange (content type, named events) or judge a whole completed stream (every item closed).

Module-scoped fixtures make one request serve many checks.
"""

from __future__ import annotations

import pytest

from .invariants.common import typed_events
from .expect import expect_no_problems
from .invariants.responses import closed_item_problems
from .registry import check, fail
from .streams import expect_event_stream_type, expect_stream, require_stream, stream_params
from .target import Target
from .test_responses import MAX_TOKENS, TOOL
from .wire import Exchange, Wire

PATH = "responses"


def _body(target: Target, prompt: str, **extra) -> dict:
    return {"model": target.responses_model, "input": prompt, "stream": True, "temperature": 0, **extra}


@pytest.fixture(scope="module")
def text_stream(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, _body(target, "Say hello in five words.", max_output_tokens=32))


@pytest.fixture(scope="module")
def tool_stream(wire: Wire, target: Target) -> Exchange | None:
    """A forced function call, streamed (None when the profile does not claim tools)."""
    if "tools" not in target.profile.claims:
        return None
    return wire.post(PATH, _body(target, "What is the weather in Paris?", tools=[TOOL], tool_choice="required",
                                 max_output_tokens=MAX_TOKENS))


def _streams(text_stream: Exchange, tool_stream: Exchange | None) -> list[Exchange]:
    return [text_stream] + ([tool_stream] if tool_stream is not None else [])


@pytest.mark.parametrize("check_id", stream_params("responses"))
def test_responses_stream_invariant(text_stream: Exchange, tool_stream: Exchange | None, check_id: str) -> None:
    for exchange in _streams(text_stream, tool_stream):
        expect_stream(exchange, "responses", check_id)


@check("responses.stream.items-closed", surface="responses", claims=("stream",),
       faults=("responses-items-unclosed",),
       rationale="A completed (or incomplete) Responses stream closes what it opened: text goes to a part that "
                 "content_part.added opened, every part and item gets its .done before the terminal event, and "
                 "the final response's output holds every finished item; otherwise the SDK's stream helper "
                 "fails or get_final_response() loses the answer (wire-breakages 23, wire-spec 3.4).")
def test_items_closed(text_stream: Exchange, tool_stream: Exchange | None) -> None:
    for exchange in _streams(text_stream, tool_stream):
        require_stream(exchange)
        problems = closed_item_problems(exchange.items())
        expect_no_problems(exchange, problems)


@check("responses.stream.named-events", surface="responses", claims=("stream",), strict=True,
       faults=("responses-data-only-events",),
       rationale="OpenAI names every Responses event (`event: response.output_text.delta`); browser EventSource "
                 "clients listen by name and receive nothing from data-only events. The openai SDK reads the "
                 "data's type, so only --strict fails this.")
def test_named_events(text_stream: Exchange) -> None:
    require_stream(text_stream)
    unnamed = [n for n, item, value in typed_events(text_stream.items(), skip_done=True) if not item.event]
    if unnamed:
        fail(f"{len(unnamed)} event(s) carry no `event:` name (first: event #{unnamed[0]})", text_stream.evidence())


@check("responses.stream.content-type", surface="responses", claims=("stream",),
       faults=("responses-stream-content-type",),
       rationale="A Responses stream is served as `Content-Type: text/event-stream`; EventSource clients and "
                 "gateways that detect streams by type refuse anything else (aichat #651, rig #861).")
def test_content_type(text_stream: Exchange) -> None:
    expect_event_stream_type(text_stream)
