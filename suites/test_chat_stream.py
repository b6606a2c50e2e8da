"""Chat completions streams: every registered chat stream invariant against a live stream of the target, plus
the checks that need the request (usage only when asked) or timing (incremental delivery, termination).

Module-scoped fixtures make one request serve many checks.
"""

from __future__ import annotations

import pytest

from .invariants.chat import has_usage
from .registry import check
from .streams import (expect_event_stream_type, expect_incremental, expect_sse_body, expect_stream,
                      expect_terminates, expect_usage_absent, expect_usage_present, stream_params)
from .target import Target
from .wire import Exchange, Wire

PATH = "chat/completions"
LONG_TOKENS = 160  # enough events (and time, even on a fast target) to see how a stream is delivered


def _body(target: Target, content: str, max_tokens: int, **extra) -> dict:
    return {"model": target.model, "messages": [{"role": "user", "content": content}], "stream": True,
            "max_tokens": max_tokens, **extra}


@pytest.fixture(scope="module")
def chat_stream(wire: Wire, target: Target) -> Exchange:
    """A plain text stream with the usage trailer requested: the shape most clients rely on."""
    return wire.post(PATH, _body(target, "Say hello in five words.", 24, stream_options={"include_usage": True}))


@pytest.fixture(scope="module")
def chat_streams_unasked(wire: Wire, target: Target) -> dict[str, Exchange]:
    """Streams that did not ask for usage: no stream_options at all, and (where the target knows
    stream_options) `{}` and `include_usage: false` (vLLM sent usage for `{}`, vllm #36379)."""
    out = {"no stream_options": wire.post(PATH, _body(target, "Name three colours.", 8))}
    if "include_usage" in target.profile.claims:
        out["stream_options: {}"] = wire.post(PATH, _body(target, "Name three colours.", 8, stream_options={}))
        out["include_usage: false"] = wire.post(
            PATH, _body(target, "Name three colours.", 8, stream_options={"include_usage": False}))
    return out


@pytest.fixture(scope="module")
def chat_stream_long(wire: Wire, target: Target) -> Exchange:
    extra = {"min_tokens": LONG_TOKENS} if "min_tokens" in target.profile.claims else {}
    return wire.post(PATH, _body(target, "Count from one to one hundred, in words.", LONG_TOKENS, **extra))


@pytest.mark.parametrize("check_id", stream_params("chat"))
def test_chat_stream_invariant(chat_stream: Exchange, check_id: str) -> None:
    expect_stream(chat_stream, "chat", check_id)


@check("chat.stream.content-type", surface="chat", faults=("stream-wrong-content-type",), claims=("stream",),
       rationale="A stream is served as `Content-Type: text/event-stream`; aichat and rig refuse anything else "
                 "(aichat #651, rig #861: application/x-ndjson), as do gateways that detect streams by it.")
def test_content_type(chat_stream: Exchange) -> None:
    expect_event_stream_type(chat_stream)


@check("chat.stream.honours-stream-flag", surface="chat", faults=("stream-ignored",), claims=("stream",),
       rationale="`stream: true` must be answered with SSE events, not one JSON body: streaming clients parse "
                 "nothing and show an empty answer (Foundry Local returned JSON for stream:true, "
                 "foundry-dev-tools #195).")
def test_honours_stream_flag(chat_stream: Exchange) -> None:
    expect_sse_body(chat_stream)


@check("chat.stream.terminates", surface="chat", faults=("endless-stream", "drip"), claims=("stream",),
       rationale="A stream must end (with [DONE]) within the deadline: a stream that never ends or drips bytes "
                 "hangs clients, which bound reads, not whole responses.")
def test_terminates(chat_stream: Exchange, target: Target) -> None:
    expect_terminates(chat_stream, target.deadline)


@check("chat.stream.usage-trailer-present", surface="chat", faults=("usage-dropped",),
       claims=("stream", "include_usage"),
       rationale="`stream_options.include_usage: true` promises a final usage chunk; gateways that drop it "
                 "leave metering at 0 tokens (private-ai-gateway #80).")
def test_usage_trailer_present(chat_stream: Exchange) -> None:
    expect_usage_present(chat_stream, has_usage)


@check("chat.stream.usage-only-when-asked", surface="chat", faults=("usage-unasked",), claims=("stream",),
       rationale="Without include_usage: true there is no usage chunk (OpenAI spec); clients that index "
                 "choices[0] crash on the unasked `choices: []` chunk (quotio #460, xiaozhi-esp32-server #916).")
def test_usage_only_when_asked(chat_streams_unasked: dict[str, Exchange]) -> None:
    expect_usage_absent(chat_streams_unasked, has_usage)


@check("chat.stream.incremental", surface="chat", faults=("buffered-stream",), claims=("stream",),
       rationale="Tokens must arrive as they are generated, not buffered into one burst at the end: UIs freeze "
                 "until the whole answer is done (Ollama with tools, ollama #9092).")
def test_incremental(chat_stream_long: Exchange) -> None:
    expect_incremental(chat_stream_long)
