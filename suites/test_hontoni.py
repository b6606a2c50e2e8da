"""Hontoni's gateway (seed 002): keys by Bearer or X-API-Key, model variant suffixes, obtaining a key through the
account endpoints, and 402 on an empty prepaid balance. Facts from spec/profiles/hontoni.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest

from .accounts import account_url, fresh_key, register
from .expect import expect_object
from .judge import envelope_problems
from .registry import check, fail
from .target import Target

HELLO = [{"role": "user", "content": "Say hi."}]


def _chat(wire, target: Target, model: str, headers: dict[str, str] | None = None, auth: bool = True):
    return wire.post("chat/completions", {"model": model, "messages": HELLO, "max_tokens": 4},
                     headers=headers or {}, auth=auth)


@check("hontoni.auth.x-api-key", surface="auth", claims=("hontoni.x-api-key",),
       faults=("hontoni-x-api-key-ignored",),
       rationale="Hontoni takes the key as `Authorization: Bearer` or `X-API-Key` on every endpoint; tools "
                 "configured with the header form (and Anthropic clients, which send x-api-key) must work, and a "
                 "wrong X-API-Key must still be a 401.")
def test_x_api_key(wire, target) -> None:
    if not target.api_key:
        pytest.skip("not-claimed: no API key configured (--api-key)")
    for what, ex in (("GET /models", wire.get("models", headers={"X-API-Key": target.api_key}, auth=False)),
                     ("POST /chat/completions", _chat(wire, target, target.model,
                                                      {"X-API-Key": target.api_key}, auth=False))):
        if ex.status != 200:
            fail(f"{what} with the key as X-API-Key got HTTP {ex.status}, not 200", ex.evidence())
    wrong = wire.get("models", headers={"X-API-Key": target.api_key + "x"}, auth=False)
    if wrong.status != 401:
        fail(f"GET /models with a wrong X-API-Key got HTTP {wrong.status}, not 401", wrong.evidence())


def _model_of_kind(target: Target, kind: str) -> str | None:
    return next((e["id"] for e in target.profile.model_entries if e.get("kind") == kind), None)


@check("hontoni.variants", surface="chat", claims=("hontoni.variants",), faults=("hontoni-variants-unknown",),
       rationale="Model ids take the documented suffixes :high and :max (reasoning), -1m (extended context) and "
                 "both combined ('model:high-1m'); tools configured with a suffixed id must get answers, and an "
                 "undocumented suffix must be refused rather than served as the base model.")
def test_variants(wire, target) -> None:
    spec: dict[str, Any] = target.profile.vendor["variants"]
    context = spec["context"]["suffix"]
    bases = [m for m in (_model_of_kind(target, "budget"), _model_of_kind(target, "effort")) if m]
    if not bases:
        pytest.skip("inconclusive: the profile lists no reasoning model to suffix")
    for base in bases:
        names = [base + s for s in spec["effort"]] + [base + context] + [base + s + context for s in spec["effort"]]
        for name in names:
            body = expect_object(_chat(wire, target, name), f"model {name!r}")
            if not isinstance(body.get("model"), str) or not body["model"].startswith(base):
                fail(f"model {name!r} answered as model {body.get('model')!r}")
    bad = _chat(wire, target, bases[0] + ":wirecheck")
    if bad.status not in (400, 404):
        fail(f"model {bases[0] + ':wirecheck'!r} (no such suffix) got HTTP {bad.status}, not 400 or 404",
             bad.evidence())


@check("hontoni.accounts", surface="auth", claims=("hontoni.accounts",),
       faults=("hontoni-register-conflict-200", "hontoni-issued-keys-unprefixed"),
       rationale="A client obtains a key locally by registering and creating a key (POST /api/auth/register, "
                 "POST /api/keys); the key has the documented sk-gw- form and authenticates the API at once, and "
                 "registering an address twice is the documented 409 Conflict.")
def test_accounts(wire, target) -> None:
    key = fresh_key(wire, target)
    prefix = target.profile.key_prefix or ""
    if not key.startswith(prefix):
        fail(f"the issued key {key[:8]!r}... does not start with the documented {prefix!r}")
    ok = wire.get("models", headers={"Authorization": f"Bearer {key}"}, auth=False)
    if ok.status != 200:
        fail(f"GET /models with the issued key got HTTP {ok.status}, not 200", ok.evidence())
    first, email = register(wire, target)
    again, _ = register(wire, target, email)
    if first.status not in (200, 201):
        fail(f"registering a fresh address got HTTP {first.status}", first.evidence())
    if again.status != 409:
        fail(f"registering {email} a second time got HTTP {again.status}, not 409 (documented: duplicate "
             f"resource)", again.evidence())


@check("hontoni.balance-402", surface="chat", claims=("hontoni.balance", "hontoni.accounts"),
       faults=("hontoni-402-as-403",),
       rationale="With too little prepaid balance requests are rejected with 402 Payment Required, in the error "
                 "envelope; clients tell 'top up' from 'forbidden' or 'rate limited' by that status alone.")
def test_balance_402(wire, target) -> None:
    key = fresh_key(wire, target)  # a new account's balance is empty until topped up
    balance = wire.get(account_url(target, target.profile.vendor["accounts"]["balance"]),
                       headers={"Authorization": f"Bearer {key}"}, auth=False)
    if balance.status == 200 and isinstance((balance.json() or {}).get("balance"), (int, float)) \
            and balance.json()["balance"] > 0:
        pytest.skip(f"inconclusive: a new account starts with balance {balance.json()['balance']}: nothing to exhaust")
    ex = _chat(wire, target, target.model, {"Authorization": f"Bearer {key}"}, auth=False)
    if ex.status != 402:
        fail(f"a chat completion on an empty balance got HTTP {ex.status}, not 402", ex.evidence())
    problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=target.strict)
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))


@check("hontoni.variants.thinking", surface="messages", claims=("hontoni.variants", "thinking"),
       faults=("hontoni-suffix-dropped", "hontoni-explicit-thinking-dropped"),
       rationale="`:high` on a budget model turns thinking on (a 32,768-token budget) without any parameter, and "
                 "an explicit parameter takes priority over the suffix: `thinking: {type: disabled}` on "
                 "'model:high' answers without thinking. Tools pick variants by suffix and still need the "
                 "explicit switch to win.")
def test_variants_thinking(wire, target) -> None:
    base = _model_of_kind(target, "budget")
    if base is None:
        pytest.skip("inconclusive: the profile lists no budget model")
    name = base + next(iter(target.profile.vendor["variants"]["effort"]))
    body = {"model": name, "max_tokens": 1400, "messages": HELLO}
    ex = wire.post("messages", body)
    blocks = [b.get("type") for b in expect_object(ex, f"{name!r} on /v1/messages").get("content") or []]
    if "thinking" not in blocks:
        fail(f"{name!r} answered with blocks {blocks}: the suffix did not turn thinking on", ex.evidence())
    off = wire.post("messages", {**body, "thinking": {"type": "disabled"}})
    blocks = [b.get("type") for b in expect_object(off, f"{name!r} with thinking disabled").get("content") or []]
    if "thinking" in blocks:
        fail(f"{name!r} with an explicit thinking: disabled still thought: the suffix overrode the explicit "
             f"parameter", off.evidence())

