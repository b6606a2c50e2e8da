"""The SSE codec: writer, incremental byte-level reader, and their round trip."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirecheck import fixtures
from wirecheck.spec.sse import DONE, SSEItem, SSEReader, encode_comment, encode_event, encode_json, iter_items, parse

LINE_ENDS = {"lf": b"\n", "crlf": b"\r\n", "cr": b"\r"}


def relined(body: bytes, end: bytes) -> bytes:
    """Rewrite an LF-only stream with another line end."""
    return body.replace(b"\n", end)


def feed_all(chunks) -> list[SSEItem]:
    reader = SSEReader()
    out: list[SSEItem] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    return out + reader.close()


def byte_by_byte(body: bytes) -> list[SSEItem]:
    return feed_all(body[i:i + 1] for i in range(len(body)))


def event(data: str, **kw) -> SSEItem:
    return SSEItem(kind="event", data=data, has_data=True, **kw)


SAMPLE = (
    b": keep-alive\n"
    b"data: {\"a\":1}\n\n"
    b"event: message_start\n"
    b"id: 42\n"
    b"data: first\n"
    b"data: second\n\n"
    b"data: h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89\n\n"
    b"retry: 1500\n\n"
    b"data: [DONE]\n\n"
)
SAMPLE_ITEMS = [
    SSEItem(kind="comment", data="keep-alive"),
    event('{"a":1}'),
    event("first\nsecond", event="message_start", id="42"),
    event("h\u00e9llo \u65e5\u672c \U0001f389"),
    SSEItem(kind="event", data="", retry=1500),
    event("[DONE]"),
]


# ------------------------------------------------------------------------------ writer


def test_encode_event_single_line():
    assert encode_event("hello") == b"data: hello\n\n"


def test_encode_event_multi_line_and_fields():
    assert encode_event("a\nb\r\nc\rd", event="delta", id="7") == (
        b"event: delta\nid: 7\ndata: a\ndata: b\ndata: c\ndata: d\n\n")
    assert encode_event("", event="ping") == b"event: ping\ndata: \n\n"
    assert encode_event("x", retry=3000) == b"retry: 3000\ndata: x\n\n"


@pytest.mark.parametrize("kwargs", [{"event": "a\nb"}, {"id": "1\r"}, {"id": "a\0b"}, {"retry": -1}])
def test_encode_event_rejects_unsafe_fields(kwargs):
    with pytest.raises(ValueError):
        encode_event("x", **kwargs)


def test_encode_json_is_compact_utf8():
    out = encode_json({"content": "héllo\n🎉", "n": [1, 2]})
    assert out == 'data: {"content":"héllo\\n🎉","n":[1,2]}\n\n'.encode()
    assert encode_json({"type": "ping"}, event="ping") == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_encode_comment_and_done():
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment() == b":\n\n"
    assert encode_comment("a\nb") == b": a\n: b\n\n"
    assert DONE == b"data: [DONE]\n\n"
    [done] = parse(DONE)
    assert done.is_done and done.has_data


def test_written_stream_round_trips():
    body = (encode_comment("open") + encode_json({"x": "é"}) + encode_event("a\nb", event="e", id="1")
            + encode_json({"y": 1}, event="delta") + DONE)
    items = parse(body)
    assert [i.kind for i in items] == ["comment", "event", "event", "event", "event"]
    assert items[1].json() == {"x": "é"}
    assert (items[2].data, items[2].event, items[2].id) == ("a\nb", "e", "1")
    assert items[3].event == "delta" and items[3].json() == {"y": 1}
    assert items[4].is_done
    assert [i.raw for i in items[1:]] == [encode_json({"x": "é"}), encode_event("a\nb", event="e", id="1"),
                                         encode_json({"y": 1}, event="delta"), DONE]


# ------------------------------------------------------------------------------ reader


def test_sample_parses():
    assert parse(SAMPLE) == SAMPLE_ITEMS


@pytest.mark.parametrize("style", LINE_ENDS)
def test_every_line_end_style(style):
    body = relined(SAMPLE, LINE_ENDS[style])
    assert parse(body) == SAMPLE_ITEMS
    assert byte_by_byte(body) == SAMPLE_ITEMS


def test_mixed_line_ends():
    assert parse(b"data: a\r\ndata: b\rdata: c\n\r\n") == [event("a\nb\nc")]
    assert parse(b"data: a\n\rdata: b\r\n\n") == [event("a"), event("b")]


def test_cr_lf_split_across_feeds_is_one_line_end():
    reader = SSEReader()
    assert reader.feed(b"data: a\r") == []
    assert reader.feed(b"\ndata: b\r\n\r") == [event("a\nb")]  # dispatched at the CR, not delayed
    assert reader.feed(b"\n") == []  # the LF completing that CRLF is not another blank line
    assert reader.feed(b"data: c\r\n\r\n") == [event("c")]
    assert reader.close() == []


def test_cr_then_cr_across_feeds_is_two_line_ends():
    reader = SSEReader()
    assert reader.feed(b"data: a\r") == []
    assert reader.feed(b"\r") == [event("a")]


def test_raw_bytes_are_kept():
    items = parse(b": c1\r\nevent: e\r\nfoo: bar\r\n: c2\r\ndata: x\r\n\r\n")
    assert items[0].raw == b": c1\r\n"
    assert items[1].kind == "comment" and items[1].raw == b": c2\r\n"  # comments come out as read
    assert items[2].raw == b"event: e\r\nfoo: bar\r\ndata: x\r\n\r\n"  # unknown field kept as evidence
    assert items[2].event == "e" and items[2].data == "x"


def test_raw_survives_crlf_split_except_a_final_lf():
    body = relined(SAMPLE, b"\r\n")
    whole = parse(body)
    split = byte_by_byte(body)
    for a, b in zip(split, whole):
        assert a.raw == b.raw or a.raw + b"\n" == b.raw


def test_bom_at_start_is_ignored():
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [event("x")]
    assert byte_by_byte(b"\xef\xbb\xbfdata: x\n\n") == [event("x")]
    assert parse(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n") == []  # only one BOM is stripped: field "\ufeffdata"
    assert parse(b"data: \xef\xbb\xbfx\n\n") == [event("\ufeffx")]
    assert parse(b"\xef\xbb") == []  # a partial BOM at EOF is just (invalid) text


def test_field_parsing_rules():
    assert parse(b"data\n\n") == [event("")]
    assert parse(b"data:\n\n") == [event("")]
    assert parse(b"data:x\n\n") == [event("x")]
    assert parse(b"data:  x\n\n") == [event(" x")]  # only one space is stripped
    assert parse(b"data: a:b: c\n\n") == [event("a:b: c")]
    assert parse(b"data\ndata\n\n") == [event("\n")]
    assert parse(b"DATA: x\n\n") == []  # field names are case-sensitive; unknown fields ignored
    assert parse(b"foo: bar\n\n") == []


def test_event_id_retry_rules():
    reader = SSEReader()
    items = reader.feed(b"id: 1\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nretry: 12a\nretry: 30\ndata: d\n\n")
    assert [(i.id, i.data, i.retry) for i in items] == [("1", "a", None), (None, "b", None), (None, "c", None),
                                                        (None, "d", 30)]
    assert reader.last_event_id == "1"  # persists; the NUL id was ignored
    assert parse(b"event:\ndata: x\n\n") == [event("x", event="")]
    assert parse(b"event: a\nevent: b\ndata: x\n\n") == [event("x", event="b")]


def test_event_without_data_is_reported():
    [item] = parse(b"event: ping\n\n")
    assert item == SSEItem(kind="event", data="", event="ping", has_data=False)
    assert not item.is_done


def test_comments():
    items = parse(b":\n: hello\n:  two spaces\n:no-space\n")
    assert [(i.kind, i.data) for i in items] == [("comment", ""), ("comment", "hello"), ("comment", " two spaces"),
                                                 ("comment", "no-space")]
    assert all(i.is_comment for i in items)
    mid = parse(b"data: a\n: ping\ndata: b\n\n")
    assert mid == [SSEItem(kind="comment", data="ping"), event("a\nb")]


def test_blank_lines_alone_yield_nothing():
    assert parse(b"\n\n\r\n\r\r") == []


def test_close_reports_an_unterminated_event():
    reader = SSEReader()
    assert reader.feed(b"data: a\n\ndata: tail") == [event("a")]
    [tail] = reader.close()
    assert tail == event("tail", complete=False) and tail.raw == b"data: tail"
    assert reader.close() == []
    with pytest.raises(ValueError):
        reader.feed(b"x")
    assert parse(b"data: x\n") == [event("x", complete=False)]
    assert parse(b": trailing comment") == [SSEItem(kind="comment", data="trailing comment")]


def test_utf8_split_at_every_byte():
    text = "日本語 🎉 é"
    body = encode_event(text)
    for i in range(len(body) + 1):
        assert feed_all([body[:i], body[i:]]) == [event(text)], i


def test_invalid_utf8_becomes_replacement_character():
    assert parse(b"data: \xff\xfe ok\n\n") == [event("\ufffd\ufffd ok")]


def test_done_sentinel():
    assert parse(b"data: [DONE]\n\n")[0].is_done
    assert not parse(b"data: [DONE] \n\n")[0].is_done
    assert not parse(b"event: [DONE]\n\n")[0].is_done
    with pytest.raises(json.JSONDecodeError):
        parse(b"data: [DONE]\n\n")[0].json()


def test_iter_items():
    chunks = [SAMPLE[i:i + 7] for i in range(0, len(SAMPLE), 7)]
    assert list(iter_items(chunks)) == SAMPLE_ITEMS


@pytest.mark.parametrize("style", LINE_ENDS)
def test_every_split_point(style):
    body = relined(SAMPLE, LINE_ENDS[style])
    for i in range(len(body) + 1):
        assert feed_all([body[:i], body[i:]]) == SAMPLE_ITEMS, i
    for i in range(0, len(body) + 1, 3):
        for j in range(i, len(body) + 1, 5):
            assert feed_all([body[:i], body[i:j], b"", body[j:]]) == SAMPLE_ITEMS, (i, j)


def test_recorded_transcripts_any_chunking():
    rng = random.Random(1234)
    for path in fixtures.transcript_files():
        body = path.read_bytes()
        whole = parse(body)
        assert whole[-1].is_done and all(i.kind == "event" for i in whole)
        assert b"".join(i.raw for i in whole) == body
        assert byte_by_byte(body) == whole
        for _ in range(20):
            cuts = sorted(rng.sample(range(len(body)), rng.randint(1, 40)))
            chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
            assert feed_all(chunks) == whole
        for style in ("crlf", "cr"):
            assert byte_by_byte(relined(body, LINE_ENDS[style])) == whole


# ------------------------------------------------------------------ property tests

field_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"), max_size=12)
data_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def streams(draw):
    """A written stream, and the items a reader must produce from it."""
    body = b""
    expected: list[SSEItem] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.integers(0, 4)) == 0:
            text = draw(field_text)
            body += encode_comment(text)
            expected.append(SSEItem(kind="comment", data=text))
        else:
            data = draw(data_text)
            name = draw(st.none() | field_text)
            ident = draw(st.none() | field_text)
            body += encode_event(data, event=name, id=ident)
            normalized = data.replace("\r\n", "\n").replace("\r", "\n")
            expected.append(SSEItem(kind="event", data=normalized, event=name, id=ident, has_data=True))
    if draw(st.booleans()):
        body += DONE
        expected.append(event("[DONE]"))
    style = draw(st.sampled_from(sorted(LINE_ENDS)))
    return relined(body, LINE_ENDS[style]), expected


@settings(max_examples=150, deadline=None)
@given(streams(), st.data())
def test_round_trip_any_chunking(stream, data):
    body, expected = stream
    if data.draw(st.booleans()) and body:
        body = b"\xef\xbb\xbf" + body
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=12)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    assert feed_all(chunks) == expected
    assert parse(body) == expected


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_arbitrary_bytes_parse_the_same_in_any_chunking(body, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=10)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    assert feed_all(chunks) == parse(body)
