"""suites/conform.py and the fuzz judge on hand-made answers: each rule catches its breakage, and OpenAI's
own shapes pass."""

from __future__ import annotations

import json

import pytest

from wirecheck.spec import sse
from wirecheck.suites import conform
from wirecheck.suites.fuzz import Fuzzer, Sent, documented, tame
from wirecheck.suites.target import Target, load_profile
from wirecheck.suites.wire import Exchange

REQ = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def chat_body(**over):
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there"},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    body.update(over)
    return body


def test_a_plain_chat_completion_conforms() -> None:
    assert conform.chat_response_problems(REQ, chat_body()) == []


@pytest.mark.parametrize("request_over,body_over,needle", [
    ({}, {"object": "chat.completions"}, "object"),
    ({}, {"usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 6}}, "total_tokens"),
    ({"max_tokens": 1}, {}, "exceeds"),
    ({"n": 2}, {}, "indexes"),
    ({"stop": "there"}, {}, "stop string"),
    ({"logprobs": True}, {}, "logprobs"),
])
def test_chat_rules(request_over, body_over, needle) -> None:
    problems = conform.chat_response_problems({**REQ, **request_over}, chat_body(**body_over))
    assert any(needle in p for p in problems), problems


def chunk(delta, finish=None, **over):
    value = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    value.update(over)
    return value


def stream(*chunks, done=True) -> bytes:
    body = b"".join(sse.encode_json(c) for c in chunks)
    return body + (sse.DONE if done else b"")


GOOD = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}), chunk({}, "stop")]
USAGE = chunk({}, choices=[], usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})


def test_a_plain_chat_stream_conforms() -> None:
    assert conform.chat_stream_problems({**REQ, "stream": True}, stream(*GOOD)) == []
    asked = {**REQ, "stream": True, "stream_options": {"include_usage": True}}
    assert conform.chat_stream_problems(asked, stream(*GOOD, USAGE)) == []


@pytest.mark.parametrize("chunks,done,request_over,needle", [
    (GOOD, False, {}, "[DONE]"),
    ([GOOD[0], chunk({"content": "Hi"}, created=1.5), GOOD[2]], True, {}, "created"),
    ([GOOD[0], chunk({"content": "Hi"}, id="c2"), GOOD[2]], True, {}, "different ids"),
    ([chunk({"content": "Hi"}), GOOD[2]], True, {}, "role"),
    ([GOOD[0], GOOD[1]], True, {}, "finish_reason"),
    ([*GOOD, GOOD[2]], True, {}, "finish_reason"),
    ([*GOOD, USAGE], True, {}, "include_usage was not asked"),
    (GOOD, True, {"stream_options": {"include_usage": True}}, "include_usage asked"),
    ([GOOD[0], chunk({"content": "Hi"}, "stop")], True, {"stop": "i"}, "stop string"),
])
def test_chat_stream_rules(chunks, done, request_over, needle) -> None:
    problems = conform.chat_stream_problems({**REQ, "stream": True, **request_over}, stream(*chunks, done=done))
    assert any(needle in p for p in problems), problems


def test_keepalive_comments_are_fine_but_data_pings_are_not() -> None:
    body = sse.encode_comment("keep-alive") + stream(*GOOD)
    assert conform.chat_stream_problems({**REQ, "stream": True}, body) == []
    assert conform.split_stream(b"data: ping\n\n" + stream(*GOOD)).problems


def test_completions_rules() -> None:
    req = {"model": "m", "prompt": ["a", "b"], "n": 2, "max_tokens": 4, "echo": False}
    choices = [{"index": i, "text": "x", "finish_reason": "length", "logprobs": None} for i in range(4)]
    body = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m", "choices": choices,
            "usage": {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}}
    assert conform.completion_response_problems(req, body) == []
    assert conform.completion_response_problems(req, {**body, "choices": choices[:2]})
    echo = {"model": "m", "prompt": "Hi", "echo": True, "max_tokens": 4}
    body1 = {**body, "choices": [{**choices[0], "text": "Hi there"}]}
    assert conform.completion_response_problems(echo, body1) == []
    assert conform.completion_response_problems(echo, {**body1, "choices": [choices[0]]})


def test_embeddings_rules() -> None:
    req = {"model": "m", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 2}
    vector = "AACAPwAAAEA="  # float32 [1.0, 2.0]
    body = {"object": "list", "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2},
            "data": [{"object": "embedding", "index": i, "embedding": vector} for i in range(2)]}
    assert conform.embedding_response_problems(req, body) == []
    floats = {**body, "data": [{**d, "embedding": [1.0, 2.0]} for d in body["data"]]}
    assert any("encoding_format" in p for p in conform.embedding_response_problems(req, floats))
    assert any("dimensions" in p for p in conform.embedding_response_problems({**req, "dimensions": 3}, body))


# ------------------------------------------------------------------------------------------ fuzz judge


@pytest.fixture
def fuzzer() -> Fuzzer:
    target = Target(base_url="http://x/v1", api_key=None, profile=load_profile("reference"), model="tiny",
                    embedding_model="tiny")
    return Fuzzer(None, target, 1)  # type: ignore[arg-type]  (judging sends nothing)


def sent(status, body, content_type="application/json", *, valid=True, streamed=False, op="createChatCompletion"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ex = Exchange(request={"method": "POST", "url": "http://x/v1/chat/completions", "json": {}}, status=status,
                  headers={"content-type": content_type}, body=raw)
    return Sent(op, "positive", valid, streamed, ex)


ERROR = {"error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": None}}


@pytest.mark.parametrize("item,check_id", [
    (sent(500, ERROR), "schema.no-5xx"),
    (sent(201, chat_body()), "schema.status-documented"),
    (sent(400, b"<html>Bad</html>", "text/html"), "schema.content-type"),
    (sent(400, b"<html>Bad</html>", "text/html"), "schema.response-conformance"),
    (sent(422, {"detail": [{"loc": ["body"], "msg": "x"}]}), "schema.response-conformance"),
    (sent(200, ERROR, valid=False), "schema.negative-rejected"),
    (sent(200, chat_body(), "text/event-stream", streamed=False), "schema.content-type"),
    (sent(200, stream(*GOOD), "application/json", streamed=True), "schema.content-type"),
    (sent(200, stream(*GOOD, done=False), "text/event-stream", streamed=True), "schema.response-conformance"),
    (sent(200, {"object": "list", "data": [{"id": "m", "object": "model", "created": 1}]}, op="listModels"),
     "schema.response-conformance"),
])
def test_fuzz_judge_flags(fuzzer, item, check_id) -> None:
    assert check_id in fuzzer.judge(item, strict=False)


@pytest.mark.parametrize("item", [
    sent(400, ERROR, valid=False),
    sent(404, ERROR),
    sent(200, chat_body()),
    sent(200, stream(*GOOD), "text/event-stream; charset=utf-8", streamed=True),
    sent(429, ERROR),
])
def test_fuzz_judge_passes(fuzzer, item) -> None:
    assert fuzzer.judge(item, strict=False) == {}


def test_documented_statuses_fall_back_to_ranges() -> None:
    from wirecheck import spec

    doc = spec.document()
    definition = doc["paths"]["/v1/chat/completions"]["post"]
    assert documented(doc, definition, 402) == {"application/json": "ErrorResponse"}
    assert documented(doc, definition, 204) is None


def test_tame_keeps_the_mutation_and_caps_budgets() -> None:
    target = Target(base_url="http://x/v1", api_key=None, profile=load_profile("openai"), model="gpt",
                    embedding_model="emb")
    body = tame("createChatCompletion", {"model": 5, "messages": [], "n": 50, "max_tokens": 10_000}, target, False)
    assert body == {"model": 5, "messages": [], "n": 2, "max_tokens": 16}
    assert tame("createEmbedding", {"model": "x", "input": "a"}, target, True)["model"] == "emb"
    assert tame("createCompletion", {"model": "x", "prompt": "a", "max_tokens": None}, target, True)["max_tokens"] == 16
