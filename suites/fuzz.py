"""schemathesis over spec/openapi.yaml: generate requests per operation, send them with hard deadlines, judge.

schemathesis (through hypothesis) generates the cases: positive ones (valid under the spec) and negative
ones (violating it). We send them ourselves with `suites.wire.Wire`, because a hostile target must never
hang a run, and judge every answer against the document (`judge`). Generated cases are adjusted so the
run stays cheap and meaningful:

* `model` is the target's model (a generated id would only ever be a 404), unless the case's mutation is
  in `model` itself (a non-string stays as generated);
* token budgets are capped (`TOKEN_CAP`), `n` is at most 2 (1 when the profile does not claim `n`);
* our own credentials replace generated `Authorization` headers, and generated headers are dropped.

Whether a sent body is valid is decided afterwards by our own validator (`spec.first_error`), not by the
generation mode: schemathesis' negative mode may mutate only a header, and the adjustments above can
turn an out-of-range value into a valid one.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wirecheck import spec

from .target import Target
from .wire import Exchange, Wire

TOKEN_CAP = 16
API_PREFIX = "/v1"
MAX_TIMEOUTS = 2  # a target that stalls twice is not fuzzed further: the evidence is in
SURFACE_OF_TAG = {"chat": "chat", "completions": "completions", "embeddings": "embeddings", "models": "models",
                  "responses": "responses", "messages": "messages"}


@dataclass
class Sent:
    """One executed request and what came back."""

    operation: str  # operationId
    mode: str  # positive | negative | example
    valid: bool  # the body as sent is valid under the spec
    streamed: bool  # a `stream: true` request
    exchange: Exchange

    def label(self) -> str:
        request = self.exchange.request
        body = request.get("json", request.get("content"))
        shown = json.dumps(body)[:300] if body is not None else ""
        return f"{request['method']} {request['url'].split('/v1', 1)[-1]} ({self.mode}) {shown}"


@dataclass
class Campaign:
    sent: list[Sent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)


def _component(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def operations(doc: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """operationId -> (method, path, definition)."""
    out = {}
    for path, item in doc["paths"].items():
        for method, definition in item.items():
            if isinstance(definition, dict) and "operationId" in definition:
                out[definition["operationId"]] = (method.upper(), path, definition)
    return out


def request_component(definition: dict[str, Any]) -> str | None:
    body = definition.get("requestBody")
    if not body:
        return None
    return _component(body["content"]["application/json"]["schema"]["$ref"])


def documented(doc: dict[str, Any], definition: dict[str, Any], status: int) -> dict[str, str | None] | None:
    """The media types (-> component name) documented for `status`, or None when the status is undocumented."""
    responses = definition["responses"]
    entry = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
    if entry is None:
        return None
    if "$ref" in entry:
        entry = doc["components"]["responses"][_component(entry["$ref"])]
    return {media: (_component(m["schema"]["$ref"]) if "$ref" in m.get("schema", {}) else None)
            for media, m in entry.get("content", {}).items()}


def tame(operation: str, body: Any, target: Target, positive: bool) -> Any:
    """The case as we send it: the target's model, small token budgets (see the module docstring)."""
    if not isinstance(body, dict):
        return body
    body = dict(body)
    model = {"createEmbedding": target.embedding_model, "createResponse": target.responses_model}.get(operation,
                                                                                                  target.model)
    if positive or isinstance(body.get("model"), str):
        body["model"] = model
    if operation == "createResponse":
        value = body.get("max_output_tokens")
        if value is None or (_is_int(value) and value > TOKEN_CAP):
            body["max_output_tokens"] = TOKEN_CAP  # absent or null means "as much as the context allows"
        return body
    if operation == "anthropicCreateMessage":
        if _is_int(body.get("max_tokens")) and body["max_tokens"] > TOKEN_CAP:
            body["max_tokens"] = TOKEN_CAP  # required: an absent one stays absent (that is a 400 to judge)
        return body
    if operation not in ("createChatCompletion", "createCompletion"):
        return body
    keys = ("max_tokens", "max_completion_tokens") if operation == "createChatCompletion" else ("max_tokens",)
    for key in keys:
        if _is_int(body.get(key)) and body[key] > TOKEN_CAP:
            body[key] = TOKEN_CAP
    if all(body.get(k) is None for k in keys):
        body[keys[0]] = TOKEN_CAP  # absent or null means "as much as the context allows"
    n_cap = 2 if "n" in target.profile.claims else 1
    for key in ("n", "best_of"):
        if _is_int(body.get(key)) and body[key] > n_cap:
            body[key] = n_cap
    if _is_int(body.get("min_tokens")) and body["min_tokens"] > TOKEN_CAP:
        body["min_tokens"] = TOKEN_CAP
    return body


def _is_int(value: Any) -> bool:
    """An integer as JSON Schema counts them (16 and 16.0)."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _key(method: str, path: str, body: Any) -> str:
    try:
        return f"{method} {path} {json.dumps(body, sort_keys=True)}"
    except (TypeError, ValueError):
        return f"{method} {path} {body!r}"


@contextlib.contextmanager
def only_hypothesis_constants() -> Iterator[None]:
    """Generate without the string and number literals hypothesis harvests from every "local" module loaded (any
    module outside site-packages: the user's own code, an editable wirecheck). Those make the derandomized
    cases depend on unrelated source: a campaign found a server's 500 or missed it depending on a literal added
    elsewhere. The seam is private to hypothesis (6.1xx); where it is absent there is nothing to turn off."""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        yield
        return
    original = getattr(providers, "_get_local_constants", None)
    if original is None:
        yield
        return
    empty = Constants()
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE.cache.clear()  # choices computed with the harvested literals
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()


class Fuzzer:
    def __init__(self, wire: Wire, target: Target, examples: int) -> None:
        self.wire = wire
        self.target = target
        self.examples = examples
        self.doc = spec.document()
        self.ops = operations(self.doc)
        self.campaign = Campaign()
        self._seen: set[str] = set()
        self._timeouts: dict[str, int] = {}

    # ------------------------------------------------------------------ running

    def claimed(self) -> list[str]:
        surfaces = self.target.profile.surfaces
        return [op for op, (_, _, d) in self.ops.items()
                if SURFACE_OF_TAG.get((d.get("tags") or [""])[0]) in surfaces]

    def run(self) -> Campaign:
        import schemathesis
        from schemathesis import GenerationMode

        # from_dict stringifies keys in place: never hand it the shared, cached document.
        schema = schemathesis.openapi.from_dict(copy.deepcopy(self.doc), config=schemathesis.Config())
        by_route = {(op.method.upper(), op.path): op for op in (r.ok() for r in schema.get_all_operations())}
        chosen = self.claimed()
        self.campaign.operations = chosen
        for operation in chosen:
            self._examples(operation)
            method, path, _ = self.ops[operation]
            api_op = by_route[(method, path)]
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                if not self._stalled(operation):
                    self._drive(operation, api_op, mode)
        return self.campaign

    def _drive(self, operation: str, api_op: Any, mode: Any) -> None:
        """Send up to `examples` cases schemathesis generates for one operation in one mode."""
        from hypothesis import HealthCheck, Phase, given, settings
        from hypothesis.errors import Unsatisfiable

        @settings(max_examples=self.examples, deadline=None, derandomize=True, database=None,
                  phases=[Phase.generate], suppress_health_check=list(HealthCheck))
        @given(api_op.as_strategy(generation_mode=mode))
        def drive(case: Any) -> None:
            self._send_case(operation, case, mode.value)

        if self.examples <= 0:
            return
        try:
            with only_hypothesis_constants():
                drive()
        except Unsatisfiable as exc:
            self.campaign.notes.append(f"{operation} {mode.value}: no cases generated ({exc})")

    def _stalled(self, operation: str) -> bool:
        return (self._timeouts.get(operation, 0) >= 1
                or sum(self._timeouts.values()) >= MAX_TIMEOUTS)

    def _examples(self, operation: str) -> None:
        """The document's own request examples (and the target's model for path parameters) go first."""
        method, path, definition = self.ops[operation]
        if "{model}" in path:
            from urllib.parse import quote

            self._send(operation, method, path.replace("{model}", quote(self.target.model, safe="")), None,
                       "example")
            return
        body = definition.get("requestBody")
        if not body:
            self._send(operation, method, path, None, "example")
            return
        for example in body["content"]["application/json"].get("examples", {}).values():
            self._send(operation, method, path, tame(operation, example["value"], self.target, True), "example")

    def _send_case(self, operation: str, case: Any, mode: str) -> None:
        from schemathesis.core import NOT_SET

        method = case.method.upper()
        body = None if case.body is NOT_SET else tame(operation, case.body, self.target, mode == "positive")
        has_body = case.body is not NOT_SET
        self._send(operation, method, case.formatted_path, body, mode, has_body=has_body,
                   media_type=case.media_type or "application/json")

    def _send(self, operation: str, method: str, path: str, body: Any, mode: str, *, has_body: bool | None = None,
              media_type: str = "application/json") -> None:
        if self._stalled(operation):
            return
        if has_body is None:
            has_body = body is not None
        key = _key(method, path, body if has_body else "<no body>")
        if key in self._seen:
            return
        self._seen.add(key)
        relative = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path
        component = request_component(self.ops[operation][2])
        if component is None:
            valid = True
        else:
            valid = has_body and isinstance(body, dict) and spec.first_error(component, body) is None
        if not has_body:
            exchange = self.wire.request(method, relative)
        elif isinstance(body, dict):
            exchange = self.wire.request(method, relative, json_body=body)
        else:  # negative mode also sends non-objects and raw bytes that are not JSON at all
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            exchange = self.wire.request(method, relative, content=raw, headers={"Content-Type": media_type})
        streamed = isinstance(body, dict) and body.get("stream") is True
        self.campaign.sent.append(Sent(operation, mode, bool(valid), streamed, exchange))
        if exchange.timed_out:
            self._timeouts[operation] = self._timeouts.get(operation, 0) + 1

    # ------------------------------------------------------------------ judging

    def judge(self, sent: Sent, strict: bool) -> dict[str, list[str]]:
        """Problems per check id for one exchange (empty lists omitted)."""
        ex = sent.exchange
        out: dict[str, list[str]] = {}
        if ex.error or ex.timed_out:
            out["schema.no-5xx"] = [ex.describe()]
            return out
        if ex.status >= 500:
            out["schema.no-5xx"] = [f"HTTP {ex.status}: {ex.body[:200].decode('utf-8', 'replace')}"]
        if not sent.valid and 200 <= ex.status < 300:
            out["schema.negative-rejected"] = [f"an invalid request was answered HTTP {ex.status}"]
        _, _, definition = self.ops[sent.operation]
        media = documented(self.doc, definition, ex.status)
        if media is None:
            out["schema.status-documented"] = [f"HTTP {ex.status} is not a documented status of {sent.operation}"]
            return out
        got = ex.content_type.split(";")[0].strip().lower()
        if ex.status == 200 and "text/event-stream" in media:
            wanted = "text/event-stream" if sent.streamed else "application/json"
        else:
            wanted = next(iter(media), None)
        if wanted is not None and got != wanted:
            out["schema.content-type"] = [f"HTTP {ex.status} has Content-Type {ex.content_type!r}; the spec "
                                          f"documents {wanted!r} here"]
        component = media.get(wanted) if wanted else None
        problems = self._body_problems(ex, got, component, strict)
        if problems:
            out["schema.response-conformance"] = problems
        return out

    @staticmethod
    def _body_problems(ex: Exchange, media: str, component: str | None, strict: bool) -> list[str]:
        from .conform import schema_problems, stream_schema_problems

        if component is None:
            return []
        if media == "text/event-stream":
            return stream_schema_problems(ex.body, component, strict=strict)
        try:
            value = json.loads(ex.body)
        except ValueError:
            return [f"HTTP {ex.status} body is not JSON: {ex.body[:120]!r}"]
        return schema_problems(component, value, strict=strict)[:10]
