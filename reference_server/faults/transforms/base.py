"""Fault transforms: shared data types, the registry and the `transform` decorator, helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wirecheck.spec import sse

STAGES = ("request", "response", "json", "stream", "transport")

# ----------------------------------------------------------------------------------------- data types


@dataclass(frozen=True)
class Req:
    """A request as the proxy sees it: method, API path relative to /v1, lower-case headers, parsed JSON body,
    query string."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    query: str = ""
    form: dict[str, str] = field(default_factory=dict)  # a multipart body's text fields (file parts left out)

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


_FORM_PART = re.compile(rb'content-disposition: *form-data; *name="([^"]+)"\r\n\r\n(.*?)\r\n--', re.I | re.S)


def form_fields(raw: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (parts with a filename are files and left out): enough for
    a fault to look at `language` or `prompt`; the body itself is forwarded untouched."""
    if not content_type.lower().startswith("multipart/form-data"):
        return {}
    return {m.group(1).decode("latin-1"): m.group(2).decode("utf-8", "replace") for m in _FORM_PART.finditer(raw)}
