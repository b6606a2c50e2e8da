"""Fault transforms, request stage: ``fn(req, ctx) -> Req | Reply``."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from .base import Context, Reply, Req, transform


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
    """Set (`fields`), default (`defaults`: set where absent) and remove (`drop`) top-level request fields before
    forwarding, optionally only when the request has the values in `when` (e.g. `temperature: 0` read as
    "unset")."""
    if not isinstance(req.body, dict):
        return req
    when = ctx.params.get("when") or {}
    if any(k not in req.body or req.body[k] != v for k, v in when.items()):
        return req
    drop = set(ctx.params.get("drop", ()))
    body = {k: v for k, v in req.body.items() if k not in drop}
    defaults = {k: v for k, v in (ctx.params.get("defaults") or {}).items() if k not in body}
    return replace(req, body={**body, **copy.deepcopy({**defaults, **ctx.params.get("fields", {})})})


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


@transform("request.reject-form-fields")
def reject_form_fields(req: Req, ctx: Context) -> Req | Reply:
    """A multipart request carrying any of `fields` gets FastAPI's 422 {"detail": [...]} (what a self-hosted
    speech server with a fixed form model answers), or with `status` 400, the OpenAI envelope."""
    for name in ctx.params.get("fields", ()):
        if name in req.form:
            if int(ctx.params.get("status", 422)) == 400:
                return bad_request(f"Unsupported parameter: '{name}'.", name, "unsupported_parameter")
            return Reply.of_json(422, {"detail": [{"type": "extra_forbidden", "loc": ["body", name],
                                                   "msg": "Extra inputs are not permitted"}]})
    return req


def _known_fields(schema_name: str) -> set[str]:
    from wirecheck.spec.loader import document

    schema = document()["components"]["schemas"][schema_name]
    return set(schema.get("properties", {}))


def _message_fields() -> set[str]:
    from wirecheck.spec.loader import document

    schemas = document()["components"]["schemas"]
    known: set[str] = set()
    for name, schema in schemas.items():
        if name.startswith("ChatCompletionRequest") and name.endswith("Message"):
            known |= set(schema.get("properties", {}))
    return known


@transform("request.reject-unknown-fields")
def reject_unknown_fields(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 for any field the server's schema does not list: pydantic's `extra_forbidden` in vLLM's flat
    envelope (`style: vllm`, the default), or as api.openai.com does (`style: openai`)."""
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
    if ctx.params.get("style") == "openai":
        return bad_request(f"Unrecognized request argument supplied: {extra[0].rsplit('.', 1)[-1]}")
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


@transform("request.fail-on-part")
def fail_on_part(req: Req, ctx: Context) -> Req | Reply:
    """Answer `status` (500, a crash page) to a chat request carrying a content part of one of `types`
    (image_url, input_audio); with `details`, only parts whose `detail` is one of them. With status 400, the
    OpenAI envelope, naming the part."""
    kinds, details = set(ctx.params.get("types", ("image_url",))), ctx.params.get("details")
    for i, msg in enumerate(_messages(req)):
        parts = msg.get("content")
        for j, part in enumerate(parts if isinstance(parts, list) else []):
            if not isinstance(part, dict) or part.get("type") not in kinds:
                continue
            inner = part.get(part["type"])
            if details is not None and (not isinstance(inner, dict) or inner.get("detail") not in details):
                continue
            status = int(ctx.params.get("status", 500))
            if status == 400:
                return bad_request(f"Content parts of type '{part['type']}' are not supported.",
                                   f"messages[{i}].content[{j}]")
            return Reply(status, {"content-type": "text/plain; charset=utf-8"}, b"Internal Server Error")
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


@transform("request.reject-above")
def reject_above(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 when the number at a dotted `path` of the body (`thinking.budget_tokens`) is above `above`: a
    gateway that refuses what it should lower to its bound."""
    value: Any = req.body
    for step in str(ctx.params["path"]).split("."):
        value = value.get(step) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= ctx.params["above"]:
        return req
    return bad_request(str(ctx.params.get("message", f"{ctx.params['path']} may be at most {ctx.params['above']}.")),
                       ctx.params["path"], str(ctx.params.get("code", "invalid_value")))


@transform("request.reply-json")
def reply_json(req: Req, ctx: Context) -> Req | Reply:
    """Answer `body` with `status` (200) without forwarding, to the `methods` given (default: all): a gateway that
    acknowledges what it never does."""
    methods = ctx.params.get("methods")
    if methods is not None and req.method not in methods:
        return req
    return Reply.of_json(int(ctx.params.get("status", 200)), ctx.params.get("body") or {})


@transform("request.ignore-auth")
def ignore_auth(req: Req, ctx: Context) -> Req:
    """Forward every request with the proxy's own upstream key, whatever key (if any) the client sent."""
    headers = {k: v for k, v in req.headers.items() if k not in ("authorization", "x-api-key")}
    if ctx.upstream_key:
        headers["authorization"] = f"Bearer {ctx.upstream_key}"
    return replace(req, headers=headers)


def _sent_key(req: Req) -> str | None:
    auth = req.headers.get("authorization", "")
    return auth[len("bearer "):].strip() if auth.lower().startswith("bearer ") else req.headers.get("x-api-key")


@transform("request.misjudge-keys")
def misjudge_keys(req: Req, ctx: Context) -> Req | Reply:
    """Answer a key other than the proxy's upstream key with `wrong` (400: a gateway that validates the key's
    format before it looks it up), and, when `missing` is given, a request without a key with that status (403);
    anything else goes upstream."""
    key = _sent_key(req)
    status = ctx.params.get("wrong", 400) if key and key != ctx.upstream_key else None
    if not key and ctx.params.get("missing"):
        status = ctx.params["missing"]
    if status is None:
        return req
    kind = "permission_error" if int(status) == 403 else "invalid_request_error"
    return Reply.of_json(int(status), {"error": {"message": f"API key rejected ({kind})", "type": kind,
                                                 "param": None, "code": None}})


@transform("request.inject-tools")
def inject_tools(req: Req, ctx: Context) -> Req:
    """A request that declares no tools gets `tools` (and `tool_choice`) anyway: a server whose chat template or
    gateway config adds its own tools, so the model calls functions the client never declared."""
    if not isinstance(req.body, dict) or req.body.get("tools"):
        return req
    extra = {"tools": copy.deepcopy(ctx.params.get("tools") or []), "tool_choice": ctx.params.get("tool_choice", "required")}
    return replace(req, body={**req.body, **extra})


@transform("request.tool-choice-unchecked")
def tool_choice_unchecked(req: Req, ctx: Context) -> Req:
    """tool_choice is never checked against tools: one naming an undeclared function, or any tool_choice sent
    without tools, is dropped and the request answered as if it had not been sent (200 instead of 400)."""
    body = req.body
    if not isinstance(body, dict) or body.get("tool_choice") is None:
        return req
    choice = body["tool_choice"]
    function = choice.get("function") if isinstance(choice, dict) else None
    named = function.get("name") if isinstance(function, dict) else None
    declared = {t["function"].get("name") for t in body.get("tools") or []
                if isinstance(t, dict) and isinstance(t.get("function"), dict)}
    if body.get("tools") and (named is None or named in declared):
        return req
    return replace(req, body={k: v for k, v in body.items() if k != "tool_choice"})
