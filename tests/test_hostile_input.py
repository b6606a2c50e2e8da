"""Hostile input (issue 19, first step): bounds checked before any work that grows with the body, and no 500 on
a body nested deeper than the parser's stack. Real HTTP against `wirecheck serve`; timings belong to benchmarks,
so these tests pin the answers, and the unit tests pin that the bound is read before validation."""

from __future__ import annotations

import json

import httpx
import pytest

from wirecheck import spec
from wirecheck.reference_server.request_body import MAX_DEPTH, depth

HI = {"role": "user", "content": "hi"}


def post(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers={"content-type": "application/json"})


def test_depth_counts_levels_without_recursion() -> None:
    assert depth(1) == 0 and depth([]) == 1 and depth({"a": [{"b": []}]}) == 4
    deep: list = []
    for _ in range(50_000):  # far past Python's recursion limit
        deep = [deep]
    assert depth(deep) == 50_001


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 10_000, 90_000])
def test_a_body_nested_too_deep_is_a_400_not_a_500(http: httpx.Client, levels: int) -> None:
    # Past MAX_DEPTH but within what json parses, and far past what it can parse (the session server takes
    # 200 kB bodies): the same clear 400.
    body = b'{"model":"tiny","messages":' + b"[" * levels + b"]" * levels + b"}"
    r = post(http, "/v1/chat/completions", body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep", r.text
    assert http.get("/health").status_code == 200


def test_bounds_error_reads_the_largest_bound_of_the_forms() -> None:
    err = spec.bounds_error("CreateEmbeddingRequest", {"model": "m", "input": ["x"] * 2049})
    assert err is not None and err.param == "input" and "2048" in err.message and "2049" in err.message
    assert spec.bounds_error("CreateEmbeddingRequest", {"model": "m", "input": ["x"] * 2048}) is None
    assert spec.bounds_error("CreateEmbeddingRequest", {"model": "m", "input": "text"}) is None
    assert spec.bounds_error("CreateChatCompletionRequest", {"model": "m", "messages": [HI] * 5}) is None


def test_too_many_embedding_inputs_are_refused_by_the_bound(http: httpx.Client) -> None:
    r = post(http, "/v1/embeddings", json.dumps({"model": "tiny", "input": ["hi"] * 30_000}).encode())
    error = r.json()["error"]
    assert r.status_code == 400 and error["param"] == "input" and "at most 2048" in error["message"]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_too_many_messages_are_refused_before_validation(http: httpx.Client, path: str) -> None:
    # Every message invalid (no role): the count is what the answer names, so it was checked first.
    body = {"model": "tiny", "max_tokens": 4, "messages": [{"content": "hi"}] * 10_000}
    r = post(http, path, json.dumps(body).encode())
    assert r.status_code == 400 and "Too many messages" in r.text, r.text


def test_the_vendor_layer_and_the_proxy_pass_a_too_deep_body_on_as_a_400() -> None:
    from wirecheck.suites.serve import running

    body = b'{"model":"hypernova-60b","messages":' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    with running("--profile", "compactifai", "--api-key", "cai-key") as server:
        r = httpx.post(server.base_url + "/v1/chat/completions", content=body, timeout=60,
                       headers={"content-type": "application/json", "authorization": "Bearer cai-key"})
        assert r.status_code == 400 and "nested" in r.text, r.text


def test_bounds_error_follows_every_ref_of_every_component() -> None:
    # Property $refs point anywhere in the document (#/components/schemas/X/properties/y): none may break it.
    schemas = spec.document()["components"]["schemas"]
    for name, schema in schemas.items():
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        for filler in ([], "x"):
            spec.bounds_error(name, {key: filler for key in props})


LONG = "hello world " * 8_000  # 96 KB: past what 2,048 tokens of at most 19 bytes can hold, within 200 KB bodies


@pytest.mark.parametrize("path, body", [
    ("/v1/chat/completions", {"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": LONG}]}),
    ("/v1/chat/completions", {"model": "tiny", "max_tokens": 4, "messages": [HI], "tools": [
        {"type": "function", "function": {"name": "f", "description": LONG, "parameters": {"type": "object"}}}]}),
    ("/v1/completions", {"model": "tiny", "max_tokens": 4, "prompt": LONG}),
    ("/v1/completions", {"model": "tiny", "max_tokens": 4, "prompt": ["hi", LONG]}),
    ("/v1/responses", {"model": "tiny", "max_output_tokens": 16, "input": LONG}),
    ("/v1/messages", {"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": LONG}]}),
    ("/v1/embeddings", {"model": "tiny", "input": ["hi", LONG]}),
])
def test_a_prompt_too_long_to_fit_is_refused_by_its_size(http: httpx.Client, path: str, body: dict) -> None:
    """Refused before tokenizing (seconds for megabytes): 'at least' N tokens, N from the byte length."""
    r = http.post(path, json=body, headers={"anthropic-version": "2023-06-01"})
    error = r.json()["error"]
    assert r.status_code == 400 and "context length" in error["message"], r.text
    assert "at least" in error["message"], r.text
    if not path.endswith("messages"):
        assert error["code"] == "context_length_exceeded", r.text


def test_a_prompt_just_past_the_context_still_gets_its_exact_count(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "tiny", "max_tokens": 4,
                                                "messages": [{"role": "user", "content": "hello world " * 600}]})
    message = r.json()["error"]["message"]
    assert r.status_code == 400 and "you requested" in message and "at least" not in message, r.text


@pytest.mark.parametrize("path, body, field", [
    ("/v1/messages/count_tokens", {"model": "tiny", "messages": [{"role": "user", "content": LONG}]}, "input_tokens"),
    ("/v1/responses/input_tokens", {"model": "tiny", "input": LONG}, "input_tokens"),
])
def test_counting_endpoints_still_count_a_long_prompt(http: httpx.Client, path: str, body: dict, field: str) -> None:
    r = http.post(path, json=body, headers={"anthropic-version": "2023-06-01"})
    assert r.status_code == 200 and r.json()[field] > 2048, r.text


def test_embedding_inputs_past_the_request_total_stop_tokenizing() -> None:
    from wirecheck.reference_server.engine.loader import load_model
    from wirecheck.reference_server.errors import APIError
    from wirecheck.reference_server.surfaces.embeddings import input_ids, max_total_tokens

    assert max_total_tokens() == 300_000  # OpenAI's, from the spec
    lm = load_model("tiny", weights=False)
    with pytest.raises(APIError) as caught:
        input_ids(lm, ["hello world " * 160] * 2_000)  # about 800,000 tokens in all
    assert caught.value.status == 400 and "300000" in str(caught.value.message)
    assert "input[" in caught.value.message and "input[1999]" not in caught.value.message
