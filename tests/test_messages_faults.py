"""The Anthropic Messages fault transforms, offline: applied to a real recorded Anthropic tool-use stream (and to
a non-streamed Message, requests and error replies), each breaks what its fault describes, the stream invariants
its fault names see it, and the recording itself passes them all. Also: the anthropic profile, and the credentials
the suites send on Anthropic paths."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from wirecheck.fixtures import transcripts_dir
from wirecheck.reference_server.faults import load_faults
from wirecheck.reference_server.faults import transforms as T
from wirecheck.spec import sse
from wirecheck.suites.invariants import STREAM_CHECKS, lint

RECORDED = (transcripts_dir("anthropic-messages-stream") / "tool_use_response.txt").read_bytes()
FAULTS = load_faults()
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_sequence": None,
           "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
           "stop_reason": "tool_use", "usage": {"input_tokens": 9, "output_tokens": 5}}
STREAM_FAULTS = sorted(name for name, f in FAULTS.items()
                       if name.startswith("messages-") and f.stream is True and f.stage in ("json", "stream"))


def ctx(params: dict[str, Any] | None = None, body: Any = None, headers: dict[str, str] | None = None,
        query: str = "", path: str = "messages") -> T.Context:
    return T.Context(params=params or {}, request=T.Req("POST", path, headers or {}, body, query))


def faulted(name: str, body: bytes = RECORDED) -> list[sse.SSEItem]:
    fault = FAULTS[name]
    return sse.parse(b"".join(T.apply_stream(fault.kind, body, ctx(dict(fault.params)))))


def events(items: list[sse.SSEItem]) -> list[dict[str, Any]]:
    return [json.loads(it.data) for it in items if it.kind == "event" and it.has_data and not it.is_done]


def test_the_recording_passes_every_messages_invariant():
    assert lint("messages", sse.parse(RECORDED), strict=True) == {}


@pytest.mark.parametrize("name", STREAM_FAULTS)
def test_stream_fault_breaks_its_invariants(name: str):
    named = [c for c in FAULTS[name].checks if c in STREAM_CHECKS["messages"]]
    failed = lint("messages", faulted(name), strict=True)
    assert set(named) <= set(failed), (named, failed)


def test_input_in_start_moves_the_input_and_keeps_names():
    items = faulted("messages-input-in-start")
    starts = [e for e in events(items) if e["type"] == "content_block_start"]
    assert starts[1]["content_block"]["input"] == json.loads(recorded_input())
    assert not any(e.get("delta", {}).get("type") == "input_json_delta" for e in events(items))
    assert all(it.event == json.loads(it.data)["type"] for it in items if it.kind == "event" and it.has_data)
    assert [e["type"] for e in events(items)][-3:] == ["content_block_stop", "message_delta", "message_stop"]


def recorded_input(items: list[sse.SSEItem] | None = None) -> str:
    return "".join(e["delta"]["partial_json"] for e in events(items or sse.parse(RECORDED))
                   if e.get("delta", {}).get("type") == "input_json_delta")


def test_partial_json_loses_its_opening():
    assert recorded_input(faulted("messages-partial-json-broken")) == recorded_input()[2:]


def test_messages_error_ends_the_stream_with_a_named_error():
    items = faulted("messages-error-midstream")
    last = [it for it in items if it.kind == "event"][-1]
    assert last.event == "error" and json.loads(last.data)["error"]["type"] == "overloaded_error"
    assert len(events(items)) == 4


def test_stop_reason_map_in_the_message_and_the_stream():
    kind, params = FAULTS["messages-tool-end-turn"].kind, FAULTS["messages-tool-end-turn"].params
    assert T.apply_json(kind, copy.deepcopy(MESSAGE), ctx(params))["stop_reason"] == "end_turn"
    sequence = {**MESSAGE, "stop_reason": "stop_sequence", "stop_sequence": "##"}
    unreported = FAULTS["messages-stop-sequence-unreported"]
    out = T.apply_json(unreported.kind, sequence, ctx(unreported.params))
    assert (out["stop_reason"], out["stop_sequence"]) == ("end_turn", None)
    assert T.apply_json(unreported.kind, MESSAGE, ctx(unreported.params)) == MESSAGE


def test_messages_set_on_the_message_body():
    fault = FAULTS["messages-response-schema"]
    out = T.apply_json(fault.kind, copy.deepcopy(MESSAGE), ctx(fault.params))
    assert "input_tokens" not in out["usage"] and out["usage"]["total_tokens"] == 14


def test_require_bearer():
    fn = T.TRANSFORMS["request.require-bearer"].fn
    req = T.Req("POST", "messages", {"x-api-key": "k"}, {})
    reply = fn(req, ctx())
    assert reply.status == 401 and reply.json()["error"]["type"] == "authentication_error"
    ok = T.Req("POST", "messages", {"authorization": "Bearer k"}, {})
    assert fn(ok, ctx()) is ok


def test_messages_reply_when_query_or_always():
    fn = T.TRANSFORMS["request.messages-reply"].fn
    params = dict(FAULTS["messages-beta-rejected"].params)
    plain = T.Req("POST", "messages", {}, {})
    assert fn(plain, ctx(params)) is plain
    reply = fn(T.Req("POST", "messages", {}, {}, "beta=true"), ctx(params))
    assert reply.status == 404 and reply.json() == {"type": "error", "error": {"type": "not_found_error",
                                                                                 "message": "Not Found"}}
    missing = fn(T.Req("POST", "messages/count_tokens", {}, {}), ctx(dict(FAULTS["messages-count-tokens-missing"].params)))
    assert missing.status == 404 and "messages/count_tokens" in missing.json()["error"]["message"]


def test_reject_tool_result_blocks():
    fn = T.TRANSFORMS["request.reject-tool-result-blocks"].fn
    result = {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "21 C"}]}
    req = T.Req("POST", "messages", {}, {"messages": [{"role": "user", "content": [result]}]})
    assert fn(req, ctx()).status == 400
    flat = T.Req("POST", "messages", {}, {"messages": [{"role": "user", "content": [{**result, "content": "21 C"}]}]})
    assert fn(flat, ctx()) is flat


def test_openai_error_envelope():
    fn = T.TRANSFORMS["response.openai-error-envelope"].fn
    error = T.Reply.of_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "no model"}})
    body = fn(error, ctx()).json()
    assert "type" not in body and body["error"]["message"] == "no model"
    ok = T.Reply.of_json(200, MESSAGE)
    assert fn(ok, ctx()) is ok


def test_set_fields_defaults_only_where_absent():
    fn = T.TRANSFORMS["request.set-fields"].fn
    params = dict(FAULTS["messages-max-tokens-defaulted"].params)
    assert fn(T.Req("POST", "messages", {}, {"model": "m"}), ctx(params)).body == {"model": "m", "max_tokens": 16}
    assert fn(T.Req("POST", "messages", {}, {"max_tokens": 3}), ctx(params)).body == {"max_tokens": 3}


# ------------------------------------------------------------------------------------ profiles and credentials


def test_anthropic_profile_and_credentials_per_path():
    from wirecheck.suites.target import Target, load_profile

    profile = load_profile("anthropic")
    assert profile.surfaces == ("messages",) and profile.auth == "x-api-key" and "count_tokens" in profile.claims
    assert "messages" not in load_profile("openai").surfaces and "messages" in load_profile("reference").surfaces
    target = Target(base_url="http://x/v1", api_key="k", profile=profile, model="m", embedding_model="m")
    for path in ("messages", "/messages/count_tokens", "messages?beta=true"):
        assert target.auth_headers(path) == {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    assert target.auth_headers("chat/completions") == {"Authorization": "Bearer k"}
    assert target.auth_headers("messagesx") == {"Authorization": "Bearer k"}


def test_extra_pings_are_named_and_harmless():
    items = faulted("benign-messages-pings")
    pings = [it for it in items if it.kind == "event" and it.event == "ping"]
    assert len(pings) > len([it for it in sse.parse(RECORDED) if it.event == "ping"]) + 5
    assert lint("messages", items, strict=True) == {}
