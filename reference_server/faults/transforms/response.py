"""Fault transforms, response stage: ``fn(reply, ctx) -> Reply``."""

from __future__ import annotations

from dataclasses import replace

from .base import Context, Reply, error_fields, transform


# ----------------------------------------------------------------------------------------- response stage


def _is_error(reply: Reply) -> bool:
    return reply.status >= 400


@transform("response.error-status")
def error_status(reply: Reply, ctx: Context) -> Reply:
    """Send errors with another HTTP status (200 by default), body unchanged (vLLM's context-length 200); with
    `from`, only errors of those statuses (a 402 sent as 403)."""
    if not _is_error(reply) or reply.status not in ctx.params.get("from", (reply.status,)):
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


@transform("response.transcription-format-ignored")
def transcription_format_ignored(reply: Reply, ctx: Context) -> Reply:
    """Every transcription answered as json {"text"} whatever response_format asked for: text/plain captions
    and verbose_json collapse to it, and a refusal of the format becomes a 200 (a server that ignores the field)."""
    if reply.status == 200 and reply.content_type.startswith("text/plain"):
        return Reply.of_json(200, {"text": reply.body.decode("utf-8", "replace").strip()})
    if reply.status == 200 and reply.content_type.startswith("application/json"):
        return Reply.of_json(200, {"text": str(reply.json().get("text", ""))})
    return refusal_accepted(reply, replace(ctx, params={"param": "response_format", "body": {"text": ""}}))


@transform("response.refusal-accepted")
def refusal_accepted(reply: Reply, ctx: Context) -> Reply:
    """An error naming `param` becomes a 200 carrying `body`: the server accepted (and ignored) the bad value."""
    if _is_error(reply) and error_fields(reply).get("param") == ctx.params["param"]:
        return Reply.of_json(200, ctx.params.get("body", {}))
    return reply
