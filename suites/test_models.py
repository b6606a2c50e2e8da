"""Models (/v1/models): the list, retrieving each listed id, and unknown ids."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from .expect import expect_no_problems, expect_object
from .judge import envelope_problems, error_field, schema_problems
from .registry import check, fail
from .wire import Exchange

MAX_RETRIEVE = 20  # a gateway may list hundreds of models; 20 (the target's own among them) is evidence enough


def model_path(model_id: str) -> str:
    """`models/{id}` with the id percent-encoded as the openai SDK sends it ("org/model" -> "org%2Fmodel")."""
    return "models/" + quote(model_id, safe="")


@pytest.fixture(scope="module")
def listing(wire) -> tuple[Exchange, dict[str, Any]]:
    ex = wire.get("models")
    return ex, expect_object(ex, "GET /models")


def listed_ids(listing) -> list[str]:
    ex, body = listing
    data = body.get("data")
    ids = [m.get("id") for m in data if isinstance(m, dict)] if isinstance(data, list) else []
    return [i for i in ids if isinstance(i, str)]


@check("models.schema", surface="models",
       rationale="GET /models must be {object: list, data: [{id, object: model, created: int, owned_by}]}: the "
                 "SDKs' Model type requires every field, and UIs build model pickers from it (breakage 24).",
       faults=("models-missing-owned-by",))
def test_models_schema(listing, target) -> None:
    ex, body = listing
    problems = schema_problems("ListModelsResponse", body, strict=target.strict)
    if isinstance(body.get("data"), list) and not body["data"]:
        problems.append("data is empty: no model is listed")
    expect_no_problems(ex, problems)


@check("models.retrieve-consistent", surface="models", claims=("models-retrieve",),
       rationale="GET /models/{id} (ids with '/' percent-encoded, as the SDK sends them) must answer every listed "
                 "id with the same id and object 'model'; clients validate a configured model this way "
                 "(breakage 24).",
       faults=("model-retrieve-mismatch",))
def test_models_retrieve_consistent(listing, wire, target) -> None:
    ids = listed_ids(listing)
    if not ids:
        pytest.skip("inconclusive: the list holds no model ids to retrieve")
    chosen = ids[:MAX_RETRIEVE] + ([target.model] if target.model in ids[MAX_RETRIEVE:] else [])
    for model_id in chosen:
        path = model_path(model_id)
        ex = wire.get(path)
        body = expect_object(ex, f"GET /{path} (listed id {model_id!r})")
        problems = schema_problems("Model", body, strict=target.strict)
        if body.get("id") != model_id:
            problems.insert(0, f"GET /{path} returned id {body.get('id')!r}, not the listed {model_id!r}")
        expect_no_problems(ex, problems)


@check("models.lists-target-model", surface="models",
       rationale="The model the target serves appears in GET /models under the id requests use: api.openai.com "
                 "lists every model a key can call, and clients that discover models (Open WebUI, LibreChat, the "
                 "SDK's models.list) offer only listed ids, so a served model listed under another id, or not at "
                 "all, cannot be picked (wire-breakages A17).",
       faults=("models-listed-under-other-ids",))
def test_models_lists_target_model(listing, target) -> None:
    ids = listed_ids(listing)
    if target.model not in ids:
        shown = ", ".join(map(repr, ids[:5])) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        fail(f"the model under test {target.model!r} is served but not listed: GET /models lists "
             f"{shown or 'no ids'}", listing[0].evidence())


@check("models.unknown-404", surface="models", claims=("models-retrieve",),
       rationale="GET /models/{unknown} must be 404 in the error envelope: the SDK raises NotFoundError, which "
                 "clients catch to report a misconfigured model (breakage 24).")
def test_models_unknown_404(wire, target) -> None:
    ex = wire.get(model_path("wirecheck-no-such-model-7f3a"))
    if ex.error or ex.timed_out:
        fail(f"GET /models/<unknown>: {ex.describe()}", ex.evidence())
    if ex.status != 404:
        fail(f"GET /models/<unknown> got HTTP {ex.status}, not 404", ex.evidence())
    problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=target.strict)
    if target.strict and error_field(ex.body, "code") != "model_not_found":
        problems.append(f"error.code is {error_field(ex.body, 'code')!r}, not 'model_not_found'")
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))
