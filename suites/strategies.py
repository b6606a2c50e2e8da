"""Hypothesis strategies for *valid* request variations: the shapes real clients send.

Small, composable pieces (sampling parameters, `n`, stop sets, message histories with tool calls and
null content, stream options, logprobs) assembled into whole request bodies by `chat_requests`,
`completion_requests` and `embedding_requests`. Every generated body is valid under spec/openapi.yaml
(tests/test_strategies.py checks that), and only uses what the profile's `claims` promise: a feature the
target does not claim is never sent, so a rejection is always the target's fault.

Token budgets stay small (`MAX_TOKENS`) so a property run costs seconds. Text comes from a fixed word list
(with some non-ASCII words) rather than arbitrary unicode: the point is request *shape*, and arbitrary
strings belong to the schemathesis fuzz.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from hypothesis import strategies as st

MAX_TOKENS = 16

WORDS = ("the", "a", "cat", "sat", "on", "mat", "hello", "world", "why", "is", "sky", "blue", "tell", "me",
         "story", "about", "numbers", "one", "two", "3", "42", "and", "or", "not", "yes", "no", "please",
         "weather", "Paris", "?", "!", ".", ",", "\n",
         "café", "naïve", "日本語", "Привет", "🙂", "ü", "—")
STOPS = (".", "\n", ",", "the", " and", "!", "?", "END", "e", "s ", "\n\n")
TOOL_NAMES = ("get_weather", "lookup", "add_numbers", "search-web", "Now_2")


def optional(strategy: st.SearchStrategy[Any], null: bool = True) -> st.SearchStrategy[Any]:
    """A value, or (when `null`) an explicit JSON null: LangChain-style clients send null for unset fields."""
    return st.one_of(st.none(), strategy) if null else strategy


def rounded(low: float, high: float, places: int = 2) -> st.SearchStrategy[float]:
    """Floats as people write them (0.7, not 0.69999999999812)."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda x: round(x, places)).filter(
        lambda x: low <= x <= high)


def text(min_words: int = 1, max_words: int = 8) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(WORDS), min_size=min_words, max_size=max_words).map(" ".join)


def text_content() -> st.SearchStrategy[Any]:
    """A message's content: a string, or a non-empty array of text parts."""
    part = text().map(lambda t: {"type": "text", "text": t})
    return st.one_of(text(), st.lists(part, min_size=1, max_size=3))


# ------------------------------------------------------------------------------------------- messages


@st.composite
def tool_call_turn(draw: st.DrawFn, turn: int = 0) -> list[dict[str, Any]]:
    """An assistant turn that called tools (content null, "" or absent) and the tool messages answering it."""
    count = draw(st.integers(1, 2))
    calls = []
    for i in range(count):
        args = draw(st.dictionaries(st.sampled_from(("city", "q", "x", "y", "unit")),
                                    st.one_of(text(1, 2), st.integers(-5, 100)), max_size=2))
        calls.append({"id": f"call_{turn}_{i}", "type": "function",
                      "function": {"name": draw(st.sampled_from(TOOL_NAMES)), "arguments": json.dumps(args)}})
    assistant: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
    content = draw(st.sampled_from(("absent", "null", "empty")))
    if content != "absent":
        assistant["content"] = None if content == "null" else ""
    answers = [{"role": "tool", "tool_call_id": c["id"], "content": draw(text_content())} for c in calls]
    return [assistant, *answers]


@st.composite
def messages(draw: st.DrawFn, *, tools: bool = True, max_turns: int = 2) -> list[dict[str, Any]]:
    """A conversation: optional system prompt, earlier turns (text replies or tool calls), ending with the
    user (or with tool results, which the model is to answer)."""
    out: list[dict[str, Any]] = []
    if draw(st.booleans()):
        out.append({"role": "system", "content": draw(text_content())})
    for turn in range(draw(st.integers(0, max_turns))):
        out.append({"role": "user", "content": draw(text_content())})
        if tools and draw(st.booleans()):
            out.extend(draw(tool_call_turn(turn)))
        else:
            out.append({"role": "assistant", "content": draw(text())})
    out.append({"role": "user", "content": draw(text_content())})
    if tools and draw(st.integers(0, 3)) == 0:
        out.extend(draw(tool_call_turn(max_turns)))  # the model answers tool results
    return out


# ------------------------------------------------------------------------------------- parameter sets


def sampling(claims: Collection[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Sampling parameters every OpenAI-compatible target accepts, plus claimed extensions."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "temperature": optional(st.one_of(st.just(0), rounded(0, 2))),
        "top_p": optional(rounded(0, 1)),
        "presence_penalty": optional(rounded(-2, 2)),
        "frequency_penalty": optional(rounded(-2, 2)),
        "user": text(1, 2).map(lambda t: t.replace(" ", "_")),
    }
    if "seed" in claims:
        fields["seed"] = optional(st.integers(0, 2**31 - 1))
    if "top_k" in claims:
        fields["top_k"] = optional(st.integers(-1, 40))
    return st.fixed_dictionaries({}, optional=fields)


def stop_sets(claims: Collection[str]) -> st.SearchStrategy[dict[str, Any]]:
    """`stop` as null, one string or up to four strings (only when the profile claims stop)."""
    if "stop" not in claims:
        return st.just({})
    value = st.one_of(st.none(), st.sampled_from(STOPS), st.lists(st.sampled_from(STOPS), min_size=1, max_size=4,
                                                                    unique=True))
    return st.fixed_dictionaries({}, optional={"stop": value})


def choices(claims: Collection[str]) -> st.SearchStrategy[dict[str, Any]]:
    """`n`: absent, null or 1, and 2-3 only when the profile claims n."""
    values = st.integers(1, 3) if "n" in claims else st.just(1)
    return st.fixed_dictionaries({}, optional={"n": optional(values)})


@st.composite
def token_budget(draw: st.DrawFn, claims: Collection[str], *, chat: bool) -> dict[str, Any]:
    """A small max_tokens (or max_completion_tokens), and min_tokens below it where claimed."""
    keys = ["max_tokens"] + (["max_completion_tokens"] if chat and "max_completion_tokens" in claims else [])
    limit = draw(st.integers(1, MAX_TOKENS))
    out: dict[str, Any] = {draw(st.sampled_from(keys)): limit}
    if "min_tokens" in claims and draw(st.booleans()):
        out["min_tokens"] = draw(st.integers(0, limit))
    return out


def chat_logprobs(claims: Collection[str]) -> st.SearchStrategy[dict[str, Any]]:
    if "logprobs" not in claims:
        return st.just({})
    return st.one_of(st.just({}), st.just({"logprobs": False}),
                     st.builds(lambda k: {"logprobs": True, "top_logprobs": k}, st.integers(0, 5)),
                     st.just({"logprobs": True}))


def stream_options(claims: Collection[str]) -> st.SearchStrategy[dict[str, Any]]:
    """`stream: true` with, where include_usage is claimed, stream_options asking for usage or not."""
    base = {"stream": True}
    if "include_usage" not in claims:
        return st.just(base)
    return st.one_of(st.just(base), st.booleans().map(lambda b: {**base, "stream_options": {"include_usage": b}}))


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        out.update(part)
    return out


# ------------------------------------------------------------------------------------------ requests


def chat_requests(model: str, claims: Collection[str], *, stream: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    """Whole chat completion requests (streamed when `stream`)."""
    head = st.fixed_dictionaries({"model": st.just(model), "messages": messages()})
    parts = [head, sampling(claims), choices(claims), stop_sets(claims), token_budget(claims, chat=True),
             chat_logprobs(claims)]
    if stream:
        parts.append(stream_options(claims))
    else:
        parts.append(st.sampled_from(({}, {"stream": False}, {"stream": None})))
    return st.tuples(*parts).map(lambda ps: _merge(*ps))


@st.composite
def _completion_extras(draw: st.DrawFn, claims: Collection[str]) -> dict[str, Any]:
    """logprobs (an integer here) and echo; never both (not every target implements echo with logprobs)."""
    pick = draw(st.sampled_from(("none", "logprobs", "echo")))
    if pick == "logprobs" and "logprobs" in claims:
        return {"logprobs": draw(st.integers(0, 5))}
    if pick == "echo" and "echo" in claims:
        return {"echo": draw(st.booleans())}
    return {}


def prompts() -> st.SearchStrategy[Any]:
    """A text prompt, or a batch of one or two."""
    return st.one_of(text(1, 10), st.lists(text(1, 6), min_size=1, max_size=2))


def completion_requests(model: str, claims: Collection[str], *, stream: bool = False
                        ) -> st.SearchStrategy[dict[str, Any]]:
    head = st.fixed_dictionaries({"model": st.just(model), "prompt": prompts()})
    parts = [head, sampling(claims), choices(claims), stop_sets(claims), token_budget(claims, chat=False),
             _completion_extras(claims)]
    if stream:
        parts.append(stream_options(claims))
    return st.tuples(*parts).map(lambda ps: _merge(*ps))


def embedding_requests(model: str, claims: Collection[str]) -> st.SearchStrategy[dict[str, Any]]:
    optional_fields: dict[str, st.SearchStrategy[Any]] = {"user": st.just("wirecheck")}
    formats = ["float"] + (["base64"] if "embeddings-base64" in claims else [])
    optional_fields["encoding_format"] = st.sampled_from(formats)
    if "dimensions" in claims:
        optional_fields["dimensions"] = st.integers(1, 16)
    inputs = st.one_of(text(1, 12), st.lists(text(1, 8), min_size=1, max_size=3))
    return st.fixed_dictionaries({"model": st.just(model), "input": inputs}, optional=optional_fields)


# ----------------------------------------------------------------------------------------- showcases


def _claimed_extras(claims: Collection[str], *, chat: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"temperature": 0.7, "max_tokens": 8}
    if "n" in claims:
        out["n"] = 2
    if "stop" in claims:
        out["stop"] = ["\n\n", "END"]
    if "seed" in claims:
        out["seed"] = 7
    if "logprobs" in claims:
        out.update({"logprobs": True, "top_logprobs": 2} if chat else {"logprobs": 2})
    return out


def _stream_extras(claims: Collection[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"stream": True}
    if "include_usage" in claims:
        out["stream_options"] = {"include_usage": True}
    return out


def chat_showcase(model: str, claims: Collection[str], *, stream: bool = False) -> dict[str, Any]:
    """One request using every claimed chat feature at once, sent before the generated ones: whatever
    --fuzz-examples is, n > 1, stops, logprobs, the usage trailer and a replayed tool call with null content
    are exercised at least once."""
    history = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_0", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny, 21 C"},
        {"role": "user", "content": [{"type": "text", "text": "Tell me in one sentence."}]},
    ]
    body = {"model": model, "messages": history, **_claimed_extras(claims, chat=True)}
    return {**body, **_stream_extras(claims)} if stream else body


def completion_showcase(model: str, claims: Collection[str], *, stream: bool = False) -> dict[str, Any]:
    body = {"model": model, "prompt": ["Once upon a time", "The capital of France is"],
            **_claimed_extras(claims, chat=False)}
    return {**body, **_stream_extras(claims)} if stream else body


def embedding_showcase(model: str, claims: Collection[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": ["hello world", "wirecheck"]}
    if "embeddings-base64" in claims:
        body["encoding_format"] = "base64"
    if "dimensions" in claims:
        body["dimensions"] = 8
    return body
