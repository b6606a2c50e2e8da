"""Fault transforms: pure functions that turn a correct exchange into one a real server got wrong.

Each transform is registered under a kind (``stage.name``) and belongs to one stage of an exchange:

* ``request``: ``fn(req, ctx) -> Req | Reply`` rewrites the request before it goes upstream, or answers it
  in place of the upstream (e.g. a 400 for a field the server does not know);
* ``response``: ``fn(reply, ctx) -> Reply`` rewrites a whole non-streamed response (status, headers, body);
* ``json``: ``fn(obj, ctx) -> list[obj]`` rewrites one JSON object: a non-streamed 2xx body (must give exactly
  one) or each JSON data event of a stream (may give none, one or several);
* ``stream``: ``fn(ctx) -> StreamTransform`` rewrites an event stream event by event (:mod:`spec.sse` items in,
  byte pieces out, each piece written on its own);
* ``transport``: behaviour in time (never answer, never end, drip bytes, buffer everything); the proxy does the
  waiting, the pure parts live here.

Nothing here does I/O or reads clocks, so every transform is unit-tested on bytes (tests/test_fault_transforms.py).
"""

from __future__ import annotations

import base64
import copy
import json
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from spec import sse

STAGES = ("request", "response", "json", "stream", "transport")

# ----------------------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Req:
    """A request as the proxy sees it: method, API path relative to /v1, lower-case headers, parsed JSON body."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


@dataclass(frozen=True)
class Reply:
    """A whole HTTP response: status, lower-case headers (no content-length), body bytes."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    @classmethod
    def of_json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, {**(headers or {}), "content-type": "application/json"},
                   json.dumps(obj, separators=(",", ":")).encode())


@dataclass
class Context:
    """What a transform may consult: its parameters, the (original) request, per-exchange state, proxy config."""

    params: dict[str, Any] = field(default_factory=dict)
    request: Req | None = None
    state: dict[str, Any] = field(default_factory=dict)
    upstream_key: str | None = None

    @property
    def body(self) -> dict[str, Any]:
        body = self.request.body if self.request else None
        return body if isinstance(body, dict) else {}


class StreamTransform:
    """Event-stream rewriting: ``event(item)`` for each item read upstream, ``end()`` when upstream ends.

    Both return byte pieces; the proxy writes (and flushes) each piece separately. The default passes every
    item through unchanged, byte for byte.
    """

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        return headers

    def event(self, item: sse.SSEItem) -> list[bytes]:
        return [item.raw]

    def end(self) -> list[bytes]:
        return []


@dataclass(frozen=True)
class Transform:
    kind: str
    stage: str
    fn: Callable[..., Any]
    doc: str


TRANSFORMS: dict[str, Transform] = {}


def transform(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    stage = kind.split(".", 1)[0]
    if stage not in STAGES:
        raise ValueError(f"transform {kind}: unknown stage {stage!r}")

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if kind in TRANSFORMS:
            raise ValueError(f"transform {kind} registered twice")
        TRANSFORMS[kind] = Transform(kind, stage, fn, (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return register


# ----------------------------------------------------------------------------------------- helpers


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _choices(obj: Any) -> list[dict[str, Any]]:
    choices = obj.get("choices") if isinstance(obj, dict) else None
    return [c for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []


def is_usage_trailer(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("choices") == [] and isinstance(obj.get("usage"), dict)


def error_fields(reply: Reply) -> dict[str, Any]:
    """message/type/param/code of an error response, whatever shape it came in."""
    try:
        body = reply.json()
    except ValueError:
        return {"message": reply.body.decode("utf-8", "replace")[:500], "type": None, "param": None, "code": None}
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return {k: err.get(k) for k in ("message", "type", "param", "code")}
    if isinstance(body, dict):
        return {k: body.get(k) for k in ("message", "type", "param", "code")}
    return {"message": str(body), "type": None, "param": None, "code": None}


def stop_strings(body: dict[str, Any]) -> list[str]:
    stop = body.get("stop")
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


# ----------------------------------------------------------------------------------------- request stage


@transform("request.drop-fields")
def drop_fields(req: Req, ctx: Context) -> Req:
    """Remove top-level request fields before forwarding (the server silently ignores them)."""
    if not isinstance(req.body, dict):
        return req
    body = {k: v for k, v in req.body.items() if k not in set(ctx.params.get("fields", ()))}
    return replace(req, body=body)


@transform("request.set-fields")
def set_fields(req: Req, ctx: Context) -> Req:
    """Set (`fields`) and remove (`drop`) top-level request fields before forwarding, optionally only when the
    request has the values in `when` (e.g. `temperature: 0` read as "unset")."""
    if not isinstance(req.body, dict):
        return req
    when = ctx.params.get("when") or {}
    if any(k not in req.body or req.body[k] != v for k, v in when.items()):
        return req
    drop = set(ctx.params.get("drop", ()))
    body = {k: v for k, v in req.body.items() if k not in drop}
    return replace(req, body={**body, **copy.deepcopy(ctx.params.get("fields", {}))})


def bad_request(message: str, param: str | None = None, code: str | None = None) -> Reply:
    return Reply.of_json(400, {"error": {"message": message, "type": "invalid_request_error", "param": param,
                                         "code": code}})


@transform("request.reject-fields")
def reject_fields(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 "Unsupported parameter" when the request carries any of `fields`."""
    if not isinstance(req.body, dict):
        return req
    for name in ctx.params.get("fields", ()):
        if name in req.body:
            return bad_request(f"Unsupported parameter: '{name}' is not supported by this server.", name,
                               "unsupported_parameter")
    return req


def _known_fields(schema_name: str) -> set[str]:
    from spec.loader import document

    schema = document()["components"]["schemas"][schema_name]
    return set(schema.get("properties", {}))


def _message_fields() -> set[str]:
    from spec.loader import document

    schemas = document()["components"]["schemas"]
    known: set[str] = set()
    for name, schema in schemas.items():
        if name.startswith("ChatCompletionRequest") and name.endswith("Message"):
            known |= set(schema.get("properties", {}))
    return known


@transform("request.reject-unknown-fields")
def reject_unknown_fields(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 `extra_forbidden` for any field the server's schema does not list (pydantic extra="forbid")."""
    if not isinstance(req.body, dict):
        return req
    known = set(ctx.params.get("known") or _known_fields(ctx.params.get("schema", "CreateChatCompletionRequest")))
    extra = [k for k in req.body if k not in known]
    messages = req.body.get("messages")
    if not extra and isinstance(messages, list):
        message_known = set(ctx.params.get("message_known") or _message_fields())
        for i, msg in enumerate(messages):
            if isinstance(msg, dict):
                extra += [f"messages.{i}.{k}" for k in msg if k not in message_known]
    if not extra:
        return req
    # vLLM before it switched to warn-and-ignore: pydantic's error text in an OpenAI-ish envelope.
    message = f"[{{'type': 'extra_forbidden', 'loc': ('body', '{extra[0]}'), 'msg': 'Extra inputs are not permitted'}}]"
    return Reply.of_json(400, {"object": "error", "message": message, "type": "BadRequestError", "param": None,
                               "code": 400})


def _messages(req: Req) -> list[dict[str, Any]]:
    messages = req.body.get("messages") if isinstance(req.body, dict) else None
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


@transform("request.reject-assistant-content")
def reject_assistant_content(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 when an assistant message's content is null (`when: null`: Ollama, LM Studio, mistral-common),
    "" (`when: empty`: DeepSeek-style providers) or absent (`when: absent`: pydantic models requiring it)."""
    when = ctx.params.get("when") or "null"
    for msg in _messages(req):
        if msg.get("role") != "assistant":
            continue
        if when == "null" and "content" in msg and msg["content"] is None:
            return bad_request("invalid message content type: <nil>")
        if when == "empty" and msg.get("content") == "":
            return bad_request("Invalid assistant message: content must be a non-empty string "
                               "(token length must be in (0, ...])", "messages")
        if when == "absent" and "content" not in msg:
            return Reply.of_json(400, {"error": {"message": "messages: Field required: content", "type":
                                                 "invalid_request_error", "param": "messages", "code": None}})
    return req


@transform("request.reject-content-parts")
def reject_content_parts(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 when a message's content is an array of parts rather than a string (text-only servers)."""
    for msg in _messages(req):
        if isinstance(msg.get("content"), list):
            return bad_request("'content' must be a string", "messages")
    return req


@transform("request.reject-role")
def reject_role(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 for messages with a role the server does not know (`developer` by default)."""
    role = ctx.params.get("role", "developer")
    for msg in _messages(req):
        if msg.get("role") == role:
            return bad_request(f"Invalid role: '{role}'. Expected one of system, user, assistant, tool.",
                               "messages")
    return req


@transform("request.reject-input-forms")
def reject_input_forms(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 when `field` (prompt, input) is given in a form the server does not take: `strings` (a list of
    strings) and/or `tokens` (token ids, one list or a list of lists)."""
    if not isinstance(req.body, dict):
        return req
    name = ctx.params.get("field", "input")
    value = req.body.get(name)
    forms = set(ctx.params.get("reject", ["tokens"]))
    if not isinstance(value, list) or not value:
        return req
    is_tokens = all(isinstance(v, int) for v in value) or all(
        isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value)
    is_strings = all(isinstance(v, str) for v in value)
    if (is_tokens and "tokens" in forms) or (is_strings and "strings" in forms):
        return bad_request(f"'{name}' must be a string", name)
    return req


@transform("request.reply")
def reply_instead(req: Req, ctx: Context) -> Reply:
    """Answer with a fixed status and an OpenAI error envelope instead of forwarding (e.g. a route not served)."""
    status = int(ctx.params.get("status", 404))
    message = str(ctx.params.get("message", "Not found: {path}")).format(path=req.path, method=req.method)
    return Reply.of_json(status, {"error": {"message": message, "type": ctx.params.get("type", "invalid_request_error"),
                                            "param": None, "code": ctx.params.get("code")}})


@transform("request.ignore-auth")
def ignore_auth(req: Req, ctx: Context) -> Req:
    """Forward every request with the proxy's own upstream key, whatever key (if any) the client sent."""
    headers = {k: v for k, v in req.headers.items() if k not in ("authorization", "x-api-key")}
    if ctx.upstream_key:
        headers["authorization"] = f"Bearer {ctx.upstream_key}"
    return replace(req, headers=headers)


# ----------------------------------------------------------------------------------------- response stage


def _is_error(reply: Reply) -> bool:
    return reply.status >= 400


@transform("response.error-status")
def error_status(reply: Reply, ctx: Context) -> Reply:
    """Send errors with another HTTP status (200 by default), body unchanged (vLLM's context-length 200)."""
    if not _is_error(reply):
        return reply
    status = int(ctx.params.get("status", 200))
    if "text" in ctx.params:  # a crash page instead of the envelope
        headers = {k: v for k, v in reply.headers.items() if k != "content-type"}
        return Reply(status, {**headers, "content-type": "text/plain; charset=utf-8"}, str(ctx.params["text"]).encode())
    return replace(reply, status=status)


@transform("response.content-type")
def response_content_type(reply: Reply, ctx: Context) -> Reply:
    """Successful non-streamed responses sent with another Content-Type (text/plain by default)."""
    if _is_error(reply):
        return reply
    return replace(reply, headers={**reply.headers, "content-type": ctx.params.get("content_type", "text/plain")})


@transform("response.success-status")
def success_status(reply: Reply, ctx: Context) -> Reply:
    """Successful responses sent with another 2xx status (201 Created: NestJS's default for POST handlers)."""
    if not 200 <= reply.status < 300:
        return reply
    return replace(reply, status=int(ctx.params.get("status", 201)))


@transform("response.fabricate-model")
def fabricate_model(reply: Reply, ctx: Context) -> Reply:
    """A 404 for an unknown model id answered 200 with a made-up model object (gateways that echo any id)."""
    if reply.status != 404 or ctx.request is None or not ctx.request.path.startswith("models/"):
        return reply
    model_id = ctx.request.path[len("models/"):]
    return Reply.of_json(200, {"id": model_id, "object": "model", "created": 0,
                               "owned_by": ctx.params.get("owned_by", "gateway")})


@transform("response.fastapi-422")
def fastapi_422(reply: Reply, ctx: Context) -> Reply:
    """FastAPI's defaults: 422 `{"detail": [...]}` for bad input, `{"detail": "..."}` for other errors."""
    if not _is_error(reply):
        return reply
    err = error_fields(reply)
    if reply.status in (400, 422):
        loc = ["body", *(str(err["param"]).split(".") if err["param"] else [])]
        return Reply.of_json(422, {"detail": [{"type": "value_error", "loc": loc, "msg": err["message"],
                                               "input": None}]})
    return Reply.of_json(reply.status, {"detail": err["message"]})


@transform("response.flat-error")
def flat_error(reply: Reply, ctx: Context) -> Reply:
    """Flatten `{"error": {...}}` to vLLM's old `{"object": "error", "message", "type", "param", "code": 400}`."""
    if not _is_error(reply):
        return reply
    err = error_fields(reply)
    return Reply.of_json(reply.status, {"object": "error", "message": err["message"], "type": err["type"] or "error",
                                        "param": err["param"], "code": reply.status})


@transform("response.error-fields")
def error_fields_set(reply: Reply, ctx: Context) -> Reply:
    """Overwrite fields inside the `{"error": {...}}` envelope (e.g. `param: null`, a numeric `code`)."""
    if not _is_error(reply):
        return reply
    try:
        body = reply.json()
    except ValueError:
        return reply
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return reply
    error = {**body["error"], **ctx.params.get("fields", {})}
    if ctx.params.get("status_code"):
        error["code"] = reply.status
    return Reply.of_json(reply.status, {**body, "error": error}, reply.headers)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            413: "Request Entity Too Large",
            422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}


@transform("response.error-html")
def error_html(reply: Reply, ctx: Context) -> Reply:
    """Replace error bodies with the HTML page a reverse proxy (nginx) renders."""
    if not _is_error(reply):
        return reply
    title = f"{reply.status} {_REASONS.get(reply.status, 'Error')}"
    page = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
            "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
    headers = {k: v for k, v in reply.headers.items() if k != "content-type"}
    return Reply(reply.status, {**headers, "content-type": "text/html"}, page.encode())


# ----------------------------------------------------------------------------------------- json stage
# fn(obj, ctx) -> list of objects. Applied to non-streamed 2xx bodies and to each JSON data event.


def _json_fault(kind: str):
    return transform("json." + kind)


@_json_fault("set-field")
def set_field(obj: Any, ctx: Context) -> list[Any]:
    """Set (or with `delete: true` remove) a top-level field of every body/chunk (usage trailer skipped)."""
    if not isinstance(obj, dict) or (is_usage_trailer(obj) and not ctx.params.get("trailer", False)):
        return [obj]
    name = ctx.params["field"]
    out = dict(obj)
    if ctx.params.get("delete"):
        out.pop(name, None)
    else:
        out[name] = ctx.params.get("value")
    return [out]


@_json_fault("created-float")
def created_float(obj: Any, ctx: Context) -> list[Any]:
    """`created` as a float (SambaNova): typed clients that expect an integer fail to deserialise."""
    if isinstance(obj, dict) and isinstance(obj.get("created"), int):
        obj = {**obj, "created": obj["created"] + float(ctx.params.get("fraction", 0.372))}
    return [obj]


@_json_fault("created-string")
def created_string(obj: Any, ctx: Context) -> list[Any]:
    """`created` as a string and `object` missing: a response the schema (and typed SDKs) reject."""
    if not isinstance(obj, dict):
        return [obj]
    out = {k: v for k, v in obj.items() if k not in ctx.params.get("drop", ("object",))}
    if "created" in out:
        out["created"] = str(out["created"])
    return [out]


@_json_fault("per-chunk-ids")
def per_chunk_ids(obj: Any, ctx: Context) -> list[Any]:
    """A fresh id on every chunk (early llama.cpp, LiteLLM, Foundry Local)."""
    if not isinstance(obj, dict) or "id" not in obj:
        return [obj]
    n = ctx.state["ids"] = ctx.state.get("ids", 0) + 1
    return [{**obj, "id": f"{obj['id']}{n:04d}"}]


@_json_fault("finish-reason")
def finish_reason_value(obj: Any, ctx: Context) -> list[Any]:
    """Rename finish_reason values (`stop` -> `eos` by default: Together.ai, TGI's `eos_token`)."""
    mapping = ctx.params.get("map", {"stop": "eos"})
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if choice.get("finish_reason") in mapping:
            choice["finish_reason"] = mapping[choice["finish_reason"]]
    return [out]


@_json_fault("no-finish-reason")
def no_finish_reason(obj: Any, ctx: Context) -> list[Any]:
    """No chunk carries a non-null finish_reason; a chunk that carried only the finish is dropped."""
    out = copy.deepcopy(obj)
    choices = _choices(out)
    if not any(c.get("finish_reason") is not None for c in choices):
        return [obj]
    for choice in choices:
        choice["finish_reason"] = None
    if all(not c.get("delta") and not c.get("text") for c in choices):
        return []
    return [out]


@_json_fault("double-finish")
def double_finish(obj: Any, ctx: Context) -> list[Any]:
    """The chunk carrying finish_reason is sent twice."""
    if any(c.get("finish_reason") is not None for c in _choices(obj)):
        return [obj, copy.deepcopy(obj)]
    return [obj]


@_json_fault("drop-role")
def drop_role(obj: Any, ctx: Context) -> list[Any]:
    """No delta carries `role` (a gateway dropped OpenAI's opening role chunk)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            delta.pop("role", None)
    return [out]


@_json_fault("role-every-chunk")
def role_every_chunk(obj: Any, ctx: Context) -> list[Any]:
    """Every delta repeats `role: "assistant"` (llama.cpp derivatives; the SDK accumulators then misbehave)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        delta = choice.get("delta")
        if isinstance(delta, dict):
            choice["delta"] = {"role": ctx.params.get("role", "assistant"), **delta}
    return [out]


@_json_fault("set-choice-field")
def set_choice_field(obj: Any, ctx: Context) -> list[Any]:
    """Set a field of every choice (e.g. `logprobs: null`: logprobs asked for, never returned)."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        choice[ctx.params["field"]] = copy.deepcopy(ctx.params.get("value"))
    return [out]


@_json_fault("usage-total")
def usage_total(obj: Any, ctx: Context) -> list[Any]:
    """`usage.total_tokens` counts only the completion (total != prompt + completion)."""
    usage = obj.get("usage") if isinstance(obj, dict) else None
    if not isinstance(usage, dict) or not isinstance(usage.get("completion_tokens"), int):
        return [obj]
    total = usage["completion_tokens"] + int(ctx.params.get("offset", 0))
    return [{**obj, "usage": {**usage, "total_tokens": total}}]


def _append_to_finishing(obj: Any, text: str, only: str | None = None) -> list[Any]:
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        reason = choice.get("finish_reason")
        if reason is None or (only is not None and reason != only):
            continue
        if isinstance(choice.get("message"), dict):
            msg = choice["message"]
            msg["content"] = (msg.get("content") or "") + text
        elif isinstance(choice.get("delta"), dict):
            delta = choice["delta"]
            delta["content"] = (delta.get("content") or "") + text
        elif "text" in choice:
            choice["text"] = (choice.get("text") or "") + text
    return [out]


@_json_fault("append-content")
def append_content(obj: Any, ctx: Context) -> list[Any]:
    """Append fixed text (a chat template token such as `<|im_end|>`) to every choice's content as it finishes."""
    return _append_to_finishing(obj, str(ctx.params.get("text", "<|im_end|>")))


@_json_fault("drop-empty-delta")
def drop_empty_delta(obj: Any, ctx: Context) -> list[Any]:
    """Choices whose delta is empty (the finish chunk) carry no `delta` key at all."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if choice.get("delta") == {}:
            del choice["delta"]
    return [out]


@_json_fault("choice-index")
def choice_index_offset(obj: Any, ctx: Context) -> list[Any]:
    """`choices[].index` shifted by `offset` (1 by default): numbering no longer starts at 0."""
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if isinstance(choice.get("index"), int):
            choice["index"] += int(ctx.params.get("offset", 1))
    return [out]


@_json_fault("drop-null-choice-field")
def drop_null_choice_field(obj: Any, ctx: Context) -> list[Any]:
    """A choice field omitted while null (`finish_reason` by default, as LocalAI did) instead of sent as null."""
    name = ctx.params.get("field", "finish_reason")
    out = copy.deepcopy(obj)
    for choice in _choices(out):
        if name in choice and choice[name] is None:
            del choice[name]
    return [out]


@_json_fault("stop-leaked")
def stop_leaked(obj: Any, ctx: Context) -> list[Any]:
    """The stop string that ended generation is returned at the end of the content (TGI's `<|im_end|>`)."""
    stops = stop_strings(ctx.body)
    if not stops:
        return [obj]
    return _append_to_finishing(obj, stops[0], only="stop")


def _b64_floats(value: str, fmt: str = "f") -> list[float]:
    raw = base64.b64decode(value)
    size = struct.calcsize("<" + fmt)
    return list(struct.unpack(f"<{len(raw) // size}{fmt}", raw))


def _floats_b64(values: list[float], fmt: str = "f") -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}{fmt}", *values)).decode()


def _embeddings(obj: Any) -> list[dict[str, Any]]:
    data = obj.get("data") if isinstance(obj, dict) else None
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


@_json_fault("embeddings-base64-float64")
def embeddings_base64_float64(obj: Any, ctx: Context) -> list[Any]:
    """base64 embeddings packed as float64 (vLLM's first implementation) instead of little-endian float32."""
    out = copy.deepcopy(obj)
    for item in _embeddings(out):
        if isinstance(item.get("embedding"), str):
            item["embedding"] = _floats_b64(_b64_floats(item["embedding"]), "d")
    return [out]


@_json_fault("embeddings-base64-ignored")
def embeddings_base64_ignored(obj: Any, ctx: Context) -> list[Any]:
    """`encoding_format: "base64"` ignored: float arrays come back (SGLang, Infinity, TEI)."""
    out = copy.deepcopy(obj)
    for item in _embeddings(out):
        if isinstance(item.get("embedding"), str):
            item["embedding"] = _b64_floats(item["embedding"])
    return [out]


@_json_fault("embeddings-reverse")
def embeddings_reverse(obj: Any, ctx: Context) -> list[Any]:
    """Embeddings returned in reverse input order (each still carrying its own `index`)."""
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, list) or len(data) < 2:
        return [obj]
    return [{**obj, "data": list(reversed(data))}]


@_json_fault("model-ids")
def model_ids(obj: Any, ctx: Context) -> list[Any]:
    """The model list names models under other ids than the ones requests use (`prefix` + id, as gateways that
    list `provider/model` while accepting the bare name)."""
    if not (isinstance(obj, dict) and obj.get("object") == "list"):
        return [obj]
    out = copy.deepcopy(obj)
    for model in _embeddings(out):
        if isinstance(model.get("id"), str):
            model["id"] = str(ctx.params.get("prefix", "openai/")) + model["id"]
    return [out]


@_json_fault("model-field")
def model_field(obj: Any, ctx: Context) -> list[Any]:
    """Drop (or set) a field of every model object, in the list and on retrieve."""
    out = copy.deepcopy(obj)
    models = _embeddings(out) if isinstance(out, dict) and out.get("object") == "list" else [out]
    for model in models:
        if not isinstance(model, dict):
            continue
        if ctx.params.get("delete"):
            model.pop(ctx.params["field"], None)
        else:
            model[ctx.params["field"]] = ctx.params.get("value")
    return [out]


# ----------------------------------------------------------------------------------------- stream stage


class JsonEvents(StreamTransform):
    """Apply a json-stage function to every JSON data event; other items pass unchanged."""

    def __init__(self, ctx: Context, fn: Callable[[Any, Context], list[Any]]) -> None:
        super().__init__(ctx)
        self.fn = fn

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if item.kind != "event" or not item.has_data or item.is_done:
            return [item.raw]
        try:
            obj = json.loads(item.data)
        except ValueError:
            return [item.raw]
        out = self.fn(obj, self.ctx)
        if len(out) == 1 and out[0] == obj:
            return [item.raw]
        return [sse.encode_event(dumps(o), event=item.event) for o in out]


def stream_fault(kind: str):
    """Register a StreamTransform subclass under ``stream.<kind>``."""

    def register(cls: type[StreamTransform]) -> type[StreamTransform]:
        transform("stream." + kind)(cls)
        return cls

    return register


@stream_fault("drop-done")
class DropDone(StreamTransform):
    """The stream ends without `data: [DONE]` (ik_llama.cpp, text-generation-webui)."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        return [] if item.is_done else [item.raw]


@stream_fault("data-keepalive")
class DataKeepalive(StreamTransform):
    """Keep-alives sent as data events (`data: : keep-alive`), which the SDKs try to decode as JSON."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        out = [item.raw]
        n = self.ctx.state["n"] = self.ctx.state.get("n", 0) + 1
        if n == 1 or n % int(self.ctx.params.get("every", 3)) == 0:
            if not item.is_done:
                out.append(sse.encode_event(str(self.ctx.params.get("data", ": keep-alive"))))
        return out


@stream_fault("unterminated-last")
class UnterminatedLast(StreamTransform):
    """The last event lacks its terminating blank line (and line end): EventSource readers drop it."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.held: bytes | None = None

    def event(self, item: sse.SSEItem) -> list[bytes]:
        out = [self.held] if self.held is not None else []
        self.held = item.raw
        return out

    def end(self) -> list[bytes]:
        if self.held is None:
            return []
        return [self.held.rstrip(b"\r\n")]


@stream_fault("content-type")
class ContentType(StreamTransform):
    """A stream sent with another Content-Type than text/event-stream (Foundry Local, APIM passthrough)."""

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        return {**headers, "content-type": str(self.ctx.params.get("content_type", "application/json"))}


@stream_fault("usage-in-last-choice")
class UsageInLastChoice(StreamTransform):
    """The usage trailer is folded into the last chunk that has choices, instead of its own `choices: []` chunk."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.held: dict[str, Any] | None = None

    def _flush(self) -> list[bytes]:
        out = [sse.encode_json(self.held)] if self.held is not None else []
        self.held = None
        return out

    def event(self, item: sse.SSEItem) -> list[bytes]:
        obj = None
        if item.kind == "event" and item.has_data and not item.is_done:
            try:
                obj = json.loads(item.data)
            except ValueError:
                obj = None
        if isinstance(obj, dict) and _choices(obj) and not is_usage_trailer(obj):
            out = self._flush()
            self.held = obj
            return out
        if is_usage_trailer(obj) and self.held is not None:
            held, self.held = self.held, None
            return [sse.encode_json({**held, "usage": obj["usage"]})]
        if item.kind == "comment":
            return [item.raw]
        return [*self._flush(), item.raw]

    def end(self) -> list[bytes]:
        return self._flush()


@stream_fault("name-events")
class NameEvents(StreamTransform):
    """Every data event gets an `event:` name (`delta` by default), as servers built on SSE helpers that name
    each event do; SDKs that only read unnamed events drop them."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if item.kind != "event" or not item.has_data or item.event is not None:
            return [item.raw]
        return [sse.encode_event(item.data, event=str(self.ctx.params.get("event", "delta")))]


@stream_fault("error-midstream")
class ErrorMidstream(StreamTransform):
    """After `after` data events, an in-band `{"error": {...}}` chunk, then the stream ends (no finish, no
    [DONE]): generation failed part-way (OpenRouter's 502 chunk, TGI)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.seen = 0
        self.done = False

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if self.done:
            return []
        if item.kind != "event" or not item.has_data:
            return [item.raw]
        self.seen += 1
        if self.seen <= int(self.ctx.params.get("after", 2)) and not item.is_done:
            return [item.raw]
        self.done = True
        error = self.ctx.params.get("error") or {"message": "Upstream provider overloaded", "type": "server_error",
                                                 "param": None, "code": 502}
        return [sse.encode_json({"error": error})]


@stream_fault("split")
class Split(StreamTransform):
    """Benign: events cut at odd byte boundaries (inside `data:`, inside UTF-8 characters, across events)."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.sizes = [int(s) for s in ctx.params.get("sizes", (1, 7, 3, 13, 2, 29))]
        self.carry = b""
        self.turn = 0

    def event(self, item: sse.SSEItem) -> list[bytes]:
        data = self.carry + item.raw
        pieces = []
        while len(data) >= self.sizes[self.turn % len(self.sizes)]:
            n = self.sizes[self.turn % len(self.sizes)]
            self.turn += 1
            pieces.append(data[:n])
            data = data[n:]
        self.carry = data  # shorter than the next cut: travels with the next event's first piece
        return pieces

    def end(self) -> list[bytes]:
        carry, self.carry = self.carry, b""
        return [carry] if carry else []


@stream_fault("comments")
class Comments(StreamTransform):
    """Benign: `: keep-alive` comment lines before the first event and between events."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        text = str(self.ctx.params.get("text", "keep-alive"))
        n = self.ctx.state["n"] = self.ctx.state.get("n", 0) + 1
        out = [sse.encode_comment(text)] if n == 1 else []
        out.append(item.raw)
        if n % int(self.ctx.params.get("every", 2)) == 0 and not item.is_done:
            out.append(f": {text}\n".encode())  # a bare comment line, no blank line after it
        return out


@stream_fault("crlf")
class Crlf(StreamTransform):
    """Benign: CRLF line ends instead of LF."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        return [item.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")]


# ----------------------------------------------------------------------------------------- transport stage
# The proxy implements the timing; these functions say what is sent.


@transform("transport.none")
def none(ctx: Context) -> None:
    """No fault: everything passes through unchanged."""
    return None


@transform("transport.hang")
def hang(ctx: Context) -> None:
    """Accept the request and never answer (until the client gives up)."""
    return None


@transform("transport.drip")
def drip(body: bytes, ctx: Context) -> list[bytes]:
    """Send the response one byte at a time (`interval` seconds apart, 0.2 by default)."""
    step = int(ctx.params.get("bytes", 1))
    return [body[i:i + step] for i in range(0, len(body), step)]


@transform("transport.buffer")
def buffer(pieces: Iterable[bytes], ctx: Context) -> list[bytes]:
    """Hold the whole stream and send it in one write when upstream has finished (no incremental delivery)."""
    return [b"".join(pieces)]


class Endless(StreamTransform):
    """The stream never ends: upstream's finish, usage and [DONE] are held back, content chunks repeat forever."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.last: dict[str, Any] | None = None

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if item.is_done:
            return []
        try:
            obj = json.loads(item.data) if item.kind == "event" and item.has_data else None
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            if is_usage_trailer(obj):
                return []
            if any(c.get("finish_reason") is not None for c in _choices(obj)):
                return []
            self.last = obj
        return [item.raw]

    def filler(self) -> bytes:
        """One more content chunk, shaped like upstream's last one."""
        text = str(self.ctx.params.get("text", " and"))
        base = copy.deepcopy(self.last) if self.last else {"object": "chat.completion.chunk", "choices": [{}]}
        for choice in _choices(base) or []:
            choice["finish_reason"] = None
            if "text" in choice:
                choice["text"] = text
            else:
                choice["delta"] = {"content": text}
        return sse.encode_json(base)


@transform("transport.endless")
def endless(ctx: Context) -> Endless:
    """Never end the stream: hold back finish/usage/[DONE], then repeat content chunks forever."""
    return Endless(ctx)


# ----------------------------------------------------------------------------------------- applying


def stream_transform(kind: str, ctx: Context) -> StreamTransform:
    """The StreamTransform for a stream- or json-stage kind."""
    t = TRANSFORMS[kind]
    if t.stage == "stream":
        return t.fn(ctx)
    if t.stage == "json":
        return JsonEvents(ctx, t.fn)
    if kind == "transport.endless":
        return t.fn(ctx)
    return StreamTransform(ctx)


def apply_stream(kind: str, body: bytes, ctx: Context | None = None) -> list[bytes]:
    """Run a whole event stream through a transform at once (for tests and offline use): the pieces written."""
    ctx = ctx or Context()
    st = stream_transform(kind, ctx)
    reader = sse.SSEReader()
    out: list[bytes] = []
    for item in reader.feed(body) + reader.close():
        out += st.event(item)
    return out + st.end()


def apply_json(kind: str, obj: Any, ctx: Context | None = None) -> Any:
    """Apply a json-stage transform to a whole (non-streamed) body: exactly one object comes back."""
    out = TRANSFORMS[kind].fn(obj, ctx or Context())
    return out[0] if out else obj
