"""The Responses API fault transforms, offline: applied to a complete Responses stream (text and a function
call) and to non-streamed bodies, each breaks exactly what its fault describes, the invariant its checks use
sees it, and the untouched stream passes every invariant (including the live-only closed-items rule)."""

from __future__ import annotations

import copy
import json
from typing import Any

from wirecheck.reference_server.faults import transforms as T
from wirecheck.spec import sse
from wirecheck.suites.invariants import lint
from wirecheck.suites.invariants.responses import closed_item_problems

from .test_invariants import resp_body, resp_call_events

STREAM = resp_body(resp_call_events())
FINAL = resp_call_events()[-1]["response"]


def ctx(params: dict[str, Any] | None = None, body: Any = None) -> T.Context:
    return T.Context(params=params or {}, request=T.Req("POST", "responses", {}, body))


def streamed(kind: str, body: bytes = STREAM, **params: Any) -> list[sse.SSEItem]:
    return sse.parse(b"".join(T.apply_stream(kind, body, ctx(params))))


def types(items: list[sse.SSEItem]) -> list[str]:
    return [json.loads(it.data)["type"] for it in items if it.kind == "event" and it.has_data and not it.is_done]


def failing(items: list[sse.SSEItem]) -> set[str]:
    return set(lint("responses", items, strict=True))


def test_the_untouched_stream_conforms():
    items = sse.parse(STREAM)
    assert failing(items) == set() and closed_item_problems(items) == []


def test_drop_events():
    items = streamed("json.drop-events", types=["response.completed"])
    assert "response.completed" not in types(items)
    assert failing(items) == {"responses.stream.terminal-event"}
    items = streamed("json.drop-events", types=["response.function_call_arguments.delta"])
    assert failing(items) == {"responses.stream.arguments-streamed"}
    unclosed = streamed("json.drop-events", types=["response.content_part.done", "response.output_item.done"])
    assert failing(unclosed) == set() and len(closed_item_problems(unclosed)) == 3


def test_repeat_events():
    items = streamed("json.repeat-events", types=["response.completed"])
    assert types(items).count("response.completed") == 2
    assert {"responses.stream.terminal-event", "responses.stream.sequence-numbers"} <= failing(items)


def test_event_field_append_and_number():
    items = streamed("json.event-field", types=["response.output_text.done"], field="text", append=" [edited]")
    assert failing(items) == {"responses.stream.output-text"}
    items = streamed("json.event-field", types=["response.output_text.delta", "response.function_call_arguments.delta"],
                     field="item_id", number=True)
    ids = [json.loads(it.data).get("item_id") for it in items if it.kind == "event" and "delta" in (it.event or "")]
    assert len(set(ids)) == len(ids) == 4
    assert "responses.stream.output-items" in failing(items)


def test_sequence_numbers_all_zero_through_set_field():
    items = streamed("json.set-field", field="sequence_number", value=0)
    assert failing(items) == {"responses.stream.sequence-numbers"}


def test_drop_item_field_streamed_and_not():
    items = streamed("json.drop-item-field", item_type="function_call", field="call_id")
    assert failing(items) == {"responses.stream.function-calls"}
    body = T.apply_json("json.drop-item-field", copy.deepcopy(FINAL), ctx({"item_type": "function_call",
                                                                             "field": "call_id"}))
    assert "call_id" not in body["output"][1] and body["output"][0] == FINAL["output"][0]


def test_arguments_as_object_streamed_and_not():
    items = streamed("json.item-arguments-object")
    assert failing(items) == {"responses.stream.function-calls"}
    body = T.apply_json("json.item-arguments-object", copy.deepcopy(FINAL), ctx())
    assert body["output"][1]["arguments"] == {"city": "Paris"}


def test_usage_total_streamed_and_not():
    items = streamed("json.responses-usage-total")
    assert failing(items) == {"responses.stream.usage"}
    body = T.apply_json("json.responses-usage-total", copy.deepcopy(FINAL), ctx())
    assert body["usage"] == {"input_tokens": 9, "output_tokens": 12, "total_tokens": 12}


def test_incomplete_reported_as_completed():
    body = {"id": "resp_1", "object": "response", "status": "incomplete",
            "incomplete_details": {"reason": "max_output_tokens"}, "output": []}
    assert T.apply_json("json.responses-status", body, ctx()) == {**body, "status": "completed",
                                                                  "incomplete_details": None}
    event = {"type": "response.incomplete", "sequence_number": 9, "response": body}
    out = T.TRANSFORMS["json.responses-status"].fn(event, ctx())[0]
    assert out["type"] == "response.completed" and out["response"]["status"] == "completed"


def test_reject_input_items():
    fn = T.TRANSFORMS["request.reject-input-items"].fn
    plain = T.Req("POST", "responses", {}, {"model": "m", "input": "Hello"})
    assert fn(plain, ctx()) is plain
    items = T.Req("POST", "responses", {}, {"model": "m", "input": [{"role": "user", "content": "Hello"}]})
    reply = fn(items, ctx())
    assert isinstance(reply, T.Reply) and reply.status == 400 and reply.json()["error"]["param"] == "input"
    assert fn(items, ctx({"types": ["function_call_output"]})) is items


def test_rename_events_keeps_the_data():
    items = streamed("stream.rename-events", map={"response.output_text.delta": "response.text.delta"})
    renamed = [it for it in items if it.event == "response.text.delta"]
    assert len(renamed) == 2 and all(json.loads(it.data)["type"] == "response.output_text.delta" for it in renamed)
    assert failing(items) == {"responses.stream.event-name-matches-type"}


def test_data_only_drops_names_and_adds_done():
    items = streamed("stream.data-only")
    events = [it for it in items if it.kind == "event"]
    assert all(it.event is None for it in events) and events[-1].is_done
    assert failing(items) == set()  # tolerated by the invariants; responses.stream.named-events judges it live


def test_error_midstream_in_the_responses_shape():
    items = streamed("stream.responses-error-midstream", after=3)
    assert types(items) == ["response.created", "response.in_progress", "response.output_item.added", "error",
                            "response.failed"]
    assert [it.event for it in items if it.kind == "event"][-2:] == ["error", "response.failed"]
    assert "responses.stream.in-band-error" in failing(items)
    assert "responses.stream.sequence-numbers" not in failing(items)


def test_done_followed_by_events_is_reported():
    body = STREAM.replace(b"event: response.completed", sse.DONE + b"event: response.completed")
    assert "responses.stream.terminal-event" in failing(sse.parse(body))
