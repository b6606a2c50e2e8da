"""Fault transforms as pure functions: request JSON, response bodies and event streams in, broken ones out."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from wirecheck.fixtures import transcript_files
from wirecheck.reference_server.faults import transforms as T
from wirecheck.reference_server.faults.proxy import api_path, split_fault_path
from wirecheck.spec import sse

CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "m",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                      "finish_reason": None}]}


def chunk(delta=None, finish=None, **extra):
    return {**CHUNK, "choices": [{"index": 0, "delta": delta or {}, "logprobs": None, "finish_reason": finish}],
            **extra}


USAGE = {**CHUNK, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
STREAM_OBJS = [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
               chunk({}, "stop"), USAGE]
STREAM = b"".join(sse.encode_json(o) for o in STREAM_OBJS) + sse.DONE
COMPLETION = {"id": "chatcmpl-2", "object": "chat.completion", "created": 1700000000, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "logprobs": None,
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def ctx(params=None, body=None, path="chat/completions", **kw) -> T.Context:
    return T.Context(params=params or {}, request=T.Req("POST", path, {}, body), **kw)


def run(kind: str, stream: bytes = STREAM, **kw) -> bytes:
    return b"".join(T.apply_stream(kind, stream, ctx(**kw)))


def objs(body: bytes) -> list:
    return [it.json() for it in sse.parse(body) if it.kind == "event" and it.has_data and not it.is_done]


def envelope(status: int = 400) -> T.Reply:
    return T.Reply.of_json(status, {"error": {"message": "bad temperature", "type": "invalid_request_error",
                                              "param": "temperature", "code": None}})


# ------------------------------------------------------------------------------------------- registry


def test_every_kind_names_its_stage_and_documents_itself() -> None:
    assert len(T.TRANSFORMS) >= 30
    for kind, t in T.TRANSFORMS.items():
        assert kind.split(".")[0] == t.stage in T.STAGES
        assert t.doc, kind


# ------------------------------------------------------------------------------------------- request stage


def test_drop_and_set_fields_leave_the_original_alone() -> None:
    body = {"model": "m", "max_completion_tokens": 3, "n": 2, "stream": True}
    req = T.Req("POST", "chat/completions", {}, body)
    out = T.drop_fields(req, ctx({"fields": ["max_completion_tokens", "n"]}))
    assert out.body == {"model": "m", "stream": True}
    out = T.set_fields(req, ctx({"fields": {"stream_options": {"include_usage": True}}}))
    assert out.body["stream_options"] == {"include_usage": True}
    assert body == {"model": "m", "max_completion_tokens": 3, "n": 2, "stream": True}


def test_unknown_fields_rejected_top_level_and_inside_messages() -> None:
    ok = T.Req("POST", "chat/completions", {}, {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                                 "temperature": 0, "stream_options": {"include_usage": True}})
    assert T.reject_unknown_fields(ok, ctx()) is ok
    top = T.Req("POST", "chat/completions", {}, {**ok.body, "wirecheck_extra": 1})
    inner = T.Req("POST", "chat/completions", {}, {**ok.body, "messages": [{"role": "user", "content": "hi",
                                                                             "metadata": {}}]})
    for req, field in ((top, "wirecheck_extra"), (inner, "messages.0.metadata")):
        reply = T.reject_unknown_fields(req, ctx())
        assert isinstance(reply, T.Reply) and reply.status == 400
        assert "extra_forbidden" in reply.json()["message"] and field in reply.json()["message"]


def test_null_assistant_content_rejected_but_empty_string_accepted() -> None:
    call = [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None, "tool_calls": call},
               {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    reply = T.reject_assistant_content(T.Req("POST", "chat/completions", {}, {"messages": history}), ctx())
    assert isinstance(reply, T.Reply) and reply.status == 400 and "<nil>" in reply.json()["error"]["message"]
    for content in ("", "text"):
        history[1]["content"] = content
        req = T.Req("POST", "chat/completions", {}, {"messages": history})
        assert T.reject_assistant_content(req, ctx()) is req
    del history[1]["content"]
    req = T.Req("POST", "chat/completions", {}, {"messages": history})
    assert T.reject_assistant_content(req, ctx()) is req


def test_ignore_auth_swaps_in_the_upstream_key() -> None:
    req = T.Req("GET", "models", {"authorization": "Bearer wrong", "x-api-key": "x", "accept": "*/*"})
    assert T.ignore_auth(req, ctx(upstream_key="sk-good")).headers == {"accept": "*/*",
                                                                       "authorization": "Bearer sk-good"}
    assert T.ignore_auth(req, ctx()).headers == {"accept": "*/*"}


def test_reply_instead_formats_the_path() -> None:
    reply = T.reply_instead(T.Req("GET", "models/tiny"), ctx({"status": 404, "message": "no '{path}'"}))
    assert reply.status == 404 and reply.json()["error"]["message"] == "no 'models/tiny'"


# ------------------------------------------------------------------------------------------- response stage


def test_error_transforms_touch_errors_only() -> None:
    ok = T.Reply.of_json(200, COMPLETION)
    for fn in (T.error_status, T.fastapi_422, T.flat_error, T.error_html):
        assert fn(ok, ctx()) is ok


def test_error_as_200_keeps_the_body() -> None:
    out = T.error_status(envelope(), ctx({"status": 200}))
    assert out.status == 200 and out.body == envelope().body


def test_fastapi_422_shapes() -> None:
    out = T.fastapi_422(envelope(400), ctx())
    assert out.status == 422
    assert out.json() == {"detail": [{"type": "value_error", "loc": ["body", "temperature"], "msg": "bad temperature",
                                      "input": None}]}
    out = T.fastapi_422(envelope(404), ctx())
    assert out.status == 404 and out.json() == {"detail": "bad temperature"}


def test_flat_error_and_html() -> None:
    flat = T.flat_error(envelope(), ctx())
    assert flat.json() == {"object": "error", "message": "bad temperature", "type": "invalid_request_error",
                           "param": "temperature", "code": 400}
    page = T.error_html(envelope(401), ctx())
    assert page.status == 401 and page.content_type == "text/html" and b"<h1>401 Unauthorized</h1>" in page.body


# ------------------------------------------------------------------------------------------- json stage


def test_created_float_and_string() -> None:
    assert isinstance(T.apply_json("json.created-float", COMPLETION)["created"], float)
    out = T.apply_json("json.created-string", COMPLETION, ctx({"drop": ["object"]}))
    assert out["created"] == "1700000000" and "object" not in out


def test_usage_arithmetic_broken() -> None:
    out = T.apply_json("json.usage-total", COMPLETION, ctx())
    u = out["usage"]
    assert u["total_tokens"] != u["prompt_tokens"] + u["completion_tokens"]


def test_stop_leaked_needs_a_stop_and_finish_stop() -> None:
    assert T.apply_json("json.stop-leaked", COMPLETION, ctx(body={"stop": None})) == COMPLETION
    out = T.apply_json("json.stop-leaked", COMPLETION, ctx(body={"stop": [" world", "x"]}))
    assert out["choices"][0]["message"]["content"] == "Hello world"
    out = T.apply_json("json.stop-leaked", COMPLETION, ctx(body={"stop": "!"}))
    assert out["choices"][0]["message"]["content"] == "Hello!"
    streamed = objs(run("json.stop-leaked", body={"stop": ["ZZ"]}))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed if c["choices"])
    assert text == "HelloZZ"


def test_logprobs_dropped() -> None:
    body = {**COMPLETION, "choices": [{**COMPLETION["choices"][0], "logprobs": {"content": []}}]}
    out = T.apply_json("json.set-choice-field", body, ctx({"field": "logprobs", "value": None}))
    assert out["choices"][0]["logprobs"] is None and body["choices"][0]["logprobs"] == {"content": []}


def _b64(values, fmt="f"):
    return base64.b64encode(struct.pack(f"<{len(values)}{fmt}", *values)).decode()


EMB = {"object": "list", "model": "m", "usage": {"prompt_tokens": 2, "total_tokens": 2},
       "data": [{"object": "embedding", "index": 0, "embedding": _b64([0.5, -1.0, 2.0])},
                {"object": "embedding", "index": 1, "embedding": _b64([0.25, 0.0, 1.5])}]}


def test_embeddings_base64_float64_and_ignored() -> None:
    wide = T.apply_json("json.embeddings-base64-float64", EMB)
    raw = base64.b64decode(wide["data"][0]["embedding"])
    assert len(raw) == 24 and struct.unpack("<3d", raw) == (0.5, -1.0, 2.0)
    floats = T.apply_json("json.embeddings-base64-ignored", EMB)
    assert floats["data"][1]["embedding"] == [0.25, 0.0, 1.5]
    assert T.apply_json("json.embeddings-base64-ignored", floats) == floats  # floats stay floats


def test_embeddings_reversed_keep_their_index() -> None:
    out = T.apply_json("json.embeddings-reverse", EMB)
    assert [d["index"] for d in out["data"]] == [1, 0]
    single = {**EMB, "data": EMB["data"][:1]}
    assert T.apply_json("json.embeddings-reverse", single) == single


def test_models_owned_by_dropped_in_list_and_retrieve() -> None:
    model = {"id": "m", "object": "model", "created": 1, "owned_by": "me"}
    params = {"field": "owned_by", "delete": True}
    listed = T.apply_json("json.model-field", {"object": "list", "data": [model]}, ctx(params))
    assert listed["data"] == [{"id": "m", "object": "model", "created": 1}]
    assert T.apply_json("json.model-field", model, ctx(params)) == {"id": "m", "object": "model", "created": 1}


# ------------------------------------------------------------------------------------------- stream stage


def test_untouched_events_pass_byte_for_byte() -> None:
    assert run("json.usage-total", params={}) != STREAM  # the usage trailer changed
    assert run("json.created-float").count(b"[DONE]") == 1
    assert run("transport.none") == STREAM
    for path in transcript_files():
        body = path.read_bytes()
        assert b"".join(T.apply_stream("transport.none", body)) == body


def test_drop_done() -> None:
    out = run("stream.drop-done")
    assert not any(it.is_done for it in sse.parse(out)) and objs(out) == STREAM_OBJS


def test_keepalive_as_data_is_not_json() -> None:
    items = [it for it in sse.parse(run("stream.data-keepalive", params={"every": 2})) if it.kind == "event"]
    bad = [it for it in items if it.data == ": keep-alive"]
    assert len(bad) >= 2 and items[-1].is_done


def test_role_faults() -> None:
    assert not any("role" in c["choices"][0]["delta"] for c in objs(run("json.drop-role")) if c["choices"])
    every = objs(run("json.role-every-chunk"))
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in every if c["choices"])
    assert every[-1] == USAGE


def test_per_chunk_ids_differ() -> None:
    ids = [c["id"] for c in objs(run("json.per-chunk-ids"))]
    assert len(ids) == len(STREAM_OBJS) == len(set(ids))


def test_finish_reason_faults() -> None:
    finishes = [c["choices"][0]["finish_reason"] for c in objs(run("json.finish-reason",
                                                                    params={"map": {"stop": "eos"}})) if c["choices"]]
    assert finishes == [None, None, None, "eos"]
    none = objs(run("json.no-finish-reason"))
    assert all(c["choices"][0]["finish_reason"] is None for c in none if c["choices"])
    assert len(none) == len(STREAM_OBJS) - 1  # the finish-only chunk is gone, the usage trailer stays
    double = objs(run("json.double-finish"))
    assert [c["choices"][0]["finish_reason"] for c in double if c["choices"]].count("stop") == 2


def test_usage_in_last_choice() -> None:
    out = objs(run("stream.usage-in-last-choice"))
    assert not any(T.is_usage_trailer(c) for c in out)
    assert out[-1]["choices"][0]["finish_reason"] == "stop" and out[-1]["usage"] == USAGE["usage"]
    assert sse.parse(run("stream.usage-in-last-choice"))[-1].is_done
    no_usage = b"".join(sse.encode_json(o) for o in STREAM_OBJS[:-1]) + sse.DONE
    assert objs(run("stream.usage-in-last-choice", no_usage)) == STREAM_OBJS[:-1]


def test_unterminated_last_event() -> None:
    out = run("stream.unterminated-last")
    assert out.endswith(b"data: [DONE]")
    last = sse.parse(out)[-1]
    assert last.is_done and not last.complete


def test_content_type_header() -> None:
    st = T.stream_transform("stream.content-type", ctx({"content_type": "application/json"}))
    assert st.headers({"content-type": "text/event-stream", "x": "1"}) == {"content-type": "application/json",
                                                                          "x": "1"}


# ------------------------------------------------------------------------------------------- benign controls


def test_split_cuts_inside_events_and_utf8_but_reassembles() -> None:
    text = "h\u00e9llo \u4f60\u597d \U0001f600"  # 2-, 3- and 4-byte UTF-8 characters to cut through
    body = b"".join(sse.encode_json(chunk({"content": text})) for _ in range(3)) + sse.DONE
    pieces = T.apply_stream("stream.split", body, ctx({"sizes": [1, 7, 3]}))
    assert b"".join(pieces) == body
    assert len(pieces) > 20 and min(map(len, pieces)) == 1
    reader = sse.SSEReader()
    items = [it for p in pieces for it in reader.feed(p)] + reader.close()
    assert items == sse.parse(body)
    assert any(b"\n\n" in p and not p.endswith(b"\n\n") for p in pieces)  # a piece spans two events


def test_comments_and_crlf_keep_the_events() -> None:
    for kind in ("stream.comments", "stream.crlf"):
        out = run(kind)
        events = [it for it in sse.parse(out) if it.kind == "event"]
        assert events == [it for it in sse.parse(STREAM) if it.kind == "event"], kind
    assert sse.parse(run("stream.comments"))[0].kind == "comment"
    assert b"\n" not in run("stream.crlf").replace(b"\r\n", b"")


# ------------------------------------------------------------------------------------------- transport stage


def test_endless_holds_back_the_end_and_repeats_content() -> None:
    st = T.stream_transform("transport.endless", ctx({"text": " and"}))
    out = b"".join(p for it in sse.parse(STREAM) for p in st.event(it)) + b"".join(st.end())
    assert b"[DONE]" not in out and b'"finish_reason":"stop"' not in out and b'"usage"' not in out
    filler = json.loads(sse.parse(st.filler())[0].data)
    assert filler["choices"][0]["delta"] == {"content": " and"} and filler["id"] == CHUNK["id"]


def test_drip_and_buffer() -> None:
    assert T.drip(b"abc", ctx()) == [b"a", b"b", b"c"]
    assert T.buffer([b"a", b"bc"], ctx()) == [b"abc"]


# ------------------------------------------------------------------------------------------- proxy paths


@pytest.mark.parametrize("path, expected", [
    ("/fault/missing-done/v1/chat/completions", ("missing-done", "/v1/chat/completions")),
    ("/fault/none", ("none", "/")),
    ("/v1/models", (None, "/v1/models")),
])
def test_split_fault_path(path, expected) -> None:
    assert split_fault_path(path) == expected


def test_api_path() -> None:
    assert api_path("/v1/chat/completions") == "chat/completions"
    assert api_path("/v1/models/a/b") == "models/a/b"
    assert api_path("/health") is None
    assert api_path("/") is None
    assert api_path("/chat/completions") == "chat/completions"  # Hoziron: no /v1
    assert api_path("/api/keys") == "api/keys"  # Hontoni's account endpoints


# ------------------------------------------------------------------------------------------- more request faults


def test_set_fields_when_and_drop() -> None:
    params = {"when": {"temperature": 0}, "fields": {"temperature": 1.0}, "drop": ["seed"]}
    greedy = T.Req("POST", "chat/completions", {}, {"temperature": 0, "seed": 7, "model": "m"})
    assert T.set_fields(greedy, ctx(params)).body == {"temperature": 1.0, "model": "m"}
    warm = T.Req("POST", "chat/completions", {}, {"temperature": 0.5, "seed": 7})
    assert T.set_fields(warm, ctx(params)) is warm


def test_assistant_content_rejections_by_form() -> None:
    def history(**content):
        return T.Req("POST", "chat/completions", {}, {"messages": [{"role": "user", "content": "hi"},
                                                                   {"role": "assistant", **content}]})
    cases = {"null": history(content=None), "empty": history(content=""), "absent": history()}
    for when, rejected in cases.items():
        for other, req in cases.items():
            out = T.reject_assistant_content(req, ctx({"when": when}))
            assert isinstance(out, T.Reply) == (other == when), (when, other)
    assert T.reject_assistant_content(history(content="ok"), ctx({"when": "empty"})).body


def test_content_parts_roles_fields_and_input_forms() -> None:
    parts = T.Req("POST", "chat/completions", {}, {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}]}]})
    assert T.reject_content_parts(parts, ctx()).status == 400
    dev = T.Req("POST", "chat/completions", {}, {"messages": [{"role": "developer", "content": "be brief"}]})
    assert T.reject_role(dev, ctx()).status == 400
    assert T.reject_role(parts, ctx()) is parts
    seeded = T.Req("POST", "chat/completions", {}, {"seed": 1})
    reply = T.reject_fields(seeded, ctx({"fields": ["seed"]}))
    assert reply.status == 400 and reply.json()["error"]["param"] == "seed"
    tokens = T.Req("POST", "embeddings", {}, {"input": [[1, 2], [3]]})
    strings = T.Req("POST", "embeddings", {}, {"input": ["a", "b"]})
    assert T.reject_input_forms(tokens, ctx({"field": "input", "reject": ["tokens"]})).status == 400
    assert T.reject_input_forms(strings, ctx({"field": "input", "reject": ["tokens"]})) is strings
    assert T.reject_input_forms(strings, ctx({"field": "input", "reject": ["strings"]})).status == 400


# ------------------------------------------------------------------------------------------- more response faults


def test_error_status_as_a_crash_page() -> None:
    out = T.error_status(envelope(), ctx({"status": 500, "text": "Internal Server Error"}))
    assert (out.status, out.content_type, out.body) == (500, "text/plain; charset=utf-8", b"Internal Server Error")


def test_error_fields_and_content_type() -> None:
    out = T.error_fields_set(envelope(), ctx({"fields": {"param": None}, "status_code": True}))
    assert out.json()["error"] == {"message": "bad temperature", "type": "invalid_request_error", "param": None,
                                   "code": 400}
    ok = T.Reply.of_json(200, COMPLETION)
    assert T.response_content_type(ok, ctx()).content_type == "text/plain"
    assert T.response_content_type(envelope(), ctx()).content_type == "application/json"


def test_fabricate_model_only_for_404_on_retrieve() -> None:
    missing = T.Reply.of_json(404, {"error": {"message": "no"}})
    out = T.fabricate_model(missing, T.Context(request=T.Req("GET", "models/nope")))
    assert out.status == 200 and out.json()["id"] == "nope"
    assert T.fabricate_model(missing, T.Context(request=T.Req("POST", "chat/completions"))) is missing


# ------------------------------------------------------------------------------------------- more json/stream faults


def test_append_content_on_finish_only() -> None:
    out = T.apply_json("json.append-content", COMPLETION, ctx({"text": "<|im_end|>"}))
    assert out["choices"][0]["message"]["content"] == "Hello<|im_end|>"
    streamed = objs(run("json.append-content", params={"text": "</s>"}))
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed if c["choices"]) == "Hello</s>"


def test_delta_index_and_null_fields() -> None:
    out = objs(run("json.drop-empty-delta"))
    assert "delta" not in out[3]["choices"][0] and "delta" in out[1]["choices"][0]
    assert [c["choices"][0]["index"] for c in objs(run("json.choice-index")) if c["choices"]] == [1, 1, 1, 1]
    out = objs(run("json.drop-null-choice-field", params={"field": "finish_reason"}))
    assert ["finish_reason" in c["choices"][0] for c in out if c["choices"]] == [False, False, False, True]


def test_named_events() -> None:
    items = sse.parse(run("stream.name-events", params={"event": "delta"}))
    assert {it.event for it in items if not it.is_done} == {"delta"}
    assert [it.data for it in items] == [it.data for it in sse.parse(STREAM)]


def test_error_midstream_ends_the_stream() -> None:
    items = sse.parse(run("stream.error-midstream", params={"after": 2}))
    assert len(items) == 3 and items[-1].json()["error"]["message"]
    assert not any(it.is_done for it in items)


def test_success_status_and_model_ids() -> None:
    ok = T.Reply.of_json(200, COMPLETION)
    assert T.success_status(ok, ctx({"status": 201})).status == 201
    assert T.success_status(envelope(), ctx({"status": 201})).status == 400
    listed = {"object": "list", "data": [{"id": "m", "object": "model", "created": 1, "owned_by": "x"}]}
    assert T.apply_json("json.model-ids", listed, ctx({"prefix": "openai/"}))["data"][0]["id"] == "openai/m"
    assert T.apply_json("json.model-ids", listed["data"][0], ctx())["id"] == "m"  # retrieve untouched
