"""The tool-call and structured-output judgements (suites/toolcalls.py), offline: real OpenAI tool-call streams
pass, hand-broken calls and streams are reported."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wirecheck.fixtures import transcript_files
from wirecheck.spec import sse
from wirecheck.suites import toolcalls as tc

TOOLS = tc.tool_schemas([tc.WEATHER])
OPENAI_TOOL_STREAMS = [p for p in transcript_files() if b'"tool_calls"' in p.read_bytes()]
HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m"}


def call(arguments: Any = '{"city": "Paris"}', **over: Any) -> dict[str, Any]:
    return {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}, **over}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**HEAD, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def fragment(index: int, arguments: str, header: str | None = None) -> dict[str, Any]:
    if header is None:
        return {"index": index, "function": {"arguments": arguments}}
    return {"index": index, "id": f"call_{header}", "type": "function",
            "function": {"name": "get_weather", "arguments": arguments}}


def stream(*fragments: dict[str, Any]) -> list[sse.SSEItem]:
    chunks = [chunk({"role": "assistant", "content": None})]
    chunks += [chunk({"tool_calls": [f]}) for f in fragments]
    chunks.append(chunk({}, "tool_calls"))
    return sse.parse(b"".join(sse.encode_json(c) for c in chunks) + sse.DONE)


PARALLEL = [fragment(0, "", "a"), fragment(0, '{"city": '), fragment(0, '"Paris"}'),
            fragment(1, "", "b"), fragment(1, '{"city": "London"}')]


# ------------------------------------------------------------------------------------------------ non-stream


def test_a_valid_call_passes():
    assert tc.call_problems(call(), TOOLS, "tool_calls[0]") == []


@pytest.mark.parametrize(("broken", "expected"), [
    (call(id=""), "id"),
    (call(type="tool"), "type"),
    (call(function={"name": "get_time", "arguments": "{}"}), "not a declared tool"),
    (call({"city": "Paris"}), "not a string"),
    (call('{"city": "Par'), "not valid JSON"),
    (call('["Paris"]'), "not a JSON object"),
    (call('{"town": "Paris"}'), "'city' is a required property"),
    (call('{"city": 7}'), "['city']: 7 is not of type 'string'"),
])
def test_broken_calls_are_named(broken: dict[str, Any], expected: str):
    problems = tc.call_problems(broken, TOOLS, "tool_calls[0]")
    assert any(expected in p for p in problems), problems


def test_arguments_type_and_distinct_ids():
    assert tc.arguments_type_problems([call(), call()]) == []
    assert "JSON dict, not a string" in tc.arguments_type_problems([call(), call({"city": "x"})])[0]
    assert tc.distinct_id_problems(["call_a", "call_b"], "x") == []
    assert "share ids" in tc.distinct_id_problems(["call_a", "call_a"], "x")[0]


def test_structured_content():
    schema = {"type": "object", "properties": {"unit": {"enum": ["celsius"]}}, "required": ["unit"],
              "additionalProperties": False}
    assert tc.json_object_problems('{"unit": "celsius"}', "content", schema) == []
    assert tc.json_object_problems('{"a": 1}', "content") == []
    assert "not valid JSON" in tc.json_object_problems("Paris is in France.", "content")[0]
    assert "not a JSON object" in tc.json_object_problems("[1]", "content")[0]
    assert "not a string" in tc.json_object_problems(None, "content")[0]
    assert tc.json_object_problems('{"unit": "kelvin", "x": 1}', "content", schema)


# -------------------------------------------------------------------------------------------------- streams


@pytest.mark.parametrize("path", OPENAI_TOOL_STREAMS, ids=lambda p: p.name)
def test_real_openai_tool_streams_pass(path):
    items = sse.parse(path.read_bytes())
    calls = tc.streamed_calls(items)
    assert len(calls) == 1 and calls[0].headers == 1 and json.loads(calls[0].arguments)
    assert tc.delta_problems(items) == []


def test_parallel_calls_assemble_by_index():
    items = stream(*PARALLEL)
    calls = tc.streamed_calls(items)
    assert [(c.index, c.id, json.loads(c.arguments)) for c in calls] == [
        (0, "call_a", {"city": "Paris"}), (1, "call_b", {"city": "London"})]
    assert tc.delta_problems(items) == [] and tc.streamed_call_problems(items, TOOLS) == []


@pytest.mark.parametrize(("fragments", "expected"), [
    ([{**fragment(0, "", "a"), "index": None}], "not an integer"),
    ([{"index": 0, "function": {"arguments": "{}"}}], "without an id"),
    ([{**fragment(0, "{}", "a"), "type": None}], "type null"),
    ([{"index": 0, "id": "call_a", "type": "function", "function": {"arguments": "{}"}}], "without function.name"),
    ([fragment(0, "", "a"), {**fragment(0, "{}"), "id": "call_a"}], "repeats id"),
    ([fragment(0, "", "a"), {"index": 0, "function": {"name": "get_weather", "arguments": "{}"}}],
     "repeats function.name"),
    ([fragment(0, "", "a"), {"index": 0, "function": {"arguments": {"city": "Paris"}}}], "as a JSON dict"),
    ([fragment(0, '{"city": ', "a")], "not valid JSON"),
])
def test_broken_deltas_are_named(fragments: list[dict[str, Any]], expected: str):
    problems = tc.delta_problems(stream(*fragments))
    assert any(expected in p for p in problems), problems


def test_squashed_parallel_calls_show_as_repeated_headers():
    squashed = [{**f, "index": 0} for f in PARALLEL]
    calls = tc.streamed_calls(stream(*squashed))
    assert len(calls) == 1 and calls[0].headers == 2 and calls[0].ids == ["call_a", "call_b"]
    assert any("repeats id" in p for p in tc.delta_problems(stream(*squashed)))


def test_streamed_arguments_validate_against_the_schema():
    items = stream(fragment(0, "", "a"), fragment(0, '{"town": "Paris"}'))
    assert "'city' is a required property" in tc.streamed_call_problems(items, TOOLS)[0]


def _sdk_accumulated(items: list[sse.SSEItem]) -> Any:
    """The message openai-python's own stream accumulator builds from these chunks (ChatCompletionStreamState)."""
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    state = ChatCompletionStreamState()
    for item in items:
        if item.kind == "event" and item.has_data and not item.is_done:
            state.handle_chunk(ChatCompletionChunk.construct(**item.json()))
    return state.current_completion_snapshot.choices[0].message


def test_a_repeated_type_is_what_the_sdk_accepts():
    """Later fragments that repeat "type": "function" (transformers serve, LiteLLM) are schema-valid and the SDK's
    accumulator replaces `type`: no problem reported (issue 14 false positive 2)."""
    items = stream(fragment(0, "", "a"), {**fragment(0, '{"city": '), "type": "function"},
                   {**fragment(0, '"Paris"}'), "type": "function"})
    assert tc.delta_problems(items) == []
    call = _sdk_accumulated(items).tool_calls[0]
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "call_a", "function", "get_weather", '{"city": "Paris"}')


@pytest.mark.parametrize("repeated", [{"id": "call_a"}, {"function": {"name": "get_weather", "arguments": "{}"}}],
                         ids=["id", "name"])
def test_a_repeated_id_or_name_is_reported_as_the_sdk_builds_it(repeated: dict[str, Any]):
    """The message says what openai-python's accumulator made of what was sent, never an example."""
    later = {**fragment(0, "{}"), **repeated}
    items = stream(fragment(0, "", "a"), later)
    built = _sdk_accumulated(items).tool_calls[0]
    key, value = ("id", built.id) if "id" in repeated else ("function.name", built.function.name)
    assert value in ("call_acall_a", "get_weatherget_weather")
    problems = tc.delta_problems(items)
    assert len(problems) == 1 and f"repeats {key}" in problems[0] and repr(value) in problems[0], problems
    other = "get_weatherget_weather" if key == "id" else "call_acall_a"
    assert other not in problems[0]
