"""Tool calling on chat completions: forced, required, automatic and parallel calls, streamed and not, and the
round trip back with the tool's result.

Model-agnostic: a call's arguments are judged against the declared tool's JSON schema, never golden values.
What a target cannot be made to do (one call where two were invited, a cut-off call) is inconclusive, not a pass.
Module-scoped fixtures make one request serve several checks.
"""

from __future__ import annotations

from typing import Any

import pytest

from .expect import expect_each, expect_no_problems, expect_object, expect_stream, first_choice, message_content
from .invariants import lint
from .invariants.common import short
from .judge import assemble, envelope_problems
from .registry import check, fail
from .streams import expect_incremental
from .target import Target
from .toolcalls import (WEATHER, StreamedCall, arguments_type_problems, call_problems, delta_problems,
                        distinct_id_problems, streamed_call_problems, streamed_calls, tool_schemas)
from .wire import Exchange, Wire

PATH = "chat/completions"
PARIS = "What is the weather in Paris?"
TWO_CITIES = "What is the weather in Paris and London?"
MAX_TOKENS = 64  # room for a call's arguments; a call cut off at this bound is inconclusive, not a failure
LONG_TOKENS = 160  # enough events (and time, even on a fast target) to see how a stream is delivered
TOOLS = tool_schemas([WEATHER])
NAMED = {"type": "function", "function": {"name": "get_weather"}}


def tool_body(target: Target, prompt: str = PARIS, **fields: Any) -> dict[str, Any]:
    return {"model": target.model, "messages": [{"role": "user", "content": prompt}], "tools": [WEATHER],
            "temperature": 0, "max_tokens": MAX_TOKENS, **fields}


@pytest.fixture(scope="module")
def named(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, tool_body(target, tool_choice=NAMED))


@pytest.fixture(scope="module")
def required(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, tool_body(target, tool_choice="required"))


@pytest.fixture(scope="module")
def required_stream(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, tool_body(target, tool_choice="required", stream=True))


@pytest.fixture(scope="module")
def parallel(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, tool_body(target, TWO_CITIES, tool_choice="required", parallel_tool_calls=True))


@pytest.fixture(scope="module")
def parallel_stream(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, tool_body(target, TWO_CITIES, tool_choice="required", parallel_tool_calls=True,
                                     stream=True))


def _message(choice: dict[str, Any], ex: Exchange) -> dict[str, Any]:
    message_content(choice, ex)  # fails unless message is an object with string-or-null content
    return choice["message"]


def _not_cut_off(finish: Any, what: str) -> None:
    if finish == "length":
        pytest.skip(f"inconclusive: {what} was cut off at max_tokens={MAX_TOKENS} (finish_reason 'length'), so its "
                    f"arguments cannot be judged")


def calls_of(ex: Exchange, what: str) -> tuple[dict[str, Any], list[Any]]:
    """(choice 0, its non-empty message.tool_calls) of a non-streamed answer that had to call a tool."""
    choice = first_choice(expect_object(ex, what), ex)
    _not_cut_off(choice.get("finish_reason"), what)
    message = _message(choice, ex)
    calls = message.get("tool_calls")
    if not isinstance(calls, list) or not calls:
        fail(f"{what} got no message.tool_calls (tool_calls {short(calls)}, finish_reason "
             f"{short(choice.get('finish_reason'))}, content {short(message.get('content'))}): agents never run "
             f"the tool", ex.evidence())
    return choice, calls


def stream_calls_of(ex: Exchange, what: str) -> tuple[list, list[StreamedCall], Any]:
    """(SSE items, assembled calls of choice 0, its finish_reason) of a streamed answer that had to call a tool."""
    items = expect_stream(ex, what)
    choice = assemble(items).get(0)
    finish = choice.finish_reason if choice else None
    _not_cut_off(finish, what)
    calls = streamed_calls(items)
    if not calls:
        fail(f"{what} streamed no delta.tool_calls (finish_reason {short(finish)}, content "
             f"{short(choice.content if choice else None)})", ex.evidence())
    return items, calls, finish



def every_call(calls: list[Any]) -> list[str]:
    return [p for i, call in enumerate(calls) for p in call_problems(call, TOOLS, f"tool_calls[{i}]")]


def judge_calls(ex: Exchange, what: str, finishes: tuple[str, ...]) -> None:
    """Every call valid, no text beside the calls, and a finish_reason among `finishes`."""
    choice, calls = calls_of(ex, what)
    problems = every_call(calls)
    content = choice["message"].get("content")
    if isinstance(content, str) and content.strip():
        problems.append(f"the calls came with text content {short(content)}: clients show it as an answer")
    if choice.get("finish_reason") not in finishes:
        expected = " or ".join(map(repr, finishes))
        problems.append(f"finish_reason is {short(choice.get('finish_reason'))}, not {expected}")
    expect_no_problems(ex, problems)


# --------------------------------------------------------------------------------------------- non-stream


@check("chat.tools.named", surface="chat", claims=("tools",),
       rationale="A forced named tool (tool_choice {type: function, function: {name}}) must come back as "
                 "message.tool_calls[0] with an id, type 'function', the name, and arguments a JSON string valid "
                 "under the tool's parameters; content null, finish_reason 'stop' (what OpenAI sends for a named "
                 "tool) or 'tool_calls'. Servers without a tool parser leak the call as text (sglang #3387).",
       faults=("tool-calls-in-content", "tool-arguments-object"))
def test_tools_named(named: Exchange) -> None:
    judge_calls(named, "a forced named tool call", ("stop", "tool_calls"))


@check("chat.tools.required", surface="chat", claims=("tools",),
       rationale="tool_choice 'required' must produce at least one call, each valid under its tool's schema, "
                 "with finish_reason 'tool_calls': agent loops dispatch tools on that value and treat 'stop' as a "
                 "final answer (ollama #7963, litellm #35663).",
       faults=("tool-calls-in-content", "tool-finish-stop", "tool-arguments-object"))
def test_tools_required(required: Exchange) -> None:
    judge_calls(required, "a tool_choice 'required' request", ("tool_calls",))


@check("chat.tools.arguments-string", surface="chat", claims=("tools",),
       rationale="function.arguments is a JSON-encoded *string*, never the decoded object: LangChain's and the "
                 "Vercel AI SDK's OpenAI parsers fail on an object (TGI and koboldcpp, langchain #26777, "
                 "text-generation-inference #2864).",
       faults=("tool-arguments-object",))
def test_tools_arguments_string(named: Exchange, required: Exchange) -> None:
    for ex, what in ((named, "a forced named tool call"), (required, "a tool_choice 'required' request")):
        _, calls = calls_of(ex, what)
        expect_no_problems(ex, arguments_type_problems(calls))


@check("chat.tools.finish-reason", surface="chat", claims=("tools", "stream"),
       rationale="An answer that calls tools under tool_choice 'auto' or 'required' ends with finish_reason "
                 "'tool_calls', streamed or not, and one without calls never does: clients that act only on "
                 "'tool_calls' drop the call (ollama #7963, litellm #12481).",
       faults=("tool-finish-stop",))
def test_tools_finish_reason(wire: Wire, target: Target, required_stream: Exchange) -> None:
    _, _, finish = stream_calls_of(required_stream, "a streamed tool_choice 'required' request")
    if finish != "tool_calls":
        fail(f"a streamed call ended with finish_reason {short(finish)}, not 'tool_calls'", required_stream.evidence())
    auto = wire.post(PATH, tool_body(target))
    choice = first_choice(expect_object(auto, "a tool_choice 'auto' request"), auto)
    _not_cut_off(choice.get("finish_reason"), "a tool_choice 'auto' request")
    called = bool(_message(choice, auto).get("tool_calls"))
    if called != (choice.get("finish_reason") == "tool_calls"):
        fail(f"under tool_choice 'auto' the answer {'calls' if called else 'does not call'} a tool but has "
             f"finish_reason {short(choice.get('finish_reason'))}", auto.evidence())


@check("chat.tools.choice-none", surface="chat", claims=("tools",),
       rationale="tool_choice 'none' with tools declared must answer in text, with no tool_calls: clients send it "
                 "to force a final answer and loop forever on calls they did not allow.",
       faults=("tool-choice-none-ignored",))
def test_tools_choice_none(wire: Wire, target: Target) -> None:
    ex = wire.post(PATH, tool_body(target, tool_choice="none"))
    choice = first_choice(expect_object(ex, "a tool_choice 'none' request"), ex)
    message = _message(choice, ex)
    if message.get("tool_calls"):
        fail(f"tool_choice 'none' was answered with tool_calls {short(message['tool_calls'])}", ex.evidence())
    if choice.get("finish_reason") == "tool_calls":
        fail("tool_choice 'none' was answered with finish_reason 'tool_calls'", ex.evidence())


@check("chat.tools.undeclared", surface="chat",
       rationale="A request that declares no tools gets no tool_calls and no finish_reason 'tool_calls', streamed or "
                 "not: OpenAI only calls tools the request declares, and a client without tools has nothing to run "
                 "and nothing to answer the call with (transformers serve 5.25 answers 'What is the weather in "
                 "Paris?' with a call to get_current_weather, a function nobody declared).",
       faults=("tool-calls-undeclared",))
def test_tools_undeclared(wire: Wire, target: Target) -> None:
    body = {"model": target.model, "messages": [{"role": "user", "content": PARIS}], "max_tokens": MAX_TOKENS}
    found = []
    ex = wire.post(PATH, body)
    choice = first_choice(expect_object(ex, "a request that declares no tools"), ex)
    calls = _message(choice, ex).get("tool_calls")
    problems = [f"answered with tool_calls {short(calls)}"] if calls else []
    if choice.get("finish_reason") == "tool_calls":
        problems.append("answered with finish_reason 'tool_calls'")
    found.append((ex, [f"a request that declares no tools was {p}" for p in problems]))
    if "stream" in target.profile.claims:
        ex = wire.post(PATH, {**body, "stream": True})
        items = expect_stream(ex, "a streamed request that declares no tools")
        streamed, finish = streamed_calls(items), getattr(assemble(items).get(0), "finish_reason", None)
        problems = [f"streamed delta.tool_calls for {', '.join(short(c.name) for c in streamed)}"] if streamed else []
        if finish == "tool_calls":
            problems.append("ended with finish_reason 'tool_calls'")
        found.append((ex, [f"a streamed request that declares no tools {p}" for p in problems]))
    expect_each(found)


@check("chat.tools.invalid-choice", surface="chat", claims=("tools",),
       rationale="tool_choice naming a function that is not in `tools`, or any tool_choice without `tools`, is a "
                 "client bug that OpenAI answers with 400 in its error envelope (\"Invalid value for 'tool_choice': "
                 "'tool_choice' is only allowed when 'tools' are specified.\", writer-framework #1013); a server "
                 "that answers 200 hides the bug, one that answers 500 gets retried. Both cases are tried.",
       faults=("tool-choice-unchecked", "error-as-200", "bad-input-500", "flat-error"))
def test_tools_invalid_choice(wire: Wire, target: Target) -> None:
    unknown = {"type": "function", "function": {"name": "get_stock_price"}}
    cases = (("tool_choice naming an undeclared function", tool_body(target, tool_choice=unknown)),
             ("tool_choice 'required' without tools",
              {k: v for k, v in tool_body(target, tool_choice="required").items() if k != "tools"}))
    found = []
    for what, body in cases:
        ex = wire.post(PATH, body)
        if ex.error or ex.timed_out:
            problems = [f"{what}: {ex.describe()}"]
        elif not 400 <= ex.status < 500:
            problems = [f"{what} got HTTP {ex.status}, not 400"]
        else:
            problems = [f"{what}: {p}" for p in envelope_problems(ex.status, ex.content_type, ex.body,
                                                                  strict=target.strict)]
        found.append((ex, problems))
    expect_each(found)


CANNED_CALL = {"id": "call_wirecheck_1", "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}


def _own_call(ex: Exchange) -> dict[str, Any] | None:
    """The target's own first call when it made a valid one: ids it minted must round-trip."""
    try:
        call = ex.json()["choices"][0]["message"]["tool_calls"][0] if ex.status == 200 else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return call if call is not None and not call_problems(call, TOOLS, "tool_calls[0]") else None


@check("chat.tools.round-trip", surface="chat", claims=("tools",),
       rationale="The agent loop's second turn: the assistant's own tool_calls message replayed as returned "
                 "(content null) plus a tool message answering its id must get a 200 with a text answer; servers "
                 "that reject the replay break every agent after its first call (ollama, lmstudio #261).",
       faults=("null-content-rejected",))
def test_tools_round_trip(wire: Wire, target: Target, required: Exchange) -> None:
    call = _own_call(required) or CANNED_CALL
    messages = [{"role": "user", "content": PARIS},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": call["id"], "content": "{\"temperature_c\": 21, \"sky\": \"sunny\"}"}]
    ex = wire.post(PATH, {**tool_body(target), "messages": messages})
    choice = first_choice(expect_object(ex, "the turn after a tool result"), ex)
    message = _message(choice, ex)
    if message.get("tool_calls"):
        pytest.skip("inconclusive: the model called a tool again instead of answering")
    if not isinstance(message.get("content"), str):
        fail(f"the turn after a tool result has content {short(message.get('content'))}, not a text answer",
             ex.evidence())


# ------------------------------------------------------------------------------------------------- streams


@check("chat.tools.stream.deltas", surface="chat", claims=("tools", "stream"),
       rationale="Streamed calls: each fragment has an integer index; the first per index carries id, type "
                 "'function' and function.name, later ones string argument pieces that concatenate to valid "
                 "arguments. openai-python's accumulator appends a repeated id or name (sglang #4700, lmdeploy "
                 "#3412) but replaces `type`, so only repeated ids and names fail; objects break it outright.",
       faults=("tool-header-every-fragment", "tool-id-every-fragment", "tool-arguments-object",
               "tool-calls-in-content"))
def test_tools_stream_deltas(required_stream: Exchange) -> None:
    items, _, _ = stream_calls_of(required_stream, "a streamed tool_choice 'required' request")
    expect_no_problems(required_stream, delta_problems(items) or streamed_call_problems(items, TOOLS))


@check("chat.tools.stream.invariants", surface="chat", claims=("tools", "stream"),
       rationale="Every chat stream invariant holds on a tool-call stream too: role 'assistant' first (tool-call "
                 "deltas before any role become generic chunks in LangChain.js, langchainjs #11157), stable id, "
                 "one finish_reason, [DONE].",
       faults=("no-role-chunk", "per-chunk-ids"))
def test_tools_stream_invariants(required_stream: Exchange, target: Target) -> None:
    items = expect_stream(required_stream, "a streamed tool_choice 'required' request")
    failed = lint("chat", items, strict=target.strict)
    expect_no_problems(required_stream, [f"{cid}: {problems[0]}" for cid, problems in failed.items()])


def _parallel_problems(ids: list[Any], indexes: list[Any], what: str) -> list[str]:
    problems = distinct_id_problems(ids, what)
    if len(set(indexes)) < len(indexes):
        problems.append(f"{what}: {len(indexes)} calls share indexes {indexes}: accumulators merge them into one "
                        f"call with concatenated arguments")
    return problems


@check("chat.tools.stream.parallel", surface="chat", claims=("tools", "parallel_tool_calls", "stream"),
       rationale="Parallel calls, streamed and not, are separate calls: distinct ids, distinct stream indexes, "
                 "each call's arguments valid on their own. Every call on index 0 merges names and concatenates "
                 "arguments into invalid JSON (litellm #37792, dynamo #4723, lmdeploy #3412).",
       faults=("tool-calls-one-index",))
def test_tools_stream_parallel(parallel: Exchange, parallel_stream: Exchange) -> None:
    judged = 0
    _, calls = calls_of(parallel, "a request inviting two parallel calls")
    if len(calls) >= 2:
        judged += 1
        problems = every_call(calls)
        ids = [c.get("id") if isinstance(c, dict) else None for c in calls]
        expect_no_problems(parallel, problems + _parallel_problems(ids, list(range(len(calls))), "non-streamed"))
    items, streamed, _ = stream_calls_of(parallel_stream, "a streamed request inviting two parallel calls")
    headers = sum(call.headers for call in streamed)
    if headers >= 2:
        judged += 1
        indexes = [call.index for call in streamed for _ in range(max(1, call.headers))]
        ids = [i for call in streamed for i in call.ids]
        problems = _parallel_problems(ids, indexes, "streamed")
        expect_no_problems(parallel_stream, problems or streamed_call_problems(items, TOOLS))
    if not judged:
        pytest.skip("inconclusive: the target made a single call for two cities, streamed and not; parallel "
                    "calls could not be observed")


@check("chat.tools.parallel-disabled", surface="chat", claims=("tools", "parallel_tool_calls"),
       rationale="parallel_tool_calls: false allows at most one call per turn; vLLM accepted and ignored it and "
                 "LangGraph nodes written for one call broke on three (vllm #9451).",
       faults=("parallel-tool-calls-ignored",))
def test_tools_parallel_disabled(wire: Wire, target: Target, parallel: Exchange) -> None:
    _, calls = calls_of(parallel, "a request inviting two parallel calls")
    if len(calls) < 2:
        pytest.skip("inconclusive: the target makes a single call for two cities even when parallel calls are "
                    "allowed, so disabling them shows nothing")
    ex = wire.post(PATH, tool_body(target, TWO_CITIES, tool_choice="required", parallel_tool_calls=False))
    _, calls = calls_of(ex, "a request with parallel_tool_calls false")
    if len(calls) > 1:
        fail(f"parallel_tool_calls false was answered with {len(calls)} calls", ex.evidence())


@check("chat.tools.stream.not-buffered", surface="chat", claims=("tools", "stream"),
       rationale="Declaring tools must not turn a stream into one buffered block at the end: Ollama's /v1 did "
                 "once tools were given, and chat UIs froze until the whole answer was done (ollama #9092).",
       faults=("tools-buffered-stream",))
def test_tools_stream_not_buffered(wire: Wire, target: Target) -> None:
    extra = {"min_tokens": LONG_TOKENS} if "min_tokens" in target.profile.claims else {}
    body = tool_body(target, "Count from one to one hundred, in words.", stream=True, max_tokens=LONG_TOKENS,
                     **extra)
    expect_incremental(wire.post(PATH, body))
