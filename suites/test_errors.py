"""Errors: bad input gets a 4xx in OpenAI's envelope, naming the parameter; unknown routes and models are 404.

Also http.deadline: a target that never answers fails within the run's deadline instead of hanging the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .judge import envelope_problems, error_field
from .registry import check, fail
from .wire import Exchange

HELLO = [{"role": "user", "content": "Say hi."}]


@dataclass
class Bad:
    what: str
    expected: int  # the status OpenAI answers (or the profile documents)
    ex: Exchange


@pytest.fixture(scope="module")
def bad(wire, target) -> list[Bad]:
    """One request per kind of client mistake, each answered once and judged by several checks."""
    m = target.model
    surfaces = target.profile.surfaces
    # Well-formed JSON with a value the contract forbids: 400 for OpenAI, the profile's status where a vendor
    # documents another (Hoonify: 422 "parameters are semantically invalid").
    semantic = target.profile.semantic_status
    cases: list[Bad] = []

    def post(what: str, expected: int, path: str, body: dict) -> None:
        cases.append(Bad(what, expected, wire.post(path, body)))

    if "chat" in surfaces:
        post("temperature 3 (above the maximum 2)", semantic, "chat/completions",
             {"model": m, "messages": HELLO, "temperature": 3})
        post("no messages field", 400, "chat/completions", {"model": m})
        post("messages as a string", 400, "chat/completions", {"model": m, "messages": "Say hi."})
        post("a message with role 'wizard'", semantic, "chat/completions",
             {"model": m, "messages": [{"role": "wizard", "content": "hi"}]})
        post("an unknown model", 404, "chat/completions", {"model": "wirecheck-no-such-model-7f3a", "messages": HELLO})
        post("stream: true with temperature 3", semantic, "chat/completions",
             {"model": m, "messages": HELLO, "temperature": 3, "stream": True})
    if "completions" in surfaces:
        post("a completion with max_tokens 'many'", 400, "completions",
             {"model": m, "prompt": "Hi", "max_tokens": "many"})
    if "embeddings" in surfaces:
        post("embeddings without input", 400, "embeddings", {"model": target.embedding_model})
    cases.append(Bad("malformed JSON", 400, wire.request("POST", "chat/completions", content=b'{"model": "x", "mess',
                                                         headers={"Content-Type": "application/json"})))
    cases.append(Bad("an unknown route", 404, wire.get("wirecheck-no-such-route")))
    return cases


def _transport(case: Bad) -> None:
    if case.ex.error or case.ex.timed_out:
        fail(f"{case.what}: {case.ex.describe()}", case.ex.evidence())


def _find(bad: list[Bad], prefix: str) -> Bad:
    for case in bad:
        if case.what.startswith(prefix):
            return case
    pytest.skip(f"not-claimed: the profile's surfaces do not include this request ({prefix})")


@check("errors.status-code", surface="errors",
       rationale="Bad input must get a 4xx status, never 200 (clients parse the error as a result) or 5xx (the "
                 "SDKs retry it, tripling load) (breakages 10, 11).",
       faults=("error-as-200",))
def test_errors_status_code(bad) -> None:
    for case in bad:
        _transport(case)
        if not 400 <= case.ex.status < 500:
            fail(f"{case.what} got HTTP {case.ex.status}, not 4xx", case.ex.evidence())


@check("errors.envelope", surface="errors",
       rationale="Error bodies must be JSON {\"error\": {message, type, param, code}}: the SDKs read "
                 "error.message/type/code from it; FastAPI's {\"detail\": ...}, flat objects and HTML pages lose "
                 "the message (breakage 10).",
       faults=("fastapi-422", "flat-error", "error-html"))
def test_errors_envelope(bad, target) -> None:
    for case in bad:
        _transport(case)
        if case.ex.status < 400:
            continue  # errors.status-code reports that
        problems = envelope_problems(case.ex.status, case.ex.content_type, case.ex.body, strict=target.strict)
        if problems:
            fail(f"{case.what}: " + "; ".join(problems), case.ex.evidence(*problems))


@check("errors.param-named", surface="errors", strict=True,
       rationale="A 400 for an out-of-range parameter should name it in error.param ('temperature'); form UIs "
                 "highlight the field from it (many vendors send null, hence strict).")
def test_errors_param_named(bad) -> None:
    case = _find(bad, "temperature 3")
    _transport(case)
    if case.ex.status != case.expected:
        fail(f"{case.what} got HTTP {case.ex.status}, not {case.expected}", case.ex.evidence())
    param = error_field(case.ex.body, "param")
    if param != "temperature":
        fail(f"{case.what}: error.param is {param!r}, not 'temperature'", case.ex.evidence())


@check("errors.bad-request-400", surface="errors",
       rationale="Invalid parameters are 400 (BadRequestError in the SDKs), not 422 or another 4xx: clients branch "
                 "on the exception class to decide whether to fix the request. A vendor that documents 422 for "
                 "semantically invalid values (Hoonify) is held to its own document for those.",
       faults=("fastapi-422", "hoonify-422-as-400"))
def test_errors_bad_request_400(bad) -> None:
    for case in bad:
        if case.expected not in (400, 422) or case.what == "malformed JSON":
            continue
        _transport(case)
        if case.ex.status != case.expected:
            fail(f"{case.what} got HTTP {case.ex.status}, not {case.expected}", case.ex.evidence())


@check("errors.stream-validation", surface="errors", claims=("stream",),
       rationale="A `stream: true` request that fails validation must get a real 4xx + JSON error before any "
                 "SSE, not 200 with the error as a data event (which clients treat as a successful, empty "
                 "stream) (breakage 11).")
def test_errors_stream_validation(bad, target) -> None:
    case = _find(bad, "stream: true")
    _transport(case)
    if case.ex.status == 200 or "event-stream" in case.ex.content_type:
        fail(f"{case.what} got HTTP {case.ex.status} {case.ex.content_type!r}, not a 4xx JSON error",
             case.ex.evidence())
    problems = envelope_problems(case.ex.status, case.ex.content_type, case.ex.body, strict=target.strict)
    if problems:
        fail("; ".join(problems), case.ex.evidence(*problems))


@check("errors.malformed-json", surface="errors",
       rationale="A body that is not valid JSON is the client's fault: 400 in the envelope, never 500 (retried) "
                 "or 422.")
def test_errors_malformed_json(bad, target) -> None:
    case = _find(bad, "malformed JSON")
    _transport(case)
    if case.ex.status != 400:
        fail(f"{case.what} got HTTP {case.ex.status}, not 400", case.ex.evidence())


@check("errors.unknown-model", surface="errors",
       rationale="An unknown model must be 404 (NotFoundError in the SDKs) with code model_not_found; gateways "
                 "that answer 400 or 500 hide a typo in the model name (breakage 10).")
def test_errors_unknown_model(bad, target) -> None:
    case = _find(bad, "an unknown model")
    _transport(case)
    if case.ex.status != 404:
        fail(f"{case.what} got HTTP {case.ex.status}, not 404", case.ex.evidence())
    code = error_field(case.ex.body, "code")
    if target.strict and code != "model_not_found":
        fail(f"{case.what}: error.code is {code!r}, not 'model_not_found'", case.ex.evidence())


@check("errors.unknown-route", surface="errors",
       rationale="Unknown routes must be a JSON 404, so a client's doubled /v1/v1/ or wrong base URL is "
                 "diagnosable instead of an HTML page or a hang (breakage 27).")
def test_errors_unknown_route(bad, target) -> None:
    case = _find(bad, "an unknown route")
    _transport(case)
    if case.ex.status != 404:
        fail(f"{case.what} got HTTP {case.ex.status}, not 404", case.ex.evidence())
    problems = envelope_problems(case.ex.status, case.ex.content_type, case.ex.body, strict=target.strict)
    if problems:
        fail("; ".join(problems), case.ex.evidence(*problems))


@check("errors.context-length", surface="errors", claims=("context-window",),
       rationale="Asking for more tokens than the context window holds must be a 400 (OpenAI's "
                 "context_length_exceeded), not a 200 that silently clamps or a 500 the SDKs retry.")
def test_errors_context_length(wire, target) -> None:
    if "chat" not in target.profile.surfaces:
        pytest.skip("not-claimed: the profile does not claim chat")
    ex = wire.post("chat/completions", {"model": target.model, "messages": HELLO, "max_tokens": 10_000_000})
    if ex.error or ex.timed_out:
        fail(f"max_tokens 10,000,000: {ex.describe()}", ex.evidence())
    if ex.status != 400:
        fail(f"max_tokens 10,000,000 got HTTP {ex.status}, not 400", ex.evidence())
    problems = envelope_problems(ex.status, ex.content_type, ex.body, strict=target.strict)
    if problems:
        fail("; ".join(problems), ex.evidence(*problems))


@check("http.deadline", surface="http",
       rationale="Every exchange must complete within the deadline (--deadline): a target that accepts the "
                 "connection and never answers hangs clients without a timeout forever (issue 3, item 6).",
       faults=("hang",))
def test_http_deadline(wire, target) -> None:
    sent, ex = wire.probe()
    if ex.timed_out:
        fail(f"{sent}: {ex.describe()} (deadline {target.deadline:.0f}s)", ex.evidence())
    if ex.error:
        fail(f"{sent}: {ex.describe()}", ex.evidence())
    if ex.elapsed > target.deadline + 5:
        fail(f"{sent} took {ex.elapsed:.1f}s, past the {target.deadline:.0f}s deadline", ex.evidence())
