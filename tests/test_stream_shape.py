"""Our chat stream has the chunk-level shape of real recorded OpenAI streams: which keys, in which chunk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wirecheck.fixtures import transcripts_dir
from wirecheck.spec import sse

TEXT_RECORDINGS = ["4cc50a6135d2.sse", "7e5ea4d12e7c.sse", "e2aad469b71d.sse"]  # plain content streams


def signature(body: bytes) -> list[tuple]:
    """Each chunk as (top-level keys, per-choice keys, delta keys, finish set?), runs collapsed to one."""
    phases: list[tuple] = []
    for item in sse.parse(body):
        if item.kind != "event":
            continue
        if item.is_done:
            shape: tuple = ("[DONE]",)
        else:
            chunk = json.loads(item.data)
            shape = (tuple(chunk), tuple(tuple(c) for c in chunk["choices"]),
                     tuple(tuple(sorted(c["delta"])) for c in chunk["choices"]),
                     tuple(c["finish_reason"] is not None for c in chunk["choices"]))
        if not phases or phases[-1] != shape:
            phases.append(shape)
    return phases


def recorded(name: str) -> bytes:
    return (Path(transcripts_dir("openai-chat-stream")) / name).read_bytes()


def test_recordings_agree_with_each_other():
    assert len({tuple(signature(recorded(n))) for n in TEXT_RECORDINGS}) == 1


@pytest.mark.parametrize("recording", TEXT_RECORDINGS)
def test_our_text_stream_has_the_recorded_shape(http, recording):
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Echo: a b c d e"}], "stream": True,
            "max_tokens": 12, "min_tokens": 3, "stream_options": {"include_usage": True}}
    with http.stream("POST", "/v1/chat/completions", json=body) as r:
        ours = r.read()
    assert signature(ours) == signature(recorded(recording))
