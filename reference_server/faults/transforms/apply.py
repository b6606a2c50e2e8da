"""Fault transforms: applying a registered transform (stream or json stage) to a stream or body."""

from __future__ import annotations

from typing import Any

from wirecheck.spec import sse

from .base import TRANSFORMS, Context, StreamTransform
from .stream import JsonEvents


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
