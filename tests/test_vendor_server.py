"""`wirecheck serve --profile X` over real HTTP, driven by the official SDKs configured as each vendor's documents
tell their users to configure them (base URLs, keys, headers), plus the emulation's own knobs."""

from __future__ import annotations

import subprocess
import sys
import uuid

import anthropic
import httpx
import openai
import pytest

from wirecheck.suites.serve import running

HELLO = [{"role": "user", "content": "Say hi."}]


def _openai(base: str, key: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=60, _strict_response_validation=True,
                         **kwargs)


@pytest.fixture(scope="module")
def hoonify():
    with running("--profile", "hoonify") as server:  # no --api-key: any hoo_ key is accepted
        yield server


def test_hoonify_sdk_with_extensions(hoonify) -> None:
    client = _openai(hoonify.base_url + "/v1", "hoo_test_key", default_headers={"X-Hoonify-Pool": "eu"})
    raw = client.chat.completions.with_raw_response.create(model="qwen-3", messages=HELLO, max_tokens=4,
                                                           extra_body={"quantization": "fp8", "top_k": 5})
    reply = raw.parse()
    assert reply.model == "qwen-3" and reply.model_extra["pool"] == "eu" and reply.system_fingerprint
    assert int(raw.headers["x-ratelimit-remaining-requests"]) < int(raw.headers["x-ratelimit-limit-requests"])
    key = {"X-Hoonify-Idempotency-Key": str(uuid.uuid4())}
    first = client.chat.completions.create(model="llama-4-scout", messages=HELLO, max_tokens=8, extra_headers=key)
    again = client.chat.completions.create(model="llama-4-scout", messages=HELLO, max_tokens=8, extra_headers=key)
    assert first.id == again.id and first.choices[0].message.content == again.choices[0].message.content
    # The SDK's default base64 path (its strict validation runs before it decodes base64, so a lax client).
    lax = openai.OpenAI(base_url=hoonify.base_url + "/v1", api_key="hoo_test_key", max_retries=0,
                        default_headers={"X-Hoonify-Pool": "eu"})
    vectors = lax.embeddings.create(model="qwen-3", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.model_extra["pool"] == "eu"
    with pytest.raises(openai.UnprocessableEntityError):  # 001: semantically invalid parameters are 422
        client.chat.completions.create(model="qwen-3", messages=HELLO, temperature=5)
    with pytest.raises(openai.InternalServerError) as dry:  # apac is dry; strict is the default
        client.chat.completions.create(model="qwen-3", messages=HELLO, extra_headers={"X-Hoonify-Pool": "apac"})
    assert dry.value.status_code == 503
    with pytest.raises(openai.AuthenticationError):
        _openai(hoonify.base_url + "/v1", "sk-not-a-hoonify-key").models.list()
    with pytest.raises(openai.NotFoundError):  # Hoonify serves no completions surface
        client.completions.create(model="qwen-3", prompt="hi")


def test_hoonify_idempotent_stream_cut_off_is_not_replayed(hoonify) -> None:
    """A keyed stream the client hung up on is not kept: the retry generates a whole stream afresh."""
    headers = {"Authorization": "Bearer hoo_test_key", "X-Hoonify-Idempotency-Key": str(uuid.uuid4())}
    body = {"model": "qwen-3", "messages": HELLO, "max_tokens": 64, "min_tokens": 64, "stream": True}
    with httpx.stream("POST", hoonify.base_url + "/v1/chat/completions", json=body, headers=headers) as first:
        next(first.iter_raw())  # the first chunk, then hang up
    retry = httpx.post(hoonify.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert retry.status_code == 200 and retry.text.rstrip().endswith("data: [DONE]")
    again = httpx.post(hoonify.base_url + "/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert again.text == retry.text  # and that complete one is what later retries get


def test_hontoni_with_both_sdks_and_accounts() -> None:
    with running("--profile", "hontoni", "--rate-limit", "rpm=4") as server:
        key = "sk-gw-test"
        claude = anthropic.Anthropic(base_url=server.base_url, api_key=key, max_retries=0)  # x-api-key
        message = claude.messages.create(model="claude-sonnet-4", max_tokens=8, messages=HELLO)
        assert message.model == "claude-sonnet-4" and message.content[0].type == "text"
        # :high thinks without a parameter (the SDK parses the signed thinking block), streamed too.
        thought = claude.messages.create(model="claude-sonnet-4:high", max_tokens=1400, messages=HELLO)
        assert [b.type for b in thought.content][:2] == ["thinking", "text"] and thought.content[0].signature
        with claude.messages.stream(model="claude-opus-4.6:max", max_tokens=1400, messages=HELLO) as stream:
            final = stream.get_final_message()
        assert final.content[0].type == "thinking" and final.content[0].signature
        assert final.usage.output_tokens >= 2
        gpt = _openai(server.base_url + "/v1", key)
        reasoned = gpt.responses.create(model="gpt-5.2:max-1m", input="Say hi.", max_output_tokens=200)
        assert [item.type for item in reasoned.output][0] == "reasoning"  # :max sets effort xhigh
        assert reasoned.model == "gpt-5.2-1m" and reasoned.reasoning.effort == "xhigh"
        with pytest.raises(openai.RateLimitError) as limited:  # the fifth request in the minute, past rpm=4
            gpt.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=4)
        assert int(limited.value.response.headers["retry-after"]) >= 1
        assert limited.value.response.headers["X-RateLimit-Remaining-RPM"] == "0"
        # A key obtained locally, as the quick start shows: register, then create a key.
        token = httpx.post(server.base_url + "/api/auth/register",
                           json={"email": "dev@example.com", "password": "correct horse", "name": "Dev"}).json()
        made = httpx.post(server.base_url + "/api/keys", json={"name": "laptop"},
                          headers={"Authorization": f"Bearer {token['access_token']}"})
        assert made.status_code == 201 and made.json()["key"].startswith("sk-gw-")
        fresh = _openai(server.base_url + "/v1", made.json()["key"])
        with pytest.raises(openai.APIStatusError) as broke:  # a new prepaid account has no balance
            fresh.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=4)
        assert broke.value.status_code == 402
        topped = httpx.post(server.base_url + "/api/billing/topup", json={"amount": 1},
                            headers={"Authorization": f"Bearer {made.json()['key']}"})
        assert topped.json()["balance"] == 1.0
        assert fresh.chat.completions.create(model="gpt-4o", messages=HELLO, max_tokens=4).choices
        spent = httpx.get(server.base_url + "/api/billing/balance",
                          headers={"Authorization": f"Bearer {made.json()['key']}"}).json()["balance"]
        assert 0.99 < spent < 1.0  # charged at gpt-4o's documented price


def test_hoziron_without_v1_and_default_model() -> None:
    with running("--profile", "hoziron") as server:  # auth disabled: any string works as the key
        client = _openai(server.base_url, "anything")  # the seed's base_url: no /v1
        reply = client.chat.completions.create(model="", messages=HELLO, max_tokens=4)
        assert reply.model == "anthropic/claude-sonnet-4-20250514"
        assert client.chat.completions.create(model="groq/llama-3.1-70b-versatile", messages=HELLO,
                                              max_tokens=4).model == "groq/llama-3.1-70b-versatile"
        assert httpx.post(server.base_url + "/v1/chat/completions", json={"messages": HELLO}).status_code == 404


def test_compactifai_responses_and_n() -> None:
    with running("--profile", "compactifai", "--api-key", "cai-key") as server:
        client = _openai(server.base_url + "/v1", "cai-key")
        created = client.responses.create(model="hypernova-60b", input="Say hi.", max_output_tokens=16)
        assert created.output
        # input_tokens belongs to the Responses surface: served under the vendor's base path, gated alike.
        counted = client.responses.input_tokens.count(model="hypernova-60b", input="Say hi.")
        assert counted.input_tokens == created.usage.input_tokens
        with pytest.raises(openai.BadRequestError):
            client.responses.input_tokens.count(model="cai-llama-3-1-8b-slim", input="Say hi.")
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="cai-llama-3-1-8b-slim", input="Say hi.", max_output_tokens=16)
        with pytest.raises(openai.BadRequestError) as n:
            client.chat.completions.create(model="cai-llama-3-1-8b-slim", messages=HELLO, n=2)
        assert n.value.param == "n"
        ignored = client.chat.completions.create(model="cai-llama-3-1-8b-slim", messages=HELLO, max_tokens=6,
                                                 logprobs=True, seed=3, max_completion_tokens=1)
        assert ignored.choices[0].logprobs is None


def test_plain_server_rate_limit_uses_openai_headers() -> None:
    with running("--rate-limit", "rpm=1") as server:
        client = _openai(server.base_url + "/v1", "unused")
        raw = client.models.with_raw_response.list()
        assert raw.headers["x-ratelimit-limit-requests"] == "1" and raw.headers["x-ratelimit-reset-requests"].endswith("s")
        with pytest.raises(openai.RateLimitError):
            client.models.list()


@pytest.mark.parametrize("args, message", [(["--profile", "nowhere"], "no profile 'nowhere'"),
                                           (["--profile", "hontoni", "--rate-limit", "plan=gold"], "plan=gold"),
                                           (["--profile", "hoonify", "--dry-pool", "mars"], "--dry-pool mars"),
                                           (["--rate-limit", "rpm=lots"], "whole number")])
def test_serve_refuses_bad_emulation_settings(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "wirecheck", "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
