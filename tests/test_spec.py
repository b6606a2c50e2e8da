"""The wire contract: spec/openapi.yaml and the schema loader."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from wirecheck import fixtures
from wirecheck import spec
from wirecheck.spec import SpecError, errors, first_error
from wirecheck.spec.sse import parse

REQUIRED_COMPONENTS = [
    "CreateChatCompletionRequest",
    "ChatCompletionRequestMessage",
    "ChatCompletionRequestSystemMessage",
    "ChatCompletionRequestDeveloperMessage",
    "ChatCompletionRequestUserMessage",
    "ChatCompletionRequestAssistantMessage",
    "ChatCompletionRequestToolMessage",
    "ChatCompletionTool",
    "CreateChatCompletionResponse",
    "CreateChatCompletionStreamResponse",
    "ChatCompletionLogprobs",
    "CompletionUsage",
    "CreateCompletionRequest",
    "CreateCompletionResponse",
    "CreateEmbeddingRequest",
    "CreateEmbeddingResponse",
    "Embedding",
    "Model",
    "ListModelsResponse",
    "ErrorResponse",
    "Error",
]

CHAT = "CreateChatCompletionRequest"
USER = {"role": "user", "content": "Hello!"}


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [USER], **fields}


def walk(node: Any, path: tuple = ()):
    """Yield (path, key, value) for every mapping entry in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, path + (i,))


# ------------------------------------------------------------------------ the document


def test_document_is_valid_openapi_31():
    validator = pytest.importorskip("openapi_spec_validator")
    doc = spec.document()
    assert doc["openapi"].startswith("3.1")
    validator.validate(copy.deepcopy(doc))


def test_document_is_package_data():
    assert resources.files("wirecheck.spec").joinpath("openapi.yaml").is_file()


def test_document_is_cached():
    assert spec.document() is spec.document()


@pytest.mark.parametrize("name", REQUIRED_COMPONENTS)
def test_component_exists_and_compiles(name):
    raw = spec.document()["components"]["schemas"][name]
    Draft202012Validator.check_schema(raw)
    validator = spec.schema(name)
    assert validator is spec.schema(name)  # cached per name
    assert spec.schema(name, strict=True) is not None


def test_every_component_compiles():
    for name in spec.names():
        Draft202012Validator.check_schema(spec.document()["components"]["schemas"][name])
        spec.schema(name).is_valid({})


def test_unknown_component_name():
    with pytest.raises(KeyError, match="NoSuchThing"):
        spec.schema("NoSuchThing")


def test_no_30_style_nullable_and_no_closed_objects():
    for path, key, value in walk(spec.document()):
        assert key != "nullable", f"nullable at {path}"
        if key == "additionalProperties":
            assert value is not False, f"additionalProperties: false at {path}"


def test_all_refs_resolve():
    doc = spec.document()
    for path, key, value in walk(doc):
        if key == "$ref":
            assert value.startswith("#/"), path
            node: Any = doc
            for part in value[2:].split("/"):
                node = node[part]


EXPECTED_OPERATIONS = {
    ("/v1/chat/completions", "post"): "createChatCompletion",
    ("/v1/completions", "post"): "createCompletion",
    ("/v1/embeddings", "post"): "createEmbedding",
    ("/v1/models", "get"): "listModels",
    ("/v1/models/{model}", "get"): "retrieveModel",
}


def test_operations_and_error_responses():
    doc = spec.document()
    ids = []
    for (path, method), op_id in EXPECTED_OPERATIONS.items():
        op = doc["paths"][path][method]
        assert op["operationId"] == op_id
        assert op.get("description") or op.get("summary")
        ids.append(op["operationId"])
        assert "application/json" in op["responses"]["200"]["content"]
        for status in ("4XX", "5XX", "429"):
            ref = op["responses"][status]["$ref"]
            response = doc["components"]["responses"][ref.rsplit("/", 1)[1]]
            assert response["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
    assert len(set(ids)) == len(ids)
    stream = doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"]["text/event-stream"]
    assert stream["schema"]["$ref"].endswith("/CreateChatCompletionStreamResponse")


@pytest.mark.parametrize(
    "field, vendors",
    [("top_k", {"hoonify"}), ("min_tokens", {"compactifai"}), ("quantization", {"hoonify"}),
     ("thinking_budget", {"hontoni"}), ("data_sources", {"compactifai"})],
)
def test_vendor_extensions_are_marked(field, vendors):
    prop = spec.document()["components"]["schemas"][CHAT]["properties"][field]
    assert set(prop["x-wirecheck-vendor"]) == vendors


def test_request_declares_every_seed_field():
    props = spec.document()["components"]["schemas"][CHAT]["properties"]
    for field in ("model messages temperature top_p n stream stream_options stop max_tokens "
                  "max_completion_tokens presence_penalty frequency_penalty logit_bias logprobs "
                  "top_logprobs user seed tools tool_choice parallel_tool_calls response_format "
                  "functions function_call reasoning_effort top_k min_tokens quantization").split():
        assert field in props, field
    assert props["quantization"]["enum"] == ["fp16", "fp8", "int4"]


# -------------------------------------------------------------------- valid requests

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "strict": True,
    },
}
TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}

VALID_CHAT = {
    "minimal": chat(),
    "compactifai example": {
        "model": "cai-llama-3-1-8b-slim",
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Hello, I'm Camillo"},
            {"role": "user", "content": "What is my name? What is the capital of Colombia?"},
        ],
        "temperature": 0.7, "max_tokens": 128, "stop": ["###"], "n": 1, "user": "user-123",
    },
    "image part": chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg", "detail": "low"}}]}]),
    "audio part": chat(messages=[{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}]}]),
    "every sampling field": chat(
        temperature=0, top_p=1, n=2, stream=True, stream_options={"include_usage": True},
        stop="###", max_tokens=1, max_completion_tokens=10, presence_penalty=-2, frequency_penalty=2,
        logit_bias={"50256": -100, "13": 100}, logprobs=True, top_logprobs=20, seed=-1,
        parallel_tool_calls=False, user="u1"),
    "nulls where nullable": chat(
        temperature=None, top_p=None, n=None, stream=None, stream_options=None, stop=None,
        max_tokens=None, max_completion_tokens=None, logit_bias=None, logprobs=None,
        top_logprobs=None, seed=None, top_k=None, min_tokens=None),
    "top_logprobs zero": chat(logprobs=True, top_logprobs=0),
    "stop array of 4": chat(stop=["a", "b", "c", "d"]),
    "tools auto": chat(tools=[TOOL], tool_choice="auto"),
    "tools required": chat(tools=[TOOL], tool_choice="required"),
    "tools none": chat(tools=[TOOL], tool_choice="none"),
    "named tool": chat(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    "allowed tools": chat(tools=[TOOL], tool_choice={"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}}),
    "json_object": chat(response_format={"type": "json_object"}),
    "text format": chat(response_format={"type": "text"}),
    "json_schema": chat(response_format={"type": "json_schema", "json_schema": {
        "name": "city", "schema": {"type": "object"}, "strict": True}}),
    "tool round trip, content null": chat(messages=[
        USER,
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]),
    "assistant content empty with tool_calls": chat(messages=[
        USER, {"role": "assistant", "content": "", "tool_calls": [TOOL_CALL]}]),
    "assistant content absent with tool_calls": chat(messages=[
        USER, {"role": "assistant", "tool_calls": [TOOL_CALL]}]),
    "assistant text parts": chat(messages=[
        USER, {"role": "assistant", "content": [{"type": "text", "text": "hi"}], "name": "bot"}]),
    "tool content parts": chat(messages=[
        {"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": "ok"}]}]),
    "developer role": chat(messages=[{"role": "developer", "content": "Be terse."}, USER]),
    "vendor extensions": chat(top_k=40, min_tokens=1, quantization="fp8", thinking_budget=32768,
                              reasoning_effort="high", data_sources=[{"type": "azure_search"}]),
    "deprecated functions": chat(functions=[{"name": "f", "parameters": {"type": "object"}}],
                                 function_call={"name": "f"}),
}


@pytest.mark.parametrize("body", VALID_CHAT.values(), ids=VALID_CHAT.keys())
def test_valid_chat_requests(body):
    assert first_error(CHAT, body) is None
    assert spec.errors(CHAT, body) == []
    assert spec.schema(CHAT).is_valid(body)


def test_unknown_fields_are_accepted():
    body = chat(some_vendor_field={"x": 1}, best_of=3, guided_json={"type": "object"})
    body["messages"] = [{"role": "user", "content": "hi", "vendor_meta": 1}]
    assert first_error(CHAT, body) is None
    assert first_error("CreateCompletionRequest", {"model": "m", "prompt": "x", "extra": True}) is None
    assert first_error("CreateEmbeddingRequest", {"model": "m", "input": "x", "extra": True}) is None


# ------------------------------------------------------------------ invalid requests

INVALID_CHAT = [
    ("temperature 3", chat(temperature=3), "temperature"),
    ("temperature negative", chat(temperature=-0.1), "temperature"),
    ("temperature string", chat(temperature="hot"), "temperature"),
    ("top_p above 1", chat(top_p=1.5), "top_p"),
    ("stop with 5 items", chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    ("stop empty array", chat(stop=[]), "stop"),
    ("stop integer", chat(stop=5), "stop"),
    ("stop item not a string", chat(stop=["a", 1]), "stop[1]"),
    ("n 0", chat(n=0), "n"),
    ("n float", chat(n=1.5), "n"),
    ("messages missing", {"model": "tiny"}, "messages"),
    ("model missing", {"messages": [USER]}, "model"),
    ("messages empty", chat(messages=[]), "messages"),
    ("bad role", chat(messages=[{"role": "bogus", "content": "x"}]), "messages[0].role"),
    ("role missing", chat(messages=[{"content": "x"}]), "messages[0].role"),
    ("message not an object", chat(messages=["hello"]), "messages[0]"),
    ("user content missing", chat(messages=[USER, {"role": "user"}]), "messages[1].content"),
    ("user content wrong type", chat(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    ("assistant without content or tool_calls", chat(messages=[USER, {"role": "assistant"}]),
     "messages[1].content"),
    ("tool without tool_call_id", chat(messages=[{"role": "tool", "content": "x"}]),
     "messages[0].tool_call_id"),
    ("part missing text", chat(messages=[{"role": "user", "content": [{"type": "text"}]}]),
     "messages[0].content[0].text"),
    ("unknown part type", chat(messages=[{"role": "user", "content": [{"type": "video"}]}]),
     "messages[0].content[0].type"),
    ("top_logprobs 21", chat(logprobs=True, top_logprobs=21), "top_logprobs"),
    ("top_logprobs negative", chat(top_logprobs=-1), "top_logprobs"),
    ("penalty above 2", chat(presence_penalty=2.5), "presence_penalty"),
    ("penalty below -2", chat(frequency_penalty=-3), "frequency_penalty"),
    ("max_tokens 0", chat(max_tokens=0), "max_tokens"),
    ("max_completion_tokens 0", chat(max_completion_tokens=0), "max_completion_tokens"),
    ("logit_bias out of range", chat(logit_bias={"50256": 101}), "logit_bias.50256"),
    ("logit_bias bad key", chat(logit_bias={"hello": 1}), "logit_bias"),
    ("stream not bool", chat(stream="yes"), "stream"),
    ("include_usage not bool", chat(stream_options={"include_usage": 1}), "stream_options.include_usage"),
    ("tool_choice bogus", chat(tool_choice="sometimes"), "tool_choice"),
    ("named tool without function", chat(tool_choice={"type": "function"}), "tool_choice.function"),
    ("tool name with space", chat(tools=[{"type": "function", "function": {"name": "get weather"}}]),
     "tools[0].function.name"),
    ("tool missing function", chat(tools=[{"type": "function"}]), "tools[0].function"),
    ("response_format unknown", chat(response_format={"type": "yaml"}), "response_format.type"),
    ("json_schema without name", chat(response_format={"type": "json_schema", "json_schema": {}}),
     "response_format.json_schema.name"),
    ("quantization unknown", chat(quantization="int8"), "quantization"),
    ("top_k below -1", chat(top_k=-2), "top_k"),
    ("min_tokens negative", chat(min_tokens=-1), "min_tokens"),
]


@pytest.mark.parametrize("body, param", [(b, p) for _, b, p in INVALID_CHAT], ids=[i for i, _, _ in INVALID_CHAT])
def test_invalid_chat_requests_name_the_param(body, param):
    error = first_error(CHAT, body)
    assert isinstance(error, SpecError)
    assert error.param == param
    assert f"'{param}'" in error.message  # the sentence names the field
    assert error.message.endswith(".")
    assert not spec.schema(CHAT).is_valid(body)


def test_messages_are_specific():
    assert first_error(CHAT, chat(temperature=3)).message == (
        "Invalid value for 'temperature': 3 is above the maximum of 2.")
    assert first_error(CHAT, {"model": "m"}).message == "Missing required field 'messages'."
    assert "at most 4 items, got 5" in first_error(CHAT, chat(stop=list("abcde"))).message
    role_error = first_error(CHAT, chat(messages=[{"role": "bogus", "content": "x"}])).message
    assert '"bogus"' in role_error and '"assistant"' in role_error
    assert "expected a string, an array or null, got an integer" in first_error(CHAT, chat(stop=5)).message


def test_body_not_an_object():
    error = first_error(CHAT, ["not", "an", "object"])
    assert error == SpecError(None, "Invalid type for the body: expected an object, got an array.")


def test_errors_lists_each_field_once():
    found = spec.errors(CHAT, {"messages": [{"role": "bogus"}], "temperature": 3, "n": 0})
    params = [e.param for e in found]
    assert set(params) == {"model", "messages[0].role", "temperature", "n"}
    assert len(params) == len(set(params))
    assert found[0] == first_error(CHAT, {"messages": [{"role": "bogus"}], "temperature": 3, "n": 0})


def test_spec_error_is_frozen():
    error = SpecError("temperature", "x")
    with pytest.raises(AttributeError):
        error.param = "n"  # type: ignore[misc]


def test_format_param():
    assert spec.format_param(["messages", 0, "content", 1, "text"]) == "messages[0].content[1].text"
    assert spec.format_param([]) is None
    assert spec.format_param([0]) == "[0]"


@pytest.mark.parametrize(
    "name, body, param",
    [
        ("CreateCompletionRequest", {"model": "m"}, "prompt"),
        ("CreateCompletionRequest", {"model": "m", "prompt": "x", "logprobs": 6}, "logprobs"),
        ("CreateCompletionRequest", {"model": "m", "prompt": ["a", 1]}, "prompt[1]"),
        ("CreateCompletionRequest", {"model": "m", "prompt": "x", "best_of": 21}, "best_of"),
        ("CreateCompletionRequest", {"model": "m", "prompt": "x", "stop": list("abcde")}, "stop"),
        ("CreateEmbeddingRequest", {"model": "m"}, "input"),
        ("CreateEmbeddingRequest", {"model": "m", "input": ""}, "input"),
        ("CreateEmbeddingRequest", {"model": "m", "input": ["a", ""]}, "input[1]"),
        ("CreateEmbeddingRequest", {"model": "m", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ("CreateEmbeddingRequest", {"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
    ],
)
def test_invalid_other_requests(name, body, param):
    assert first_error(name, body).param == param


@pytest.mark.parametrize(
    "name, body",
    [
        ("CreateCompletionRequest", {"model": "m", "prompt": "The capital of France is", "max_tokens": 16,
                                     "temperature": 0.7, "stop": ["###"], "user": "user-123", "min_tokens": 1}),
        ("CreateCompletionRequest", {"model": "m", "prompt": ["a", "b"], "echo": True, "max_tokens": 0, "logprobs": 5}),
        ("CreateCompletionRequest", {"model": "m", "prompt": [1, 2, 3], "suffix": None}),
        ("CreateCompletionRequest", {"model": "m", "prompt": [[1, 2], [3]]}),
        ("CreateEmbeddingRequest", {"model": "m", "input": "hello"}),
        ("CreateEmbeddingRequest", {"model": "m", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8}),
        ("CreateEmbeddingRequest", {"model": "m", "input": [[1, 2], [3]], "encoding_format": "float"}),
    ],
)
def test_valid_other_requests(name, body):
    assert first_error(name, body) is None


# ----------------------------------------------------------------------- responses

CHAT_RESPONSE = {  # Hoonify's documented response (no logprobs, no refusal)
    "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1714000000, "model": "qwen-3",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! How can I help you today?"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22},
}


def test_vendor_chat_response_is_valid_but_not_strict():
    assert first_error("CreateChatCompletionResponse", CHAT_RESPONSE) is None
    strict = first_error("CreateChatCompletionResponse", CHAT_RESPONSE, strict=True)
    assert strict is not None and strict.param in ("choices[0].logprobs", "choices[0].message.refusal")


def test_openai_shaped_chat_response_is_strictly_valid():
    body = copy.deepcopy(CHAT_RESPONSE)
    body["choices"][0]["logprobs"] = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                                                   "top_logprobs": [{"token": "Hi", "logprob": -0.1, "bytes": None}]}],
                                      "refusal": None}
    body["choices"][0]["message"]["refusal"] = None
    body["system_fingerprint"] = "fp_x"
    body["pool"] = "eu"
    body["usage"]["completion_tokens_details"] = {"reasoning_tokens": 0}
    assert first_error("CreateChatCompletionResponse", body, strict=True) is None


def test_tool_call_response():
    body = copy.deepcopy(CHAT_RESPONSE)
    body["choices"][0] = {"index": 0, "finish_reason": "tool_calls", "logprobs": None,
                          "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [TOOL_CALL]}}
    assert first_error("CreateChatCompletionResponse", body, strict=True) is None


@pytest.mark.parametrize(
    "mutate, param",
    [
        (lambda b: b.update(object="chat.completion.chunk"), "object"),
        (lambda b: b["choices"][0].update(finish_reason=None), "choices[0].finish_reason"),
        (lambda b: b["choices"][0].update(finish_reason="eos"), "choices[0].finish_reason"),
        (lambda b: b["choices"][0]["message"].update(role="user"), "choices[0].message.role"),
        (lambda b: b.update(choices=[]), "choices"),
        (lambda b: b.update(created=1714000000.5), "created"),
        (lambda b: b["usage"].pop("total_tokens"), "usage.total_tokens"),
    ],
)
def test_invalid_chat_responses(mutate, param):
    body = copy.deepcopy(CHAT_RESPONSE)
    mutate(body)
    assert first_error("CreateChatCompletionResponse", body).param == param


def chunk(**fields: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}], **fields}


def test_chunks():
    name = "CreateChatCompletionStreamResponse"
    assert first_error(name, chunk(usage=None)) is None
    trailer = chunk(choices=[], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    assert first_error(name, trailer, strict=True) is None
    assert first_error(name, chunk(choices=[{"index": 0, "delta": {}}])) is None  # Hoonify's abbreviated form
    assert first_error(name, chunk(choices=[{"index": 0, "delta": {}}]), strict=True).param == "choices[0].finish_reason"
    assert first_error(name, chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "done"}])).param == \
        "choices[0].finish_reason"
    tool_fragment = {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\""}}]},
                     "finish_reason": None}
    assert first_error(name, chunk(choices=[tool_fragment])) is None
    no_index = {"index": 0, "delta": {"tool_calls": [{"function": {"arguments": "x"}}]}, "finish_reason": None}
    assert first_error(name, chunk(choices=[no_index])).param == "choices[0].delta.tool_calls[0].index"
    assert first_error(name, chunk(object="chat.completion")).param == "object"
    assert spec.schema("ChatCompletionChunk").is_valid(chunk())


def transcript_chunks():
    for path in fixtures.transcript_files("openai-chat-stream"):
        for item in parse(path.read_bytes()):
            if item.kind == "event" and not item.is_done:
                yield path.name, item.json()


def test_transcripts_are_present():
    files = fixtures.transcript_files("openai-chat-stream")
    assert len(files) >= 6
    assert (fixtures.transcripts_dir() / "LICENSE").is_file()


@pytest.mark.parametrize("strict", [False, True])
def test_every_recorded_openai_chunk_validates(strict):
    count = 0
    for name, payload in transcript_chunks():
        assert first_error("CreateChatCompletionStreamResponse", payload, strict=strict) is None, (name, payload)
        count += 1
    assert count > 50


def test_recorded_streams_end_with_done_after_usage_trailer():
    for path in fixtures.transcript_files():
        items = parse(path.read_bytes())
        assert items[-1].is_done
        trailer = items[-2].json()
        assert trailer["choices"] == [] and trailer["usage"]["total_tokens"] > 0


def test_completion_response_and_stream_chunk():
    name = "CreateCompletionResponse"
    body = {"id": "1861edc3", "object": "text_completion", "created": 1749600000, "model": "cai-llama-3-1-8b-slim",
            "choices": [{"text": "The capital of France is Paris.", "index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    assert first_error(name, body) is None
    stream_chunk = {"id": "cmpl-c", "object": "text_completion", "created": 1, "model": "m",
                    "choices": [{"text": " Par", "index": 0, "logprobs": None, "finish_reason": None}]}
    assert first_error(name, stream_chunk, strict=True) is None
    assert first_error("CreateCompletionStreamResponse", stream_chunk, strict=True) is None
    # Only --strict asks a chunk for finish_reason and the vendor's id form.
    del stream_chunk["choices"][0]["finish_reason"]
    stream_chunk["id"] = "5d228b06-994a-4850-abef-c22e745e20d7"
    assert first_error("CreateCompletionStreamResponse", stream_chunk) is None
    assert {e.param for e in errors("CreateCompletionStreamResponse", stream_chunk, strict=True)} == {
        "id", "choices[0].finish_reason"}
    stream_chunk["choices"][0]["finish_reason"] = None
    with_logprobs = copy.deepcopy(stream_chunk)
    with_logprobs["choices"][0]["logprobs"] = {"tokens": [" Par"], "token_logprobs": [None], "top_logprobs": [None],
                                               "text_offset": [0]}
    assert first_error(name, with_logprobs) is None
    body["choices"][0]["finish_reason"] = "tool_calls"
    assert first_error(name, body).param == "choices[0].finish_reason"


def test_embeddings_response_float_and_base64():
    name = "CreateEmbeddingResponse"
    body = {"object": "list", "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2},
            "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.25, 3.0]},
                     {"object": "embedding", "index": 1, "embedding": "AAAAPwAAoL8AAEBA"}]}
    assert first_error(name, body) is None
    body["data"][0]["embedding"] = {"x": 1}
    assert first_error(name, body).param == "data[0].embedding"


def test_models_with_hoonify_fields():
    model = {"id": "llama-3-3-70b", "object": "model", "created": 1714000000, "owned_by": "meta",
             "family": "llama-3.3-70b", "pools": ["na", "eu"], "quantizations": ["fp16", "fp8"],
             "context_window": 131072, "deprecation": None}
    assert first_error("Model", model) is None
    assert first_error("ListModelsResponse", {"object": "list", "data": [model]}) is None
    props = spec.document()["components"]["schemas"]["Model"]["properties"]
    for field in ("family", "pools", "quantizations", "context_window", "deprecation"):
        assert props[field]["x-wirecheck-vendor"] == ["hoonify"]
    assert first_error("Model", {**model, "context_window": "big"}).param == "context_window"
    assert first_error("Model", {"id": "x", "object": "model", "created": 1}).param == "owned_by"


def test_error_envelope():
    full = {"error": {"message": "Invalid API key provided.", "type": "authentication_error",
                      "param": None, "code": "invalid_api_key"}}
    assert first_error("ErrorResponse", full, strict=True) is None
    vendor = {"error": {"message": "Invalid API key provided.", "type": "authentication_error",
                        "code": "invalid_api_key"}}  # Hoonify/Hontoni omit param
    assert first_error("ErrorResponse", vendor) is None
    assert first_error("ErrorResponse", vendor, strict=True).param == "error.param"
    assert first_error("ErrorResponse", {"error": "boom"}).param == "error"
    assert first_error("ErrorResponse", {"error": {"message": "x", "type": "t", "code": 400}}).param == "error.code"
    assert first_error("ErrorResponse", {"detail": "x"}).param == "error"
