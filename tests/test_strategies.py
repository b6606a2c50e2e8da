"""suites/strategies.py generates only requests the spec accepts, and only what the profile claims."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from wirecheck import spec
from wirecheck.suites import strategies as S
from wirecheck.suites.target import load_profile

ALL = load_profile("reference").claims
NONE: frozenset[str] = frozenset()
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def assert_valid(component: str, body: dict) -> None:
    assert spec.errors(component, body) == [], body


@pytest.mark.parametrize("claims", [ALL, NONE], ids=["all-claims", "no-claims"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_chat_requests_are_valid(claims, stream) -> None:
    @SETTINGS
    @given(S.chat_requests("m", claims, stream=stream))
    def run(body):
        assert_valid("CreateChatCompletionRequest", body)
        assert body.get("stream") is True if stream else not body.get("stream")
        assert 1 <= (body.get("max_completion_tokens") or body.get("max_tokens")) <= S.MAX_TOKENS
        if not claims:
            assert not set(body) & {"seed", "top_k", "min_tokens", "logprobs", "top_logprobs", "stop",
                                    "stream_options", "max_completion_tokens"}
            assert body.get("n") in (None, 1)

    run()


@pytest.mark.parametrize("claims", [ALL, NONE], ids=["all-claims", "no-claims"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_completion_requests_are_valid(claims, stream) -> None:
    @SETTINGS
    @given(S.completion_requests("m", claims, stream=stream))
    def run(body):
        assert_valid("CreateCompletionRequest", body)
        assert not (body.get("echo") and body.get("logprobs") is not None)
        if not claims:
            assert not set(body) & {"seed", "top_k", "min_tokens", "logprobs", "echo", "stop", "stream_options"}

    run()


@pytest.mark.parametrize("claims", [ALL, NONE], ids=["all-claims", "no-claims"])
def test_embedding_requests_are_valid(claims) -> None:
    @SETTINGS
    @given(S.embedding_requests("m", claims))
    def run(body):
        assert_valid("CreateEmbeddingRequest", body)
        if not claims:
            assert "dimensions" not in body and body.get("encoding_format", "float") == "float"

    run()


def test_histories_cover_tool_calls_with_every_content_form() -> None:
    """Over a modest run, replayed tool-call turns carry content null, "" and no content at all."""
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(S.messages())
    def run(history):
        assert_valid("CreateChatCompletionRequest", {"model": "m", "messages": history})
        for message in history:
            if message.get("tool_calls"):
                seen.add("absent" if "content" not in message else repr(message["content"]))
                ids = {c["id"] for c in message["tool_calls"]}
                assert ids <= {m.get("tool_call_id") for m in history if m["role"] == "tool"}

    run()
    assert seen == {"absent", "None", "''"}


@pytest.mark.parametrize("claims", [ALL, NONE], ids=["all-claims", "no-claims"])
def test_showcases_are_valid_and_use_what_is_claimed(claims) -> None:
    for stream in (False, True):
        chat = S.chat_showcase("m", claims, stream=stream)
        assert_valid("CreateChatCompletionRequest", chat)
        assert_valid("CreateCompletionRequest", S.completion_showcase("m", claims, stream=stream))
        assert ("n" in chat) == ("n" in claims) and ("logprobs" in chat) == ("logprobs" in claims)
        assert ("stream_options" in chat) == (stream and "include_usage" in claims)
    embedding = S.embedding_showcase("m", claims)
    assert_valid("CreateEmbeddingRequest", embedding)
    assert ("dimensions" in embedding) == ("dimensions" in claims)
