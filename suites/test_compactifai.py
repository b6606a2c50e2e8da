"""CompactifAI's compatibility layer (seed 004): n must be 1, fields documented as Ignored are accepted and have no
effect, /v1/responses only for models flagged supports_responses, the model flags themselves, and JSON-only
transcriptions.
"""

from __future__ import annotations

from typing import Any

import pytest

from .expect import expect_client_error_naming, expect_object, first_choice
from .judge import error_field
from .registry import check, fail

HELLO = [{"role": "user", "content": "Say hi."}]
# A valid value for each field CompactifAI documents as Ignored (so a rejection cannot be blamed on the value).
IGNORED_VALUES: dict[str, Any] = {
    "logit_bias": {"50": -1}, "logprobs": True, "top_logprobs": 2, "seed": 7,
    "function_call": "none", "functions": [{"name": "noop", "parameters": {"type": "object", "properties": {}}}],
    "parallel_tool_calls": False, "response_format": {"type": "json_object"}, "max_completion_tokens": 1,
    "data_sources": [{"type": "azure_search", "parameters": {}}],
    "best_of": 1, "echo": True, "suffix": " end",
}


@check("compactifai.n-is-1", surface="chat", claims=("compactifai.n-is-1",), faults=("compactifai-n-ignored",),
       rationale="n is 'Partial (must be 1)': n = 1 works, and n = 2 must be a clear 400 naming n; answering one "
                 "choice to a client that asked for two breaks code that indexes choices[1].")
def test_n_is_1(wire, target) -> None:
    expect_object(wire.post("chat/completions", {"model": target.model, "messages": HELLO, "n": 1,
                                                 "max_tokens": 4}), "n: 1")
    ex = wire.post("chat/completions", {"model": target.model, "messages": HELLO, "n": 2, "max_tokens": 4})
    expect_client_error_naming(ex, "n", "n: 2", strict=target.strict, status=400)


@check("compactifai.ignored", surface="chat", claims=("compactifai.ignored",),
       faults=("compactifai-ignored-rejected", "compactifai-ignored-honoured"),
       rationale="Fields documented as 'Ignored' must be accepted (OpenAI clients send them by default: seed, "
                 "logprobs, response_format) and have no effect: no logprobs in the answer, no 1-token cut from "
                 "max_completion_tokens.")
def test_ignored(wire, target) -> None:
    names = (target.profile.vendor.get("ignored") or {})
    for surface, path in (("chat", "chat/completions"), ("completions", "completions")):
        if surface not in target.profile.surfaces or not names.get(surface):
            continue
        base: dict[str, Any] = {"model": target.model, "max_tokens": 12, "temperature": 0}
        base.update({"messages": HELLO} if surface == "chat" else {"prompt": "Say hi."})
        plain = expect_object(wire.post(path, base), f"a plain {surface} request")
        fields = {k: IGNORED_VALUES[k] for k in names[surface] if k in IGNORED_VALUES}
        ex = wire.post(path, {**base, **fields})
        answer = expect_object(ex, f"a {surface} request with the Ignored fields {', '.join(fields)}")
        choice = first_choice(answer, ex)
        if choice.get("logprobs") not in (None, {}, []):
            fail(f"{surface}: logprobs were documented as Ignored but the answer carries them", ex.evidence())
        if (answer.get("usage") or {}).get("completion_tokens") != (plain.get("usage") or {}).get("completion_tokens"):
            fail(f"{surface}: the Ignored fields changed the answer's length "
                 f"({(plain.get('usage') or {}).get('completion_tokens')} -> "
                 f"{(answer.get('usage') or {}).get('completion_tokens')} tokens at temperature 0)", ex.evidence())


def _flagged(wire, target, flag: str) -> tuple[list[str], list[str]]:
    listed = expect_object(wire.get("models"), "GET /models").get("data") or []
    yes = [m["id"] for m in listed if isinstance(m, dict) and m.get(flag) is True]
    no = [m["id"] for m in listed if isinstance(m, dict) and m.get(flag) is False]
    return yes, no


@check("compactifai.responses-gated", surface="responses", claims=("compactifai.responses-gated",),
       faults=("compactifai-responses-ungated",),
       rationale="/v1/responses is 'Partial (must be a configured model with supports_responses: true)': such a "
                 "model is served, and any other gets a clear 4xx naming the model, instead of a half-working "
                 "answer from a backend without the Responses API.")
def test_responses_gated(wire, target) -> None:
    flag = target.profile.vendor.get("responses_model_flag", "supports_responses")
    yes, no = _flagged(wire, target, flag)
    if not yes:
        fail(f"no model in GET /models has {flag}: true, yet the profile claims /v1/responses")
    expect_object(wire.post("responses", {"model": yes[0], "input": "Say hi.", "max_output_tokens": 16}),
                  f"POST /responses with {yes[0]!r} ({flag}: true)")
    if not no:
        pytest.skip(f"inconclusive: every listed model has {flag}: true; nothing to refuse")
    ex = wire.post("responses", {"model": no[0], "input": "Say hi.", "max_output_tokens": 16})
    if not 400 <= ex.status < 500:
        fail(f"POST /responses with {no[0]!r} ({flag}: false) got HTTP {ex.status}, not a 4xx", ex.evidence())
    if no[0] not in str(error_field(ex.body, "message")) and error_field(ex.body, "param") != "model":
        fail(f"the {ex.status} for {no[0]!r} names neither the model nor param 'model'", ex.evidence())


@check("compactifai.model-flags", surface="models", claims=("compactifai.model-flags",),
       faults=("compactifai-model-flags-missing",),
       rationale="Clients pick models for /v1/responses and audio input by supports_responses and supports_audio "
                 "in GET /v1/models; a model without them cannot be routed.")
def test_model_flags(wire, target) -> None:
    flags = target.profile.vendor.get("model_flags") or ["supports_responses", "supports_audio"]
    listed = expect_object(wire.get("models"), "GET /models").get("data") or []
    if not listed:
        fail("GET /models lists no models")
    for model in listed:
        bad = [f for f in flags if not isinstance(model.get(f), bool)]
        if bad:
            fail(f"model {model.get('id')!r}: {', '.join(f'{f}={model.get(f)!r}' for f in bad)} (booleans expected)")


@check("compactifai.transcriptions-json-only", surface="audio", claims=("compactifai.transcriptions-json-only",),
       faults=("compactifai-transcription-formats-ignored",),
       rationale="Transcriptions are 'JSON only': json works, and another response_format (srt) must be refused "
                 "with a 4xx naming it, as OpenAI refuses formats a model lacks (gpt-4o-transcribe); a 200 in json "
                 "hands a subtitle tool a JSON document as its .srt file.")
def test_transcriptions_json_only(wire, target) -> None:
    from .test_audio import format_problems, transcribe

    plain = transcribe(wire, target, response_format="json")
    expect_object(plain, "a json transcription")
    ex = transcribe(wire, target, response_format="srt")
    if ex.status == 200 and not format_problems("srt", ex):
        pytest.skip("inconclusive: the target answered srt although the document says JSON only")
    expect_client_error_naming(ex, "response_format", "response_format srt on a JSON-only endpoint",
                               strict=target.strict)
