"""Auth: with a key configured, a missing or wrong key must get 401 in the error envelope."""

from __future__ import annotations

import pytest

from .judge import envelope_problems
from .registry import check, fail


@check("auth.enforced", surface="auth",
       rationale="An endpoint given an API key must refuse requests without it or with a wrong one (401 in the "
                 "envelope, AuthenticationError in the SDKs); gateways that forward unauthenticated requests "
                 "leak paid capacity (breakage 26).",
       faults=("auth-ignored",))
def test_auth_enforced(wire, target) -> None:
    if not target.api_key:
        pytest.skip("not-claimed: no API key configured (--api-key or $WIRECHECK_API_KEY); nothing to enforce")
    if "bearer" not in target.profile.auth:
        pytest.skip(f"not-claimed: profile auth scheme {target.profile.auth!r} is not bearer")
    attempts = [("no Authorization header", {}), ("a wrong key", {"Authorization": "Bearer wirecheck-wrong-key"}),
                ("a key with extra characters", {"Authorization": f"Bearer {target.api_key}x"})]
    for what, headers in attempts:
        sent, ex = wire.probe(headers=headers, auth=False)
        if ex.error or ex.timed_out:
            fail(f"{sent} with {what}: {ex.describe()}", ex.evidence())
        if ex.status != 401:
            fail(f"{sent} with {what} got HTTP {ex.status}, not 401", ex.evidence())
        problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=target.strict)
        if problems:
            fail(f"{sent} with {what}: " + "; ".join(problems), ex.evidence(*problems))
    if "chat" in target.profile.surfaces:
        ex = wire.post("chat/completions", {"model": target.model, "messages": [{"role": "user", "content": "hi"}],
                                            "max_tokens": 1}, headers={"Authorization": "Bearer wirecheck-wrong-key"},
                       auth=False)
        if ex.status != 401:
            fail(f"POST /chat/completions with a wrong key got HTTP {ex.status}, not 401", ex.evidence())
    sent, ok = wire.probe()
    if ok.status != 200:
        fail(f"{sent} with the configured key got HTTP {ok.status}, not 200", ok.evidence())
