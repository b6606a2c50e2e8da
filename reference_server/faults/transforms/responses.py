"""Fault transforms for typed-event streams and the Responses API (`/v1/responses`).

Responses streams are named events whose data carry a `type` and a `sequence_number`; these transforms drop,
repeat, rename or rewrite events by type, and rewrite the response objects (items, usage, status) wherever
they appear: a non-streamed body, or the `response` / `item` inside an event.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from wirecheck.spec import sse

from .base import Context, Req, Reply, StreamTransform, transform
from .request import bad_request
from .stream import stream_fault


def _type(obj: Any) -> Any:
    return obj.get("type") if isinstance(obj, dict) else None


def _types(ctx: Context) -> set[str]:
    return set(ctx.params.get("types", ()))


def _walk(obj: Any, fn: Callable[[dict[str, Any]], None]) -> Any:
    """A deep copy of `obj` with `fn` applied to every dict in it (outermost first)."""
    out = copy.deepcopy(obj)

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            fn(node)
            for value in list(node.values()):
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(out)
    return out


# ----------------------------------------------------------------------------------------- json stage


@transform("json.drop-events")
def drop_events(obj: Any, ctx: Context) -> list[Any]:
    """Events whose `type` is in `types` are not sent (e.g. no response.completed, no argument deltas)."""
    return [] if _type(obj) in _types(ctx) else [obj]


@transform("json.repeat-events")
def repeat_events(obj: Any, ctx: Context) -> list[Any]:
    """Events whose `type` is in `types` are sent twice (relays that replay their last buffered event)."""
    return [obj, copy.deepcopy(obj)] if _type(obj) in _types(ctx) else [obj]


@transform("json.event-field")
def event_field(obj: Any, ctx: Context) -> list[Any]:
    """A field of the events whose `type` is in `types` (all objects when `types` is empty) set to `value`,
    deleted (`delete: true`), suffixed with `append`, or suffixed with a counter (`number: true`)."""
    types = _types(ctx)
    if not isinstance(obj, dict) or (types and obj.get("type") not in types):
        return [obj]
    name = ctx.params["field"]
    out = dict(obj)
    if ctx.params.get("delete"):
        out.pop(name, None)
    elif ctx.params.get("number"):
        n = ctx.state["n"] = ctx.state.get("n", 0) + 1
        out[name] = f"{out.get(name)}_{n}"
    elif "append" in ctx.params:
        out[name] = f"{out.get(name) or ''}{ctx.params['append']}"
    else:
        out[name] = copy.deepcopy(ctx.params.get("value"))
    return [out]


@transform("json.drop-item-field")
def drop_item_field(obj: Any, ctx: Context) -> list[Any]:
    """`field` removed from every object of type `item_type` anywhere in the body or event (a function_call
    item without its call_id, in output, in output_item events and in the final response)."""
    item_type, name = ctx.params.get("item_type", "function_call"), ctx.params.get("field", "call_id")

    def drop(node: dict[str, Any]) -> None:
        if node.get("type") == item_type:
            node.pop(name, None)

    return [_walk(obj, drop)]


@transform("json.item-arguments-object")
def item_arguments_object(obj: Any, ctx: Context) -> list[Any]:
    """function_call `arguments` sent as the decoded JSON object, not a string (TGI and koboldcpp did it on chat),
    in items wherever they appear and in function_call_arguments.done; argument deltas stay strings."""

    def decode(node: dict[str, Any]) -> None:
        if node.get("type") in ("function_call", "response.function_call_arguments.done") and isinstance(
                node.get("arguments"), str):
            try:
                node["arguments"] = json.loads(node["arguments"])
            except ValueError:
                pass

    return [_walk(obj, decode)]


@transform("json.responses-usage-total")
def responses_usage_total(obj: Any, ctx: Context) -> list[Any]:
    """Responses `usage.total_tokens` counts only the output (total != input_tokens + output_tokens)."""

    def total(node: dict[str, Any]) -> None:
        usage = node.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("output_tokens"), int):
            usage["total_tokens"] = usage["output_tokens"] + int(ctx.params.get("offset", 0))

    return [_walk(obj, total)]


@transform("json.responses-status")
def responses_status(obj: Any, ctx: Context) -> list[Any]:
    """Response statuses renamed (`incomplete` reported as `completed` by default, incomplete_details cleared),
    in bodies and in the lifecycle events, whose type follows (response.incomplete -> response.completed)."""
    mapping = ctx.params.get("map", {"incomplete": "completed"})

    def rename(node: dict[str, Any]) -> None:
        if node.get("object") == "response" and node.get("status") in mapping:
            node["status"] = mapping[node["status"]]
            node["incomplete_details"] = None
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("response.") and kind[len("response."):] in mapping:
            node["type"] = "response." + mapping[kind[len("response."):]]

    return [_walk(obj, rename)]


# ----------------------------------------------------------------------------------------- request stage


@transform("request.reject-input-items")
def reject_input_items(req: Req, ctx: Context) -> Req | Reply:
    """Answer 400 when `input` is a list of items (only a string is taken) or, with `types`, when it holds an
    item of one of those types (`message` when an item has no type)."""
    body = req.body
    value = body.get("input") if isinstance(body, dict) else None
    if not isinstance(value, list):
        return req
    types = _types(ctx)
    kinds = {(item.get("type") or "message") if isinstance(item, dict) else None for item in value}
    if types and not kinds & types:
        return req
    return bad_request("'input' must be a string", "input")


# ----------------------------------------------------------------------------------------- stream stage


def _decoded(item: sse.SSEItem) -> Any:
    if item.kind != "event" or not item.has_data or item.is_done:
        return None
    try:
        return json.loads(item.data)
    except ValueError:
        return None


@stream_fault("rename-events")
class RenameEvents(StreamTransform):
    """Named events renamed by `map` (event name -> another name) while data.type stays: a server that names
    events after its own scheme; clients dispatching on the name misroute them."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        mapping = self.ctx.params.get("map", {})
        if item.kind != "event" or not item.has_data or item.event not in mapping:
            return [item.raw]
        return [sse.encode_event(item.data, event=str(mapping[item.event]))]


@stream_fault("data-only")
class DataOnly(StreamTransform):
    """Event names dropped (data-only events, as chat streams) and, with `done: true` (the default), a
    `data: [DONE]` sentinel added at the end: a chat-style relay in front of a typed-event stream."""

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if item.kind != "event" or not item.has_data:
            return [item.raw]
        return [sse.encode_event(item.data)]

    def end(self) -> list[bytes]:
        return [sse.DONE] if self.ctx.params.get("done", True) else []


@stream_fault("responses-error-midstream")
class ResponsesErrorMidstream(StreamTransform):
    """After `after` data events, an `error` event and response.failed, then the stream ends: generation
    failed part-way, reported in the Responses API's own shape."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.seen = 0
        self.done = False
        self.response: dict[str, Any] = {}
        self.seq = 0

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if self.done:
            return []
        value = _decoded(item)
        if value is None:
            return [item.raw]
        self.seen += 1
        if isinstance(value, dict):
            if isinstance(value.get("response"), dict):
                self.response = value["response"]
            if isinstance(value.get("sequence_number"), int):
                self.seq = value["sequence_number"]
        if self.seen <= int(self.ctx.params.get("after", 3)):
            return [item.raw]
        self.done = True
        message = str(self.ctx.params.get("message", "The model backend stopped responding."))
        error = {"type": "error", "code": "server_error", "message": message, "param": None,
                 "sequence_number": self.seq + 1}
        failed = {"type": "response.failed", "sequence_number": self.seq + 2,
                  "response": {**self.response, "status": "failed",
                               "error": {"code": "server_error", "message": message}}}
        return [sse.encode_json(error, event="error"), sse.encode_json(failed, event="response.failed")]
