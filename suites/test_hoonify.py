"""Hoonify's extensions (seeds 000 and 001): pools, idempotency keys, quantization, system_fingerprint, its model
fields, and image_url rejection. Header names, values and defaults come from spec/profiles/hoonify.yaml.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .expect import expect_client_error_naming, expect_object, expect_stream, first_choice, message_content
from .judge import envelope_problems
from .registry import check, fail
from .target import Target
from .wire import Exchange

PROMPT = [{"role": "user", "content": "Name three colours."}]


def spec(target: Target, key: str) -> dict[str, Any]:
    found = target.profile.vendor.get(key)
    if not found:
        pytest.skip(f"not-claimed: profile {target.profile.name!r} documents no {key}")
    return found


def chat(wire, target: Target, headers: dict[str, str] | None = None, **fields: Any) -> Exchange:
    body = {"model": target.model, "messages": PROMPT, "max_tokens": 8, **fields}
    return wire.post("chat/completions", body, headers=headers or {})


# ------------------------------------------------------------------------------------------------ pools


def _pinned(wire, target: Target, pools: dict[str, Any], pool: str, fallback: str) -> Exchange:
    return chat(wire, target, headers={pools["header"]: pool, pools["fallback_header"]: fallback})


@check("hoonify.pools.pinned", surface="chat", claims=("hoonify.pools",),
       faults=("hoonify-pool-ignored", "hoonify-pool-field-missing"),
       rationale="X-Hoonify-Pool pins the pool that serves a request (data residency: na, eu, apac) and the "
                 "`pool` response field says which did; a gateway that drops the header, or a response without "
                 "the field, silently serves from elsewhere.")
def test_pools_pinned(wire, target) -> None:
    pools = spec(target, "pools")
    served = 0
    for pool in pools["values"]:
        ex = _pinned(wire, target, pools, pool, "strict")
        if ex.status == 503:
            continue  # dry right now: judged by hoonify.pools.strict-dry
        body = expect_object(ex, f"a request pinned to pool {pool} (strict)")
        got = body.get(pools["response_field"])
        if got != pool:
            fail(f"pinned to {pool} with fallback strict, the response says pool {got!r}", ex.evidence())
        served += 1
    if not served:
        pytest.skip("inconclusive: every pool answered 503 (dry): nothing served to compare")
    stream = wire.post("chat/completions", {"model": target.model, "messages": PROMPT, "max_tokens": 4,
                                            "stream": True})
    chunks = [item.json() for item in expect_stream(stream, "a streamed request") if item.kind == "event"
              and not item.is_done and item.data]
    if not chunks or any(pools["response_field"] not in c for c in chunks):
        fail(f"streamed chunks without the `{pools['response_field']}` field", stream.evidence())


@check("hoonify.pools.invalid", surface="chat", claims=("hoonify.pools",), faults=("hoonify-pool-unchecked",),
       rationale="A pool outside na | eu | apac (a typo, 'us') must be refused naming the header, not served "
                 "from a default pool the client never chose.")
def test_pools_invalid(wire, target) -> None:
    pools = spec(target, "pools")
    ex = chat(wire, target, headers={pools["header"]: "wirecheck-nowhere"})
    expect_client_error_naming(ex, pools["header"], f"{pools['header']}: wirecheck-nowhere", strict=target.strict)


@check("hoonify.pools.strict-dry", surface="chat", claims=("hoonify.pools",),
       faults=("hoonify-strict-falls-back",),
       rationale="With X-Hoonify-Pool-Fallback: strict (the default) a dry pinned pool must answer 503 (the "
                 "documented 'model temporarily unavailable'), never quietly serve from another pool; with "
                 "nearest it must serve, from another pool, and say which.")
def test_pools_strict_dry(wire, target) -> None:
    pools = spec(target, "pools")
    dry = []
    for pool in pools["values"]:
        ex = _pinned(wire, target, pools, pool, "strict")
        if ex.status == 200:
            got = (ex.json() or {}).get(pools["response_field"])
            if got != pool:
                fail(f"pinned to {pool} with fallback strict, served by pool {got!r}", ex.evidence())
            continue
        if ex.status != 503:
            fail(f"pinned to {pool} with fallback strict got HTTP {ex.status} (documented: 200, or 503 when dry)",
                 ex.evidence())
        problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=target.strict)
        if problems:
            fail(f"the 503 for dry pool {pool}: " + "; ".join(problems), ex.evidence(*problems))
        dry.append(pool)
    if not dry:
        pytest.skip("inconclusive: no pool is dry right now, so strict cannot be told from nearest")
    ex = _pinned(wire, target, pools, dry[0], "nearest")
    body = expect_object(ex, f"dry pool {dry[0]} with fallback nearest")
    got = body.get(pools["response_field"])
    if got not in pools["values"] or got == dry[0]:
        fail(f"dry pool {dry[0]} with fallback nearest was served by pool {got!r}", ex.evidence())


# ------------------------------------------------------------------------------------------------ idempotency


@check("hoonify.idempotency.replay", surface="chat", claims=("hoonify.idempotency",),
       faults=("hoonify-idempotency-ignored",),
       rationale="A retry carrying the same X-Hoonify-Idempotency-Key within 5 minutes must return the first "
                 "response, not generate (and bill) again: clients retry after timeouts on that promise. Sampled "
                 "at temperature 1, so a second generation shows as a new id and new text.")
def test_idempotency_replay(wire, target) -> None:
    header = spec(target, "idempotency")["header"]
    key = str(uuid.uuid4())
    first = chat(wire, target, headers={header: key}, temperature=1.0, max_tokens=16)
    again = chat(wire, target, headers={header: key}, temperature=1.0, max_tokens=16)
    a, b = expect_object(first, "the first keyed request"), expect_object(again, "the retry with the same key")
    for field in ("id", "created", "choices"):
        if a.get(field) != b.get(field):
            fail(f"the retry with the same idempotency key has another {field} ({a.get(field)!r:.60} then "
                 f"{b.get(field)!r:.60}): it was generated again", again.evidence())
    other = expect_object(chat(wire, target, headers={header: str(uuid.uuid4())}, temperature=1.0, max_tokens=16),
                          "a request with a new key")
    if other.get("id") == a.get("id"):
        fail("a request with a different idempotency key replayed the first response", first.evidence())
    # A keyed stream is replayed too, byte for byte.
    skey = str(uuid.uuid4())
    body = {"model": target.model, "messages": PROMPT, "max_tokens": 12, "temperature": 1.0, "stream": True}
    s1 = wire.post("chat/completions", body, headers={header: skey})
    s2 = wire.post("chat/completions", body, headers={header: skey})
    if s1.status == 200 and s2.status == 200 and s1.body != s2.body:
        fail("a streamed retry with the same idempotency key got a different stream", s2.evidence())


# ------------------------------------------------------------------------------------------------ quantization


def _model_object(wire, target: Target) -> dict[str, Any]:
    ex = wire.get(f"models/{target.model}")
    return expect_object(ex, f"GET /models/{target.model}")


@check("hoonify.quantization", surface="chat", claims=("hoonify.quantization",),
       faults=("hoonify-quantization-ignored",),
       rationale="`quantization` picks one of the variants a model lists (fp16 | fp8 | int4); each listed one "
                 "must be served, and one the model does not list (or no such variant) refused naming the field "
                 "rather than served as some other variant.")
def test_quantization(wire, target) -> None:
    q = spec(target, "quantization")
    offered = _model_object(wire, target).get("quantizations")
    if not isinstance(offered, list) or not offered:
        fail(f"the model object lists no quantizations ({offered!r})")
    for variant in offered:
        expect_object(chat(wire, target, **{q["field"]: variant}), f"quantization {variant!r}")
    expect_client_error_naming(chat(wire, target, **{q["field"]: "fp4"}), q["field"], "quantization 'fp4'",
                               strict=target.strict)
    missing = [v for v in q["values"] if v not in offered]
    if missing:
        expect_client_error_naming(chat(wire, target, **{q["field"]: missing[0]}), q["field"],
                                   f"quantization {missing[0]!r}, which the model does not list", strict=target.strict)


@check("hoonify.fingerprint", surface="chat", claims=("hoonify.fingerprint", "hoonify.quantization"),
       faults=("hoonify-fingerprint-per-request", "hoonify-quantization-ignored"),
       rationale="system_fingerprint is documented as stable across model + quantization + runtime: the same "
                 "variant twice gives the same fingerprint, and two variants differ. Clients cache and compare "
                 "answers by it.")
def test_fingerprint(wire, target) -> None:
    q = spec(target, "quantization")
    offered = _model_object(wire, target).get("quantizations") or []
    if len(offered) < 2:
        pytest.skip(f"inconclusive: the model lists {offered!r}: fewer than two variants to tell apart")
    prints = []
    for variant in (offered[0], offered[0], offered[1]):
        body = expect_object(chat(wire, target, **{q["field"]: variant}), f"quantization {variant!r}")
        fp = body.get("system_fingerprint")
        if not isinstance(fp, str) or not fp:
            fail(f"quantization {variant!r}: system_fingerprint is {fp!r}, not a string")
        prints.append(fp)
    if prints[0] != prints[1]:
        fail(f"the same model and quantization gave two fingerprints ({prints[0]!r}, {prints[1]!r})")
    if prints[0] == prints[2]:
        fail(f"quantizations {offered[0]!r} and {offered[1]!r} share fingerprint {prints[0]!r}: it does not "
             f"reflect the variant")


# ------------------------------------------------------------------------------------------------ models, vision


@check("hoonify.model-fields", surface="models", claims=("hoonify.model-fields",),
       faults=("hoonify-model-fields-missing",),
       rationale="Hoonify's model objects add family, pools, quantizations and context_window (and deprecation "
                 "on retrieve); routers choose pools and variants from them.")
def test_model_fields(wire, target) -> None:
    fields = spec(target, "model_fields")
    listed = expect_object(wire.get("models"), "GET /models").get("data") or []
    pools = set((target.profile.vendor.get("pools") or {}).get("values", []))
    variants = set((target.profile.vendor.get("quantization") or {}).get("values", []))
    for model in listed:
        where = f"model {model.get('id')!r}"
        missing = [f for f in fields["list"] if f not in model]
        if missing:
            fail(f"{where} lacks {', '.join(missing)}")
        if not isinstance(model.get("family"), str) or not model["family"]:
            fail(f"{where}: family is {model.get('family')!r}")
        if not isinstance(model.get("pools"), list) or not set(model["pools"]) <= pools:
            fail(f"{where}: pools {model.get('pools')!r} are not among {sorted(pools)}")
        if not isinstance(model.get("quantizations"), list) or not model["quantizations"] \
                or not set(model["quantizations"]) <= variants:
            fail(f"{where}: quantizations {model.get('quantizations')!r} are not among {sorted(variants)}")
        window = model.get("context_window")
        if isinstance(window, bool) or not isinstance(window, int) or window <= 0:
            fail(f"{where}: context_window is {window!r}, not a positive integer")
    one = _model_object(wire, target)
    for name in fields.get("retrieve", []):
        if name not in one:
            fail(f"GET /models/{target.model} lacks {name!r} (documented on retrieve)")


@check("hoonify.no-vision", surface="chat", claims=("hoonify.no-vision",), faults=("hoonify-image-parts-dropped",),
       rationale="Hoonify documents that image_url content blocks are rejected today; answering as if the image "
                 "were there (the part silently dropped) gives the user a confident answer about nothing.")
def test_no_vision(wire, target) -> None:
    kinds = spec(target, "reject_content_parts")
    content = [{"type": "text", "text": "What is in this picture?"},
               {"type": kinds[0], kinds[0]: {"url": "https://example.com/cat.png"}}]
    ex = wire.post("chat/completions", {"model": target.model, "messages": [{"role": "user", "content": content}],
                                        "max_tokens": 8})
    expect_client_error_naming(ex, (kinds[0], "image"), f"a message with an {kinds[0]} part", strict=target.strict,
                               status=400)
    # Text parts alone are fine: the rejection is about images, not about content arrays.
    ok = wire.post("chat/completions", {"model": target.model, "messages": [{"role": "user", "content": content[:1]}],
                                        "max_tokens": 8})
    message_content(first_choice(expect_object(ok, "a message with a text part only"), ok), ok)
