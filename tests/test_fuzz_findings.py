"""Requests the schemathesis fuzz (suites/test_schema_fuzz.py) found crashing the reference server: each is
valid under the spec (or merely odd) and must get a 200 or a clear 400, never a 500."""

from __future__ import annotations

import pytest

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("body", [
    pytest.param({"top_p": 0.0}, id="top_p-0-keeps-the-top-token"),
    pytest.param({"temperature": 5e-324, "top_p": 1e-300}, id="denormal-temperature-is-greedy"),
    pytest.param({"max_tokens": 4.0, "n": 2.0, "seed": 5.0, "temperature": 1, "logprobs": True,
                  "top_logprobs": 2.0, "min_tokens": 1.0, "top_k": 3.0}, id="integral-floats"),
])
def test_chat_sampling_edge_values(http, body) -> None:
    r = http.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, "max_tokens": 4, **body})
    assert r.status_code == 200, r.text
    assert all(c["message"]["content"] is not None for c in r.json()["choices"])


def test_greedy_below_threshold_matches_temperature_zero(http) -> None:
    def text(temperature: float) -> str:
        body = {"model": "tiny", "messages": MESSAGES, "max_tokens": 8, "temperature": temperature}
        return http.post("/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]

    assert text(1e-300) == text(0)


def test_null_prompt_is_the_start_of_a_document(http) -> None:
    r = http.post("/v1/completions", json={"model": "tiny", "prompt": None, "max_tokens": 3})
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["prompt_tokens"] >= 1


@pytest.mark.parametrize("surface,body", [
    ("completions", {"prompt": [407, 30.0], "max_tokens": 3.0, "seed": 1.0, "logprobs": 1.0}),
    ("completions", {"prompt": [[407, 30.0]], "max_tokens": 3}),
    ("embeddings", {"input": [407, 30.0], "dimensions": 4.0}),
])
def test_integral_float_token_ids(http, surface, body) -> None:
    r = http.post(f"/v1/{surface}", json={"model": "tiny", **body})
    assert r.status_code == 200, r.text


def test_lone_surrogate_is_a_400_naming_the_field(http) -> None:
    raw = b'{"model": "tiny", "messages": [{"role": "user", "content": "a\\ud800b"}], "max_tokens": 2}'
    r = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "messages[0].content"


def test_lone_surrogate_in_a_key_is_reported_printably(http) -> None:
    raw = b'{"model": "tiny", "messages": [{"role": "user", "content": "a"}], "\\udc00x": 1}'
    r = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "\\udc00x"


def test_paired_surrogates_are_text(http) -> None:
    raw = b'{"model": "tiny", "messages": [{"role": "user", "content": "\\ud83d\\ude00"}], "max_tokens": 2}'
    r = http.post("/v1/chat/completions", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
