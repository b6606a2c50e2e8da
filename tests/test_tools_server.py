"""Tools and structured outputs on `wirecheck serve`, over real HTTP, through the openai SDK where it applies."""

from __future__ import annotations

import json

import jsonschema
import pytest

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Get the current time in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}
PARIS = [{"role": "user", "content": "What is the weather in Paris?"}]
TWO_CITIES = [{"role": "user", "content": "What is the weather in Paris and London?"}]
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def create(client, messages=PARIS, **kw):
    kw.setdefault("temperature", 0)
    kw.setdefault("max_tokens", 64)
    return client.chat.completions.create(model="tiny", messages=messages, **kw)


def assert_weather_call(call) -> None:
    assert call.type == "function" and call.id.startswith("call_") and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_named_tool_is_called_with_valid_arguments_and_reports_stop(client):
    choice = create(client, tools=[WEATHER, TIME], tool_choice=NAMED).choices[0]
    assert choice.message.content is None and len(choice.message.tool_calls) == 1
    assert_weather_call(choice.message.tool_calls[0])
    assert choice.finish_reason == "stop"  # OpenAI's (and vLLM's) finish_reason for a forced named tool


@pytest.mark.parametrize("tool_choice", ["required", "auto"])
def test_chosen_calls_report_tool_calls(client, tool_choice):
    choice = create(client, tools=[WEATHER], tool_choice=tool_choice).choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert_weather_call(choice.message.tool_calls[0])
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}


def test_auto_lets_the_model_answer_in_text(client):
    choice = create(client, [{"role": "user", "content": "Hello, who are you?"}], tools=[WEATHER]).choices[0]
    assert choice.finish_reason == "stop" and not choice.message.tool_calls and choice.message.content


def test_tool_choice_none_never_calls_nor_leaks_markup(client):
    for seed in range(4):
        choice = create(client, tools=[WEATHER], tool_choice="none", temperature=1, seed=seed).choices[0]
        assert not choice.message.tool_calls and "<tool_call>" not in (choice.message.content or "")
        assert choice.finish_reason in ("stop", "length")


def test_parallel_calls_get_distinct_ids(client):
    message = create(client, TWO_CITIES, tools=[WEATHER], tool_choice="required").choices[0].message
    assert len(message.tool_calls) == 2 and len({c.id for c in message.tool_calls}) == 2
    # Which cities a 283k-parameter model copies is its business; that both calls are well formed is ours.
    assert {json.loads(c.function.arguments)["city"] for c in message.tool_calls} <= {"London", "Paris"}


def test_parallel_tool_calls_false_allows_one_call(client):
    for seed in range(3):
        message = create(client, TWO_CITIES, tools=[WEATHER], tool_choice="required", parallel_tool_calls=False,
                         temperature=1, seed=seed).choices[0].message
        assert len(message.tool_calls) == 1


def test_required_calls_validate_under_sampling(client):
    for seed in range(4):
        response = create(client, TWO_CITIES, tools=[WEATHER, TIME], tool_choice="required", temperature=1,
                          seed=seed, n=2)
        for choice in response.choices:
            assert choice.finish_reason == "tool_calls" and choice.message.tool_calls
            for call in choice.message.tool_calls:
                tool = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
                jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])


def test_stream_helper_accumulates_the_same_calls(client):
    kw = {"tools": [WEATHER], "tool_choice": "required", "temperature": 0, "max_tokens": 64}
    with client.chat.completions.stream(model="tiny", messages=TWO_CITIES, **kw) as stream:
        final = stream.get_final_completion()
    plain = create(client, TWO_CITIES, **kw).choices[0]
    streamed = final.choices[0]
    assert streamed.finish_reason == plain.finish_reason == "tool_calls"
    assert [(c.function.name, c.function.arguments) for c in streamed.message.tool_calls] == \
        [(c.function.name, c.function.arguments) for c in plain.message.tool_calls]


def test_stream_deltas_announce_each_call_once(client):
    heads, fragments = {}, {}
    for chunk in create(client, TWO_CITIES, tools=[WEATHER], tool_choice="required", stream=True):
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or []:
                if tc.id is not None:
                    assert tc.index not in heads and tc.type == "function" and tc.function.name == "get_weather"
                    heads[tc.index] = tc.id
                else:
                    assert tc.index in heads and tc.function.name is None and tc.type is None
                fragments[tc.index] = fragments.get(tc.index, "") + (tc.function.arguments or "")
    assert sorted(heads) == [0, 1] and len(set(heads.values())) == 2
    assert all(json.loads(text)["city"] for text in fragments.values())


def test_tool_result_round_trip(client):
    first = create(client, tools=[WEATHER], tool_choice="required").choices[0].message
    call = first.tool_calls[0]
    history = PARIS + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"temperature": 21, "condition": "sunny"})},
    ]
    choice = create(client, history, tools=[WEATHER]).choices[0]
    assert choice.finish_reason == "stop" and choice.message.content and not choice.message.tool_calls


def test_logprobs_with_tool_calls(client):
    choice = create(client, tools=[WEATHER], tool_choice="required", logprobs=True, top_logprobs=2).choices[0]
    assert choice.logprobs.content and choice.message.tool_calls


def test_cut_off_call_reports_length(client):
    choice = create(client, tools=[WEATHER], tool_choice="required", max_tokens=8).choices[0]
    assert choice.finish_reason == "length"


BAD = [
    ("tool_choice without tools", {"tool_choice": "auto"}, "tool_choice"),
    ("unknown named tool", {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice"),
    ("duplicate tool names", {"tools": [WEATHER, WEATHER]}, "tools"),
    ("allowed tool not declared", {"tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "nope"}}]}}},
     "tool_choice.allowed_tools.tools[0]"),
    ("strict tool with open object", {"tools": [{"type": "function", "function": {
        "name": "f", "strict": True, "parameters": {"type": "object", "properties": {"a": {"type": "string"}},
                                                    "required": ["a"]}}}]}, "tools[0].function.parameters"),
    ("strict schema missing required", {"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "strict": True, "schema": {"type": "object", "properties": {"a": {"type": "string"}},
                                                "additionalProperties": False}}}},
     "response_format.json_schema.schema"),
    ("unenforceable format", {"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "string", "format": "nonsense"}}}}}},
     "response_format.json_schema.schema"),
    ("dangling $ref in tool", {"tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}}}]},
     "tools[0].function.parameters"),
    ("json_schema without schema", {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format.json_schema.schema"),
    ("legacy functions", {"functions": [WEATHER["function"]]}, "functions"),
    ("legacy function_call", {"function_call": "auto"}, "function_call"),
]


@pytest.mark.parametrize("name,fields,param", BAD, ids=[b[0] for b in BAD])
def test_unenforceable_requests_are_400_naming_the_field(http, name, fields, param):
    r = http.post("/v1/chat/completions", json={"model": "tiny", "messages": PARIS, "max_tokens": 8, **fields})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def test_a_tool_without_parameters_takes_no_arguments(client):
    bare = {"type": "function", "function": {"name": "get_weather", "description": "Get the weather."}}
    choice = create(client, tools=[bare], tool_choice="required").choices[0]
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {}


def test_a_call_cut_off_in_its_name_leaks_no_markup(client):
    choice = create(client, tools=[WEATHER], tool_choice="required", max_tokens=3).choices[0]
    assert choice.finish_reason == "length" and "<tool_call>" not in (choice.message.content or "")
