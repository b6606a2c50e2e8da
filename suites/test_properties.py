"""Property checks: every *valid* request variation (suites/strategies.py) yields a 200 and a conformant
response -- schema-valid, `n` choices, finish reasons from the enum, usage that adds up and respects the
token budget, no stop string in the output, logprobs exactly when asked, streams that end in [DONE].

`--fuzz-examples N` requests per property, generated reproducibly (hypothesis, derandomized). Every
example is sent; the check fails once, with the first failing requests as evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from . import conform
from .expect import honest_refusal
from .fuzz import only_hypothesis_constants
from . import strategies as S
from .registry import check, fail
from .target import Target
from .wire import Exchange, Wire



def run_property(wire: Wire, target: Target, examples: int, path: str, requests: st.SearchStrategy[dict[str, Any]],
                 judge: Callable[[dict[str, Any], Exchange], list[str] | None], showcase: dict[str, Any]) -> None:
    """Send `showcase` (every claimed feature at once), then `examples` generated requests; judge each (a judge's
    None: an honest refusal of an optional feature, not judged)."""
    if examples <= 0:
        pytest.skip("not-run: --fuzz-examples 0")
    failures: list[tuple[Exchange, list[str]]] = []
    sent: list[Exchange] = []
    refused: list[Exchange] = []

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @example(showcase)
    @given(requests)
    def drive(body: dict[str, Any]) -> None:
        if any(ex.timed_out for ex in sent):
            return  # one stall is evidence enough; do not spend a deadline per example
        exchange = wire.post(path, body)
        sent.append(exchange)
        problems = judge(body, exchange)
        if problems is None:
            refused.append(exchange)
        elif problems:
            failures.append((exchange, problems))

    with only_hypothesis_constants():  # the same cases whatever else is loaded (see fuzz.py)
        drive()
    if sent and len(refused) == len(sent):
        pytest.skip(f"not-claimed: the target refused all {len(sent)} requests, each with a 400 naming a feature "
                    f"the model lacks")
    if failures:
        first, problems = failures[0]
        notes = [f"{len(failures)} of {len(sent)} valid requests got a non-conformant answer"]
        notes += [f"{ex.request.get('json')} -> {'; '.join(p[:3])}" for ex, p in failures[:5]]
        fail(f"{len(failures)}/{len(sent)} valid requests: {'; '.join(problems[:3])}", first.evidence(*notes))


def _answered(exchange: Exchange, streamed: bool) -> list[str]:
    """A valid request deserves a 200 of the right media type; say what came instead."""
    if exchange.error or exchange.timed_out or exchange.status != 200:
        detail = exchange.body[:300].decode("utf-8", "replace") if exchange.status else ""
        return [f"a valid request got {exchange.describe()} {detail}".strip()]
    wanted = "text/event-stream" if streamed else "application/json"
    if exchange.content_type.split(";")[0].strip().lower() != wanted:
        return [f"Content-Type is {exchange.content_type!r}, expected {wanted!r}"]
    return []


def _json_judge(problems_of: Callable[..., list[str]], strict: bool, refusable: tuple[str, ...] = ()):
    """Judge a JSON answer; a request carrying one of the `refusable` fields (optional features that depend on the
    model) may get an honest refusal instead, which is not judged."""
    def judge(body: dict[str, Any], exchange: Exchange) -> list[str] | None:
        sent = tuple(f for f in refusable if body.get(f) is not None)
        if sent and honest_refusal(exchange, sent):
            return None
        problems = _answered(exchange, streamed=False)
        if problems:
            return problems
        try:
            value = exchange.json()
        except ValueError:
            return [f"the body is not JSON: {exchange.body[:120]!r}"]
        return problems_of(body, value, strict=strict)

    return judge


def _stream_judge(problems_of: Callable[..., list[str]], strict: bool):
    def judge(body: dict[str, Any], exchange: Exchange) -> list[str]:
        return _answered(exchange, streamed=True) or problems_of(body, exchange.body, strict=strict)

    return judge


@pytest.fixture
def examples(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("fuzz_examples")


@check("properties.chat.valid-requests-conform", surface="chat",
       faults=("chat-response-schema", "usage-arithmetic", "n-ignored", "logprobs-dropped", "null-content-rejected"),
       rationale="Real clients vary sampling parameters, n, stop sets and replay histories with tool calls and "
                 "null content: every such valid request must get a 200 whose body matches the spec and the "
                 "request (n choices, finish reasons, usage arithmetic, stops excluded, logprobs when asked).")
def test_chat_valid_requests_conform(wire, target, examples) -> None:
    run_property(wire, target, examples, "chat/completions", S.chat_requests(target.model, target.profile.claims),
                 _json_judge(conform.chat_response_problems, target.strict),
                 S.chat_showcase(target.model, target.profile.claims))


@check("properties.chat.stream-conforms", surface="chat", claims=("stream",),
       faults=("missing-done", "created-float", "per-chunk-ids", "no-role-chunk", "role-every-chunk", "double-finish",
               "no-finish-reason", "finish-reason-eos", "usage-arithmetic", "usage-dropped",
               "usage-chunk-with-choices", "keepalive-as-data", "stream-wrong-content-type", "unterminated-last-event",
               "n-ignored", "logprobs-dropped", "null-content-rejected"),
       rationale="Every valid streamed chat request must give text/event-stream chunks that each match the "
                 "chunk schema, one role and one finish_reason per choice, a usage trailer exactly when asked, "
                 "and a final `data: [DONE]`.")
def test_chat_stream_conforms(wire, target, examples) -> None:
    run_property(wire, target, examples, "chat/completions",
                 S.chat_requests(target.model, target.profile.claims, stream=True),
                 _stream_judge(conform.chat_stream_problems, target.strict),
                 S.chat_showcase(target.model, target.profile.claims, stream=True))


@check("properties.completions.valid-requests-conform", surface="completions",
       rationale="Valid legacy completions (text or batched prompts, n, stop, logprobs, echo where claimed) "
                 "must get a 200 with n choices per prompt, finish reasons, usage arithmetic and no stop string.")
def test_completions_valid_requests_conform(wire, target, examples) -> None:
    run_property(wire, target, examples, "completions",
                 S.completion_requests(target.model, target.profile.claims),
                 _json_judge(conform.completion_response_problems, target.strict),
                 S.completion_showcase(target.model, target.profile.claims))


@check("properties.completions.stream-conforms", surface="completions", claims=("stream",),
       faults=("completions-missing-done", "completions-chunk-object"),
       rationale="Every valid streamed completion must give `text_completion` chunks matching the schema, one "
                 "finish_reason per choice, a usage trailer exactly when asked, and `data: [DONE]` last.")
def test_completions_stream_conforms(wire, target, examples) -> None:
    run_property(wire, target, examples, "completions",
                 S.completion_requests(target.model, target.profile.claims, stream=True),
                 _stream_judge(conform.completion_stream_problems, target.strict),
                 S.completion_showcase(target.model, target.profile.claims, stream=True))


@check("properties.embeddings.valid-requests-conform", surface="embeddings",
       faults=("embeddings-base64-ignored", "embeddings-index-shuffled", "embeddings-base64-float64"),
       rationale="Valid embeddings requests (one text or a batch; float or, where claimed, base64 and "
                 "dimensions) must get one vector per input, in order, of one width (the requested one). A 400 that "
                 "names `dimensions` is how api.openai.com refuses it for models without the feature: not judged.")
def test_embeddings_valid_requests_conform(wire, target, examples) -> None:
    run_property(wire, target, examples, "embeddings",
                 S.embedding_requests(target.embedding_model, target.profile.claims),
                 _json_judge(conform.embedding_response_problems, target.strict, refusable=("dimensions",)),
                 S.embedding_showcase(target.embedding_model, target.profile.claims))
