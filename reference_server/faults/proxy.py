"""`wirecheck proxy`: forward to an upstream endpoint and apply one catalogued fault on the way.

The fault is fixed (``--fault NAME``, for client developers testing their own clients against a broken server)
or chosen per request by path: ``/fault/<name>/v1/...`` applies fault ``<name>`` to ``/v1/...``, so one proxy
serves the whole catalogue (the self-test points the suites at ``http://proxy/fault/<name>``). ``none`` is a
transparent proxy. A fault applies only to the API paths (and stream flag) it concerns; everything else passes
through byte for byte, streams included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from wirecheck.spec import sse

from . import transforms as T
from .catalogue import Fault, get_fault, load_faults

log = logging.getLogger("wirecheck.proxy")

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade"})
REQUEST_DROP = HOP_BY_HOP | {"host", "content-length", "accept-encoding"}
RESPONSE_DROP = HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}
STREAM_TRANSPORT = frozenset({"transport.drip", "transport.buffer", "transport.endless"})


def _error(status: int, message: str, code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error" if status < 500 else "server_error",
                      "param": None, "code": code}}
    return Response(json.dumps(body), status_code=status, media_type="application/json")


def split_fault_path(path: str) -> tuple[str | None, str]:
    """``/fault/<name>/rest`` -> (name, ``/rest``); any other path -> (None, path)."""
    if path.startswith("/fault/"):
        name, _, rest = path[len("/fault/"):].partition("/")
        return name, "/" + rest
    return None, path


OUTSIDE_API = frozenset({"", "health"})


def api_path(path: str) -> str | None:
    """The API path relative to /v1 (``chat/completions``), or None outside the API (``/``, ``/health``). Paths
    without /v1 (Hoziron's ``/chat/completions``, Hontoni's ``/api/keys``) are API paths as they stand."""
    if path.startswith("/v1/"):
        return path[len("/v1/"):].strip("/")
    rel = path.strip("/")
    return None if rel in OUTSIDE_API else rel


class FaultProxy:
    def __init__(self, upstream: str, fault: str = "none", *, upstream_key: str | None = None,
                 faults: dict[str, Fault] | None = None) -> None:
        parts = urlsplit(upstream.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"--upstream must be an http(s) URL, got {upstream!r}")
        root = parts.path
        if root.endswith("/v1"):  # requests carry /v1 themselves
            root = root[: -len("/v1")]
        self.upstream = f"{parts.scheme}://{parts.netloc}{root}"
        self.faults = faults if faults is not None else load_faults()
        self.default = get_fault(fault, self.faults)
        self.upstream_key = upstream_key
        self.client: httpx.AsyncClient | None = None

    # -- app ------------------------------------------------------------------------------------------

    def app(self) -> Starlette:
        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            async with httpx.AsyncClient(timeout=httpx.Timeout(None, connect=10.0), limits=limits) as client:
                self.client = client
                yield
            self.client = None

        methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", self.handle, methods=methods)], lifespan=lifespan)

    async def handle(self, request: Request) -> Response:
        name, path = split_fault_path(request.url.path)
        if name is None:
            fault = self.default
        else:
            try:
                fault = get_fault(name, self.faults)
            except ValueError as exc:
                return _error(404, str(exc), "unknown_fault")
        raw = await request.body()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):  # forwarded as it came: the upstream judges it
                body = None
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in REQUEST_DROP}
        req = T.Req(request.method, api_path(path) or "", headers, body, request.url.query,
                    T.form_fields(raw, headers.get("content-type", "")))
        rel = api_path(path)
        active = fault if rel is not None and fault.applies(rel, req.stream) else T_NONE
        ctx = T.Context(params=dict(active.params), request=req, upstream_key=self.upstream_key)

        if active.stage == "request":
            out = T.TRANSFORMS[active.kind].fn(req, ctx)
            if isinstance(out, T.Reply):
                return Response(out.body, status_code=out.status, headers=out.headers)
            if out.body != req.body:
                raw = json.dumps(out.body).encode()
            headers = out.headers
        if active.kind == "transport.hang":
            return await self._hang(request)

        assert self.client is not None
        # Forward the path as the client sent it (percent-encoding and all), never a re-encoded decoding.
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        _, forward = split_fault_path(raw_path.decode("latin-1"))
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = self.upstream + forward + (f"?{query}" if query else "")
        try:
            upstream_request = self.client.build_request(request.method, url, content=raw or None,
                                                         headers={**headers, "accept-encoding": "identity"})
            upstream = await self.client.send(upstream_request, stream=True)
        except httpx.InvalidURL as exc:
            return _error(400, f"cannot forward this URL: {exc}", "invalid_url")
        except httpx.HTTPError as exc:
            return _error(502, f"upstream {self.upstream} unreachable: {type(exc).__name__}: {exc}", "bad_gateway")
        out_headers = {k.lower(): v for k, v in upstream.headers.items() if k.lower() not in RESPONSE_DROP}
        is_stream = out_headers.get("content-type", "").startswith("text/event-stream")

        if is_stream and (active.stage in ("stream", "json") or active.kind in STREAM_TRANSPORT):
            return self._stream(upstream, out_headers, active, ctx)
        if not is_stream and active.stage in ("response", "json"):
            return await self._whole(upstream, out_headers, active, ctx)
        return self._pass(upstream, out_headers)

    # -- behaviours ------------------------------------------------------------------------------------

    @staticmethod
    async def _hang(request: Request) -> Response:
        """Never answer: wait until the client goes away."""
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                return Response(status_code=499)

    @staticmethod
    def _pass(upstream: httpx.Response, headers: dict[str, str]) -> Response:
        async def body() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()

        return StreamingResponse(body(), status_code=upstream.status_code, headers=headers)

    @staticmethod
    async def _whole(upstream: httpx.Response, headers: dict[str, str], fault: Fault, ctx: T.Context) -> Response:
        try:
            content = await upstream.aread()
        finally:
            await upstream.aclose()
        reply = T.Reply(upstream.status_code, headers, content)
        if fault.stage == "response":
            reply = T.TRANSFORMS[fault.kind].fn(reply, ctx)
        elif fault.stage == "json" and 200 <= reply.status < 300 and "json" in reply.content_type:
            try:
                obj = reply.json()
            except ValueError:
                obj = None
            if obj is not None:
                new = T.apply_json(fault.kind, obj, ctx)
                if new != obj:
                    reply = replace(reply, body=T.dumps(new).encode())
        return Response(reply.body, status_code=reply.status, headers=reply.headers)

    @staticmethod
    def _stream(upstream: httpx.Response, headers: dict[str, str], fault: Fault, ctx: T.Context) -> Response:
        st = T.stream_transform(fault.kind, ctx)
        headers = st.headers(headers)
        pause = float(fault.params.get("pause", 0))
        interval = float(fault.params.get("interval", 0.2 if fault.kind == "transport.drip" else 0.05))

        async def pieces() -> AsyncIterator[bytes]:
            reader = sse.SSEReader()
            async for chunk in upstream.aiter_bytes():
                for item in reader.feed(chunk):
                    for piece in st.event(item):
                        yield piece
            for item in reader.close():
                for piece in st.event(item):
                    yield piece
            for piece in st.end():
                yield piece

        async def body() -> AsyncIterator[bytes]:
            try:
                if fault.kind == "transport.buffer":
                    yield b"".join([p async for p in pieces()])
                    return
                async for piece in pieces():
                    if fault.kind == "transport.drip":
                        for byte in T.drip(piece, ctx):
                            yield byte
                            await asyncio.sleep(interval)
                        continue
                    if piece:
                        yield piece
                        if pause:
                            await asyncio.sleep(pause)
                if isinstance(st, T.Endless):
                    while True:
                        yield st.filler()
                        await asyncio.sleep(interval)
            finally:
                await upstream.aclose()

        return StreamingResponse(body(), status_code=upstream.status_code, headers=headers)


T_NONE = get_fault("none", {})


def create_app(upstream: str, fault: str = "none", *, upstream_key: str | None = None) -> Starlette:
    return FaultProxy(upstream, fault, upstream_key=upstream_key).app()
