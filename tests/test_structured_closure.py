"""Structured output closes within its budget on `wirecheck serve`, on a sample of schemas and surfaces, at the
default temperature and a small max_tokens, with the real SDKs. load/bench_structured.py measures the share
over the whole corpus; here the invariants are asserted: complete answers are valid, no key comes twice, and
an answer is cut off only when even its shortest completion cannot fit.
"""

from __future__ import annotations

import json

import jsonschema
import pytest

from wirecheck.fixtures.schemas import CORPUS, Answer
from wirecheck.load.bench_structured import SURFACES, judge_json
from wirecheck.load.bench_structured import main as bench_main

SAMPLE = ["answer", "weather", "order-strict", "drawing", "json-object", "get-weather-tool"]
SURFACE_SAMPLE = ["chat response_format", "chat forced tool, streamed", "responses function call",
                  "messages tool", "messages output_config.format"]
SEEDS = 3


def test_the_issue_example_parses_every_time(client):
    """A plain pydantic model through chat.completions.parse() at the default temperature: the SDK raised
    LengthFinishReasonError in 6 of 8 runs before the budget guard ("score": 825333333...)."""
    for _ in range(8):
        completion = client.chat.completions.parse(model="tiny", messages=[{"role": "user", "content": "rate"}],
                                                   response_format=Answer, max_tokens=80)
        choice = completion.choices[0]
        assert choice.finish_reason == "stop" and isinstance(choice.message.parsed, Answer)


@pytest.mark.parametrize("surface", SURFACE_SAMPLE)
def test_complete_valid_answers_on_a_sample(http, surface: str) -> None:
    spec = next(s for s in SURFACES if s.name == surface)
    for name in SAMPLE:
        schema, prompt = CORPUS[name]
        if spec.tool_only and schema.get("type") != "object":
            continue
        for seed in range(SEEDS):
            body = spec.build(schema, name, prompt, 64, seed)
            response = http.post(f"/v1/{spec.path}", json=body, headers={"anthropic-version": "2023-06-01"})
            assert response.status_code == 200, response.text
            outcome = spec.judge(schema, response.content if body.get("stream") else response.json())
            assert outcome.complete and outcome.valid, (surface, name, seed, outcome)


def _calls(http, schema, max_tokens: int, seed: int) -> dict:
    tool = {"type": "function", "function": {"name": "answer", "parameters": schema}}
    return http.post("/v1/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": "Describe a small company."}],
        "tools": [tool], "tool_choice": {"type": "function", "function": {"name": "answer"}},
        "max_tokens": max_tokens, "seed": seed}).json()["choices"][0]


def test_a_tight_budget_still_closes_and_a_hopeless_one_is_cut_off(http) -> None:
    """The closure rule: the answer is cut off (finish_reason length) only when no valid completion fits."""
    schema = CORPUS["company-strict"][0]
    # The shortest call, markup and end token included, takes 30 tiny-model tokens (its BPE splits JSON finely).
    for seed in range(4):
        choice = _calls(http, schema, 34, seed)
        assert choice["finish_reason"] == "stop", choice
        jsonschema.validate(json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]), schema)
    assert _calls(http, schema, 20, 0)["finish_reason"] == "length"


def test_no_key_twice_in_json_mode(http) -> None:
    for seed in range(6):
        body = http.post("/v1/chat/completions", json={
            "model": "tiny", "messages": [{"role": "user", "content": "The weather in Paris as JSON, please."}],
            "response_format": {"type": "json_object"}, "max_tokens": 64, "seed": seed}).json()
        assert judge_json(body["choices"][0]["message"]["content"], {"type": "object"}) == ""


def test_the_benchmark_runs_end_to_end(server, capsys) -> None:
    """Smoke test of load/bench_structured.py (one schema, one seed); the shares are the benchmark's to report."""
    assert bench_main(["--target", server.base_url, "--seeds", "1", "--schema", "weather"]) == 0
    assert "complete and valid" in capsys.readouterr().out
