"""Legacy completions streams: every registered completions stream invariant against a live stream of the
target, plus the usage rules and the content type, which need the request."""

from __future__ import annotations

import pytest

from .invariants.completions import has_usage
from .registry import check
from .streams import (expect_event_stream_type, expect_sse_body, expect_stream, expect_terminates,
                      expect_usage_absent, expect_usage_present, stream_params)
from .target import Target
from .wire import Exchange, Wire

PATH = "completions"


def _body(target: Target, max_tokens: int, **extra) -> dict:
    return {"model": target.model, "prompt": "Once upon a time", "stream": True, "max_tokens": max_tokens,
            **extra}


@pytest.fixture(scope="module")
def completions_stream(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, _body(target, 16, stream_options={"include_usage": True}))


@pytest.fixture(scope="module")
def completions_streams_unasked(wire: Wire, target: Target) -> dict[str, Exchange]:
    out = {"no stream_options": wire.post(PATH, _body(target, 6))}
    if "include_usage" in target.profile.claims:
        out["include_usage: false"] = wire.post(PATH, _body(target, 6, stream_options={"include_usage": False}))
    return out


@pytest.mark.parametrize("check_id", stream_params("completions"))
def test_completions_stream_invariant(completions_stream: Exchange, check_id: str) -> None:
    expect_stream(completions_stream, "completions", check_id)


@check("completions.stream.content-type", surface="completions", claims=("stream",),
       rationale="A stream is served as `Content-Type: text/event-stream`; clients and gateways that detect "
                 "streams by it refuse anything else (LitServe #359: application/x-ndjson).")
def test_content_type(completions_stream: Exchange) -> None:
    expect_event_stream_type(completions_stream)


@check("completions.stream.honours-stream-flag", surface="completions", claims=("stream",),
       rationale="`stream: true` must be answered with SSE events, not one JSON body, or streaming clients parse "
                 "nothing.")
def test_honours_stream_flag(completions_stream: Exchange) -> None:
    expect_sse_body(completions_stream)


@check("completions.stream.terminates", surface="completions", claims=("stream",),
       rationale="A stream must end (with [DONE]) within the deadline; one that never ends hangs clients.")
def test_terminates(completions_stream: Exchange, target: Target) -> None:
    expect_terminates(completions_stream, target.deadline)


@check("completions.stream.usage-trailer-present", surface="completions", claims=("stream", "include_usage"),
       rationale="`stream_options.include_usage: true` promises a final usage chunk on /v1/completions too; "
                 "gateways that drop stream_options leave metering at 0 tokens (private-ai-gateway #80).")
def test_usage_trailer_present(completions_stream: Exchange) -> None:
    expect_usage_present(completions_stream, has_usage)


@check("completions.stream.usage-only-when-asked", surface="completions", claims=("stream",),
       rationale="Without include_usage: true there is no usage chunk (OpenAI spec); clients that index "
                 "choices[0] crash on the unasked `choices: []` chunk.")
def test_usage_only_when_asked(completions_streams_unasked: dict[str, Exchange]) -> None:
    expect_usage_absent(completions_streams_unasked, has_usage)
