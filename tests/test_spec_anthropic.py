"""The Anthropic Messages part of spec/openapi.yaml, checked against real recorded streams."""

from __future__ import annotations

import pytest

from wirecheck import fixtures
from wirecheck import spec
from wirecheck.spec.sse import parse

RECORDED = fixtures.transcript_files("anthropic-messages-stream", "*.*")
RECORDED = [p for p in RECORDED if p.name != "LICENSE"]
REQUEST = "AnthropicCreateMessageRequest"


def request(**fields):
    return {"model": "tiny", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}], **fields}


def test_operations():
    paths = spec.document()["paths"]
    assert paths["/v1/messages"]["post"]["operationId"] == "anthropicCreateMessage"
    assert paths["/v1/messages/count_tokens"]["post"]["operationId"] == "anthropicCountTokens"
    content = paths["/v1/messages"]["post"]["responses"]["200"]["content"]
    assert content["text/event-stream"]["schema"]["$ref"].endswith("/AnthropicStreamEvent")
    assert content["application/json"]["schema"]["$ref"].endswith("/AnthropicMessage")


@pytest.mark.parametrize("path", RECORDED, ids=lambda p: p.name)
def test_recorded_streams_conform(path):
    events = [item for item in parse(path.read_bytes()) if item.kind == "event"]
    assert events
    for item in events:
        data = item.json()
        assert data["type"] == item.event
        assert spec.first_error("AnthropicStreamEvent", data) is None, data


def test_operation_examples_are_valid():
    for path, component in (("/v1/messages", REQUEST), ("/v1/messages/count_tokens", "AnthropicCountTokensRequest")):
        body = spec.document()["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        for example in body["examples"].values():
            assert spec.first_error(component, example["value"]) is None


def test_full_request_is_valid():
    body = request(
        system=[{"type": "text", "text": "Be terse."}], stop_sequences=["\n\n"], temperature=0.5, top_p=0.9,
        top_k=5, metadata={"user_id": "u1"}, stream=True,
        tools=[{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                  {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                     "input": {"city": "Paris"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                "content": [{"type": "text", "text": "sunny"}]}]}])
    assert spec.first_error(REQUEST, body) is None


@pytest.mark.parametrize("body, param", [
    ({"model": "tiny", "messages": [{"role": "user", "content": "Hi"}]}, "max_tokens"),
    (request(max_tokens=-1), "max_tokens"),
    (request(temperature=1.5), "temperature"),
    (request(messages=[{"role": "system", "content": "x"}]), "messages[0].role"),
    (request(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages[0].content"),
    (request(tools=[{"name": "f", "input_schema": {"type": "object"}}], tool_choice={"type": "tool"}), "tool_choice"),
    (request(tool_choice={"type": "sometimes"}), "tool_choice.type"),
    (request(system=[{"type": "text"}]), "system"),
])
def test_invalid_requests_name_the_field(body, param):
    problem = spec.first_error(REQUEST, body)
    assert problem is not None
    assert problem.param is not None and problem.param.startswith(param)


def test_message_and_error_shapes():
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "tiny", "stop_reason": "tool_use",
               "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 4},
               "content": [{"type": "text", "text": "Hi"},
                           {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]}
    assert spec.first_error("AnthropicMessage", message) is None
    broken = {**message, "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": "{}"}]}
    assert spec.first_error("AnthropicMessage", broken).param == "content[0].input"
    error = {"type": "error", "error": {"type": "not_found_error", "message": "no"}}
    assert spec.first_error("AnthropicErrorResponse", error) is None
    assert spec.first_error("AnthropicStreamEvent", error) is None
    assert spec.first_error("AnthropicErrorResponse", {"error": {"message": "no"}}) is not None
