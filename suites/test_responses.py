"""The OpenAI Responses API (`POST /v1/responses`), request and response: the response object, usage, the
max_output_tokens cap, input as a string and as items, function tools and their round trip, text.format
json_schema, and previous_response_id on a server that may or may not store responses.

Model-agnostic like the chat checks: calls are judged against the declared tool's schema, structured output
against the requested schema, never golden text; what the target cannot be made to show is inconclusive.
Stream framing is judged by the stream invariants (test_responses_stream.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from .expect import client_error_problems, expect_no_problems, expect_object, expect_stream
from .invariants.common import short
from .invariants.responses import TERMINAL, call_id_problems, objects, text_parts, usage_problems
from .judge import schema_problems
from .registry import check, fail
from .target import Target
from .toolcalls import WEATHER, json_object_problems, tool_schemas
from .wire import Exchange, Wire

PATH = "responses"
PROMPT = "Count from one to ten."
LONG_PROMPT = "List twenty words."
BOUND = 16  # max_output_tokens: OpenAI's minimum, so every server must take it
MAX_TOKENS = 64  # room for a call's arguments or a short JSON object
# Responses function tools are flat: {type, name, description, parameters}, not nested under `function`.
TOOL = {"type": "function", **WEATHER["function"]}
TOOLS = tool_schemas([WEATHER])
CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"], "additionalProperties": False}
# A long answer from any model that honours json_schema: twenty words at least (used where claimed).
WORDS = {"type": "object", "properties": {"words": {"type": "array", "items": {"type": "string"}, "minItems": 20}},
         "required": ["words"], "additionalProperties": False}
STATUSES = ("completed", "failed", "in_progress", "cancelled", "queued", "incomplete")


def create(wire: Wire, target: Target, input: Any = PROMPT, **fields: Any) -> Exchange:
    return wire.post(PATH, {"model": target.responses_model, "input": input, **fields})


def output_text(body: Mapping[str, Any]) -> str:
    """What the SDKs' `output_text` is: the output_text parts of every message item, joined."""
    output = body.get("output")
    return "".join(text for item in (output if isinstance(output, list) else [])
                   if isinstance(item, Mapping) and item.get("type") == "message" for _, text in text_parts(item))


def output_problems(body: Mapping[str, Any]) -> list[str]:
    """Output items as clients read them: messages (role assistant, output_text or refusal parts with string
    text) and function calls (call_id, name, arguments a string)."""
    output = body.get("output")
    if not isinstance(output, list):
        return [f"output is {short(output)}, not a list of items"]
    problems = []
    for k, item in enumerate(output):
        where = f"output[{k}]"
        if not isinstance(item, Mapping):
            problems.append(f"{where} is {short(item)}, not an object")
        elif item.get("type") == "message":
            if item.get("role") != "assistant":
                problems.append(f"{where} is a message with role {short(item.get('role'))}, not assistant")
            content = item.get("content")
            for j, part in enumerate(content if isinstance(content, list) else [None]):
                kind = part.get("type") if isinstance(part, Mapping) else None
                field = {"output_text": "text", "refusal": "refusal"}.get(kind)
                if field is None or not isinstance(part.get(field), str):
                    problems.append(f"{where}.content[{j}] is {short(part)}, not an output_text (or refusal) part "
                                    f"with string text")
        elif item.get("type") == "function_call":
            problems += call_id_problems(item, where)
            if not isinstance(item.get("arguments"), str):
                problems.append(f"{where}.arguments is {short(item.get('arguments'))}, not a JSON string")
    return problems


def calls_of(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    output = body.get("output")
    return [item for item in (output if isinstance(output, list) else [])
            if isinstance(item, Mapping) and item.get("type") == "function_call"]



def _not_cut_off(body: Mapping[str, Any], what: str) -> None:
    if body.get("status") == "incomplete":
        pytest.skip(f"inconclusive: {what} stopped incomplete ({short(body.get('incomplete_details'))}), so its "
                    f"output cannot be judged")


def _usage(body: Mapping[str, Any]) -> Mapping[str, Any]:
    usage = body.get("usage")
    return usage if isinstance(usage, Mapping) else {}


@pytest.fixture(scope="module")
def greedy(wire: Wire, target: Target) -> tuple[Exchange, dict[str, Any]]:
    """One greedy answer to a string input: the response most checks here read."""
    ex = create(wire, target, temperature=0, max_output_tokens=48)
    return ex, expect_object(ex, "a greedy /v1/responses request with string input")


@pytest.fixture(scope="module")
def required(wire: Wire, target: Target) -> Exchange:
    return create(wire, target, "What is the weather in Paris?", tools=[TOOL], tool_choice="required", temperature=0,
                  max_output_tokens=MAX_TOKENS)


# ------------------------------------------------------------------------------------------------ shape


@check("responses.response-schema", surface="responses",
       rationale="A /v1/responses answer is a Response: a string id, object 'response', numeric created_at, a known "
                 "status, output items (message with output_text parts, function_call with call_id) and usage; "
                 "the SDKs' typed models reject anything else and read output_text from the message parts "
                 "(wire-spec 3.2). Ids are opaque to clients, so their `resp_` form is judged under --strict only.",
       faults=("responses-response-schema",))
def test_responses_response_schema(greedy, target: Target) -> None:
    ex, body = greedy
    problems = schema_problems("Response", body, strict=target.strict)
    if body.get("object") != "response":
        problems.append(f"object is {short(body.get('object'))}, not \"response\"")
    if not isinstance(body.get("id"), str) or not body["id"]:
        problems.append(f"id is {short(body.get('id'))}, not a non-empty string")
    if not isinstance(body.get("created_at"), (int, float)) or isinstance(body.get("created_at"), bool):
        problems.append(f"created_at is {short(body.get('created_at'))}, not unix seconds")
    if body.get("status") not in STATUSES:
        problems.append(f"status is {short(body.get('status'))}, not one of {', '.join(STATUSES)}")
    problems += output_problems(body)
    if not any(isinstance(i, Mapping) and i.get("type") == "message" for i in body.get("output") or []):
        problems.append("output holds no message item for a plain text request")
    expect_no_problems(ex, problems)


@check("responses.usage.arithmetic", surface="responses",
       rationale="usage holds integer input_tokens and output_tokens with total_tokens = input + output (the "
                 "Responses names, not chat's prompt/completion); billing and budgeting add them up.",
       faults=("responses-usage-total",))
def test_responses_usage_arithmetic(greedy, target: Target) -> None:
    ex, body = greedy
    if body.get("usage") is None:
        if target.strict:
            fail("the response carries no usage", ex.evidence())
        pytest.skip("inconclusive: the response carries no usage (OpenAI always sends it; --strict fails this)")
    expect_no_problems(ex, usage_problems(body["usage"]))


# ----------------------------------------------------------------------------------------- token bound


@check("responses.max-output-tokens", surface="responses",
       rationale="max_output_tokens bounds the output (usage.output_tokens <= N) and a response it cuts off says "
                 "so: status 'incomplete' with incomplete_details.reason 'max_output_tokens' (streamed: the "
                 "terminal event is response.incomplete). A cut reported as 'completed' is a truncated answer "
                 "clients take for a whole one (wire-breakages A10).",
       faults=("responses-incomplete-as-completed", "responses-max-output-tokens-ignored"))
def test_responses_max_output_tokens(wire: Wire, target: Target) -> None:
    fields = {"temperature": 0}
    if "json_schema" in target.profile.claims:
        fields["text"] = {"format": {"type": "json_schema", "name": "words", "schema": WORDS}}
    # The bounded request first: a cap that holds (or is blown) decides at once; only an answer that ends
    # within the bound as 'completed' needs the free one, to tell a short answer from a mislabelled cut.
    ex = create(wire, target, LONG_PROMPT, max_output_tokens=BOUND, **fields)
    body = expect_object(ex, f"a request with max_output_tokens={BOUND}")
    got = _usage(body).get("output_tokens")
    if isinstance(got, int) and got > BOUND:
        fail(f"max_output_tokens={BOUND} produced {got} output tokens", ex.evidence())
    details = body.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    if body.get("status") != "incomplete" or reason != "max_output_tokens":
        free = create(wire, target, LONG_PROMPT, max_output_tokens=8 * BOUND, **fields)
        free_body = expect_object(free, "the same request with room to finish")
        used = _usage(free_body).get("output_tokens")
        ends_anyway = used <= BOUND if isinstance(used, int) else len(output_text(free_body)) <= len(output_text(body))
        if ends_anyway:
            pytest.skip(f"inconclusive: the answer ends within {BOUND} tokens on its own ({used} tokens), so the "
                        f"bound cannot be seen")
        fail(f"the output cut at max_output_tokens={BOUND} (the answer runs to {used} tokens) has status "
             f"{short(body.get('status'))} and incomplete_details {short(details)}, not 'incomplete' for reason "
             f"'max_output_tokens'", ex.evidence())
    if "stream" not in target.profile.claims:
        return
    streamed = create(wire, target, LONG_PROMPT, max_output_tokens=BOUND, stream=True, **fields)
    items = expect_stream(streamed, f"a streamed request with max_output_tokens={BOUND}")
    terminal = [v for _, v in objects(items) if v.get("type") in TERMINAL]
    last = terminal[-1] if terminal else {}
    response = last.get("response") if isinstance(last.get("response"), Mapping) else {}
    if last.get("type") != "response.incomplete" or response.get("status") != "incomplete":
        fail(f"streamed, the output cut at max_output_tokens={BOUND} ends with {short(last.get('type'))} (status "
             f"{short(response.get('status'))}), not response.incomplete", streamed.evidence())


# ---------------------------------------------------------------------------------------------- input


def reasoning_problems(body: Mapping[str, Any], what: str) -> list[str]:
    """A reasoning item before the answer, its text parts strings, and its tokens counted in usage."""
    output = [i for i in body.get("output") or [] if isinstance(i, Mapping)]
    kinds = [i.get("type") for i in output]
    if "reasoning" not in kinds:
        return [f"{what}: no reasoning item in the output (items: {kinds})"]
    if kinds.index("reasoning") > min((k for k, t in enumerate(kinds) if t != "reasoning"), default=len(kinds)):
        return [f"{what}: the reasoning item comes after the answer (items: {kinds})"]
    item = output[kinds.index("reasoning")]
    problems = schema_problems("ResponseReasoningItem", item, where=f"{what}: the reasoning item")
    details = _usage(body).get("output_tokens_details") or {}
    spent = details.get("reasoning_tokens")
    if not isinstance(spent, int) or isinstance(spent, bool) or spent < 0:
        problems.append(f"{what}: usage.output_tokens_details.reasoning_tokens is {spent!r}")
    elif spent > (_usage(body).get("output_tokens") or 0):
        problems.append(f"{what}: {spent} reasoning tokens exceed output_tokens {_usage(body).get('output_tokens')}")
    return problems


@check("responses.reasoning", surface="responses", claims=("reasoning",), faults=("responses-reasoning-ignored",),
       rationale="`reasoning: {effort}` must give a reasoning item before the answer, its tokens counted in "
                 "usage.output_tokens_details.reasoning_tokens (and within max_output_tokens), streamed as the "
                 "item's own events; effort 'none' gives none. Agents (Codex CLI) replay reasoning items and "
                 "bill by reasoning tokens.")
def test_responses_reasoning(wire: Wire, target: Target) -> None:
    ex = create(wire, target, reasoning={"effort": "low"}, max_output_tokens=128)
    body = expect_object(ex, "a response with reasoning effort low")
    expect_no_problems(ex, reasoning_problems(body, "effort low"))
    if (body.get("reasoning") or {}).get("effort") != "low":
        fail(f"the response echoes reasoning {body.get('reasoning')!r}, not effort 'low'", ex.evidence())
    streamed = create(wire, target, reasoning={"effort": "low"}, max_output_tokens=128, stream=True)
    final = [d for _, d in objects(expect_stream(streamed, "a streamed response with reasoning"))
             if d.get("type") in TERMINAL]
    if not final:
        fail("the streamed response with reasoning has no terminal event", streamed.evidence())
    expect_no_problems(streamed, reasoning_problems(final[-1].get("response") or {}, "streamed, effort low"))
    none = expect_object(create(wire, target, reasoning={"effort": "none"}, max_output_tokens=64),
                         "a response with reasoning effort none")
    if any(isinstance(i, Mapping) and i.get("type") == "reasoning" for i in none.get("output") or []):
        fail("reasoning effort 'none' still produced a reasoning item")


@check("responses.input.items", surface="responses",
       rationale="input is a string or a list of items: messages with roles user, assistant and developer, "
                 "string content or input_text parts, next to top-level instructions. Every multi-turn client "
                 "sends items; a server that takes only a string breaks them all (wire-spec 3.1).",
       faults=("responses-input-items-rejected",))
def test_responses_input_items(wire: Wire, target: Target) -> None:
    items = [{"role": "developer", "content": "Answer in one short sentence."},
             {"role": "user", "content": "My favourite colour is blue."},
             {"role": "assistant", "content": "Noted: blue."},
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hi."}]}]
    ex = create(wire, target, items, instructions="Be brief.", temperature=0, max_output_tokens=32)
    body = expect_object(ex, "a request with instructions and input items")
    expect_no_problems(ex, output_problems(body))


# ---------------------------------------------------------------------------------------------- tools


@check("responses.tools.required", surface="responses", claims=("tools",),
       rationale="Flat function tools with tool_choice 'required' must give a function_call output item with a "
                 "call_id, the declared name and arguments a JSON string valid under the tool's parameters; a "
                 "call without call_id cannot be answered (stella #5854), arguments as an object break parsers.",
       faults=("responses-call-id-missing", "responses-arguments-object"))
def test_responses_tools_required(required: Exchange) -> None:
    body = expect_object(required, "a tool_choice 'required' request")
    _not_cut_off(body, "the forced call")
    calls = calls_of(body)
    if not calls:
        fail(f"a tool_choice 'required' request got no function_call item (output text {short(output_text(body))})",
             required.evidence())
    problems = []
    for k, call in enumerate(calls):
        problems += call_id_problems(call, f"function_call {k}")
        if call.get("name") not in TOOLS:
            problems.append(f"function_call {k} names {short(call.get('name'))}, not a declared tool")
            continue
        problems += json_object_problems(call.get("arguments"), f"function_call {k}'s arguments", TOOLS[call["name"]])
    expect_no_problems(required, problems)


CANNED_CALL = {"type": "function_call", "call_id": "call_wirecheck_1", "name": "get_weather",
               "arguments": "{\"city\": \"Paris\"}"}


@check("responses.tools.round-trip", surface="responses", claims=("tools",),
       rationale="The agent loop's second turn: the function_call item (as returned) and a function_call_output "
                 "answering its call_id, sent back as input items, must get a 200 with an answer; servers that "
                 "refuse the items break every agent after its first call.",
       faults=("responses-input-items-rejected",))
def test_responses_tools_round_trip(wire: Wire, target: Target, required: Exchange) -> None:
    own = None
    if required.status == 200:
        try:
            calls = calls_of(required.json())
        except ValueError:
            calls = []
        own = next((c for c in calls if not call_id_problems(c, "")), None)
    # As clients replay it (the item's own id left out: with store off, OpenAI cannot look it up).
    call = {k: v for k, v in (own or CANNED_CALL).items() if k in ("type", "call_id", "name", "arguments")}
    items = [{"role": "user", "content": "What is the weather in Paris?"}, call,
             {"type": "function_call_output", "call_id": call["call_id"],
              "output": "{\"temperature_c\": 21, \"sky\": \"sunny\"}"}]
    ex = create(wire, target, items, tools=[TOOL], temperature=0, max_output_tokens=MAX_TOKENS)
    body = expect_object(ex, "the turn after a function_call_output")
    expect_no_problems(ex, output_problems(body))
    if calls_of(body) and not output_text(body):
        pytest.skip("inconclusive: the model called a tool again instead of answering")


# ----------------------------------------------------------------------------------- structured output


@check("responses.structured.json-schema", surface="responses", claims=("json_schema",),
       rationale="text.format {type: json_schema, name, schema, strict} must give output text that parses and "
                 "validates under the schema, or a 400 refusing the format; a 200 in prose silently breaks every "
                 "json.loads and responses.parse() (wire-breakages A10, test case 18).",
       faults=("responses-text-format-ignored",))
def test_responses_structured_json_schema(wire: Wire, target: Target) -> None:
    fmt = {"type": "json_schema", "name": "city_info", "schema": CITY, "strict": True}
    ex = create(wire, target, "Give the city Paris and its country as JSON.", text={"format": fmt}, temperature=0,
                max_output_tokens=MAX_TOKENS)
    if 400 <= ex.status < 500:
        pytest.skip(f"not-claimed: the target refuses text.format json_schema with HTTP {ex.status}")
    body = expect_object(ex, "a request with text.format json_schema")
    _not_cut_off(body, "the structured answer")
    expect_no_problems(ex, json_object_problems(output_text(body), "the output text", CITY))


# ------------------------------------------------------------------------------------------------ state


UNKNOWN_ID = "resp_wirecheck0000000000000000000000000000000000000000"


@check("responses.previous-response-id", surface="responses",
       rationale="previous_response_id continues a stored conversation: a server that stores responses must "
                 "use it (the follow-up answers from the earlier turn or counts its tokens) and refuse an unknown "
                 "id; a stateless one must refuse the field with a 4xx. A 200 that ignores it answers without the "
                 "context the client believes it sent.",
       faults=("responses-previous-response-id-ignored",))
def test_responses_previous_response_id(wire: Wire, target: Target) -> None:
    question = "What is my name?"
    unknown = create(wire, target, question, previous_response_id=UNKNOWN_ID, max_output_tokens=BOUND)
    if unknown.error or unknown.timed_out:
        fail(f"a request with an unknown previous_response_id: {unknown.describe()}", unknown.evidence())
    if unknown.status == 200:
        fail(f"previous_response_id {UNKNOWN_ID!r} names no response, yet the request got a 200: the field is "
             f"ignored", unknown.evidence())
    if not 400 <= unknown.status < 500:
        fail(f"an unknown previous_response_id got HTTP {unknown.status}, not a 4xx", unknown.evidence())
    first = create(wire, target, "My name is Ada Lovelace. Please remember it.", store=True, temperature=0,
                   max_output_tokens=BOUND)
    first_id = expect_object(first, "a request with store: true").get("id")
    follow = create(wire, target, question, previous_response_id=first_id, temperature=0, max_output_tokens=BOUND)
    if 400 <= follow.status < 500:
        return  # a stateless server refusing the field clearly
    body = expect_object(follow, "a follow-up naming the previous response")
    if "Ada" in output_text(body):
        return  # the follow-up knows the name only the earlier turn gave
    alone = expect_object(create(wire, target, question, temperature=0, max_output_tokens=BOUND),
                          "the same input alone")
    with_previous, without = _usage(body).get("input_tokens"), _usage(alone).get("input_tokens")
    if not isinstance(with_previous, int) or not isinstance(without, int):
        pytest.skip("inconclusive: no usage.input_tokens to tell whether the earlier turn was used")
    if with_previous <= without:
        fail(f"the follow-up naming previous_response_id {first_id!r} counts {with_previous} input tokens, no more "
             f"than the same input alone ({without}): the earlier turn was ignored", follow.evidence())


@check("responses.errors.item-without-type", surface="responses",
       rationale="An input item that is no item OpenAI knows (no `type`, no `role`: input: [{\"x\": {}}]) is a client "
                 "mistake: api.openai.com answers 400 in its error envelope (the OAS InputItem union matches nothing). "
                 "A 500 makes openai-python retry it twice and show no reason. Found on transformers serve (HTTP 500 "
                 "text/plain 'Internal Server Error').",
       faults=("responses-bad-item-500",))
def test_responses_item_without_type(wire: Wire, target: Target) -> None:
    ex = wire.post(PATH, {"model": target.responses_model, "input": [{"x": {}}], "max_output_tokens": BOUND})
    expect_no_problems(ex, client_error_problems(ex, "an input item with neither type nor role"))
