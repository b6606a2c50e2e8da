"""Vendor emulation logic without a server: rate-limit windows and headers, request rules, usage metering."""

from __future__ import annotations

from datetime import datetime

import pytest

from wirecheck.reference_server.errors import APIError
from wirecheck.reference_server.vendors import rules
from wirecheck.reference_server.vendors.layer import Meter, usage_of
from wirecheck.reference_server.vendors.ledger import Usage
from wirecheck.reference_server.vendors.limits import parse_limits, settings
from wirecheck.reference_server.vendors.profile import Options, Vendor
from wirecheck.spec.profiles import load_profile


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def vendor(name: str, **options) -> Vendor:
    return Vendor(load_profile(name), Options(**options))


def call(surface: str = "chat", **headers: str) -> rules.Call:
    return rules.Call(surface, {k.lower().replace("_", "-"): v for k, v in headers.items()}, "k")


# ------------------------------------------------------------------------------------------ limits


def test_parse_limits() -> None:
    assert parse_limits("rpm=60, tpm=1000") == {"rpm": 60, "tpm": 1000}
    assert parse_limits("plan=basic") == {"plan": "basic"}
    assert parse_limits("") == {}
    for bad in ("rpm", "rpm=many", "rpm=-1", "=3"):
        with pytest.raises(ValueError):
            parse_limits(bad)


def test_request_window_refuses_then_resets() -> None:
    clock = Clock()
    limiter = settings({}, {"rpm": 2}).new(clock)  # OpenAI's header names without a vendor
    assert limiter.admit().allowed and limiter.admit().allowed
    limiter.release(), limiter.release()
    refused = limiter.admit()
    assert not refused.allowed and refused.window == "rpm" and 1 <= refused.retry_after <= 60
    assert limiter.header_values()["x-ratelimit-remaining-requests"] == "0"
    clock.now += 61
    assert limiter.admit().allowed
    assert limiter.header_values()["x-ratelimit-remaining-requests"] == "1"


def test_token_window_counts_usage() -> None:
    limiter = settings({}, {"tpm": 100}).new(Clock())
    assert limiter.admit().allowed
    limiter.charge_tokens(150)  # the last answer may overdraw; the next request is refused
    assert limiter.header_values()["x-ratelimit-remaining-tokens"] == "0"
    assert not limiter.admit().allowed


def test_hoonify_headers_reset_is_iso_timestamp() -> None:
    v = vendor("hoonify")
    values = v.limiter("k").header_values()
    assert set(values) == {"x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                           "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens"}
    assert datetime.fromisoformat(values["x-ratelimit-reset-requests"].replace("Z", "+00:00")).tzinfo is not None


def test_hontoni_plans_and_concurrency() -> None:
    v = vendor("hontoni", rate_limit={"plan": "standard"})
    limiter = v.limiter("k")
    assert limiter.header_values()["X-RateLimit-Limit-RPM"] == "12"
    assert limiter.admit().allowed and limiter.admit().allowed
    third = limiter.admit()
    assert not third.allowed and third.window == "concurrent"  # standard: 2 concurrent
    limiter.release()
    assert limiter.admit().allowed
    assert limiter.header_values()["X-RateLimit-Concurrent-Active"] == "2"
    with pytest.raises(ValueError):
        vendor("hontoni", rate_limit={"plan": "gold"})
    with pytest.raises(ValueError):
        vendor("hontoni", rate_limit={"tpm": 5})  # hontoni documents no token window


def test_new_accounts_get_the_lowest_plan() -> None:
    v = vendor("hontoni")
    v.open_account("usr_1")
    v.add_key("sk-gw-new", "usr_1")
    assert v.limiter("sk-gw-new").header_values()["X-RateLimit-Limit-RPM"] == "8"  # basic
    assert v.limiter("sk-gw-configured").header_values()["X-RateLimit-Limit-RPM"] == "10000"


# ------------------------------------------------------------------------------------------ keys and balance


def test_keys_by_prefix_or_exact() -> None:
    open_ = vendor("hoonify")
    assert open_.key_ok("hoo_anything") and not open_.key_ok("hoo_") and not open_.key_ok("sk-abc")
    exact = vendor("hoonify", api_keys=["hoo_one"])
    assert exact.key_ok("hoo_one") and not exact.key_ok("hoo_two")
    hoziron = vendor("hoziron")
    assert not hoziron.auth_on  # auth disabled unless keys are configured


def test_balance_is_charged_at_the_documented_price() -> None:
    v = vendor("hontoni", balance=1.0)
    assert v.balance("sk-gw-x") == 1.0
    v.charge("sk-gw-x", "claude-sonnet-4", Usage(1000, 500))  # seed 002's worked example: $0.0105
    assert v.balance("sk-gw-x") == pytest.approx(1.0 - 0.0105)
    v.open_account("usr_1")
    v.add_key("sk-gw-new", "usr_1")
    assert v.balance("sk-gw-new") == 0.0  # a new account starts empty
    assert v.ledger.top_up("usr_1", 2.5) == 2.5 and v.balance("sk-gw-new") == 2.5
    assert vendor("hontoni").balance("sk-gw-x") is None  # no --balance: unlimited


# ------------------------------------------------------------------------------------------ request rules


def test_hontoni_variants() -> None:
    v = vendor("hontoni")
    c = call()
    body = rules.prepare(v, c, {"model": "claude-sonnet-4:high-1m", "messages": []})
    assert body["model"] == "claude-sonnet-4-1m"  # the extended-context alias
    assert c.notes["thinking_budget"] == 32768 and c.notes["extended_context"]
    c = call()
    rules.prepare(v, c, {"model": "gpt-5.2:max", "messages": [], "reasoning_effort": "low"})
    assert c.notes["explicit"] and c.notes["reasoning_effort"] is None  # explicit wins
    c = call()
    rules.prepare(v, c, {"model": "gpt-5.2:max", "messages": []})
    assert c.notes["reasoning_effort"] == "xhigh"
    with pytest.raises(APIError) as unknown:
        rules.prepare(v, call(), {"model": "claude-sonnet-4:ultra", "messages": []})
    assert unknown.value.status == 404
    with pytest.raises(APIError) as plain:
        rules.prepare(v, call(), {"model": "gpt-4o:high", "messages": []})
    assert plain.value.status == 400
    assert rules.prepare(v, call(), {"model": "gpt-4o-1m", "messages": []})["model"] == "gpt-4o-1m"


def test_hoziron_default_model_and_unknown_provider() -> None:
    v = vendor("hoziron")
    assert rules.prepare(v, call(), {"messages": []})["model"] == "anthropic/claude-sonnet-4-20250514"
    assert rules.prepare(v, call(), {"model": "", "messages": []})["model"] == "anthropic/claude-sonnet-4-20250514"
    with pytest.raises(APIError) as missing:
        rules.prepare(v, call(), {"model": "mistral/large", "messages": []})
    assert missing.value.status == 404


def test_hoonify_pools() -> None:
    v = vendor("hoonify")  # apac is dry in the emulation
    c = call(x_hoonify_pool="eu")
    rules.prepare(v, c, {"model": "qwen-3", "messages": []})
    assert c.response_fields["pool"] == "eu"
    with pytest.raises(APIError) as dry:
        rules.prepare(v, call(x_hoonify_pool="apac"), {"model": "qwen-3", "messages": []})
    assert dry.value.status == 503 and "retry-after" in dry.value.headers
    c = call(x_hoonify_pool="apac", x_hoonify_pool_fallback="nearest")
    rules.prepare(v, c, {"model": "qwen-3", "messages": []})
    assert c.response_fields["pool"] == "eu"  # the neighbour in the documented order
    for headers in ({"x_hoonify_pool": "us"}, {"x_hoonify_pool_fallback": "sometimes"}):
        with pytest.raises(APIError) as bad:
            rules.prepare(v, call(**headers), {"model": "qwen-3", "messages": []})
        assert bad.value.status == 400
    c = call()
    rules.prepare(vendor("hoonify", dry_pools=[]), c, {"model": "qwen-3", "messages": []})
    assert c.response_fields["pool"] == "na"


def test_hoonify_quantization_and_fingerprint() -> None:
    v = vendor("hoonify")
    prints = {}
    for q in ("int4", "fp8", None):
        c = call()
        body = rules.prepare(v, c, {"model": "qwen-3", "messages": [], **({"quantization": q} if q else {})})
        assert "quantization" not in body  # consumed: the one engine serves every variant
        prints[q] = c.response_fields["system_fingerprint"]
    assert prints[None] == prints["int4"] != prints["fp8"]  # default: the cheapest, int4
    c = call()
    rules.prepare(v, c, {"model": "mixtral-8x22b", "messages": []})
    assert c.notes["quantization"] == "fp8"  # the cheapest this model exposes
    with pytest.raises(APIError) as missing:
        rules.prepare(v, call(), {"model": "mixtral-8x22b", "messages": [], "quantization": "int4"})
    assert missing.value.semantic and missing.value.param == "quantization"


def test_hoonify_rejects_image_parts() -> None:
    v = vendor("hoonify")
    body = {"model": "qwen-3", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]}]}
    with pytest.raises(APIError) as err:
        rules.prepare(v, call(), body)
    assert err.value.status == 400 and err.value.param == "messages[0].content[1].type"
    body["messages"][0]["content"] = body["messages"][0]["content"][:1]
    assert rules.prepare(v, call(), body) == body


def test_compactifai_rules() -> None:
    v = vendor("compactifai")
    with pytest.raises(APIError) as n:
        rules.prepare(v, call(), {"model": "hypernova-60b", "messages": [], "n": 2})
    assert n.value.param == "n"
    c = call()
    body = rules.prepare(v, c, {"model": "hypernova-60b", "messages": [], "seed": 1, "logprobs": True, "n": 1})
    assert "seed" not in body and "logprobs" not in body and c.notes["ignored"] == ["logprobs", "seed"]
    with pytest.raises(APIError) as gated:
        rules.prepare(v, call("responses"), {"model": "cai-llama-3-1-8b-slim", "input": "hi"})
    assert gated.value.param == "model"
    assert rules.prepare(v, call("responses"), {"model": "hypernova-60b", "input": "hi"})["model"] == "hypernova-60b"


def test_idempotency_key_must_be_a_uuid() -> None:
    v = vendor("hoonify")
    assert rules.idempotency_key(v, call()) is None
    assert rules.idempotency_key(v, call(x_hoonify_idempotency_key="8f14e45f-ceea-467f-a0e6-8f1a2b3c4d5e"))
    with pytest.raises(APIError):
        rules.idempotency_key(v, call(x_hoonify_idempotency_key="retry-1"))


# ------------------------------------------------------------------------------------------ metering


def test_usage_of_every_surface() -> None:
    assert usage_of({"usage": {"prompt_tokens": 3, "completion_tokens": 4}}) == (3, 4, 0)
    assert usage_of({"type": "message_start", "message": {"usage": {"input_tokens": 5, "output_tokens": 1}}}) == (5, 1, 0)
    assert usage_of({"type": "response.completed", "response": {"usage": {"input_tokens": 2, "output_tokens": 9}}}) \
        == (2, 9, 0)
    assert usage_of({"usage": {"input_tokens": 2, "output_tokens": 9, "output_tokens_details": {"reasoning_tokens": 4}}}) \
        == (2, 9, 4)
    assert usage_of({"choices": []}) is None


def test_meter_reads_streams_split_anywhere() -> None:
    body = (b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":7,'
            b'"output_tokens":1}}}\n\nevent: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}'
            b'\n\n')
    meter = Meter()
    meter.start([(b"content-type", b"text/event-stream")])
    for i in range(0, len(body), 5):
        meter.feed(body[i:i + 5])
    meter.end()
    assert meter.usage == (7, 9, 0)
