"""`wirecheck serve --profile hontoni` over real HTTP: `-1m` ids accept a larger window (a scale model of the
vendor's 1M), and GET /api/models tells clients the windows, prices and capabilities of every documented id."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from wirecheck.spec.profiles import load_profile
from wirecheck.suites.serve import running
from wirecheck.suites.test_hontoni_models import live_model_problems

KEY = "sk-gw-context-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
WINDOW = 2048  # the tiny model's own
EXTENDED = {"claude-sonnet-4": 9481, "claude-opus-4.6": 10240, "gpt-4o": 16000, "gpt-5.2": 7758, "gpt-5.4": 5120}


@pytest.fixture(scope="module")
def server():
    with running("--profile", "hontoni", "--api-key", KEY) as s:
        yield s


def _prompt(tokens: int) -> str:
    """About `tokens` tokens of the tiny tokenizer (some 2.2 characters a token on this text)."""
    text, i = "", 0
    while len(text) < tokens * 2.2:
        text += f"Line {i}: the quick brown fox jumps over the lazy dog. "
        i += 1
    return text


def _chat(server, model: str, text: str, **headers: str) -> httpx.Response:
    return httpx.post(server.base_url + "/v1/chat/completions", headers={**AUTH, **headers}, timeout=120,
                      json={"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 1})


def _live(server, **kwargs) -> httpx.Response:
    return httpx.get(server.base_url + "/api/models", **{"headers": AUTH, **kwargs})


def test_extended_id_serves_a_prompt_between_the_windows(server) -> None:
    text = _prompt(3 * WINDOW // 2)
    for name in ("claude-sonnet-4-1m", "claude-sonnet-4:high-1m"):
        ok = _chat(server, name, text)
        assert ok.status_code == 200, ok.text
        assert ok.json()["model"] == "claude-sonnet-4-1m"
        assert WINDOW < ok.json()["usage"]["prompt_tokens"] < EXTENDED["claude-sonnet-4"]
    refused = _chat(server, "claude-sonnet-4", text)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "context_length_exceeded"
    assert f"maximum context length is {WINDOW} tokens" in refused.json()["error"]["message"]


def test_extended_window_has_its_own_limit(server) -> None:
    past = _chat(server, "claude-sonnet-4-1m", _prompt(EXTENDED["claude-sonnet-4"] + 500))
    assert past.status_code == 400 and past.json()["error"]["code"] == "context_length_exceeded"
    assert f"maximum context length is {EXTENDED['claude-sonnet-4']} tokens" in past.json()["error"]["message"]
    # gpt-4o's documented 128K scales to the tiny model's 16,000: a prompt past claude-sonnet-4-1m's fits there.
    wide = _chat(server, "gpt-4o-1m", _prompt(EXTENDED["claude-sonnet-4"] + 500))
    assert wide.status_code == 200, wide.text


def test_models_list_documented_ids_only(server) -> None:
    ids = [m["id"] for m in httpx.get(server.base_url + "/v1/models", headers=AUTH).json()["data"]]
    assert ids == list(load_profile("hontoni").models)
    anthropic = httpx.get(server.base_url + "/v1/models", params={"limit": 100},
                          headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"}).json()["data"]
    assert [m["id"] for m in anthropic] == ids
    retrieved = httpx.get(server.base_url + "/v1/models/gpt-4o-1m", headers=AUTH)  # unlisted, still served
    assert retrieved.status_code == 200 and retrieved.json()["id"] == "gpt-4o-1m"


def test_live_models(server) -> None:
    body = _live(server).json()
    profile = load_profile("hontoni")
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == list(profile.models)
    live = {m["id"]: m for m in body["data"]}
    for entry in profile.model_entries:
        assert live_model_problems(live[entry["id"]], entry) == []
        assert live[entry["id"]]["context_window"] == WINDOW
    assert {m: live[m]["extended_context_window"] for m in EXTENDED} == EXTENDED
    sonnet, gpt4o = live["claude-sonnet-4"], live["gpt-4o"]
    assert sonnet["pricing"] == {"input": 3.0, "output": 15.0, "reasoning": 15.0, "cache_read": 0.3,
                                 "cache_write": 3.75}
    assert gpt4o["pricing"] == {"input": 2.5, "output": 10.0, "reasoning": None, "cache_read": None,
                                "cache_write": None}  # the table's "-" and no cache columns
    assert sonnet["capabilities"] == ["reasoning", "tools", "vision", "code", "chat"]
    assert sonnet["owned_by"] == "anthropic"
    assert (sonnet["reasoning"], sonnet["variants"]) == ("budget", [":high", ":max", "-1m"])
    assert (live["gpt-5.2"]["reasoning"], gpt4o["reasoning"], gpt4o["variants"]) == ("effort", None, ["-1m"])


def test_live_models_auth_and_method(server) -> None:
    assert _live(server, headers={"X-API-Key": KEY}).status_code == 200
    for headers in ({}, {"Authorization": "Bearer sk-gw-wrong"}):
        denied = _live(server, headers=headers)
        assert denied.status_code == 401 and denied.json()["error"]["code"] == "invalid_api_key"
    posted = httpx.post(server.base_url + "/api/models", headers=AUTH)
    assert posted.status_code == 405 and posted.json()["error"]["message"]
    assert posted.headers["allow"] == "GET"


def test_extended_request_is_billed_at_the_base_price(server) -> None:
    token = httpx.post(server.base_url + "/api/auth/register",
                       json={"email": "long@example.com", "password": "correct horse", "name": "Long"}).json()
    key = httpx.post(server.base_url + "/api/keys", json={"name": "ctx"},
                     headers={"Authorization": f"Bearer {token['access_token']}"}).json()["key"]
    mine = {"Authorization": f"Bearer {key}"}
    httpx.post(server.base_url + "/api/billing/topup", json={"amount": 1}, headers=mine)
    usage = _chat(server, "claude-sonnet-4-1m", _prompt(WINDOW), **mine).json()["usage"]
    spent = 1.0 - httpx.get(server.base_url + "/api/billing/balance", headers=mine).json()["balance"]
    # claude-sonnet-4: $3.00 input, $15.00 output per 1M tokens
    assert spent == pytest.approx((usage["prompt_tokens"] * 3.0 + usage["completion_tokens"] * 15.0) / 1e6, abs=2e-6)


def test_long_rows_batch_with_short_ones(server) -> None:
    """A -1m prompt past the base window decodes in the running batch (its KV cache merged, left-padded, with
    short rows' caches) exactly as it does alone, and the short rows are unchanged by it."""
    def greedy(model: str, tokens: int) -> str:
        reply = httpx.post(server.base_url + "/v1/chat/completions", headers=AUTH, timeout=120,
                           json={"model": model, "messages": [{"role": "user", "content": _prompt(tokens)}],
                                 "max_tokens": 24, "temperature": 0})
        assert reply.status_code == 200, reply.text
        return reply.json()["choices"][0]["message"]["content"]

    jobs = [("gpt-4o-1m", 3 * WINDOW), ("gpt-4o", 40), ("claude-sonnet-4-1m", 2 * WINDOW), ("gpt-4o", 60)]
    alone = [greedy(*job) for job in jobs]
    with ThreadPoolExecutor(len(jobs)) as pool:
        together = list(pool.map(lambda job: greedy(*job), jobs))
    assert together == alone
