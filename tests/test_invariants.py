"""Every registered stream invariant, offline: a hand-made stream that violates it must be reported, and the
conformant streams of its surface must not be (no false positives)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from wirecheck.spec import sse
from wirecheck.suites.invariants import STREAM_CHECKS, _load, lint

_load()

Chunk = dict[str, Any]


# ----------------------------------------------------------------------------------------------- builders


def body(*events: Any, done: bool = True, names: list[str | None] | None = None) -> bytes:
    """SSE bytes: each event a dict (JSON-encoded), or raw bytes passed through as they are."""
    out = b""
    for k, event in enumerate(events):
        name = names[k] if names else None
        out += event if isinstance(event, bytes) else sse.encode_json(event, event=name)
    return out + (sse.DONE if done else b"")


HEAD = {"id": "chatcmpl-abc", "object": "chat.completion.chunk", "created": 1727346168, "model": "m",
        "system_fingerprint": "fp_1"}


def chat_chunk(delta: dict | None = None, index: int = 0, finish: str | None = None, **extra: Any) -> Chunk:
    return {**HEAD, "choices": [{"index": index, "delta": delta if delta is not None else {}, "logprobs": None,
                                 "finish_reason": finish}], **extra}


def usage_chunk(prompt: int = 5, completion: int = 3, total: int | None = None) -> Chunk:
    total = prompt + completion if total is None else total
    return {**HEAD, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                             "total_tokens": total}}


def chat_chunks(n: int = 1, usage: bool = True) -> list[Chunk]:
    chunks = [chat_chunk({"role": "assistant", "content": "", "refusal": None}, i) for i in range(n)]
    for i in range(n):
        chunks += [chat_chunk({"content": "Hello"}, i), chat_chunk({"content": " there"}, i),
                   chat_chunk({}, i, "stop")]
    return chunks + ([usage_chunk()] if usage else [])


def chat_body(chunks: list[Chunk] | None = None, **kw: Any) -> bytes:
    return body(*(chat_chunks() if chunks is None else chunks), **kw)


def mutate(fn: Callable[[list[Chunk]], None], n: int = 1) -> bytes:
    chunks = copy.deepcopy(chat_chunks(n))
    fn(chunks)
    return chat_body(chunks)


CMPL_HEAD = {"id": "cmpl-abc", "object": "text_completion", "created": 1727346168, "model": "m"}


def cmpl_chunk(text: str, index: int = 0, finish: str | None = None, **extra: Any) -> Chunk:
    return {**CMPL_HEAD, "choices": [{"text": text, "index": index, "logprobs": None, "finish_reason": finish}],
            **extra}


def cmpl_chunks(usage: bool = True) -> list[Chunk]:
    chunks = [cmpl_chunk(" there"), cmpl_chunk(" was"), cmpl_chunk("", finish="length")]
    if usage:
        chunks.append({**CMPL_HEAD, "choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2,
                                                              "total_tokens": 6}})
    return chunks


def cmpl_mutate(fn: Callable[[list[Chunk]], None]) -> bytes:
    chunks = copy.deepcopy(cmpl_chunks())
    fn(chunks)
    return body(*chunks)


def msg_events() -> list[Chunk]:
    return [
        {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                                              "model": "claude", "stop_reason": None, "stop_sequence": None,
                                              "usage": {"input_tokens": 11, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1,
         "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{}"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 6}},
        {"type": "message_stop"},
    ]


def msg_end_turn() -> list[Chunk]:
    """msg_events() with stop_reason end_turn (what a message without tool_use blocks ends with)."""
    events = msg_events()
    events[-2]["delta"]["stop_reason"] = "end_turn"
    return events


def msg_body(events: list[Chunk] | None = None, names: list[str | None] | None = None, done: bool = False) -> bytes:
    events = msg_events() if events is None else events
    return body(*events, names=names or [e.get("type") for e in events], done=done)


def msg_mutate(fn: Callable[[list[Chunk]], None]) -> bytes:
    events = msg_events()
    fn(events)
    return msg_body(events)


def resp_events() -> list[Chunk]:
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    events = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": "msg_1", "type": "message", "role": "assistant", "content": []}},
        {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "delta": "Hi"},
        {"type": "response.some_future_event", "detail": 1},
        {"type": "response.output_text.done", "item_id": "msg_1", "output_index": 0, "content_index": 0,
         "text": "Hi"},
        {"type": "response.completed", "response": {**response, "status": "completed"}},
    ]
    for k, event in enumerate(events):
        event["sequence_number"] = k
    return events


def resp_call_events() -> list[Chunk]:
    """A complete stream as OpenAI sends it: a message part opened and closed, then a function call."""
    msg = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
    done_msg = {**msg, "status": "completed", "content": [{**part, "text": "Let me check."}]}
    call = {"id": "fc_1", "type": "function_call", "status": "in_progress", "arguments": "", "call_id": "call_1",
            "name": "get_weather"}
    done_call = {**call, "status": "completed", "arguments": "{\"city\": \"Paris\"}"}
    response = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    events = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": msg},
        {"type": "response.content_part.added", **where, "part": part},
        {"type": "response.output_text.delta", **where, "delta": "Let me ", "logprobs": []},
        {"type": "response.output_text.delta", **where, "delta": "check.", "logprobs": []},
        {"type": "response.output_text.done", **where, "text": "Let me check.", "logprobs": []},
        {"type": "response.content_part.done", **where, "part": done_msg["content"][0]},
        {"type": "response.output_item.done", "output_index": 0, "item": done_msg},
        {"type": "response.output_item.added", "output_index": 1, "item": call},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": "{\"city\": "},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 1, "delta": "\"Paris\"}"},
        {"type": "response.function_call_arguments.done", "item_id": "fc_1", "output_index": 1, "name": "get_weather",
         "arguments": done_call["arguments"]},
        {"type": "response.output_item.done", "output_index": 1, "item": done_call},
        {"type": "response.completed", "response": {**response, "status": "completed", "output": [done_msg, done_call],
                                                    "usage": {"input_tokens": 9, "output_tokens": 12,
                                                              "total_tokens": 21}}},
    ]
    for k, event in enumerate(events):
        event["sequence_number"] = k
    return events


def resp_call_mutate(fn: Callable[[list[Chunk]], None]) -> bytes:
    events = copy.deepcopy(resp_call_events())
    fn(events)
    return resp_body(events)


def resp_body(events: list[Chunk] | None = None, names: list[str | None] | None = None) -> bytes:
    events = resp_events() if events is None else events
    return body(*events, names=names or [e.get("type") for e in events], done=False)


def resp_mutate(fn: Callable[[list[Chunk]], None]) -> bytes:
    events = resp_events()
    fn(events)
    return resp_body(events)


def _set(path: str, value: Any, at: int = 1) -> Callable[[list[Chunk]], None]:
    """A mutation: chunks[at][path] = value, with path like "choices.0.delta.role"."""

    def fn(chunks: list[Chunk]) -> None:
        node: Any = chunks[at]
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[keys[-1]] = value

    return fn


def _each(fn: Callable[[int, Chunk], None]) -> Callable[[list[Chunk]], None]:
    def apply(chunks: list[Chunk]) -> None:
        for k, chunk in enumerate(chunks):
            fn(k, chunk)

    return apply


def _drop(at: int) -> Callable[[list[Chunk]], None]:
    return lambda chunks: chunks.pop(at)


# ------------------------------------------------------------------------------------------- conformant

CONFORMANT: dict[str, dict[str, bytes]] = {
    "chat": {
        "plain": chat_body(),
        "no usage": chat_body(chat_chunks(usage=False)),
        "n=2": chat_body(chat_chunks(2)),
        "tool call": chat_body([
            chat_chunk({"role": "assistant", "content": None, "refusal": None,
                        "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                        "function": {"name": "get", "arguments": ""}}]}),
            chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            chat_chunk({}, 0, "tool_calls"), usage_chunk()]),
        "CRLF and split reads": chat_body().replace(b"\n", b"\r\n"),
        "empty event name": b"event:\n" + chat_body(),
    },
    "completions": {
        "plain": body(*cmpl_chunks()),
        "no usage": body(*cmpl_chunks(usage=False)),
        "n=2": body(cmpl_chunk("a", 0), cmpl_chunk("b", 1), cmpl_chunk("", 1, "stop"), cmpl_chunk("", 0, "length")),
    },
    "messages": {
        "text and tool use": msg_body(),
        "no blocks": msg_body([e for e in msg_end_turn() if not e["type"].startswith("content_block")]),
        "unknown event and block types": msg_body([
            *msg_events()[:1], {"type": "content_block_start", "index": 0,
                                "content_block": {"type": "brand_new_block", "x": 1}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "brand_new_delta", "y": 2}},
            {"type": "future_event", "z": 3},
            {"type": "content_block_stop", "index": 0}, *msg_end_turn()[-2:]]),
    },
    "responses": {"text": resp_body(), "unnamed events": resp_body(names=[None] * len(resp_events())),
                  "text and function call": resp_body(resp_call_events()),
                  "trailing [DONE]": resp_body(resp_call_events()) + sse.DONE},
}

# Benign framing variants that must pass every non-strict check.
BENIGN_CHAT = {
    "comments": b": keep-alive\n\n" + chat_body().replace(b"\n\n", b"\n\n: ping\n\n", 2),
}


# ----------------------------------------------------------------------------------------------- broken

VIOLATIONS: dict[str, bytes] = {
    # chat: framing
    "chat.stream.done-sentinel": chat_body(done=False),
    "chat.stream.data-is-json": chat_body().replace(b"\n\n", b"\n\ndata: : PING\n\n", 1),
    "chat.stream.events-terminated": chat_body(done=False) + b"data: [DONE]",
    "chat.stream.event-names": body(*chat_chunks(), names=["message"] * len(chat_chunks())),
    "chat.stream.in-band-error": chat_body([*chat_chunks()[:2], {"error": {"message": "engine died"}}]),
    # chat: chunks
    "chat.stream.chunk-schema": mutate(_set("created", 1727346168.5)),
    "chat.stream.chunk-schema-strict": mutate(lambda c: c[1]["choices"][0].pop("finish_reason")),
    "chat.stream.stable-id": mutate(_each(lambda k, c: c.update(id=f"chatcmpl-{k}"))),
    "chat.stream.delta-shape": mutate(_set("choices.0.delta", None)),
    "chat.stream.choice-index": mutate(_each(lambda k, c: [ch.update(index=k + 100) for ch in c["choices"]])),
    "chat.stream.role-first": mutate(lambda c: c[0]["choices"][0]["delta"].pop("role")),
    "chat.stream.role-once": mutate(_set("choices.0.delta.role", "assistant", at=2)),
    "chat.stream.finish-reason-enum": mutate(_set("choices.0.finish_reason", "eos", at=3)),
    "chat.stream.one-finish-per-choice": mutate(_set("choices.0.finish_reason", None, at=3)),
    "chat.stream.usage-trailer-shape": mutate(lambda c: c[-1]["choices"].append(
        {"index": 0, "delta": {}, "finish_reason": None})),
    "chat.stream.no-template-tokens": chat_body([*chat_chunks()[:3], chat_chunk({"content": "<|im_"}),
                                                 chat_chunk({"content": "end|>"}), *chat_chunks()[3:]]),
    "chat.stream.no-comments": b": keep-alive\n\n" + chat_body(),
    # completions
    "completions.stream.done-sentinel": body(*cmpl_chunks(), done=False),
    "completions.stream.data-is-json": body(*cmpl_chunks()).replace(b"\n\n", b"\n\ndata:\n\n", 1),
    "completions.stream.events-terminated": body(*cmpl_chunks(), done=False) + b"data: [DONE]\n",
    "completions.stream.event-names": body(*cmpl_chunks(), names=["completion"] * len(cmpl_chunks())),
    "completions.stream.in-band-error": body(cmpl_chunk("a"), {"error": "upstream timed out"}),
    "completions.stream.chunk-schema": cmpl_mutate(_each(lambda k, c: c.update(object="chat.completion.chunk"))),
    "completions.stream.chunk-schema-strict": cmpl_mutate(lambda c: c[0]["choices"][0].pop("logprobs")),
    "completions.stream.stable-id": cmpl_mutate(_set("created", 1727346170, at=2)),
    "completions.stream.choice-index": cmpl_mutate(_set("choices.0.index", 2, at=1)),
    "completions.stream.finish-reason-enum": cmpl_mutate(_set("choices.0.finish_reason", "eos_token", at=2)),
    "completions.stream.one-finish-per-choice": cmpl_mutate(_set("choices.0.finish_reason", "stop", at=0)),
    "completions.stream.usage-trailer-shape": cmpl_mutate(_set("usage.total_tokens", 7, at=3)),
    # messages
    "messages.stream.data-is-json": msg_body().replace(b"data: {\"type\":\"ping\"}", b"data: ping"),
    "messages.stream.event-name-matches-type": msg_body(names=[None] + [e["type"] for e in msg_events()[1:]]),
    "messages.stream.no-done": msg_body(done=True),
    "messages.stream.event-order": msg_mutate(_drop(-1)),
    "messages.stream.block-indices": msg_mutate(_set("index", 1, at=3)),
    "messages.stream.in-band-error": msg_body([*msg_events()[:2], {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}]),
    "messages.stream.start-usage": msg_mutate(_set("message.usage.input_tokens", 0, at=0)),
    "messages.stream.usage-cumulative": msg_mutate(_set("usage.output_tokens", 1, at=-2)),
    "messages.stream.stop-reason": msg_mutate(_set("delta.stop_reason", "end_turn", at=-2)),
    "messages.stream.tool-use-blocks": msg_mutate(_set("delta.partial_json", "city\": 1}", at=6)),
    # responses
    "responses.stream.data-is-json": resp_body() + b"event: response.completed\ndata: {oops\n\n",
    "responses.stream.event-name-matches-type": resp_body(
        names=[e["type"] for e in resp_events()[:-1]] + ["response.done"]),
    "responses.stream.sequence-numbers": resp_mutate(_set("sequence_number", 1, at=3)),
    "responses.stream.created-first": resp_mutate(_drop(0)),
    "responses.stream.terminal-event": resp_mutate(_drop(-1)),
    "responses.stream.in-band-error": resp_mutate(lambda e: e.insert(4, {
        "type": "error", "code": "server_error", "message": "boom", "param": None, "sequence_number": 99})),
    "responses.stream.output-items": resp_call_mutate(_set("item_id", "msg_2", at=4)),
    "responses.stream.output-text": resp_call_mutate(_set("text", "Let me check!", at=6)),
    "responses.stream.function-calls": resp_call_mutate(lambda e: [e[k]["item"].pop("call_id") for k in (9, 13)]),
    "responses.stream.arguments-streamed": resp_call_mutate(lambda e: [e.pop(k) for k in (11, 10)]),
    "responses.stream.usage": resp_call_mutate(_set("response.usage.total_tokens", 12, at=-1)),
}


def _all_checks() -> list[tuple[str, str]]:
    return [(surface, check_id) for surface, checks in STREAM_CHECKS.items() for check_id in checks]


def test_every_registered_invariant_has_a_violation_here():
    assert {check_id for _, check_id in _all_checks()} == set(VIOLATIONS)


@pytest.mark.parametrize(("surface", "check_id"), _all_checks(), ids=[c for _, c in _all_checks()])
def test_violation_is_reported(surface: str, check_id: str):
    problems = STREAM_CHECKS[surface][check_id].fn(sse.parse(VIOLATIONS[check_id]))
    assert problems, f"{check_id} did not notice its violation"
    assert all(isinstance(p, str) and p for p in problems)


@pytest.mark.parametrize(("surface", "name"), [(s, n) for s, streams in CONFORMANT.items() for n in streams])
def test_conformant_stream_passes_every_check(surface: str, name: str):
    assert lint(surface, sse.parse(CONFORMANT[surface][name]), strict=True) == {}


@pytest.mark.parametrize("name", BENIGN_CHAT)
def test_benign_framing_passes_the_default_checks(name: str):
    assert lint("chat", sse.parse(BENIGN_CHAT[name])) == {}


@pytest.mark.parametrize("check_id", sorted(VIOLATIONS))
def test_violation_breaks_only_what_it_should(check_id: str):
    """Each hand-made violation is reported by its own check (others may agree, but the check itself must)."""
    surface = check_id.split(".")[0]
    assert check_id in lint(surface, sse.parse(VIOLATIONS[check_id]), strict=True)


def test_split_reads_do_not_change_the_verdict():
    data = chat_body(chat_chunks(2))
    reader = sse.SSEReader()
    items = [it for k in range(0, len(data), 7) for it in reader.feed(data[k:k + 7])] + reader.close()
    assert lint("chat", items, strict=True) == {}


def test_problems_name_the_error_message():
    problems = STREAM_CHECKS["chat"]["chat.stream.in-band-error"].fn(sse.parse(VIOLATIONS["chat.stream.in-band-error"]))
    assert "engine died" in problems[0]


def test_usage_arithmetic_and_placement():
    check = STREAM_CHECKS["chat"]["chat.stream.usage-trailer-shape"].fn
    assert check(sse.parse(chat_body([*chat_chunks(usage=False), usage_chunk(total=99)])))
    early = chat_chunks(usage=False)
    early.insert(1, usage_chunk())
    assert any("not the last" in p for p in check(sse.parse(chat_body(early))))
    flat = usage_chunk()
    del flat["choices"]
    assert any("no `choices` key" in p for p in check(sse.parse(chat_body([*chat_chunks(usage=False), flat]))))


def test_double_finish_and_output_after_finish():
    check = STREAM_CHECKS["chat"]["chat.stream.one-finish-per-choice"].fn
    twice = chat_chunks()
    twice.insert(4, chat_chunk({}, 0, "stop"))
    assert any("2 times" in p for p in check(sse.parse(chat_body(twice))))
    late = chat_chunks()
    late.insert(4, chat_chunk({"content": "more"}))
    assert any("after its finish_reason" in p for p in check(sse.parse(chat_body(late))))


def test_data_after_done_is_named():
    problems = STREAM_CHECKS["chat"]["chat.stream.done-sentinel"].fn(
        sse.parse(chat_body() + sse.encode_json(chat_chunk({"content": "late"}))))
    assert "follow" in problems[0]



def test_template_tokens_spare_html():
    check = STREAM_CHECKS["chat"]["chat.stream.no-template-tokens"].fn
    html = [chat_chunk({"role": "assistant", "content": ""}), chat_chunk({"content": "Use <s>old</s> for "}),
            chat_chunk({"content": "strikethrough."}), chat_chunk({}, 0, "stop")]
    assert check(sse.parse(chat_body(html))) == []
    leaked = [*html[:3], chat_chunk({"content": "</"}), chat_chunk({"content": "s>"}), html[3]]
    assert "</s>" in check(sse.parse(chat_body(leaked)))[0]


def _finish_reason_only_at_the_end(chunks: list[Chunk]) -> list[Chunk]:
    """The chunks with `finish_reason` left out wherever it would be null (transformers serve 5.25 streams
    completions this way)."""
    out = copy.deepcopy(chunks)
    for chunk in out:
        for choice in chunk["choices"]:
            if choice.get("finish_reason") is None:
                choice.pop("finish_reason", None)
    return out


@pytest.mark.parametrize(("surface", "chunks"), [("chat", chat_chunks()), ("completions", cmpl_chunks())],
                         ids=["chat", "completions"])
def test_an_absent_finish_reason_before_the_end_is_strict_only_on_both_surfaces(surface: str, chunks: list[Chunk]):
    """One rule for chat and completions, chosen by what the SDK needs: it builds chunks without validation and
    reads an absent finish_reason as null, so only --strict asks for the key."""
    items = sse.parse(body(*_finish_reason_only_at_the_end(chunks)))
    assert lint(surface, items) == {}
    assert set(lint(surface, items, strict=True)) == {f"{surface}.stream.chunk-schema-strict"}


def test_the_sdk_reads_an_absent_finish_reason_as_null():
    import openai.types as types

    chunk = _finish_reason_only_at_the_end(cmpl_chunks())[0]
    assert types.Completion.construct(**chunk).choices[0].finish_reason is None
    chunk = _finish_reason_only_at_the_end(chat_chunks())[1]
    assert types.chat.ChatCompletionChunk.construct(**chunk).choices[0].finish_reason is None


def _whole_arguments_in_added(events: list[Chunk]) -> None:
    """transformers serve 5.25's function call: the arguments whole in output_item.added, no deltas, then .done."""
    events[9]["item"]["arguments"] = events[13]["item"]["arguments"]
    del events[10:12]


def test_arguments_without_deltas_are_strict_only_and_said_where_they_came():
    items = sse.parse(resp_call_mutate(_whole_arguments_in_added))
    assert "responses.stream.function-calls" not in lint("responses", items)
    problems = lint("responses", items, strict=True)["responses.stream.arguments-streamed"]
    assert "came whole in output_item.added (event #10)" in problems[0]
    dropped = sse.parse(VIOLATIONS["responses.stream.arguments-streamed"])
    assert "came only when it finished" in STREAM_CHECKS["responses"]["responses.stream.arguments-streamed"].fn(
        dropped)[0]
