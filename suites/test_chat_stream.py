"""Chat completions streams: every registered chat stream invariant against live streams of the target."""

from __future__ import annotations

import pytest

from .streams import expect_stream, stream_params
from .wire import Exchange


@pytest.fixture(scope="module")
def chat_stream(wire, target) -> Exchange:
    """A plain text stream with the usage trailer requested: the shape most clients rely on."""
    body = {"model": target.model, "messages": [{"role": "user", "content": "Say hello in five words."}],
            "stream": True, "max_tokens": 24, "stream_options": {"include_usage": True}}
    return wire.post("chat/completions", body)


@pytest.mark.parametrize("check_id", stream_params("chat"))
def test_chat_stream_invariant(chat_stream: Exchange, check_id: str) -> None:
    expect_stream(chat_stream, "chat", check_id)
