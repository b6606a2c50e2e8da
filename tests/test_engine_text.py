"""Pure text logic of the engine: stop strings, hold-back, UTF-8 boundaries, limits, logprob release."""

from hypothesis import given, strategies as st

from wirecheck.reference_server.engine.choice import ChoiceOutput
from wirecheck.reference_server.engine.stops import find_stop, releasable
from wirecheck.reference_server.engine.types import TokenLogprob

EOS = 0


def run(pieces: list[bytes], stop=(), max_tokens=100, min_tokens=0):
    """Feed tokens whose bytes are `pieces` (ids 1..n), then EOS; return (events, output)."""
    table = [b""] + pieces
    out = ChoiceOutput(0, table, frozenset({EOS}), max_tokens, stop, min_tokens)
    events = []
    for token in list(range(1, len(pieces) + 1)) + [EOS]:
        if out.done:
            break
        events.append(out.push(token, TokenLogprob(str(token), -1.0, list(table[token]), [])))
    return events, out


def streamed(events) -> str:
    return "".join(e.text for e in events)


def test_stop_spanning_tokens_never_reaches_client():
    events, out = run([b"Hel", b"lo ", b"wo", b"rld", b" again"], stop=["o wor"])
    assert streamed(events) == "Hell"
    assert out.finish_reason == "stop"
    # Nothing released before the match was decided can contain a prefix of the stop string.
    assert all("o" not in e.text or e.finish_reason for e in events[1:])


def test_held_back_text_is_released_when_the_partial_match_fails():
    events, out = run([b"ab", b"c", b"x", b"y"], stop=["cd"])
    assert [e.text for e in events][:3] == ["ab", "", "cx"]
    assert streamed(events) == "abcxy" and out.finish_reason == "stop"


def test_hold_back_flushed_at_eos_and_length():
    events, out = run([b"abc", b"d"], stop=["dz"])
    assert streamed(events) == "abcd" and out.finish_reason == "stop"
    events, out = run([b"abc", b"d", b"e"], stop=["dz"], max_tokens=2)
    assert streamed(events) == "abcd" and out.finish_reason == "length"


def test_earliest_stop_wins_and_is_excluded():
    events, out = run([b"one two three"], stop=["three", "two"])
    assert streamed(events) == "one " and out.finish_reason == "stop"
    assert events[-1].stop_sequence == "two"  # which stop string matched, for Anthropic's stop_sequence
    events, out = run([b"Hel", b"lo ", b"wo", b"rld"], stop=["zz", "o wor"])
    assert events[-1].stop_sequence == "o wor"
    events, out = run([b"abc"], stop=["zz"])
    assert events[-1].finish_reason == "stop" and events[-1].stop_sequence is None  # EOS, not a stop string


def test_multibyte_character_split_across_tokens_is_never_emitted_half():
    snow = "☃".encode()  # 3 bytes
    events, _ = run([b"a" + snow[:1], snow[1:2], snow[2:] + b"b"])
    assert [e.text for e in events[:3]] == ["a", "", "☃b"]
    assert "\ufffd" not in streamed(events)


def test_incomplete_trailing_character_at_length_is_visible_not_dropped():
    events, out = run([b"a", "é".encode()[:1], b"zz"], max_tokens=2)
    assert out.finish_reason == "length" and streamed(events) == "a\ufffd"


def test_max_tokens_counts_tokens_and_eos_is_not_text():
    events, out = run([b"x"] * 10, max_tokens=4)
    assert streamed(events) == "xxxx" and out.finish_reason == "length" and len(out.tokens) == 4
    events, out = run([b"x", b"y"])
    assert streamed(events) == "xy" and out.finish_reason == "stop" and out.tokens[-1] == EOS


def test_min_tokens_defers_stop_strings():
    events, out = run([b"x", b"STOP", b"y", b"STOP"], stop=["STOP"], min_tokens=3)
    assert streamed(events) == "xSTOPy" and out.finish_reason == "stop"


def test_logprobs_released_with_their_text_and_dropped_for_the_stop():
    events, _ = run([b"a", b"b", b"X", b"c"], stop=["Xc"])
    tokens = [lp.token for e in events for lp in e.logprobs]
    assert tokens == ["1", "2"]


def test_find_and_releasable_are_consistent():
    assert find_stop("abcabc", ["ca"], 0) == 2
    assert releasable("hello wo", ["world"], 0) == 6
    assert releasable("hello", ["xyz"], 0) == 5
    assert releasable("aaa", ["aab"], 1) == 1


@given(st.lists(st.binary(min_size=1, max_size=4), min_size=1, max_size=12),
       st.lists(st.text(alphabet="ab☃\n", min_size=1, max_size=3), max_size=3))
def test_streamed_text_never_contains_a_stop_and_equals_final(pieces, stops):
    events, out = run(pieces, stop=stops)
    text = streamed(events)
    assert not any(s in text for s in stops)
    full = b"".join(pieces).decode("utf-8", errors="replace")
    assert full.startswith(text) or "\ufffd" in full
