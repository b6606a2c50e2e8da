"""Hoziron's chat endpoint (seed 003): POST /chat/completions at the root, `provider/model` ids, and the platform's
default model when `model` is omitted or empty. Facts from spec/profiles/hoziron.yaml.
"""

from __future__ import annotations

from .expect import expect_object
from .registry import check, fail

HELLO = [{"role": "user", "content": "Say hi."}]


@check("hoziron.default-model", surface="chat", claims=("hoziron.default-model",),
       faults=("hoziron-model-required",),
       rationale="'If model is omitted or empty, the platform's default_model is used': clients configured "
                 "without a model id must get an answer (from the default), not a 400.")
def test_default_model(wire, target) -> None:
    default = target.profile.default_model
    for what, body in (("no model field", {"messages": HELLO, "max_tokens": 4}),
                       ("model \"\"", {"model": "", "messages": HELLO, "max_tokens": 4})):
        ex = wire.post("chat/completions", body)
        answer = expect_object(ex, f"a request with {what}")
        got = answer.get("model")
        if not isinstance(got, str) or not got:
            fail(f"a request with {what}: the response names no model ({got!r})", ex.evidence())
        if default and got != default:
            fail(f"a request with {what} was answered by {got!r}, not the default model {default!r}", ex.evidence())


@check("hoziron.provider-ids", surface="chat", claims=("hoziron.provider-ids",),
       faults=("hoziron-provider-stripped", "hoziron-any-provider"),
       rationale="Model ids are provider/model and the provider part routes the request: each documented id is "
                 "answered under that id, and an id naming no configured provider is an unknown model (404), not "
                 "quietly routed to some default.")
def test_provider_ids(wire, target) -> None:
    for model in target.profile.models:
        if "/" not in model:
            fail(f"the profile lists {model!r}, not a provider/model id")
        ex = wire.post("chat/completions", {"model": model, "messages": HELLO, "max_tokens": 4})
        got = expect_object(ex, f"model {model!r}").get("model")
        if got != model:
            fail(f"model {model!r} was answered as {got!r}", ex.evidence())
    unknown = "wirecheck-no-such-provider/" + target.profile.models[0].split("/", 1)[-1]
    ex = wire.post("chat/completions", {"model": unknown, "messages": HELLO, "max_tokens": 4})
    if ex.status != 404:
        fail(f"model {unknown!r} (no such provider) got HTTP {ex.status}, not 404", ex.evidence())
