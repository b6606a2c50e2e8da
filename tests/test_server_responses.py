"""POST /v1/responses on `wirecheck serve`: the official openai SDK (strict validation) and the raw wire."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import jsonschema
import pytest

from wirecheck import spec
from wirecheck.reference_server.surfaces.responses import ResponseRun
from wirecheck.reference_server.surfaces.tools import output_plan
from wirecheck.reference_server.tool_calls import CallArguments, CallStart, Content
from wirecheck.spec import sse

MODEL = "tiny"
WEATHER = {"type": "function", "name": "get_weather", "description": "Get the current weather for a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}
PARIS = "What is the weather in Paris?"
# A schema whose every answer needs far more than 16 tokens, whatever the model writes.
TWENTY_WORDS = {"type": "object", "properties": {"words": {"type": "array", "minItems": 20, "items": {
    "type": "string", "minLength": 1}}}, "required": ["words"]}
TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def create(client, **kw):
    kw.setdefault("temperature", 0)
    return client.responses.create(model=MODEL, **kw)


def assert_weather_call(item) -> None:
    assert item.type == "function_call" and item.name == "get_weather" and item.status == "completed"
    assert item.id.startswith("fc_") and item.call_id.startswith("call_") and item.id != item.call_id
    jsonschema.validate(json.loads(item.arguments), WEATHER["parameters"])


# ------------------------------------------------------------------------------------------ the SDK


def test_string_input(client):
    r = create(client, input="Echo: red fox", max_output_tokens=32, metadata={"run": "1"})
    assert r.object == "response" and r.id.startswith("resp_") and r.status == "completed" and r.model == MODEL
    assert r.error is None and r.incomplete_details is None and r.metadata == {"run": "1"}
    [message] = r.output
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.status == "completed" and [c.type for c in message.content] == ["output_text"]
    assert r.output_text == message.content[0].text and r.output_text
    assert message.content[0].annotations == []
    u = r.usage
    assert u.input_tokens > 0 and 0 < u.output_tokens <= 32 and u.total_tokens == u.input_tokens + u.output_tokens
    assert u.input_tokens_details.cached_tokens == 0 and u.output_tokens_details.reasoning_tokens == 0
    assert r.max_output_tokens == 32 and r.temperature == 0 and r.tools == [] and r.parallel_tool_calls is True


def test_items_with_instructions_match_the_equivalent_chat(client):
    items = [{"role": "user", "content": [{"type": "input_text", "text": "Echo: red fox"}]}]
    r = create(client, instructions="Be brief.", input=items, max_output_tokens=32)
    chat = client.chat.completions.create(model=MODEL, temperature=0, max_tokens=32, messages=[
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Echo: red fox"}])
    assert r.instructions == "Be brief." and r.status == "completed"
    assert r.output_text == chat.choices[0].message.content  # same template, same greedy tokens
    assert r.usage.input_tokens == chat.usage.prompt_tokens


def test_store_is_accepted_but_nothing_is_stored(client):
    for store in (True, False):
        assert create(client, input="Hello", max_output_tokens=16, store=store).store is False


def test_max_output_tokens_gives_an_incomplete_response(client):
    r = create(client, input="List twenty words.", max_output_tokens=16,
               text={"format": {"type": "json_schema", "name": "words", "schema": TWENTY_WORDS}})
    assert r.status == "incomplete" and r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens == 16 and r.output[0].status == "incomplete"
    assert r.output_text.startswith('{"words": [')


def test_required_tool_gives_a_function_call(client):
    r = create(client, input=PARIS, tools=[WEATHER], tool_choice="required")
    assert r.status == "completed" and r.tool_choice == "required"
    [call] = r.output
    assert_weather_call(call)
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert r.tools[0].name == "get_weather" and r.tools[0].parameters == WEATHER["parameters"]


def test_named_tool_choice(client):
    r = create(client, input=PARIS, tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"})
    assert [item.type for item in r.output] == ["function_call"]
    assert_weather_call(r.output[0])


def test_parallel_calls_are_separate_items(client):
    two = "What is the weather in Paris and London?"
    r = create(client, input=two, tools=[WEATHER], tool_choice="required")
    assert [item.type for item in r.output] == ["function_call", "function_call"]
    assert len({item.id for item in r.output}) == len({item.call_id for item in r.output}) == 2
    for item in r.output:
        assert_weather_call(item)
    one = create(client, input=two, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False)
    assert [item.type for item in one.output] == ["function_call"] and one.parallel_tool_calls is False


def test_tool_choice_none_answers_in_text(client):
    r = create(client, input=PARIS, tools=[WEATHER], tool_choice="none", max_output_tokens=32)
    assert [item.type for item in r.output] == ["message"] and "<tool_call>" not in r.output_text


def test_function_call_output_round_trip(client):
    first = create(client, input=PARIS, tools=[WEATHER], tool_choice="required")
    [call] = first.output
    # Output items go back as input unchanged, as the SDK's docs show.
    history = [{"role": "user", "content": PARIS}, *first.output,
               {"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": "18C"}'}]
    second = create(client, input=history, tools=[WEATHER], tool_choice="none", max_output_tokens=32)
    assert second.status == "completed" and [item.type for item in second.output] == ["message"]
    assert second.output_text and second.usage.input_tokens > first.usage.input_tokens


def test_text_format_json_schema_with_parse(client):
    pydantic = pytest.importorskip("pydantic")

    class Weather(pydantic.BaseModel):
        city: str
        sunny: bool

    r = client.responses.parse(model=MODEL, input=PARIS, text_format=Weather, temperature=0, max_output_tokens=64)
    assert r.status == "completed" and isinstance(r.output_parsed, Weather)
    assert r.text.format.type == "json_schema" and r.text.format.strict is True


def test_text_format_json_object(client):
    r = create(client, input="Give me JSON.", text={"format": {"type": "json_object"}}, max_output_tokens=64)
    assert r.status == "completed" and isinstance(json.loads(r.output_text), dict)


def test_stream_helper_text(client):
    with client.responses.stream(model=MODEL, input="Echo: red fox", temperature=0, max_output_tokens=32) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and final.output_text == text and final.status == "completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == create(client, input="Echo: red fox", max_output_tokens=32).output_text


def test_stream_helper_function_call(client):
    with client.responses.stream(model=MODEL, input=PARIS, tools=[WEATHER], tool_choice="required",
                                 temperature=0) as stream:
        events = list(stream)
        final = stream.get_final_response()
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and done[0].name == "get_weather"
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == done[0].arguments == final.output[0].arguments
    assert_weather_call(final.output[0])


def test_sdk_stream_true_yields_typed_events(client):
    events = list(create(client, input="Hello", max_output_tokens=16, stream=True))
    assert events[0].type == "response.created" and events[-1].type in TERMINAL


@pytest.mark.parametrize("kw,param", [
    ({"previous_response_id": "resp_123"}, "previous_response_id"),
    ({"conversation": "conv_123"}, "conversation"),
    ({"background": True}, "background"),
    ({"include": ["message.output_text.logprobs"]}, "include[0]"),
    ({"max_output_tokens": 8}, "max_output_tokens"),
    ({"temperature": 3}, "temperature"),
    ({"input": [{"role": "wizard", "content": "x"}]}, "input[0].role"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}]},
     "input[0].content[0].type"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
    ({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}, "input[0].call_id"),
    ({"tools": [{**WEATHER, "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]},
     "tools[0].parameters"),  # strict, yet not closed
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_time"}}, "tool_choice"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "string", "format": "nope"}}}},
     "text.format.schema"),
])
def test_bad_requests_are_400_naming_the_param(client, kw, param):
    import openai

    kw.setdefault("input", "Hello")
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, **kw)
    assert err.value.param == param, err.value.message


def test_unknown_model_is_404(client):
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="no-such-model", input="Hello")
    assert err.value.code == "model_not_found"


# ------------------------------------------------------------------------------------------ input_tokens

COUNTED = [
    {"input": "Echo: red fox"},
    {"instructions": "You are terse.", "input": [{"role": "user", "content": PARIS}], "tools": [WEATHER],
     "tool_choice": "required"},
    {"input": [{"role": "user", "content": PARIS},
               {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
               {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}], "tools": [WEATHER]},
]


@pytest.mark.parametrize("kw", COUNTED, ids=["string", "instructions-and-tools", "call-round-trip"])
def test_input_tokens_count_is_what_create_bills(client, kw):
    counted = client.responses.input_tokens.count(model=MODEL, **kw)
    assert counted.object == "response.input_tokens"
    assert spec.first_error("ResponseInputTokens", counted.to_dict()) is None
    assert counted.input_tokens == create(client, max_output_tokens=16, **kw).usage.input_tokens


def test_input_tokens_counts_instructions_alone(client):
    alone = client.responses.input_tokens.count(model=MODEL, instructions="You are terse.")
    with_input = client.responses.input_tokens.count(model=MODEL, instructions="You are terse.", input="Hello")
    assert 0 < alone.input_tokens < with_input.input_tokens


@pytest.mark.parametrize("kw, param", [
    ({}, "input"),  # neither input nor instructions: nothing to count
    ({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}, "input[0].call_id"),
    ({"input": [{"role": "nobody", "content": "x"}]}, "input[0].role"),
    ({"input": "Hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_time"}}, "tool_choice"),
    ({"input": "Hi", "previous_response_id": "resp_123"}, "previous_response_id"),
])
def test_input_tokens_bad_input_is_400(client, kw, param):
    import openai

    with pytest.raises(openai.BadRequestError) as err:
        client.responses.input_tokens.count(model=MODEL, **kw)
    assert err.value.param == param, err.value.message
    assert err.value.type == "invalid_request_error"


def test_input_tokens_unknown_model_is_404(client):
    import openai

    with pytest.raises(openai.NotFoundError) as err:
        client.responses.input_tokens.count(model="no-such-model", input="Hello")
    assert err.value.code == "model_not_found"


def test_models_advertise_responses(client):
    model = client.models.retrieve(MODEL).to_dict()
    assert model["supports_responses"] is True and model["supports_audio"] is False
    assert spec.first_error("Model", model, strict=True) is None


def test_spec_operation_and_examples():
    op = spec.document()["paths"]["/v1/responses"]["post"]
    assert op["operationId"] == "createResponse" and op["tags"] == ["responses"]
    content = op["responses"]["200"]["content"]
    assert content["application/json"]["schema"]["$ref"].endswith("/Response")
    assert content["text/event-stream"]["schema"]["$ref"].endswith("/ResponseStreamEvent")
    for status in ("4XX", "5XX", "429"):
        assert op["responses"][status]["$ref"].rsplit("/", 1)[1] in spec.document()["components"]["responses"]
    for example in op["requestBody"]["content"]["application/json"]["examples"].values():
        assert spec.first_error("CreateResponse", example["value"]) is None
    count = spec.document()["paths"]["/v1/responses/input_tokens"]["post"]
    assert count["operationId"] == "countResponseInputTokens" and count["tags"] == ["responses"]
    assert count["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ResponseInputTokens")
    for example in count["requestBody"]["content"]["application/json"]["examples"].values():
        assert spec.first_error("ResponseInputTokensRequest", example["value"]) is None


# ------------------------------------------------------------------------------------------ raw wire

# One letter per event type: an answer's events must spell out the Responses grammar.
LETTERS = {"response.created": "C", "response.in_progress": "P", "response.output_item.added": "A",
           "response.content_part.added": "S", "response.output_text.delta": "D", "response.output_text.done": "T",
           "response.content_part.done": "U", "response.function_call_arguments.delta": "F",
           "response.function_call_arguments.done": "G", "response.output_item.done": "I",
           "response.completed": "Z", "response.incomplete": "Z", "response.failed": "Z", "error": "E"}
GRAMMAR = re.compile(r"CP(?:ASD*TUI|AF*GI)+Z")


def raw_stream(http, **body) -> list[dict]:
    with http.stream("POST", "/v1/responses", json={"model": MODEL, "temperature": 0, "stream": True, **body}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = r.read()
    items = sse.parse(raw)
    assert raw.endswith(b"\n\n") and not any(item.is_done for item in items)  # no [DONE] on this surface
    events = [item.json() for item in items]
    for item, event in zip(items, events):
        assert item.event == event["type"]  # `event:` names the data's type
        assert spec.first_error("ResponseStreamEvent", event, strict=True) is None, event
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def check_events(events: list[dict]) -> dict:
    """The event order, and that the pieces add up to the final response; returns it."""
    assert GRAMMAR.fullmatch("".join(LETTERS[e["type"]] for e in events)), [e["type"] for e in events]
    final = events[-1]["response"]
    assert {e["response"]["id"] for e in events if "response" in e} == {final["id"]}
    items: dict[int, dict] = {}
    for e in events:
        if e["type"] == "response.output_item.added":
            assert e["output_index"] == len(items) and e["item"]["status"] == "in_progress"
            items[e["output_index"]] = {"text": "", "arguments": "", "id": e["item"]["id"]}
        elif e["type"] in ("response.output_text.delta", "response.function_call_arguments.delta"):
            key = "text" if e["type"] == "response.output_text.delta" else "arguments"
            assert e["item_id"] == items[e["output_index"]]["id"]
            items[e["output_index"]][key] += e["delta"]
        elif e["type"] == "response.output_text.done":
            assert e["text"] == items[e["output_index"]]["text"]
        elif e["type"] == "response.function_call_arguments.done":
            assert e["arguments"] == items[e["output_index"]]["arguments"]
        elif e["type"] == "response.output_item.done":
            assert e["item"] == final["output"][e["output_index"]]
    assert len(items) == len(final["output"])
    assert spec.first_error("Response", final, strict=True) is None
    return final


def test_raw_stream_text(http):
    final = check_events(raw_stream(http, input="Echo: red fox", max_output_tokens=32))
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0


def test_raw_stream_function_call(http):
    final = check_events(raw_stream(http, input=PARIS, tools=[WEATHER], tool_choice="required"))
    assert [item["type"] for item in final["output"]] == ["function_call"]


def test_raw_stream_incomplete(http):
    events = raw_stream(http, input="List twenty words.", max_output_tokens=16,
                        text={"format": {"type": "json_schema", "name": "words", "schema": TWENTY_WORDS}})
    final = check_events(events)
    assert events[-1]["type"] == "response.incomplete" and final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"} and final["completed_at"] is None


def test_raw_json_response_is_strictly_valid(http):
    r = http.post("/v1/responses", json={"model": MODEL, "input": PARIS, "tools": [WEATHER]})
    assert r.status_code == 200 and spec.first_error("Response", r.json(), strict=True) is None


def test_unknown_fields_are_ignored(http):
    r = http.post("/v1/responses", json={"model": MODEL, "input": "Hello", "max_output_tokens": 16, "frobnicate": 1})
    assert r.status_code == 200


# ------------------------------------------------------------------------- failure after the stream began


def test_failure_mid_stream_is_an_error_event_then_response_failed():
    run = ResponseRun(SimpleNamespace(id=MODEL), {"input": "x"}, output_plan({"messages": []}), 1.0, 1.0)
    frames = run.start() + run.feed([Content("Hel")]) + run.fail(RuntimeError("engine exploded"))
    events = [item.json() for item in sse.parse(b"".join(frames))]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    error, failed = events[-2:]
    assert error == {"type": "error", "code": "server_error", "message": error["message"], "param": None,
                     "sequence_number": len(events) - 2}
    assert "exploded" not in error["message"]  # internals stay in the log
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    assert failed["response"]["output"][0]["status"] == "incomplete"
    for event in events:
        assert spec.first_error("ResponseStreamEvent", event, strict=True) is None


def test_calls_after_text_close_the_message_first():
    run = ResponseRun(SimpleNamespace(id=MODEL), {"input": "x"}, output_plan({"messages": []}), 1.0, 1.0)
    run.start()
    frames = run.feed([Content("Checking."), CallStart(0, "call_1", "get_weather"), CallArguments(0, '{"city": '),
                       CallArguments(0, '"Paris"}'), CallStart(1, "call_2", "get_weather"), CallArguments(1, "{}")])
    frames += run.finish("stop", SimpleNamespace(prompt_tokens=3, completion_tokens=4, total_tokens=7))
    events = [item.json() for item in sse.parse(b"".join(frames))]
    assert "".join(LETTERS[e["type"]] for e in events) == "ASDTUI" "AFFGI" "AFGI" "Z"
    assert [item["type"] for item in events[-1]["response"]["output"]] == ["message", "function_call",
                                                                           "function_call"]
