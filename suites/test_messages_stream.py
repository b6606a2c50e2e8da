"""Anthropic Messages streams: every registered messages stream invariant (event order, names, block indices,
usage, stop_reason, tool_use blocks) against a live text stream of the target and, where tools are claimed, a
live tool_use stream; plus the stream's content type.
"""

from __future__ import annotations

import pytest

from .registry import check
from .streams import expect_event_stream_type, expect_stream, stream_params
from .target import Target
from .test_messages import WEATHER, streamed_text
from .wire import Exchange, Wire


@pytest.fixture(scope="module")
def messages_stream(wire: Wire, target: Target) -> Exchange:
    """A plain text stream, long enough for several text deltas."""
    return wire.post("messages", {"model": target.model, "max_tokens": 24, "stream": True,
                                  "messages": [{"role": "user", "content": "Say hello in five words."}]})


@pytest.fixture(scope="module")
def messages_tool_stream(wire: Wire, target: Target) -> Exchange | None:
    """A forced tool_use stream (tool_choice any), where the profile claims tools: the invariants about tool_use
    blocks and stop_reason tool_use need one."""
    if "tools" not in target.profile.claims:
        return None
    return wire.post("messages", {"model": target.model, "max_tokens": 64, "stream": True, "temperature": 0,
                                  "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
                                  "tools": [WEATHER], "tool_choice": {"type": "any"}})


@pytest.mark.parametrize("check_id", stream_params("messages"))
def test_messages_stream_invariant(messages_stream: Exchange, messages_tool_stream: Exchange | None,
                                   check_id: str) -> None:
    expect_stream(messages_stream, "messages", check_id)
    if messages_tool_stream is not None and streamed_text(messages_tool_stream)[1] != "max_tokens":
        expect_stream(messages_tool_stream, "messages", check_id)  # a call cut off mid-input proves nothing


@check("messages.stream.content-type", surface="messages", claims=("stream",),
       faults=("messages-stream-wrong-content-type",),
       rationale="A Messages stream is served as `Content-Type: text/event-stream`; the anthropic SDK and gateways "
                 "detect streams by it and parse anything else as one JSON body.")
def test_messages_stream_content_type(messages_stream: Exchange) -> None:
    expect_event_stream_type(messages_stream)
