"""Fault transforms, stream stage: StreamTransform subclasses registered as ``stream.<kind>``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from wirecheck.spec import sse

from .base import Context, StreamTransform, _choices, dumps, is_usage_trailer, transform


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
        return [self.encode(item, obj, o) for o in out]

    def encode(self, item: sse.SSEItem, obj: Any, out: Any) -> bytes:
        """One object `fn` made of the event `item` (whose data was `obj`), as an event: under item's name."""
        return sse.encode_event(dumps(out), event=item.event)


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
    [DONE]): generation failed part-way (OpenRouter's 502 chunk, TGI). `payload` and `event` give another shape
    (Anthropic's `event: error` with `{"type": "error", "error": {...}}`)."""

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
        return [sse.encode_json(self.ctx.params.get("payload") or {"error": error}, event=self.ctx.params.get("event"))]


@stream_fault("hold")
class Hold(StreamTransform):
    """The whole stream held back and sent in one write when upstream ends, for requests that carry every field
    in `when_present` (all requests when empty): Ollama's /v1 buffered streams once `tools` were given."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.active = all(name in ctx.body for name in ctx.params.get("when_present", ()))
        self.held: list[bytes] = []

    def event(self, item: sse.SSEItem) -> list[bytes]:
        if not self.active:
            return [item.raw]
        self.held.append(item.raw)
        return []

    def end(self) -> list[bytes]:
        held, self.held = b"".join(self.held), []
        return [held] if held else []


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
