"""Auth: with a key configured, a missing key and a wrong one must each get 401 in the error envelope.

The two are separate checks, each tried whatever the other found: a server that answers a missing key right
may still answer a wrong one with a 400 (and the reverse), and one verdict must not hide the other.
"""

from __future__ import annotations

import pytest

from .expect import expect_each
from .judge import envelope_problems
from .registry import check, fail
from .wire import Exchange

WRONG_KEY = "wirecheck-wrong-key"


def _require_bearer_key(target) -> None:
    if not target.api_key:
        pytest.skip("not-claimed: no API key configured (--api-key or $WIRECHECK_API_KEY); nothing to enforce")
    if "bearer" not in target.profile.auth:
        pytest.skip(f"not-claimed: profile auth scheme {target.profile.auth!r} is not bearer")


def refused_problems(sent: str, what: str, ex: Exchange, strict: bool) -> list[str]:
    """Why `ex` is not OpenAI's refusal of a bad key (401 in the error envelope)."""
    if ex.error or ex.timed_out:
        return [f"{sent} with {what}: {ex.describe()}"]
    if ex.status != 401:
        return [f"{sent} with {what} got HTTP {ex.status}, not 401"]
    problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=strict)
    return [f"{sent} with {what}: " + "; ".join(problems)] if problems else []


def expect_refused(attempts: list[tuple[str, str, Exchange]], target) -> None:
    """Every attempt refused with a 401; all that were not are reported together."""
    expect_each([(ex, refused_problems(sent, what, ex, target.strict)) for sent, what, ex in attempts])


@check("auth.enforced", surface="auth",
       rationale="An endpoint given an API key must refuse requests without one: 401 in the envelope, which the "
                 "SDKs raise as AuthenticationError (api.openai.com: \"You didn't provide an API key\"); gateways "
                 "that forward unauthenticated requests leak paid capacity (breakage 26).",
       faults=("auth-ignored", "auth-keys-misjudged"))
def test_auth_enforced(wire, target) -> None:
    _require_bearer_key(target)
    sent, ex = wire.probe(headers={}, auth=False)
    expect_refused([(sent, "no Authorization header", ex)], target)
    sent, ok = wire.probe()
    if ok.status != 200:
        fail(f"{sent} with the configured key got HTTP {ok.status}, not 200", ok.evidence())


@check("auth.wrong-key", surface="auth",
       rationale="A wrong key, or the right one with extra characters, must get 401 in the envelope "
                 "(api.openai.com: 401 invalid_api_key, the SDKs' AuthenticationError), on the cheapest request "
                 "and on chat completions alike. A 400 or 403 sends clients down the wrong path (BadRequestError "
                 "is not retried with a refreshed key) and a 200 serves anyone (breakage 26).",
       faults=("auth-ignored", "auth-wrong-key-400", "auth-keys-misjudged"))
def test_auth_wrong_key(wire, target) -> None:
    _require_bearer_key(target)
    attempts = []
    for what, key in (("a wrong key", WRONG_KEY), ("a key with extra characters", f"{target.api_key}x")):
        sent, ex = wire.probe(headers={"Authorization": f"Bearer {key}"}, auth=False)
        attempts.append((sent, what, ex))
    if "chat" in target.profile.surfaces:
        ex = wire.post("chat/completions", {"model": target.model, "messages": [{"role": "user", "content": "hi"}],
                                            "max_tokens": 1}, headers={"Authorization": f"Bearer {WRONG_KEY}"},
                       auth=False)
        attempts.append(("POST /chat/completions", "a wrong key", ex))
    expect_refused(attempts, target)
