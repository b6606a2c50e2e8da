"""Anthropic Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`): response shape, stop reasons, tool
use, transport (x-api-key, anthropic-version/-beta, ?beta=true) and errors in Anthropic's envelope.

Model-agnostic like the chat checks: a stop sequence is taken from the target's own greedy answer, tool input is
judged against the declared input_schema, never golden text. Stream framing is judged by the stream invariants
(test_messages_stream.py); streams here serve tool use and text comparisons. Every request goes out with the key as
`x-api-key` and `anthropic-version: 2023-06-01` (suites/target.py).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .expect import expect_each, expect_no_problems, expect_object, expect_stream, skip_if_refused
from .invariants import lint
from .invariants.common import short
from .invariants.messages import tool_inputs
from .judge import pick_stop, schema_problems
from .registry import check, fail
from .target import Target
from .toolcalls import json_object_problems, schema_violations
from .wire import Exchange, Wire

PATH = "messages"
PROMPT = [{"role": "user", "content": "Count from one to ten."}]
DETERMINISM_PROMPT = [{"role": "user", "content": "What is 7 times 8?"}]
PARIS = [{"role": "user", "content": "What is the weather in Paris?"}]
MAX_TOKENS = 48
BOUND = 3
TOOL_TOKENS = 64  # room for a call's input; a call cut off at this bound is inconclusive, not a failure
WEATHER = {"name": "get_weather", "description": "Get the current weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string", "description": "The city"}},
                            "required": ["city"]}}
SCHEMAS = {WEATHER["name"]: WEATHER["input_schema"]}
UNKNOWN_MODEL = "wirecheck-no-such-model-7f3a"


def body(target: Target, messages: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    return {"model": target.model, "max_tokens": MAX_TOKENS, "messages": messages or PROMPT, **fields}


def create(wire: Wire, target: Target, messages: list[dict[str, Any]] | None = None, **fields: Any) -> Exchange:
    return wire.post(PATH, body(target, messages, **fields))


def text_of(message: dict[str, Any]) -> str:
    """The concatenated text blocks of a Message."""
    content = message.get("content")
    blocks = content if isinstance(content, list) else []
    return "".join(b.get("text") or "" for b in blocks if isinstance(b, dict) and b.get("type") == "text")


def streamed_text(ex: Exchange) -> tuple[str, Any]:
    """(text of the text_delta events, the last message_delta's stop_reason) of a streamed message."""
    text, reason = "", None
    for item in expect_stream(ex, "a streamed message"):
        try:
            value = json.loads(item.data) if item.kind == "event" and item.has_data else None
        except ValueError:
            continue
        if not isinstance(value, dict):
            continue
        delta = value.get("delta") if isinstance(value.get("delta"), dict) else {}
        if value.get("type") == "content_block_delta" and delta.get("type") == "text_delta":
            text += delta.get("text") or ""
        if value.get("type") == "message_delta" and delta.get("stop_reason") is not None:
            reason = delta["stop_reason"]
    return text, reason



def envelope_problems(ex: Exchange, status: int, error_type: str) -> list[str]:
    """An error must be HTTP `status` with `{"type": "error", "error": {"type": error_type, "message"}}`."""
    if ex.error or ex.timed_out:
        return [ex.describe()]
    problems = [] if ex.status == status else [f"HTTP {ex.status}, not {status}"]
    try:
        value = ex.json()
    except ValueError:
        return problems + [f"the error body is not JSON: {ex.body[:120]!r}"]
    problems += schema_problems("AnthropicErrorResponse", value, where=f"HTTP {ex.status} error")
    error = value.get("error") if isinstance(value, dict) else None
    if isinstance(value, dict) and value.get("type") != "error":
        problems.append(f"the error body's type is {short(value.get('type'))}, not \"error\" (Anthropic's envelope)")
    if isinstance(error, dict) and error.get("type") != error_type:
        problems.append(f"error.type is {short(error.get('type'))}, not {error_type!r}")
    return problems


@pytest.fixture(scope="module")
def greedy(wire: Wire, target: Target) -> tuple[Exchange, dict[str, Any]]:
    ex = create(wire, target, temperature=0)
    return ex, expect_object(ex, "a plain greedy message")


# ------------------------------------------------------------------------------------------------ shape


@check("messages.response-schema", surface="messages",
       rationale="A non-streamed reply is a Message: a string id, type message, role assistant, content blocks, a "
                 "stop_reason from the enum, stop_sequence, usage with integer input_tokens and output_tokens; the "
                 "anthropic SDK's models and usage metering reject anything else (breakage 30). Anthropic documents "
                 "ids as opaque and the SDK never parses them, so their `msg_` form is judged under --strict only.",
       faults=("messages-response-schema",))
def test_messages_response_schema(greedy, target: Target) -> None:
    ex, message = greedy
    problems = schema_problems("AnthropicMessage", message, strict=target.strict)
    if message.get("stop_reason") is None:
        problems.append("stop_reason is null in a finished message")
    usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
    if usage.get("input_tokens") == 0:
        problems.append("usage.input_tokens is 0 for a non-empty prompt")
    expect_no_problems(ex, problems)


@check("messages.max-tokens", surface="messages",
       rationale="`max_tokens: N` bounds the output (usage.output_tokens <= N) and a message cut there ends with "
                 "stop_reason \"max_tokens\": clients continue or report a truncated answer only on that value.",
       faults=("messages-max-tokens-reason",))
def test_messages_max_tokens(greedy, wire: Wire, target: Target) -> None:
    used = (greedy[1].get("usage") or {}).get("output_tokens")
    if isinstance(used, int) and used <= BOUND:
        pytest.skip(f"inconclusive: the greedy answer is only {used} tokens, too short to test a {BOUND}-token bound")
    ex = create(wire, target, temperature=0, max_tokens=BOUND)
    message = expect_object(ex, f"a message with max_tokens={BOUND}")
    problems = []
    used = (message.get("usage") or {}).get("output_tokens") if isinstance(message.get("usage"), dict) else None
    if isinstance(used, int) and used > BOUND:
        problems.append(f"max_tokens={BOUND} produced {used} output tokens")
    if message.get("stop_reason") != "max_tokens":
        problems.append(f"a message cut at max_tokens={BOUND} has stop_reason {short(message.get('stop_reason'))}, "
                        f"not \"max_tokens\"")
    expect_no_problems(ex, problems)


@check("messages.max-tokens-zero", surface="messages",
       rationale="`max_tokens: 0` asks for no output at all (anthropic-python documents it for pre-warming the prompt "
                 "cache): the Message has no content blocks and usage.output_tokens 0. A gateway that drops the "
                 "bound generates a whole answer the client neither reads nor wants to pay for; one that does not "
                 "support it may refuse it with a 400 naming max_tokens (not-claimed).",
       faults=("messages-max-tokens-zero-ignored",))
def test_messages_max_tokens_zero(wire: Wire, target: Target) -> None:
    ex = create(wire, target, max_tokens=0)
    skip_if_refused(ex, ("max_tokens",), "max_tokens 0",
                    lambda status, _, __: envelope_problems(ex, 400, "invalid_request_error"))
    message = expect_object(ex, "a message with max_tokens 0")
    problems = []
    if message.get("content"):
        problems.append(f"max_tokens 0 was answered with content {short(message.get('content'), 120)}")
    used = (message.get("usage") or {}).get("output_tokens") if isinstance(message.get("usage"), dict) else None
    if used != 0:
        problems.append(f"max_tokens 0 reports usage.output_tokens {short(used)}, not 0")
    expect_no_problems(ex, problems)


@check("messages.stop-sequence", surface="messages", claims=("stop",),
       rationale="With stop_sequences, generation ends before the sequence (never including it) with stop_reason "
                 "\"stop_sequence\" and `stop_sequence` naming it, streamed or not; taken from the target's own "
                 "greedy answer (breakage 16).",
       faults=("messages-stop-sequence-unreported",))
def test_messages_stop_sequence(greedy, wire: Wire, target: Target) -> None:
    text = text_of(greedy[1])
    picked = pick_stop(text)
    if picked is None:
        pytest.skip(f"inconclusive: the greedy output {text!r} is too short to take a stop sequence from")
    stop, expected = picked
    ex = create(wire, target, temperature=0, stop_sequences=[stop])
    message = expect_object(ex, "a greedy message with stop_sequences")
    got = text_of(message)
    if stop in got:
        fail(f"the stop sequence {stop!r} appears in the output {got[:200]!r}", ex.evidence())
    if not got.startswith(expected) and message.get("stop_reason") != "stop_sequence":
        pytest.skip(f"inconclusive: the output diverged from the greedy run ({got[:80]!r} vs {expected[:80]!r})")
    problems = []
    if message.get("stop_reason") != "stop_sequence":
        problems.append(f"stopped at {stop!r} with stop_reason {short(message.get('stop_reason'))}, not "
                        f"\"stop_sequence\"")
    if message.get("stop_sequence") != stop:
        problems.append(f"stop_sequence is {short(message.get('stop_sequence'))}, not {stop!r}")
    if "stream" in target.profile.claims:
        streamed = create(wire, target, temperature=0, stop_sequences=[stop], stream=True)
        text, reason = streamed_text(streamed)
        if stop in text:
            problems.append(f"streamed, the stop sequence {stop!r} appears in the output {text[:200]!r}")
        elif text.startswith(expected) and reason != "stop_sequence":
            problems.append(f"streamed, the message stopped at {stop!r} with stop_reason {short(reason)}")
    expect_no_problems(ex, problems)


@check("messages.determinism", surface="messages", claims=("determinism", "stream"),
       rationale="A target claiming determinism gives identical text at temperature 0, twice and streamed vs "
                 "non-streamed, on /v1/messages as on chat completions: caches and evals depend on it.",
       faults=("messages-temperature-zero-ignored",))
def test_messages_determinism(wire: Wire, target: Target) -> None:
    for messages in (PROMPT, DETERMINISM_PROMPT):
        texts = []
        for _ in range(2):
            ex = create(wire, target, messages, temperature=0, max_tokens=32)
            texts.append(text_of(expect_object(ex, "a greedy message")))
        if texts[0] != texts[1]:
            fail(f"two identical greedy requests differ: {texts[0][:80]!r} vs {texts[1][:80]!r}", ex.evidence())
        streamed = create(wire, target, messages, temperature=0, max_tokens=32, stream=True)
        text, _ = streamed_text(streamed)
        if text != texts[0]:
            fail(f"streamed text {text[:80]!r} differs from non-streamed {texts[0][:80]!r}", streamed.evidence())


# ------------------------------------------------------------------------------------------------ tools


def _tool_body(target: Target, choice: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return body(target, PARIS, tools=[WEATHER], tool_choice=choice, temperature=0, max_tokens=TOOL_TOKENS, **fields)


@pytest.fixture(scope="module")
def tool_any(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, _tool_body(target, {"type": "any"}))


@pytest.fixture(scope="module")
def tool_any_stream(wire: Wire, target: Target) -> Exchange:
    return wire.post(PATH, _tool_body(target, {"type": "any"}, stream=True))


def _not_cut_off(reason: Any, what: str) -> None:
    if reason == "max_tokens":
        pytest.skip(f"inconclusive: {what} was cut off at max_tokens={TOOL_TOKENS}, so its input cannot be judged")


def tool_use_problems(message: dict[str, Any], what: str) -> list[str]:
    """tool_use blocks with a toolu id, a declared name and input valid under its input_schema; stop_reason
    tool_use exactly when there are such blocks."""
    blocks = [b for b in message.get("content") or [] if isinstance(b, dict) and b.get("type") == "tool_use"]
    problems = []
    if not blocks:
        problems.append(f"{what} got no tool_use block (content {short(message.get('content'), 160)})")
    for i, block in enumerate(blocks):
        if not isinstance(block.get("id"), str) or not block["id"]:
            problems.append(f"tool_use block {i} has id {short(block.get('id'))}: the tool_result cannot answer it")
        if block.get("name") not in SCHEMAS:
            problems.append(f"tool_use block {i} names {short(block.get('name'))}, not a declared tool")
        elif not isinstance(block.get("input"), dict):
            problems.append(f"tool_use block {i} has input {short(block.get('input'))}, not a JSON object")
        else:
            problems += schema_violations(block["input"], SCHEMAS[block["name"]], f"tool_use block {i} input")
    if bool(blocks) != (message.get("stop_reason") == "tool_use"):
        problems.append(f"{what}: stop_reason is {short(message.get('stop_reason'))} with {len(blocks)} tool_use "
                        f"block(s); it must be \"tool_use\" exactly when there are some")
    return problems


@check("messages.tools.use", surface="messages", claims=("tools",),
       rationale="tool_choice {type: any} and {type: tool, name} must answer with tool_use blocks (id, declared name, "
                 "input valid under input_schema) and stop_reason \"tool_use\": agent loops run tools only on that "
                 "value and take end_turn for the final answer (breakage 21).",
       faults=("messages-tool-end-turn",))
def test_messages_tools_use(tool_any: Exchange, wire: Wire, target: Target) -> None:
    named = wire.post(PATH, _tool_body(target, {"type": "tool", "name": "get_weather"}))
    for ex, what in ((tool_any, "tool_choice any"), (named, "tool_choice {type: tool, name: get_weather}")):
        message = expect_object(ex, f"a request with {what}")
        _not_cut_off(message.get("stop_reason"), what)
        expect_no_problems(ex, tool_use_problems(message, what))


@check("messages.tools.stream", surface="messages", claims=("tools", "stream"),
       rationale="A streamed tool_use block starts with id, name and input {}; its input_json_delta pieces "
                 "concatenate to a JSON object valid under input_schema; stop_reason is tool_use, and every messages "
                 "stream invariant holds (vllm #34887, litellm #29491; breakage 21).",
       faults=("messages-partial-json-broken", "messages-input-in-start", "messages-tool-end-turn"))
def test_messages_tools_stream(tool_any_stream: Exchange, target: Target) -> None:
    ex = tool_any_stream
    items = expect_stream(ex, "a streamed tool_choice any request")
    _, reason = streamed_text(ex)
    _not_cut_off(reason, "the streamed tool_choice any request")
    failed = lint("messages", items, strict=target.strict)
    problems = [f"{cid}: {found[0]}" for cid, found in failed.items()]
    blocks = tool_inputs(items)
    if not blocks:
        problems.append(f"tool_choice any streamed no tool_use block (stop_reason {short(reason)})")
    for i, (block, text) in enumerate(blocks):
        if block.get("name") in SCHEMAS:
            problems += json_object_problems(text or "{}", f"tool_use block {i}'s concatenated partial_json",
                                             SCHEMAS[block["name"]])
    if reason != "tool_use":
        problems.append(f"a streamed tool_use message ended with stop_reason {short(reason)}, not \"tool_use\"")
    expect_no_problems(ex, problems)


def _own_tool_use(ex: Exchange) -> dict[str, Any] | None:
    try:
        blocks = ex.json()["content"] if ex.status == 200 else []
    except (ValueError, KeyError, TypeError):
        return None
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("input"), dict) \
                and isinstance(block.get("id"), str) and block.get("name") == "get_weather":
            return {k: block[k] for k in ("type", "id", "name", "input")}
    return None


@check("messages.tools.round-trip", surface="messages", claims=("tools",),
       rationale="The agent loop's second turn: the assistant's own tool_use block replayed, then a user tool_result "
                 "(content as text blocks, as the SDKs' typed params send it) must get a 200 Message; servers that "
                 "reject the replay break every agent after its first call.",
       faults=("messages-tool-result-blocks-rejected",))
def test_messages_tools_round_trip(tool_any: Exchange, wire: Wire, target: Target) -> None:
    use = _own_tool_use(tool_any) or {"type": "tool_use", "id": "toolu_wirecheck_1", "name": "get_weather",
                                      "input": {"city": "Paris"}}
    ex = _answer_tool_use(wire, target, use)
    message = expect_object(ex, "the turn after a tool_result")
    if not isinstance(message.get("content"), list) or message.get("role") != "assistant":
        fail(f"the turn after a tool_result is not an assistant Message: {short(message, 200)}", ex.evidence())


def _answer_tool_use(wire: Wire, target: Target, use: dict[str, Any]) -> Exchange:
    """The second turn of the agent loop: `use` replayed as the assistant's, then a user tool_result for it."""
    messages = [*PARIS, {"role": "assistant", "content": [use]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"],
                                              "content": [{"type": "text", "text": "21 C and sunny"}]}]}]
    return wire.post(PATH, body(target, messages, tools=[WEATHER], temperature=0))


# Anthropic refuses a request whose tool_use ids do not match this (HKUDS/nanobot #4356, spec
# AnthropicToolUseBlockParam): an id a client cannot send back breaks the next turn on api.anthropic.com.
SENDABLE_ID = re.compile(r"^[a-zA-Z0-9_-]+$")


@check("messages.tools.stream-ids", surface="messages", claims=("tools", "stream"),
       rationale="A streamed tool_use block's id (in content_block_start) must serve the agent loop as a "
                 "non-streamed one does: a non-empty string, distinct per block, that the target accepts back in "
                 "its tool_result turn. Gateways that translate streams separately mint streamed ids of another "
                 "kind (empty, or ids their own replay refuses) while the non-streamed path works; --strict also "
                 "asks for ids api.anthropic.com accepts (^[a-zA-Z0-9_-]+$).",
       faults=("messages-stream-tool-ids",))
def test_messages_tools_stream_ids(tool_any_stream: Exchange, tool_any: Exchange, wire: Wire,
                                   target: Target) -> None:
    items = expect_stream(tool_any_stream, "a streamed tool_choice any request")
    blocks = [block for block, _ in tool_inputs(items)]
    if not blocks:
        pytest.skip("inconclusive: the streamed tool_choice any request carried no tool_use block "
                    "(messages.tools.stream judges that)")
    ids = [block.get("id") for block in blocks]
    own = _own_tool_use(tool_any)
    plain = [own["id"]] if own else []
    seen = f"streamed ids {', '.join(map(short, ids))}" + (f"; non-streamed {', '.join(map(short, plain))}"
                                                          if plain else "")
    problems = [f"streamed tool_use block {i} has id {short(v)}, not a non-empty string: its tool_result cannot "
                f"name it" for i, v in enumerate(ids) if not isinstance(v, str) or not v]
    if len(set(map(str, ids))) < len(ids):
        problems.append(f"streamed tool_use blocks share ids ({seen}): results cannot be matched to calls")
    if target.strict:
        problems += [f"streamed tool_use id {short(v)} does not match {SENDABLE_ID.pattern}, so api.anthropic.com "
                     f"refuses it when it is sent back" for v in ids if isinstance(v, str) and v
                     and not SENDABLE_ID.match(v)]
    expect_no_problems(tool_any_stream, [f"{p} ({seen})" for p in problems])
    block = blocks[0]
    use = {"type": "tool_use", "id": block["id"], "name": block.get("name") or "get_weather",
           "input": {"city": "Paris"}}
    ex = _answer_tool_use(wire, target, use)
    if ex.status != 200:
        fail(f"the streamed tool_use id {short(block['id'])} sent back in a tool_result got HTTP {ex.status} "
             f"({seen}): {ex.body[:300].decode('utf-8', 'replace')}", ex.evidence())
    expect_object(ex, "the turn after a tool_result for a streamed tool_use id")


# -------------------------------------------------------------------------------------------- transport


# ------------------------------------------------------------------------------------------------ thinking

THINKING_BUDGET = 1024  # Anthropic's minimum budget_tokens
THINKING_MAX_TOKENS = 1400  # above the budget, as Anthropic requires, and within small models' context


def thinking_blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for b in message.get("content") or [] if isinstance(b, dict) and b.get("type") == "thinking"]


def thinking_problems(message: dict[str, Any], what: str) -> list[str]:
    """A thinking block first, with its text and a signature, and the answer after it."""
    blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
    if not blocks or blocks[0].get("type") != "thinking":
        return [f"{what}: the first content block is {blocks[0].get('type') if blocks else None!r}, not thinking"]
    first = blocks[0]
    problems = []
    if not isinstance(first.get("thinking"), str):
        problems.append(f"{what}: thinking.thinking is {first.get('thinking')!r}, not a string")
    if not isinstance(first.get("signature"), str) or not first["signature"]:
        problems.append(f"{what}: the thinking block has no signature (clients must pass it back)")
    if len(blocks) < 2:
        problems.append(f"{what}: only a thinking block, no answer after it")
    return problems


def streamed_thinking_problems(ex: Exchange) -> list[str]:
    """thinking_delta and signature_delta inside a thinking block that closes before any text starts."""
    kinds: dict[int, str] = {}
    order: list[str] = []
    signed = set()
    for item in expect_stream(ex, "a streamed message with thinking"):
        try:
            data = item.json()
        except ValueError:
            continue
        if data.get("type") == "content_block_start":
            kinds[data.get("index")] = (data.get("content_block") or {}).get("type")
            order.append(kinds[data.get("index")])
        elif data.get("type") == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") in ("thinking_delta", "signature_delta") and kinds.get(data.get("index")) != "thinking":
                return [f"a {delta['type']} in block {data.get('index')}, which is not a thinking block"]
            if delta.get("type") == "signature_delta":
                signed.add(data.get("index"))
    if not order or order[0] != "thinking":
        return [f"the stream's blocks are {order}: no thinking block first"]
    if not signed:
        return ["the thinking block got no signature_delta"]
    return []


@check("messages.thinking", surface="messages", claims=("thinking",), faults=("messages-thinking-ignored",),
       rationale="`thinking: {type: enabled, budget_tokens}` must give a signed thinking block before the answer, "
                 "streamed as thinking_delta and signature_delta (Claude Code and the SDKs render and replay them); "
                 "a budget under 1024 or not below max_tokens is a 400. A server that drops `thinking` answers "
                 "without it; a model without the feature may refuse it with a 400 invalid_request_error that says "
                 "so, as api.anthropic.com does (not-claimed).")
def test_messages_thinking(wire: Wire, target: Target) -> None:
    thinking = {"type": "enabled", "budget_tokens": THINKING_BUDGET}
    ex = create(wire, target, max_tokens=THINKING_MAX_TOKENS, thinking=thinking)
    # api.anthropic.com answers a model without extended thinking with a 400 saying so: an honest refusal.
    skip_if_refused(ex, ("thinking", "reasoning", "budget_tokens"), "extended thinking",
                    lambda status, _, __: envelope_problems(ex, 400, "invalid_request_error"))
    expect_no_problems(ex, thinking_problems(expect_object(ex, "a message with thinking"), "thinking enabled"))
    streamed = create(wire, target, max_tokens=THINKING_MAX_TOKENS, thinking=thinking, stream=True)
    expect_no_problems(streamed, streamed_thinking_problems(streamed))
    for what, fields in (("budget_tokens 1000 (under 1024)", {"max_tokens": THINKING_MAX_TOKENS,
                                                              "thinking": {"type": "enabled", "budget_tokens": 1000}}),
                         ("max_tokens not above budget_tokens", {"max_tokens": THINKING_BUDGET, "thinking": thinking})):
        bad = create(wire, target, **fields)
        if bad.status != 400:
            fail(f"thinking with {what} got HTTP {bad.status}, not 400", bad.evidence())


@check("messages.count-tokens", surface="messages", claims=("count_tokens",),
       rationale="POST /v1/messages/count_tokens exists and returns {input_tokens} equal to the usage.input_tokens "
                 "of the same request: Claude Code counts tokens with it and fails on a 404 (vercel/ai #17531; "
                 "breakage 22).",
       faults=("messages-count-tokens-missing",))
def test_messages_count_tokens(greedy, wire: Wire, target: Target) -> None:
    ex = wire.post("messages/count_tokens", {"model": target.model, "messages": PROMPT})
    counted = expect_object(ex, "POST /messages/count_tokens")
    expect_no_problems(ex, schema_problems("AnthropicMessageTokensCount", counted))
    used = (greedy[1].get("usage") or {}).get("input_tokens") if isinstance(greedy[1].get("usage"), dict) else None
    if isinstance(used, int) and counted.get("input_tokens") != used:
        fail(f"count_tokens says {counted.get('input_tokens')} input tokens, the message's usage {used}",
             ex.evidence())


@check("messages.auth.x-api-key", surface="messages",
       rationale="Anthropic clients send the key as `x-api-key` (Authorization: Bearer is optional, never "
                 "required): a server that reads only Bearer answers them 401 (qwen-code #4323, llm-gateway #5; "
                 "breakage 22).",
       faults=("messages-bearer-only",))
def test_messages_auth_x_api_key(wire: Wire, target: Target) -> None:
    headers = {"anthropic-version": "2023-06-01", "x-api-key": target.api_key or "wirecheck-any-key"}
    ex = wire.request("POST", PATH, json_body=body(target, max_tokens=BOUND), headers=headers, auth=False)
    expect_object(ex, "a message authenticated with x-api-key only (no Authorization header)")


def _messages_refusals(wire: Wire, target: Target, attempts: list[tuple[str, dict[str, str]]]) -> None:
    """Each attempt must get Anthropic's 401 authentication_error; every one that does not is reported."""
    if not target.api_key:
        pytest.skip("not-claimed: no API key configured (--api-key or $ANTHROPIC_API_KEY); nothing to enforce")
    found = []
    for what, headers in attempts:
        ex = wire.request("POST", PATH, json_body=body(target, max_tokens=BOUND),
                          headers={"anthropic-version": "2023-06-01", **headers}, auth=False)
        problems = envelope_problems(ex, 401, "authentication_error")
        found.append((ex, [f"POST /messages with {what}: " + "; ".join(problems)] if problems else []))
    expect_each(found)


@check("messages.auth.enforced", surface="messages",
       rationale="A keyed endpoint refuses /v1/messages without a key: 401 with {\"type\": \"error\", \"error\": "
                 "{\"type\": \"authentication_error\"}} (the anthropic SDK's AuthenticationError); gateways that "
                 "forward anyway leak paid capacity.",
       faults=("auth-ignored", "auth-keys-misjudged"))
def test_messages_auth_enforced(wire: Wire, target: Target) -> None:
    _messages_refusals(wire, target, [("no key", {})])


@check("messages.auth.wrong-key", surface="messages",
       rationale="A wrong x-api-key (or Bearer key) gets the same 401 authentication_error, tried whatever the "
                 "missing-key answer was: a 400 or 403 is not the SDK's AuthenticationError, and a 200 serves anyone.",
       faults=("auth-ignored", "auth-wrong-key-400", "auth-keys-misjudged"))
def test_messages_auth_wrong_key(wire: Wire, target: Target) -> None:
    _messages_refusals(wire, target, [("a wrong x-api-key", {"x-api-key": "wirecheck-wrong"}),
                                      ("a wrong Bearer key", {"Authorization": "Bearer wirecheck-wrong"})])


@check("messages.transport.beta", surface="messages",
       rationale="Claude Code posts to /v1/messages?beta=true with anthropic-beta headers; a server must serve it like "
                 "the plain path (a vllm-ascend deployment answered 404, vllm-ascend #8634; breakage 22).",
       faults=("messages-beta-rejected",))
def test_messages_transport_beta(wire: Wire, target: Target) -> None:
    ex = wire.post(PATH + "?beta=true", body(target, max_tokens=BOUND),
                   headers={"anthropic-beta": "interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"})
    message = expect_object(ex, "POST /messages?beta=true with anthropic-beta headers")
    expect_no_problems(ex, schema_problems("AnthropicMessage", message))


# ----------------------------------------------------------------------------------------------- errors


@check("messages.errors.max-tokens-required", surface="messages",
       rationale="max_tokens is required on Anthropic's API: a request without it gets 400 {\"type\": \"error\", "
                 "\"error\": {\"type\": \"invalid_request_error\", ...}}; a server that defaults it lets clients "
                 "that break on Anthropic pass (breakage 22).",
       faults=("messages-max-tokens-defaulted", "messages-openai-error-envelope"))
def test_messages_max_tokens_required(wire: Wire, target: Target) -> None:
    ex = wire.post(PATH, {"model": target.model, "messages": PROMPT})
    expect_no_problems(ex, envelope_problems(ex, 400, "invalid_request_error"))


@check("messages.errors.unknown-model", surface="messages",
       rationale="An unknown model gets 404 with error.type not_found_error in Anthropic's envelope (the anthropic "
                 "SDK's NotFoundError); a 200 from a default model or a 400 hides the client's mistake.",
       faults=("messages-openai-error-envelope", "error-as-200"))
def test_messages_unknown_model(wire: Wire, target: Target) -> None:
    ex = wire.post(PATH, {**body(target, max_tokens=BOUND), "model": UNKNOWN_MODEL})
    expect_no_problems(ex, envelope_problems(ex, 404, "not_found_error"))


@check("messages.errors.message-without-role", surface="messages",
       rationale="A message without `role` is a client mistake: api.anthropic.com answers 400 invalid_request_error "
                 "in its envelope (role is required on every message). A 500 makes the anthropic SDK retry it twice "
                 "(_base_client _should_retry) and show no reason. Found on the LiteLLM proxy (HTTP 500 api_error "
                 "\"'role'\", a KeyError in its translation).",
       faults=("messages-missing-role-500",))
def test_messages_message_without_role(wire: Wire, target: Target) -> None:
    ex = wire.post(PATH, {"model": target.model, "max_tokens": BOUND, "messages": [{"content": "Say hi."}]})
    expect_no_problems(ex, envelope_problems(ex, 400, "invalid_request_error"))
