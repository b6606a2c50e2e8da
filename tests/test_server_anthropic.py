"""The Anthropic Messages API on `wirecheck serve`, over real HTTP, through the official anthropic SDK (2.x) and the
raw wire."""

from __future__ import annotations

import asyncio
import json

import httpx
import jsonschema
import pytest

from wirecheck import spec
from wirecheck.reference_server.engine.types import Usage
from wirecheck.reference_server.surfaces.chat import Answer
from wirecheck.reference_server.surfaces.messages import Message, _error_events
from wirecheck.reference_server.surfaces.streaming import guarded_stream
from wirecheck.reference_server.surfaces.tools import OutputPlan
from wirecheck.spec.sse import parse
from wirecheck.suites.invariants import lint

anthropic = pytest.importorskip("anthropic")

MODEL = "tiny"
GREEDY = {"temperature": 0}  # the 2.x SDK no longer types temperature/top_p/top_k: they go in extra_body
HELLO = [{"role": "user", "content": "Echo: red fox"}]
PARIS = [{"role": "user", "content": "What is the weather in Paris?"}]
WEATHER = {"name": "get_weather", "description": "Get the current weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                            "additionalProperties": False}}
TIME = {"name": "get_time", "description": "Get the current time in a time zone.",
        "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}


@pytest.fixture(scope="module")
def claude(server):
    # Strict validation: the SDK's own pydantic models must accept every response we send.
    return anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0,
                               _strict_response_validation=True)


def create(claude, messages=HELLO, **kw):
    kw.setdefault("max_tokens", 64)
    kw.setdefault("extra_body", GREEDY)
    return claude.messages.create(model=MODEL, messages=messages, **kw)


def text_of(message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def assert_weather_use(block) -> None:
    assert block.type == "tool_use" and block.id.startswith("toolu_") and block.name == "get_weather"
    assert isinstance(block.input, dict)
    jsonschema.validate(block.input, WEATHER["input_schema"])


# ------------------------------------------------------------------------------------------------ create


def test_create_text(claude):
    message = create(claude)
    assert message.id.startswith("msg_") and message.type == "message" and message.role == "assistant"
    assert message.model == MODEL and message.stop_reason == "end_turn" and message.stop_sequence is None
    assert [b.type for b in message.content] == ["text"] and text_of(message)
    usage = message.usage
    assert usage.input_tokens > 0 and 0 < usage.output_tokens <= 64
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    assert message._request_id and message._request_id.startswith("req_")


def test_stop_sequence_is_reported(claude):
    text = text_of(create(claude))
    if len(text) < 3:
        pytest.skip("greedy output too short to pick a stop sequence from")
    stop = text[1:3]
    message = create(claude, stop_sequences=["never-said", stop])
    assert message.stop_reason == "stop_sequence" and message.stop_sequence == stop
    assert text_of(message) == text[: text.index(stop)]


def test_max_tokens_is_reported(claude):
    message = create(claude, max_tokens=2)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 2


def test_max_tokens_zero_generates_nothing(claude):
    # anthropic-python documents max_tokens 0 as the prompt-cache pre-warm: no content, nothing generated.
    message = create(claude, max_tokens=0, tools=[WEATHER])
    assert message.content == [] and message.stop_reason == "max_tokens" and message.stop_sequence is None
    assert message.usage.output_tokens == 0
    assert message.usage.input_tokens == claude.messages.count_tokens(model=MODEL, messages=HELLO,
                                                                      tools=[WEATHER]).input_tokens


def test_max_tokens_zero_streamed(claude, http):
    with claude.messages.stream(model=MODEL, max_tokens=0, messages=HELLO, extra_body=GREEDY) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert "content_block_start" not in events and events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content == [] and final.stop_reason == "max_tokens" and final.usage.output_tokens == 0
    assert final.usage.input_tokens == create(claude, max_tokens=0).usage.input_tokens
    _, raw = raw_events(http, {"messages": HELLO, "max_tokens": 0})
    assert [name for name, _ in raw] == ["message_start", "ping", "message_delta", "message_stop"]
    for name, data in raw:
        assert data["type"] == name and spec.first_error("AnthropicStreamEvent", data) is None, data
    assert raw[2][1]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None}
    assert raw[2][1]["usage"]["output_tokens"] == 0


def test_system_and_prefill(claude):
    plain = create(claude, max_tokens=8)
    with_system = create(claude, max_tokens=8, system=[{"type": "text", "text": "You are terse."}])
    assert with_system.usage.input_tokens > plain.usage.input_tokens
    # A final assistant turn is a prefill: the prompt grows by it and the answer continues it.
    prefilled = create(claude, HELLO + [{"role": "assistant", "content": "red"}], max_tokens=8)
    assert prefilled.usage.input_tokens > plain.usage.input_tokens
    assert prefilled.stop_reason in ("end_turn", "max_tokens")


# ------------------------------------------------------------------------------------------------- tools


@pytest.mark.parametrize("tool_choice", [{"type": "any"}, {"type": "tool", "name": "get_weather"}])
def test_forced_tool_use_validates(claude, tool_choice):
    message = create(claude, PARIS, tools=[WEATHER, TIME], tool_choice=tool_choice)
    assert message.stop_reason == "tool_use"
    uses = [b for b in message.content if b.type == "tool_use"]
    assert uses
    if tool_choice["type"] == "tool":
        assert all(b.name == "get_weather" for b in uses)
    for block in uses:
        if block.name == "get_weather":
            assert_weather_use(block)


def test_auto_calls_and_none_does_not(claude):
    message = create(claude, PARIS, tools=[WEATHER])
    assert message.stop_reason == "tool_use" and message.content[-1].input == {"city": "Paris"}
    for _ in range(3):  # sampled: the grammar must hold whatever is drawn
        message = create(claude, PARIS, tools=[WEATHER], tool_choice={"type": "none"},
                         extra_body={"temperature": 1})
        assert all(b.type == "text" for b in message.content) and "<tool_call>" not in text_of(message)
        assert message.stop_reason in ("end_turn", "max_tokens")


def test_disable_parallel_tool_use_allows_one_call(claude):
    two = [{"role": "user", "content": "What is the weather in Paris and London?"}]
    for _ in range(3):  # sampled: the grammar must hold whatever is drawn
        message = create(claude, two, tools=[WEATHER], extra_body={"temperature": 1},
                         tool_choice={"type": "any", "disable_parallel_tool_use": True})
        assert len([b for b in message.content if b.type == "tool_use"]) == 1


def test_tool_result_round_trip(claude):
    first = create(claude, PARIS, tools=[WEATHER], tool_choice={"type": "any"})
    use = next(b for b in first.content if b.type == "tool_use")
    history = PARIS + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                      "content": json.dumps({"temperature": 21, "condition": "sunny"})}]},
    ]
    answer = create(claude, history, tools=[WEATHER])
    assert answer.stop_reason in ("end_turn", "max_tokens") and text_of(answer)
    assert answer.usage.input_tokens > first.usage.input_tokens
    # Block content for the result works too, and count_tokens agrees with the prompt create billed.
    history[-1]["content"][0]["content"] = [{"type": "text", "text": "sunny, 21 C"}]
    counted = claude.messages.count_tokens(model=MODEL, messages=history, tools=[WEATHER])
    billed = create(claude, history, tools=[WEATHER], max_tokens=1)
    assert counted.input_tokens == billed.usage.input_tokens


def test_output_config_json_schema(claude):
    # Bounded, so the object always closes well inside max_tokens (then EOS is forced).
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}}, "required": ["city"],
              "additionalProperties": False}
    message = create(claude, PARIS, output_config={"format": {"type": "json_schema", "schema": schema}})
    assert message.stop_reason == "end_turn"
    jsonschema.validate(json.loads(text_of(message)), schema)


# --------------------------------------------------------------------------------------------- streaming


def test_stream_helper_text(claude):
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=HELLO, extra_body=GREEDY) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed and text_of(final) == streamed == text_of(create(claude))
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0


def test_stream_helper_tool_use(claude):
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=PARIS, tools=[WEATHER],
                                tool_choice={"type": "any"}, extra_body=GREEDY) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert_weather_use(final.content[-1])
    assert final.content[-1].input == {"city": "Paris"}


def test_stream_stop_sequence_and_max_tokens(claude):
    text = text_of(create(claude))
    stop = text[1:3]
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=HELLO, stop_sequences=[stop],
                                extra_body=GREEDY) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == stop
    with claude.messages.stream(model=MODEL, max_tokens=2, messages=HELLO, extra_body=GREEDY) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "max_tokens" and final.usage.output_tokens == 2


def raw_events(http, body: dict, **kw) -> tuple[httpx.Response, list[tuple[str, dict]]]:
    response = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 64, "stream": True, **body}, **kw)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    items = parse(response.content)
    assert lint("messages", items, strict=True) == {}  # the suites' own stream invariants
    return response, [(item.event, item.json()) for item in items if item.kind == "event"]


def assert_well_formed(events: list[tuple[str, dict]]) -> None:
    """Event order, matching indexes, event name == data.type, every event valid under the spec."""
    names = [name for name, _ in events]
    for name, data in events:
        assert data["type"] == name
        assert spec.first_error("AnthropicStreamEvent", data) is None, data
    assert names[:2] == ["message_start", "ping"] and names[-2:] == ["message_delta", "message_stop"]
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["input_tokens"] > 0
    open_index, next_index = None, 0
    for name, data in events[2:-2]:
        if name == "content_block_start":
            assert open_index is None and data["index"] == next_index
            open_index, next_index = data["index"], next_index + 1
        elif name == "content_block_delta":
            assert data["index"] == open_index
        else:
            assert name == "content_block_stop" and data["index"] == open_index
            open_index = None
    assert open_index is None
    delta = events[-2][1]
    assert delta["delta"]["stop_reason"] and delta["usage"]["output_tokens"] > 0


def test_raw_stream_text(http, claude):
    response, events = raw_events(http, {"messages": HELLO, **GREEDY}, params={"beta": "true"},
                                  headers={"anthropic-version": "2023-06-01", "anthropic-beta": "x-2025-01-01"})
    assert response.headers["request-id"].startswith("req_")
    assert_well_formed(events)
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert text == text_of(create(claude))
    assert events[-2][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}


def test_raw_stream_tool_use(http):
    _, events = raw_events(http, {"messages": PARIS, "tools": [WEATHER], "tool_choice": {"type": "any"}, **GREEDY})
    assert_well_formed(events)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["input"] == {} and starts[-1]["id"].startswith("toolu_")
    last = len(starts) - 1
    fragments = [d["delta"] for n, d in events if n == "content_block_delta" and d["index"] == last]
    assert all(f["type"] == "input_json_delta" for f in fragments)
    assert json.loads("".join(f["partial_json"] for f in fragments)) == {"city": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_mid_stream_failure_is_an_error_event():
    class Failing:  # a GenerationStream whose engine dies after the stream started
        usage = Usage(prompt_tokens=3)

        def __aiter__(self):
            return self

        async def __anext__(self):
            raise RuntimeError("engine died")

        def cancel(self) -> None:
            pass

    plan = OutputPlan("none", (), (), True, False, None, False)
    message, stream = Message("msg_x", MODEL, 3, Answer(plan)), Failing()

    async def run() -> bytes:
        return b"".join([frame async for frame in guarded_stream([stream], lambda: message.events(stream),
                                                                   _error_events)])

    items = parse(asyncio.run(run()))
    # A failed message ends at its error event, as Anthropic's do: no message_stop follows.
    assert set(lint("messages", items, strict=True)) == {"messages.stream.in-band-error",
                                                          "messages.stream.event-order"}
    events = [item for item in items if item.kind == "event"]
    assert [e.event for e in events] == ["message_start", "ping", "error"]
    error = events[-1].json()
    assert spec.first_error("AnthropicErrorResponse", error) is None and error["error"]["type"] == "api_error"


def test_beta_resource(claude):
    """The SDK's beta resource posts to /v1/messages?beta=true with an anthropic-beta header."""
    message = claude.beta.messages.create(model=MODEL, max_tokens=8, messages=HELLO, extra_body=GREEDY,
                                          betas=["token-efficient-tools-2025-02-19"])
    assert message.type == "message" and message.stop_reason in ("end_turn", "max_tokens")
    counted = claude.beta.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens == message.usage.input_tokens


# ----------------------------------------------------------------------------------------------- tokens


def test_count_tokens(claude):
    counted = claude.messages.count_tokens(model=MODEL, messages=HELLO)
    assert counted.input_tokens == create(claude, max_tokens=1).usage.input_tokens
    with_tools = claude.messages.count_tokens(model=MODEL, messages=HELLO, tools=[WEATHER], system="Be terse.")
    assert with_tools.input_tokens > counted.input_tokens


# ----------------------------------------------------------------------------------------------- errors


def test_missing_max_tokens_is_bad_request(claude):
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=MODEL, messages=HELLO, max_tokens=anthropic.omit, timeout=60)
    assert caught.value.type == "invalid_request_error" and "max_tokens" in caught.value.message
    assert caught.value.request_id and caught.value.request_id.startswith("req_")


def test_unknown_model_is_not_found(claude):
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="no-such-model", messages=HELLO, max_tokens=4)
    assert caught.value.type == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="no-such-model", messages=HELLO)


BAD = [
    ("temperature out of range", {"temperature": 1.5}),
    ("system role message", {"messages": [{"role": "system", "content": "x"}]}),
    ("image block", {"messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]}),
    ("thinking budget not below max_tokens", {"thinking": {"type": "enabled", "budget_tokens": 1024}}),
    ("negative max_tokens", {"max_tokens": -1}),
    ("thinking with max_tokens 0", {"max_tokens": 0, "thinking": {"type": "enabled", "budget_tokens": 1024}}),
    ("thinking budget under 1024", {"max_tokens": 1400, "thinking": {"type": "enabled", "budget_tokens": 512}}),
    ("thinking with forced tool use", {"max_tokens": 1400, "thinking": {"type": "enabled", "budget_tokens": 1024},
                                       "tools": [WEATHER], "tool_choice": {"type": "any"}}),
    ("server tool", {"tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    ("tool without input_schema", {"tools": [{"name": "f"}]}),
    ("unknown forced tool", {"tools": [WEATHER], "tool_choice": {"type": "tool", "name": "nope"}}),
    ("any without tools", {"tool_choice": {"type": "any"}}),
    ("unenforceable schema", {"tools": [{"name": "f", "input_schema": {
        "type": "object", "properties": {"a": {"type": "string", "format": "nonsense"}}}}]}),
    ("malformed output_config", {"output_config": {"format": {"type": "xml"}}}),
]


@pytest.mark.parametrize("name,fields", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_anthropic_400s(http, name, fields):
    response = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 4, "messages": HELLO, **fields})
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error" and body["error"]["message"]
    assert spec.first_error("AnthropicErrorResponse", body) is None
    assert "function.parameters" not in body["error"]["message"]  # named as the request spelled it


def test_envelope_on_malformed_json_unknown_route_and_method(http):
    for response, status in ((http.post("/v1/messages", content=b"{nope", headers={"content-type": "application/json"}), 400),
                             (http.post("/v1/messages/batches", json={}), 404),
                             (http.get("/v1/messages"), 405)):
        assert response.status_code == status
        body = response.json()
        assert body["type"] == "error" and spec.first_error("AnthropicErrorResponse", body) is None
        assert body["error"]["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
        assert response.headers["request-id"] == body["request_id"]
    big = http.post("/v1/messages", json={"model": MODEL, "max_tokens": 1, "messages": [
        {"role": "user", "content": "x" * 300_000}]})  # the session server takes 200000 bytes at most
    assert big.status_code == 413 and big.json()["error"]["type"] == "request_too_large"
    # The OpenAI surfaces keep their own envelope.
    assert "type" not in http.post("/v1/chat/completions", json={}).json()


def test_auth_accepts_bearer_and_x_api_key(keyed_server):
    body = {"model": MODEL, "max_tokens": 2, "messages": HELLO}
    url = keyed_server.base_url + "/v1/messages"
    good = anthropic.Anthropic(base_url=keyed_server.base_url, api_key="sk-test-two", max_retries=0)
    assert good.messages.create(**body).stop_reason  # the 2.x SDK sends Authorization: Bearer
    for version in ("2023-06-01", "2026-10-21"):  # anthropic 0.x and 2.x; no version pinning
        response = httpx.post(url, json=body, headers={"x-api-key": "sk-test-one", "anthropic-version": version})
        assert response.status_code == 200
    bad = anthropic.Anthropic(base_url=keyed_server.base_url, api_key="sk-wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.create(**body)
    assert caught.value.type == "authentication_error"
    response = httpx.post(url + "/count_tokens", json=body)
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"
    # x-api-key is Anthropic's header: the OpenAI surfaces still want a bearer key.
    response = httpx.post(keyed_server.base_url + "/v1/chat/completions", json={}, headers={"x-api-key": "sk-test-one"})
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_assistant_only_conversation_is_a_clear_400(http):
    r = http.post("/v1/messages", json={"model": "tiny", "max_tokens": 8,
                                        "messages": [{"role": "assistant", "content": "Hello"}]})
    assert r.status_code == 400
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert "template" not in body["error"]["message"]


def test_sdk_models_list_and_retrieve(claude):
    # The anthropic SDK reads /v1/models too, in Anthropic's shapes (it sends anthropic-version).
    page = claude.models.list()  # tiny, and tiny-omni: the same LM with the media adapter
    assert [m.id for m in page.data] == ["tiny", "tiny-omni"] and page.data[0].type == "model"
    assert page.has_more is False and (page.first_id, page.last_id) == ("tiny", "tiny-omni")
    model = claude.models.retrieve("tiny")
    assert model.id == "tiny" and model.created_at.year >= 2024
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("no-such-model")


def test_models_keep_the_openai_shape_without_anthropic_version(http):
    assert http.get("/v1/models").json()["object"] == "list"
    r = http.get("/v1/models", params={"limit": 0}, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 400
