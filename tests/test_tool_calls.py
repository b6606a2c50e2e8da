"""The Hermes tool-call parser: same result whether text arrives whole or character by character."""

from __future__ import annotations

import itertools
import json

import pytest

from wirecheck.reference_server.surfaces.chat import piece_deltas
from wirecheck.reference_server.tool_calls import CallArguments, CallStart, Content, ToolCallParser


def parser() -> ToolCallParser:
    counter = itertools.count()
    return ToolCallParser(lambda: f"call_{next(counter)}")


def run(chunks: list[str]) -> tuple[ToolCallParser, list]:
    p = parser()
    pieces = []
    for chunk in chunks:
        pieces += p.feed(chunk)
    pieces += p.finish()
    return p, pieces


def chars(text: str) -> list[str]:
    return list(text)


def call(name: str, args: dict) -> str:
    return f'<tool_call>\n{json.dumps({"name": name, "arguments": args})}\n</tool_call>'


ONE = call("get_weather", {"city": "Paris", "where": {"x": [1, {"y": "}"}]}})
TWO = call("get_weather", {"city": "Paris"}) + "\n" + call("get_time", {"zone": "UTC"})

CASES = {
    "plain text": "Hello there, no calls here.",
    "one call": ONE,
    "two calls": TWO,
    "text then call": "Let me check.\n\n" + ONE,
    "partial tag that is text": "a <tool_ is not a tag",
    "unicode": call("translate", {"text": "Zürich → 東京"}),
    "keys reversed": '<tool_call>\n{"arguments": {"a": 1}, "name": "f"}\n</tool_call>',
    "malformed call": "<tool_call>\nnot json\n</tool_call>",
    "truncated in arguments": '<tool_call>\n{"name": "f", "arguments": {"city": "Par',
    "truncated after arguments": '<tool_call>\n{"name": "f", "arguments": {"city": "Paris"}',
    "truncated in name": '<tool_call>\n{"name": "get_wea',
}


def summary(p: ToolCallParser, pieces: list) -> tuple:
    streamed_args: dict[int, str] = {}
    starts = []
    content = ""
    for piece in pieces:
        if isinstance(piece, Content):
            content += piece.text
        elif isinstance(piece, CallStart):
            starts.append((piece.index, piece.name))
        else:
            streamed_args[piece.index] = streamed_args.get(piece.index, "") + piece.fragment
    assert content == p.content
    assert [streamed_args.get(i, "") for i in range(len(p.calls))] == [c.arguments for c in p.calls]
    return content, starts, [(c.name, c.arguments) for c in p.calls]


@pytest.mark.parametrize("name", sorted(CASES))
def test_whole_and_char_by_char_agree(name):
    text = CASES[name]
    whole = summary(*run([text]))
    assert summary(*run(chars(text))) == whole
    assert summary(*run([text[:7], text[7:19], text[19:]])) == whole


def test_calls_parse_to_json_arguments():
    p, _ = run(chars(TWO))
    assert [c.name for c in p.calls] == ["get_weather", "get_time"]
    assert [json.loads(c.arguments) for c in p.calls] == [{"city": "Paris"}, {"zone": "UTC"}]
    assert p.content == "" and len({c.id for c in p.calls}) == 2


def test_nested_braces_in_arguments_survive():
    p, _ = run(chars(ONE))
    assert json.loads(p.calls[0].arguments) == {"city": "Paris", "where": {"x": [1, {"y": "}"}]}}


def test_text_before_a_call_is_content_without_trailing_whitespace():
    p, _ = run(chars("Let me check.\n\n" + ONE))
    assert p.content == "Let me check." and len(p.calls) == 1


def test_plain_text_keeps_everything():
    for text in ("a <tool_ is not a tag", "ends with spaces   ", "ends with <tool_call"):
        p, _ = run(chars(text))
        assert p.content == text and not p.calls


def test_keys_in_another_order_still_parse():
    p, _ = run([CASES["keys reversed"]])
    assert [(c.name, json.loads(c.arguments)) for c in p.calls] == [("f", {"a": 1})]


def test_malformed_markup_stays_content():
    p, _ = run(chars(CASES["malformed call"]))
    assert not p.calls and p.content == CASES["malformed call"]


def test_truncated_calls():
    p, _ = run(chars(CASES["truncated in arguments"]))
    assert p.calls[0].arguments == '{"city": "Par'  # partial, as the model wrote it: finish_reason says length
    p, _ = run(chars(CASES["truncated after arguments"]))
    assert json.loads(p.calls[0].arguments) == {"city": "Paris"}
    p, _ = run(chars(CASES["truncated in name"]))
    assert not p.calls and p.content == ""  # neither a call nor text: the markup never leaks


def test_the_head_is_announced_before_the_arguments_finish():
    p = parser()
    pieces = p.feed('<tool_call>\n{"name": "f", "arguments": {"city": "Pa')
    assert pieces[0] == CallStart(0, "call_0", "f")
    assert "".join(x.fragment for x in pieces if isinstance(x, CallArguments)) == '{"city": "Pa'


def test_deltas_announce_each_call_once():
    _, pieces = run(chars(TWO))
    deltas = piece_deltas(pieces)
    heads = [tc for d in deltas for tc in d.get("tool_calls", []) if "id" in tc]
    assert [(h["index"], h["function"]["name"], h["function"]["arguments"]) for h in heads] == \
        [(0, "get_weather", ""), (1, "get_time", "")]
    for d in deltas:
        assert len(d["tool_calls"]) == 1
        tc = d["tool_calls"][0]
        assert set(tc) in ({"index", "function"}, {"index", "id", "type", "function"})
    by_index: dict[int, str] = {}
    for d in deltas:
        tc = d["tool_calls"][0]
        by_index[tc["index"]] = by_index.get(tc["index"], "") + tc["function"]["arguments"]
    assert [json.loads(v) for _, v in sorted(by_index.items())] == [{"city": "Paris"}, {"zone": "UTC"}]
