"""Fault transforms for Anthropic's Messages API (`/v1/messages`): typed events, named after their `type`.

Streamed, every event's data is an object with a `type` and its `event:` line repeats it; the stream-stage
transforms here keep that convention for the events they add or rewrite (unless breaking it is the fault).
Non-streamed, the json-stage transforms see the whole Message (type `message`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from wirecheck.spec import sse

from .base import Context, Reply, Req, StreamTransform, dumps, transform
from .stream import JsonEvents, stream_fault


def _type(obj: Any) -> str | None:
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) else None


def anthropic_error(status: int, kind: str, message: str) -> Reply:
    return Reply.of_json(status, {"type": "error", "error": {"type": kind, "message": message}})


class TypedEvents(JsonEvents):
    """JsonEvents whose objects are each named after their own `type` when the event they replace was (so added
    and rewritten events stay well named)."""

    def encode(self, item: sse.SSEItem, obj: Any, out: Any) -> bytes:
        named = item.event is not None and item.event == _type(obj)
        return sse.encode_event(dumps(out), event=_type(out) if named else item.event)


def typed_fault(kind: str):
    """Register `fn(obj, ctx) -> list[obj]` as the stream transform ``stream.<kind>`` (via TypedEvents)."""

    def register(fn: Callable[[Any, Context], list[Any]]) -> Callable[[Any, Context], list[Any]]:
        def init(self: TypedEvents, ctx: Context) -> None:
            TypedEvents.__init__(self, ctx, fn)

        stream_fault(kind)(type(f"TypedEvents_{kind}", (TypedEvents,), {"__init__": init, "__doc__": fn.__doc__}))
        return fn

    return register


# ------------------------------------------------------------------------------------------- request stage


@transform("request.require-bearer")
def require_bearer(req: Req, ctx: Context) -> Req | Reply:
    """Only `Authorization: Bearer` is read; a request carrying its key as `x-api-key` (what the anthropic SDK's
    `api_key`, Cherry Studio and curl examples send) is refused with 401 (gateways that only read Bearer)."""
    if req.headers.get("authorization", "").lower().startswith("bearer "):
        return req
    return anthropic_error(401, "authentication_error", "Missing bearer token in the Authorization header.")


@transform("request.messages-reply")
def messages_reply(req: Req, ctx: Context) -> Req | Reply:
    """Answer with `status` in Anthropic's envelope instead of forwarding: always, or only when the query string
    holds `when_query`, the request carries header `when_header` or body field `when_field` (a route, a beta
    request or a feature not served)."""
    query, header, name = ctx.params.get("when_query"), ctx.params.get("when_header"), ctx.params.get("when_field")
    if query or header or name:
        hit = ((query and query in req.query.split("&")) or (header and header.lower() in req.headers)
               or (name and isinstance(req.body, dict) and req.body.get(name) is not None))
        if not hit:
            return req
    status = int(ctx.params.get("status", 404))
    message = str(ctx.params.get("message", "Not found: {path}")).format(path=req.path, method=req.method)
    return anthropic_error(status, str(ctx.params.get("type", "not_found_error")), message)


@transform("request.reject-tool-result-blocks")
def reject_tool_result_blocks(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 when a tool_result block's content is a list of blocks rather than a string (translation layers
    that map tool_result straight onto an OpenAI tool message's string content)."""
    messages = req.body.get("messages") if isinstance(req.body, dict) else None
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(block.get("content"), list):
                return anthropic_error(400, "invalid_request_error",
                                       "messages: tool_result.content: Input should be a valid string")
    return req


# ------------------------------------------------------------------------------------------ response stage


@transform("response.openai-error-envelope")
def openai_error_envelope(reply: Reply, ctx: Context) -> Reply:
    """Errors on /v1/messages sent in OpenAI's envelope (`{"error": {message, type, param, code}}`, no top-level
    `type: error`), as OpenAI-first servers that bolt on the Messages API do: Anthropic clients lose the type."""
    if reply.status < 400:
        return reply
    try:
        body = reply.json()
    except ValueError:
        return reply
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return reply
    kind = {"not_found_error": "NotFoundError", "invalid_request_error": "BadRequestError"}.get(error.get("type"),
                                                                                               error.get("type"))
    return Reply.of_json(reply.status, {"error": {"message": error.get("message"), "type": kind, "param": None,
                                                  "code": reply.status}}, reply.headers)


# -------------------------------------------------------------------------------------------- json stage


def _walk(obj: dict[str, Any], path: str) -> tuple[Any, str] | None:
    node: Any = obj
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return (node, keys[-1]) if isinstance(node, dict) else None


@transform("json.messages-set")
def messages_set(obj: Any, ctx: Context) -> list[Any]:
    """In every object of type `type` (a stream event type, or `message` for the non-streamed body), set the
    dotted `path` to `value`, or add `offset` to the integer there."""
    if _type(obj) != ctx.params.get("type"):
        return [obj]
    out = copy.deepcopy(obj)
    found = _walk(out, str(ctx.params["path"]))
    if found is None:
        return [obj]
    node, key = found
    if "offset" in ctx.params:
        if isinstance(node.get(key), int):
            node[key] += int(ctx.params["offset"])
    else:
        node[key] = copy.deepcopy(ctx.params.get("value"))
    return [out]


@transform("json.messages-stop-reason")
def messages_stop_reason(obj: Any, ctx: Context) -> list[Any]:
    """Rename stop_reason values (`map`), in the Message and in message_delta; with `clear_sequence`, the
    stop_sequence is reported as null too (servers that map every stop onto end_turn)."""
    holder = obj if _type(obj) == "message" else obj.get("delta") if _type(obj) == "message_delta" else None
    if not isinstance(holder, dict) or holder.get("stop_reason") not in ctx.params.get("map", {}):
        return [obj]
    out = copy.deepcopy(obj)
    target = out if _type(out) == "message" else out["delta"]
    target["stop_reason"] = ctx.params["map"][holder["stop_reason"]]
    if ctx.params.get("clear_sequence"):
        target["stop_sequence"] = None
    return [out]


# ------------------------------------------------------------------------------------------ stream stage


@stream_fault("append-done")
class AppendDone(StreamTransform):
    """`data: [DONE]` after message_stop (OpenAI framing leaking into Anthropic streams through translating
    gateways); clients that json-decode every event fail on it."""

    def end(self) -> list[bytes]:
        return [b"\n\n" + sse.DONE]  # the blank lines first end a last event its server left unterminated


@typed_fault("partial-json-cut")
def partial_json_cut(obj: Any, ctx: Context) -> list[Any]:
    """The first `cut` characters (2 by default: the `{"`) of every tool_use block's streamed input are lost, so
    the partial_json pieces no longer concatenate to JSON (vLLM's first fragment `code` without `{"`)."""
    if _type(obj) != "content_block_delta" or not isinstance(obj.get("delta"), dict):
        return [obj]
    delta = obj["delta"]
    if delta.get("type") != "input_json_delta" or not isinstance(delta.get("partial_json"), str):
        return [obj]
    cut = ctx.state.setdefault("cut", {})
    left = cut.setdefault(json.dumps(obj.get("index")), int(ctx.params.get("cut", 2)))
    piece = delta["partial_json"]
    cut[json.dumps(obj.get("index"))] = max(0, left - len(piece))
    return [{**obj, "delta": {**delta, "partial_json": piece[left:]}}]


@typed_fault("input-in-start")
def input_in_start(obj: Any, ctx: Context) -> list[Any]:
    """A tool_use block's whole input sent in its content_block_start, with no input_json_delta events (held
    back until the block stops): clients that build the input from deltas get `{}` (LiteLLM #29491)."""
    held: dict[str, Any] = ctx.state.setdefault("held", {})
    kind = _type(obj)
    key = json.dumps(obj.get("index")) if isinstance(obj, dict) else None
    if kind == "content_block_start" and (obj.get("content_block") or {}).get("type") == "tool_use":
        held[key] = {"start": copy.deepcopy(obj), "json": ""}
        return []
    if key not in held:
        return [obj]
    if kind == "content_block_delta":
        held[key]["json"] += (obj.get("delta") or {}).get("partial_json") or ""
        return []
    if kind == "content_block_stop":
        block = held.pop(key)
        start = block["start"]
        try:
            start["content_block"]["input"] = json.loads(block["json"] or "{}")
        except ValueError:
            start["content_block"]["input"] = {"_raw": block["json"]}
        return [start, obj]
    return [obj]


@typed_fault("extra-pings")
def extra_pings(obj: Any, ctx: Context) -> list[Any]:
    """Benign: a `ping` event after every `every`-th event before message_stop (Anthropic sends pings whenever it
    likes; clients must skip them)."""
    n = ctx.state["n"] = ctx.state.get("n", 0) + 1
    if _type(obj) == "message_stop" or n % int(ctx.params.get("every", 2)):
        return [obj]
    return [obj, {"type": "ping"}]
