"""The tool-call and structured-output fault transforms, offline: applied to a real OpenAI tool-call stream (and to
non-streamed bodies), each breaks exactly what its fault describes, and the judgement its checks use sees it."""

from __future__ import annotations

import copy
import json
from typing import Any

from wirecheck.fixtures import transcripts_dir
from wirecheck.reference_server.faults import transforms as T
from wirecheck.spec import sse
from wirecheck.suites import toolcalls as tc

from .test_toolcalls import PARALLEL, TOOLS, call, stream

OPENAI_TOOL_STREAM = (transcripts_dir() / "a247c49c5fcd.sse").read_bytes()
BODY = {"id": "chatcmpl-2", "object": "chat.completion", "created": 1700000000, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": None,
                                             "tool_calls": [call(), call('{"city": "London"}', id="call_2")]},
                     "logprobs": None, "finish_reason": "tool_calls"}]}


def ctx(params: dict[str, Any] | None = None, body: Any = None) -> T.Context:
    return T.Context(params=params or {}, request=T.Req("POST", "chat/completions", {}, body))


def streamed(kind: str, body: bytes = OPENAI_TOOL_STREAM, **params: Any) -> list[sse.SSEItem]:
    return sse.parse(b"".join(T.apply_stream(kind, body, ctx(params))))


def message(kind: str, **params: Any) -> dict[str, Any]:
    return T.apply_json(kind, copy.deepcopy(BODY), ctx(params))["choices"][0]


def parallel_body() -> bytes:
    return b"".join(it.raw for it in stream(*PARALLEL))


def test_arguments_as_object_non_streamed():
    choice = message("json.tool-arguments-object")
    assert [c["function"]["arguments"] for c in choice["message"]["tool_calls"]] == [{"city": "Paris"},
                                                                                     {"city": "London"}]
    assert tc.arguments_type_problems(choice["message"]["tool_calls"])


def test_arguments_as_object_streamed_in_one_piece_before_the_finish():
    items = streamed("json.tool-arguments-object")
    chunks = [it.json() for it in items if it.kind == "event" and not it.is_done]
    objects = [f["function"]["arguments"] for c in chunks for ch in c["choices"]
               for f in ch["delta"].get("tool_calls", []) if isinstance(f.get("function", {}).get("arguments"), dict)]
    assert objects == [{"city": "San Francisco", "state": "CA"}]
    finish = next(k for k, c in enumerate(chunks) if c["choices"] and c["choices"][0]["finish_reason"])
    assert chunks[finish]["choices"][0]["finish_reason"] == "tool_calls"
    assert "arguments" in json.dumps(chunks[finish - 1]["choices"][0]["delta"])
    assert len(chunks) < len([it for it in sse.parse(OPENAI_TOOL_STREAM) if it.kind == "event"])
    assert any("as a JSON dict" in p for p in tc.delta_problems(items))


def test_header_repeated_on_every_fragment():
    items = streamed("json.tool-call-fragments")
    assert all(f.get("id") and f["function"].get("name") for _, _, f in tc.tool_fragments(items))
    assert tc.streamed_calls(items)[0].names[:2] == ["get_weather", "get_weather"]
    problems = tc.delta_problems(items)
    assert any("repeats id in" in p for p in problems) and any("repeats function.name in" in p for p in problems)
    assert any("'get_weatherget_weather" in p for p in problems)
    only_id = streamed("json.tool-call-fragments", repeat=["id"])
    assert any("repeats id in" in p for p in tc.delta_problems(only_id))
    only_type = streamed("json.tool-call-fragments", repeat=["type"])
    assert tc.delta_problems(only_type) == []
    untouched = T.apply_json("json.tool-call-fragments", copy.deepcopy(BODY), ctx())
    assert untouched == BODY


def test_parallel_calls_squashed():
    items = streamed("json.tool-calls-one-index", parallel_body())
    assert {f["index"] for _, _, f in tc.tool_fragments(items)} == {0}
    assert tc.streamed_calls(items)[0].headers == 2
    ids = [c["id"] for c in message("json.tool-calls-one-index")["message"]["tool_calls"]]
    assert tc.distinct_id_problems(ids, "non-streamed")


def test_calls_left_as_text_content():
    choice = message("json.tool-calls-as-content")
    assert "tool_calls" not in choice["message"] and choice["finish_reason"] == "stop"
    texts = choice["message"]["content"].split("</tool_call>")
    assert json.loads(texts[1].replace("<tool_call>", "")) == {"name": "get_weather", "arguments": {"city": "London"}}
    items = streamed("json.tool-calls-as-content", parallel_body())
    assert tc.tool_fragments(items) == []
    from wirecheck.suites.judge import assemble

    choice0 = assemble(items)[0]
    assert choice0.finish_reason == "stop"
    calls = [json.loads(t.replace("<tool_call>", "")) for t in choice0.content.split("</tool_call>") if t.strip()]
    assert calls == [{"name": "get_weather", "arguments": {"city": "Paris"}},
                     {"name": "get_weather", "arguments": {"city": "London"}}]


def test_tool_choice_unchecked_drops_only_what_openai_rejects():
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    named = {"type": "function", "function": {"name": "get_weather"}}
    unknown = {"type": "function", "function": {"name": "get_stock_price"}}
    fine = [{"tools": tools, "tool_choice": named}, {"tools": tools, "tool_choice": "required"}, {"tools": tools}]
    for body in fine:
        req = T.Req("POST", "chat/completions", {}, body)
        assert T.tool_choice_unchecked(req, ctx()) is req
    rejected = ({"tools": tools, "tool_choice": unknown}, {"tool_choice": "required"}, {"tools": [], "tool_choice": "auto"})
    for body in rejected:
        out = T.tool_choice_unchecked(T.Req("POST", "chat/completions", {}, body), ctx())
        assert "tool_choice" not in out.body and "tool_choice" in body


def test_tool_choice_none_ignored_and_response_format_dropped_reuse_request_kinds():
    body = {"tools": [], "tool_choice": "none", "response_format": {"type": "json_object"}}
    req = T.Req("POST", "chat/completions", {}, body)
    assert T.set_fields(req, ctx({"when": {"tool_choice": "none"}, "fields": {"tool_choice": "required"}})).body[
        "tool_choice"] == "required"
    assert "response_format" not in T.drop_fields(req, ctx({"fields": ["response_format"]})).body


def test_hold_buffers_only_requests_with_the_named_fields():
    held = T.apply_stream("stream.hold", OPENAI_TOOL_STREAM, ctx({"when_present": ["tools"]}, {"tools": []}))
    assert held == [OPENAI_TOOL_STREAM]
    passed = T.apply_stream("stream.hold", OPENAI_TOOL_STREAM, ctx({"when_present": ["tools"]}, {"stream": True}))
    assert len(passed) > 1 and b"".join(passed) == OPENAI_TOOL_STREAM


def test_finish_reason_map_turns_tool_calls_into_stop():
    assert message("json.finish-reason", map={"tool_calls": "stop"})["finish_reason"] == "stop"
    assert TOOLS  # the schemas the checks validate against
