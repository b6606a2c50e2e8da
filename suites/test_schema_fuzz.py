"""schemathesis over spec/openapi.yaml: generated valid and invalid requests, every answer judged by the spec.

One campaign per run (`--fuzz-examples N` positive and N negative cases per operation the profile claims,
plus the document's own examples); each check below looks at every exchange of it and fails once, with
the first violations as evidence. See suites/fuzz.py for how cases are generated and adjusted.
"""

from __future__ import annotations

import pytest

from .fuzz import Campaign, Fuzzer, Sent
from .registry import check, fail


@pytest.fixture(scope="module")
def fuzzed(wire, target, request) -> tuple[Fuzzer, Campaign]:
    examples = request.config.getoption("fuzz_examples")
    if examples <= 0:
        pytest.skip("not-run: --fuzz-examples 0")
    fuzzer = Fuzzer(wire, target, examples)
    return fuzzer, fuzzer.run()


def _verdict(fuzzed: tuple[Fuzzer, Campaign], check_id: str, *, strict: bool, invalid_only: bool = False) -> None:
    fuzzer, campaign = fuzzed
    relevant = [s for s in campaign.sent if not (invalid_only and s.valid)]
    if not campaign.sent:
        pytest.skip("not-claimed: the profile claims none of the fuzzed surfaces")
    answered = [s for s in relevant if not (s.exchange.error or s.exchange.timed_out)]
    if check_id != "schema.no-5xx" and not answered:
        pytest.skip("inconclusive: no request got an answer (see schema.no-5xx)")
    violations: list[tuple[Sent, list[str]]] = []
    for sent in relevant:
        problems = fuzzer.judge(sent, strict).get(check_id)
        if problems:
            violations.append((sent, problems))
    if violations:
        first, problems = violations[0]
        notes = [f"{len(violations)} of {len(relevant)} exchanges violate {check_id}"]
        notes += [f"{s.label()} -> {'; '.join(p[:3])}" for s, p in violations[:5]]
        evidence = first.exchange.evidence(*notes)
        fail(f"{len(violations)}/{len(relevant)} fuzzed requests: {'; '.join(problems[:3])} "
             f"[{first.label()[:200]}]", evidence)


@check("schema.no-5xx", surface="http",
       rationale="No request, valid or not, may crash the server: a 5xx (or no answer within the deadline) "
                 "for generated input is a server bug clients hit as retries, then outages.")
def test_no_server_errors(fuzzed) -> None:
    _verdict(fuzzed, "schema.no-5xx", strict=False)


@check("schema.status-documented", surface="http",
       rationale="Clients branch on status codes; the OpenAPI document lists the ones an operation may return "
                 "(200, 4XX, 5XX): e.g. a 201, a 204 or a 307 redirect breaks the SDKs.")
def test_status_documented(fuzzed) -> None:
    _verdict(fuzzed, "schema.status-documented", strict=False)


@check("schema.response-conformance", surface="http",
       faults=("chat-response-schema", "models-missing-owned-by", "fastapi-422", "flat-error"),
       rationale="Every body must match the schema the document gives for its status (errors the OpenAI "
                 "envelope, each stream chunk its chunk schema): the SDKs' typed models reject anything else.")
def test_response_conformance(fuzzed, target) -> None:
    _verdict(fuzzed, "schema.response-conformance", strict=target.strict)


@check("schema.content-type", surface="http", faults=("error-html",),
       rationale="Clients pick a parser by Content-Type: application/json for bodies and errors, "
                 "text/event-stream for `stream: true` (an HTML error page or a JSON-typed stream breaks them).")
def test_content_type(fuzzed) -> None:
    _verdict(fuzzed, "schema.content-type", strict=False)


@check("schema.negative-rejected", surface="http", faults=("error-as-200",), strict=True,
       rationale="A request the spec forbids must get a 4xx naming the problem: a 200 means the target "
                 "silently ignored or reinterpreted input the client relies on (or sent its error as a 200).")
def test_negative_rejected(fuzzed) -> None:
    fuzzer, campaign = fuzzed
    if not any(not s.valid for s in campaign.sent):
        pytest.skip("inconclusive: no invalid request was generated (raise --fuzz-examples)")
    _verdict(fuzzed, "schema.negative-rejected", strict=False, invalid_only=True)

