"""Structured outputs on chat completions: response_format json_object and json_schema (strict or not, streamed or
not) must give content that parses, and validates under the schema.

A target may also refuse response_format with a 400 in OpenAI's envelope: clients then learn at once that the
feature is missing, so that is reported as not-claimed. What breaks clients is a 200 with prose: `json.loads`
and the SDK's `.parse()` fail on it (halogen-flash-server #14, omlx #1241).
"""

from __future__ import annotations

from typing import Any

import pytest

from .expect import expect_no_problems, expect_object, expect_stream, first_choice, message_content
from .judge import assemble, envelope_problems
from .registry import check, fail
from .target import Target
from .toolcalls import json_object_problems
from .wire import Exchange, Wire

PATH = "chat/completions"
MAX_TOKENS = 96  # room for a small object; output cut off at this bound is inconclusive, not a failure
# OpenAI requires the word "JSON" in the messages for json_object, so every prompt says it.
PROMPT = "Give the city Paris and its country as a JSON object."
CITY = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"]}
# OpenAI's strict mode: every object closed (additionalProperties false) with all its properties required.
STRICT = {"type": "object", "additionalProperties": False, "required": ["city", "unit", "location"],
          "properties": {
              "city": {"type": "string"},
              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
              "location": {"type": "object", "additionalProperties": False, "required": ["country", "coastal"],
                           "properties": {"country": {"type": "string"}, "coastal": {"type": "boolean"}}}}}


def json_schema(name: str, schema: dict[str, Any], strict: bool | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def structured(wire: Wire, target: Target, response_format: dict[str, Any], **fields: Any) -> Exchange:
    return wire.post(PATH, {"model": target.model, "messages": [{"role": "user", "content": PROMPT}],
                            "response_format": response_format, "temperature": 0, "max_tokens": MAX_TOKENS,
                            **fields})


def refused(ex: Exchange, what: str) -> None:
    """A 400 in OpenAI's envelope is an honest 'not supported': not-claimed, not a failure."""
    if 400 <= ex.status < 500 and not envelope_problems(ex.status, ex.content_type, ex.body):
        pytest.skip(f"not-claimed: the target rejects {what} with HTTP {ex.status}: {ex.body[:200]!r}")


def judge_content(ex: Exchange, content: Any, finish: Any, schema: dict[str, Any] | None) -> None:
    if finish == "length":
        pytest.skip(f"inconclusive: the output was cut off at max_tokens={MAX_TOKENS}, so it cannot be whole JSON")
    problems = json_object_problems(content, "content", schema)
    expect_no_problems(ex, problems)


def expect_structured(ex: Exchange, what: str, schema: dict[str, Any] | None) -> None:
    refused(ex, what)
    choice = first_choice(expect_object(ex, f"a request with {what}"), ex)
    judge_content(ex, message_content(choice, ex), choice.get("finish_reason"), schema)


@check("chat.structured.json-object", surface="chat", claims=("json_object",),
       rationale="response_format {type: json_object} promises content that is one JSON object; servers that "
                 "accept the field and ignore it return prose that json.loads rejects (A10: halogen-flash-server "
                 "#14, CLIProxyAPI #5533).",
       faults=("response-format-ignored",))
def test_structured_json_object(wire: Wire, target: Target) -> None:
    expect_structured(structured(wire, target, {"type": "json_object"}), "response_format json_object", None)


@check("chat.structured.json-schema", surface="chat", claims=("json_schema",),
       rationale="response_format {type: json_schema} must give content valid under the schema (or a 400 where "
                 "it is not supported): typed clients parse it straight into their models.",
       faults=("response-format-ignored",))
def test_structured_json_schema(wire: Wire, target: Target) -> None:
    ex = structured(wire, target, json_schema("city", CITY))
    expect_structured(ex, "response_format json_schema", CITY)


@check("chat.structured.strict", surface="chat", claims=("json_schema",),
       rationale="json_schema with strict: true (what the openai SDK's .parse() sends) must honour enums, "
                 "required keys, closed and nested objects exactly; omlx accepted strict and did not enforce it "
                 "(omlx #1241).",
       faults=("response-format-ignored",))
def test_structured_strict(wire: Wire, target: Target) -> None:
    ex = structured(wire, target, json_schema("weather", STRICT, strict=True))
    expect_structured(ex, "a strict response_format json_schema", STRICT)


@check("chat.structured.stream", surface="chat", claims=("json_schema", "stream"),
       rationale="Streamed, json_schema content arrives in pieces that must concatenate to a valid instance: "
                 "the SDK's stream helper parses the accumulated content at the end.",
       faults=("response-format-ignored",))
def test_structured_stream(wire: Wire, target: Target) -> None:
    ex = structured(wire, target, json_schema("weather", STRICT, strict=True), stream=True)
    refused(ex, "a streamed response_format json_schema")
    choice = assemble(expect_stream(ex, "a streamed request with response_format json_schema")).get(0)
    if choice is None:
        fail("the stream carried no choice 0", ex.evidence())
    judge_content(ex, choice.content, choice.finish_reason, STRICT)
