"""Fault transforms, transport stage: the pure parts of behaviour in time."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from wirecheck.spec import sse

from .base import Context, StreamTransform, _choices, is_usage_trailer, transform


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
