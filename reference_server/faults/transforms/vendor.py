"""Fault transforms for vendor behaviour (headers, pools, idempotency, model ids, ignored fields): what gateways
in front of a vendor, or reimplementations of one, get wrong."""

from __future__ import annotations

import copy
import fnmatch
import re
import secrets
from dataclasses import replace
from typing import Any

from .base import Context, Reply, Req, transform

# ------------------------------------------------------------------------------------------- request stage


@transform("request.drop-headers")
def drop_headers(req: Req, ctx: Context) -> Req:
    """Remove request headers before forwarding (a gateway that does not pass the vendor's headers on); with
    `unless_in`, only values outside that list are removed (an unchecked value then reaches no one)."""
    names = {h.lower() for h in ctx.params.get("headers", ())}
    keep = ctx.params.get("unless_in")
    headers = {k: v for k, v in req.headers.items()
               if k not in names or (keep is not None and v in keep)}
    return replace(req, headers=headers)


@transform("request.set-headers")
def set_headers(req: Req, ctx: Context) -> Req:
    """Overwrite request headers before forwarding (e.g. a fallback policy the client did not ask for)."""
    return replace(req, headers={**req.headers, **{k.lower(): str(v) for k, v in ctx.params["headers"].items()}})


@transform("request.strip-content-parts")
def strip_content_parts(req: Req, ctx: Context) -> Req:
    """Silently drop message content parts of the given `types` (image_url): the model answers without them."""
    if not isinstance(req.body, dict) or not isinstance(req.body.get("messages"), list):
        return req
    kinds = set(ctx.params.get("types", ("image_url",)))
    body = copy.deepcopy(req.body)
    for message in body["messages"]:
        parts = message.get("content") if isinstance(message, dict) else None
        if isinstance(parts, list):
            kept = [p for p in parts if not (isinstance(p, dict) and p.get("type") in kinds)]
            message["content"] = kept or ""
    return replace(req, body=body)


@transform("request.reject-model")
def reject_model(req: Req, ctx: Context) -> Req | Reply:
    """Answer `status` (404 model_not_found by default) when `model` matches `pattern` (a regex), or when it is
    missing or empty with `missing: true` (a gateway that requires what the vendor defaults)."""
    if not isinstance(req.body, dict):
        return req
    model = req.body.get("model")
    missing = ctx.params.get("missing") and not model
    matched = isinstance(model, str) and "pattern" in ctx.params and re.search(ctx.params["pattern"], model)
    if not (missing or matched):
        return req
    status = int(ctx.params.get("status", 404))
    message = ctx.params.get("message", f"The model '{model}' does not exist or you do not have access to it.")
    return Reply.of_json(status, {"error": {"message": message, "type": "invalid_request_error", "param": "model",
                                            "code": ctx.params.get("code", "model_not_found")}})


@transform("request.strip-model-suffix")
def strip_model_suffix(req: Req, ctx: Context) -> Req:
    """Remove what matches `pattern` (a regex) from `model` before forwarding (a gateway that does not know a
    vendor's variant suffixes and routes to the base model)."""
    if not isinstance(req.body, dict) or not isinstance(req.body.get("model"), str):
        return req
    return replace(req, body={**req.body, "model": re.sub(ctx.params["pattern"], "", req.body["model"])})


@transform("request.set-model")
def set_model(req: Req, ctx: Context) -> Req:
    """Send every request to one model (`model`), whatever the client asked for (a gateway's fixed route)."""
    if not isinstance(req.body, dict) or "model" not in req.body:
        return req
    return replace(req, body={**req.body, "model": ctx.params["model"]})


# ------------------------------------------------------------------------------------------- response stage


def _matches(name: str, patterns: Any) -> bool:
    return any(fnmatch.fnmatchcase(name, p.lower()) for p in patterns)


@transform("response.drop-headers")
def response_drop_headers(reply: Reply, ctx: Context) -> Reply:
    """Remove response headers matching `headers` (globs), on responses with a status in `status` if given."""
    statuses = ctx.params.get("status")
    if statuses is not None and reply.status not in statuses:
        return reply
    return replace(reply, headers={k: v for k, v in reply.headers.items() if not _matches(k, ctx.params["headers"])})


@transform("response.set-headers")
def response_set_headers(reply: Reply, ctx: Context) -> Reply:
    """Overwrite response headers (e.g. a reset time as a duration where the vendor documents a timestamp)."""
    return replace(reply, headers={**reply.headers, **{k.lower(): str(v) for k, v in ctx.params["headers"].items()}})


# ------------------------------------------------------------------------------------------- json stage


@transform("json.randomise-field")
def randomise_field(obj: Any, ctx: Context) -> list[Any]:
    """A top-level string field made different on every response (a fingerprint minted per request)."""
    if not isinstance(obj, dict) or ctx.params["field"] not in obj:
        return [obj]
    value = ctx.state.setdefault("value", str(ctx.params.get("prefix", "fp_")) + secrets.token_hex(5))
    return [{**obj, ctx.params["field"]: value}]
