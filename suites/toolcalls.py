"""Pure judgements over tool calls and structured output, shared by test_tools, test_structured and test_sdk.

No I/O: JSON bodies and SSE items in, problems out as plain sentences (empty = it holds), so the tool and
structured-output checks stay short and the logic is unit-tested offline (tests/test_toolcalls.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator

from wirecheck.spec.sse import SSEItem

from .invariants.common import capped, choice_index, choices, chunks, positions, short

# The one tool every tool check declares: small enough for any model, with a required argument to validate.
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "The city name"}},
                   "required": ["city"]}}}


def tool_schemas(tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Declared function name -> its parameters schema (an empty schema where none was given)."""
    return {t["function"]["name"]: t["function"].get("parameters") or {} for t in tools}


# ---------------------------------------------------------------------------------------------- JSON values


def parse_json(text: Any, what: str) -> tuple[Any, list[str]]:
    """`text` decoded as JSON, or the problem that stops it (not a string, not JSON)."""
    if not isinstance(text, str):
        return None, [f"{what} is {type(text).__name__} {short(text)}, not a string holding JSON"]
    try:
        return json.loads(text), []
    except ValueError as exc:
        return None, [f"{what} is not valid JSON ({exc.msg} at {exc.pos}): {short(text, 120)}"]


def schema_violations(instance: Any, schema: Mapping[str, Any], what: str) -> list[str]:
    """Where `instance` breaks `schema` (JSON Schema 2020-12), one sentence each."""
    validator = Draft202012Validator(schema)
    found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    return [f"{what}{''.join(f'[{p!r}]' for p in e.absolute_path)}: {e.message}" for e in found[:5]]


def json_object_problems(text: Any, what: str, schema: Mapping[str, Any] | None = None) -> list[str]:
    """`text` must be a JSON object (valid under `schema` when given)."""
    value, problems = parse_json(text, what)
    if problems:
        return problems
    if not isinstance(value, dict):
        return [f"{what} decodes to {type(value).__name__} {short(value)}, not a JSON object"]
    return schema_violations(value, schema, what) if schema else []


# ------------------------------------------------------------------------------------------ non-stream calls


def call_problems(call: Any, tools: Mapping[str, Any], where: str) -> list[str]:
    """One `message.tool_calls[i]`: string id, type function, a declared name, arguments a JSON *string* that
    decodes to an object valid under that tool's parameters."""
    if not isinstance(call, Mapping):
        return [f"{where} is {short(call)}, not an object"]
    problems = []
    if not isinstance(call.get("id"), str) or not call["id"]:
        problems.append(f"{where}.id is {short(call.get('id'))}, not a non-empty string: the tool message "
                        f"answering it cannot name it")
    if call.get("type") != "function":
        problems.append(f"{where}.type is {short(call.get('type'))}, not \"function\"")
    function = call.get("function")
    if not isinstance(function, Mapping):
        return problems + [f"{where}.function is {short(function)}, not an object"]
    name = function.get("name")
    if name not in tools:
        problems.append(f"{where}.function.name is {short(name)}, not a declared tool ({', '.join(tools)})")
    schema = tools.get(name) if isinstance(name, str) else None
    return problems + json_object_problems(function.get("arguments"), f"{where}.function.arguments", schema)


def arguments_type_problems(calls: Sequence[Any], where: str = "tool_calls") -> list[str]:
    """`function.arguments` of every call is a string (TGI and koboldcpp sent the decoded object)."""
    problems = []
    for i, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if isinstance(function, Mapping) and "arguments" in function and not isinstance(function["arguments"], str):
            problems.append(f"{where}[{i}].function.arguments is a JSON {type(function['arguments']).__name__}, "
                            f"not a string: OpenAI sends the arguments JSON-encoded and clients json.loads them")
    return problems


def distinct_id_problems(ids: Sequence[Any], where: str) -> list[str]:
    seen = [i for i in ids if isinstance(i, str) and i]
    if len(set(seen)) < len(seen):
        return [f"{where}: {len(seen)} calls share ids {sorted(set(seen))}: tool results cannot be matched to calls"]
    return []


# ---------------------------------------------------------------------------------------------- streamed calls


@dataclass
class StreamedCall:
    """One streamed tool call, assembled per (choice, index) as the openai SDK's accumulator does."""

    index: int
    ids: list[Any] = field(default_factory=list)  # each new id on this index starts another call
    names: list[Any] = field(default_factory=list)
    types: list[Any] = field(default_factory=list)
    arguments: str = ""
    fragments: int = 0

    @property
    def headers(self) -> int:
        """How many calls started on this index: more than one means calls were squashed onto it."""
        return len(self.ids)

    @property
    def id(self) -> Any:
        return self.ids[0] if self.ids else None

    @property
    def name(self) -> Any:
        return self.names[0] if self.names else None


def tool_fragments(items: list[SSEItem]) -> list[tuple[int, int | None, Any]]:
    """(chunk position, choice index, fragment) of every `delta.tool_calls[]` item, in stream order."""
    out = []
    for n, chunk in chunks(items):
        for choice in choices(chunk):
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, Mapping) else None
            if calls is None:
                continue
            for fragment in calls if isinstance(calls, list) else [calls]:
                out.append((n, choice_index(choice), fragment))
    return out


def streamed_calls(items: list[SSEItem], choice: int = 0) -> list[StreamedCall]:
    """The tool calls of one choice, by fragment index (string argument pieces concatenated)."""
    calls: dict[int, StreamedCall] = {}
    for _, index, fragment in tool_fragments(items):
        if index != choice or not isinstance(fragment, Mapping) or not isinstance(fragment.get("index"), int):
            continue
        call = calls.setdefault(fragment["index"], StreamedCall(fragment["index"]))
        call.fragments += 1
        if fragment.get("id") is not None and (not call.ids or fragment["id"] != call.ids[-1]):
            call.ids.append(fragment["id"])
        if fragment.get("type") is not None:
            call.types.append(fragment["type"])
        function = fragment.get("function")
        if isinstance(function, Mapping):
            if function.get("name") is not None:
                call.names.append(function["name"])
            if isinstance(function.get("arguments"), str):
                call.arguments += function["arguments"]
    return [calls[i] for i in sorted(calls)]


# Header fields a client accumulates by concatenation when a later fragment repeats them: openai-python's
# accumulate_delta (lib/streaming/_deltas.py) appends strings except `index` and `type`, which it replaces, so a
# repeated "type": "function" is harmless and a repeated id or name is not.
CONCATENATED = ("id", "function.name")


def delta_problems(items: list[SSEItem]) -> list[str]:
    """Streamed tool-call fragments as the SDKs accumulate them: every fragment has an integer index; the first of
    an index carries id, type "function" and function.name; later ones carry argument pieces and may repeat
    `type`, but a non-empty id or name in a later fragment is appended by openai-python; arguments are always
    strings and concatenate to a JSON object."""
    problems = []
    seen: set[tuple[int | None, int]] = set()
    # (choice, index, field) -> [chunk positions], and the value openai-python ends up with
    repeats: dict[tuple[int | None, int, str], list[int]] = {}
    built: dict[tuple[int | None, int, str], str] = {}
    for n, choice, fragment in tool_fragments(items):
        where = f"chunk #{n}: tool_calls fragment"
        if not isinstance(fragment, Mapping):
            problems.append(f"{where} is {short(fragment)}, not an object")
            continue
        index = fragment.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            problems.append(f"{where} has index {short(index)}, not an integer >= 0: the openai SDK's accumulator "
                            f"raises TypeError and others merge every call into one")
            continue
        function = fragment.get("function") if isinstance(fragment.get("function"), Mapping) else {}
        if "arguments" in function and function["arguments"] is not None and not isinstance(function["arguments"], str):
            problems.append(f"{where} {index} carries arguments as a JSON {type(function['arguments']).__name__}, "
                            f"not a string piece")
        values = {"id": fragment.get("id"), "function.name": function.get("name")}
        if (choice, index) not in seen:
            seen.add((choice, index))
            if not isinstance(fragment.get("id"), str) or not fragment["id"]:
                problems.append(f"{where} {index} starts a call without an id ({short(fragment.get('id'))})")
            if fragment.get("type") != "function":
                problems.append(f"{where} {index} starts a call with type {short(fragment.get('type'))}, not "
                                f"\"function\"")
            if not isinstance(function.get("name"), str) or not function["name"]:
                problems.append(f"{where} {index} starts a call without function.name")
            for key in CONCATENATED:
                built[(choice, index, key)] = values[key] if isinstance(values[key], str) else ""
            continue
        for key in CONCATENATED:
            if isinstance(values[key], str) and values[key]:
                repeats.setdefault((choice, index, key), []).append(n)
                built[(choice, index, key)] += values[key]
    for (choice, index, key), found in repeats.items():
        problems.append(f"choice {choice} tool call {index} repeats {key} in {len(found)} later fragment(s) "
                        f"(chunks {positions(found)}): openai-python's accumulator appends it, so the call's {key} "
                        f"becomes {short(built[(choice, index, key)])}")
    for choice in sorted({c for c, _ in seen if c is not None}):
        for call in streamed_calls(items, choice):
            if call.headers <= 1:
                problems += json_object_problems(call.arguments, f"choice {choice} call {call.index}'s concatenated "
                                                                 f"arguments")
    return capped(problems)


def streamed_call_problems(items: list[SSEItem], tools: Mapping[str, Any], choice: int = 0) -> list[str]:
    """The assembled calls of one choice name declared tools and carry arguments valid under their schema."""
    problems = []
    for call in streamed_calls(items, choice):
        where = f"streamed call {call.index}"
        if call.name not in tools:
            problems.append(f"{where} names {short(call.name)}, not a declared tool ({', '.join(tools)})")
            continue
        problems += json_object_problems(call.arguments, f"{where}'s arguments", tools[call.name])
    return problems

