"""The official openai SDK on /v1/responses: `responses.create` with strict response validation, the
`responses.stream()` helper (which checks event order itself) and `responses.parse` with a pydantic model.

Shares the SDK clients and the deadline-bounded runner of test_sdk.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from .registry import check, fail
from .test_sdk import CityInfo, _finished, bounded, client, evidence, observed  # noqa: F401  (fixtures)

openai = pytest.importorskip("openai")

PROMPT = "Count from one to ten."


@check("sdk.responses.create", surface="responses", paths=("sdk",),
       rationale="client.responses.create() with strict response validation must parse the answer into Response "
                 "(object 'response', typed output items) and give output_text from its message parts.",
       faults=("responses-response-schema",))
def test_sdk_responses_create(client, target) -> None:
    what = "responses.create"
    done = bounded(target, what, lambda _: client.responses.create(model=target.responses_model, input=PROMPT, temperature=0,
                                                                  max_output_tokens=32))
    if done.object != "response" or done.status not in ("completed", "incomplete"):
        fail(f"Response.object {done.object!r}, status {done.status!r}", evidence(what))
    if not isinstance(done.output_text, str) or not any(item.type == "message" for item in done.output):
        fail(f"the response has no message output (output types {[i.type for i in done.output]})", evidence(what))


class _HelperError(Exception):
    """The SDK's stream helper refused the stream (it raises RuntimeError or AssertionError on bad order)."""


@check("sdk.responses.stream", surface="responses", paths=("sdk",), claims=("stream",),
       rationale="client.responses.stream() rebuilds the response from the events and refuses a stream that does "
                 "not open with response.created or never completes; its response.output_text.delta events must "
                 "concatenate to get_final_response().output_text (Codex and the SDK's helper, wire-spec 3.4).",
       faults=("responses-terminal-missing", "responses-created-missing"))
def test_sdk_responses_stream(client, target) -> None:
    what = "responses.stream() + get_final_response()"

    seen: list[str] = []

    def consume(opened: list[Any]) -> tuple[list[str], Any]:
        deltas: list[str] = []
        try:
            with client.responses.stream(model=target.responses_model, input="Say hello in five words.", temperature=0,
                                         max_output_tokens=96) as stream:
                opened.append(stream)
                for event in stream:
                    seen.append(event.type)
                    if event.type == "response.output_text.delta":
                        deltas.append(event.delta)
                return deltas, stream.get_final_response()
        except (RuntimeError, AssertionError, IndexError, KeyError) as exc:
            raise _HelperError(f"{type(exc).__name__}: {exc}") from exc

    try:
        deltas, final = bounded(target, what, consume)
    except _HelperError as exc:
        if seen and seen[-1] == "response.incomplete":
            pytest.skip("inconclusive: the answer was cut off at max_output_tokens (response.incomplete), and "
                        "get_final_response() wants response.completed")
        fail(f"the SDK's stream helper refused the stream: {exc}", evidence(what, str(exc), f"events: {seen[:40]}"))
    if final.output_text != "".join(deltas):
        fail(f"get_final_response().output_text {final.output_text!r} is not the concatenated deltas "
             f"{''.join(deltas)!r}", evidence(what))


@check("sdk.responses.parse", surface="responses", paths=("sdk",), claims=("json_schema",),
       rationale="client.responses.parse(text_format=PydanticModel) sends a strict json_schema text.format and "
                 "validates the output into the model: output_parsed must be an instance, not a ValidationError "
                 "on prose (format accepted and ignored, wire-breakages A10).",
       faults=("responses-text-format-ignored",))
def test_sdk_responses_parse(client, target) -> None:
    what = "responses.parse(text_format=CityInfo)"
    done = _finished(target, what, lambda _: client.responses.parse(
        model=target.responses_model, input="Give the city Paris and its country as JSON.", text_format=CityInfo,
        temperature=0, max_output_tokens=96))
    if done.status == "incomplete":
        pytest.skip(f"inconclusive: {what}: the output was cut off at max_output_tokens")
    if not isinstance(done.output_parsed, CityInfo):
        fail(f"output_parsed is {done.output_parsed!r}, not a CityInfo (output_text {done.output_text!r})",
             evidence(what))

