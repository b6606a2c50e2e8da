"""Raw HTTP with hard deadlines: what a check sees is bytes, status and headers, never a hang.

A hostile target can stall, drip bytes or never end a stream; httpx's per-read timeout does not bound
the whole exchange, so a watchdog closes the response when the deadline passes.
"""

from __future__ import annotations

import functools
import importlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from wirecheck.spec import sse

from .registry import Evidence
from .target import Target

MAX_BODY = 16 * 1024 * 1024  # bytes read of one body at most: an endless body is cut here, not held in memory


@dataclass
class Exchange:
    request: dict[str, Any]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    elapsed: float = 0.0
    timed_out: bool = False
    too_large: bool = False
    error: str | None = None  # transport failure (refused, reset, ...)
    chunk_times: list[float] = field(default_factory=list)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self) -> Any:
        return json.loads(self.body)

    def items(self) -> list[sse.SSEItem]:
        return sse.parse(self.body)

    def events(self) -> list[sse.SSEItem]:
        """Data-bearing events (comments and data-less blocks left out)."""
        return [it for it in self.items() if it.kind == "event" and it.has_data]

    def evidence(self, *notes: str) -> Evidence:
        return Evidence(request=self.request, status=self.status, headers=self.headers, body=self.body,
                        notes=list(notes))

    def describe(self) -> str:
        if self.too_large:
            return self.error or ""
        if self.error and self.timed_out:
            return self.error
        if self.error:
            return f"transport error: {self.error}"
        if self.timed_out:
            return f"no complete response within the deadline ({self.elapsed:.1f}s, {len(self.body)} bytes read)"
        return f"HTTP {self.status} {self.content_type!r}, {len(self.body)} bytes"


class Wire:
    def __init__(self, target: Target) -> None:
        self.target = target
        self.client = self._client()

    def _client(self) -> httpx.Client:
        return httpx.Client(timeout=httpx.Timeout(self.target.deadline, connect=min(10.0, self.target.deadline)))

    def close(self) -> None:
        self.client.close()

    def post(self, path: str, body: Any, **kwargs: Any) -> Exchange:
        return self.request("POST", path, json_body=body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Exchange:
        return self.request("GET", path, **kwargs)

    def probe(self, **kwargs: Any) -> tuple[str, Exchange]:
        """The cheapest authenticated request the target offers: GET /models, or where the profile claims no
        models surface (Hoziron) a one-token chat completion. Returns (what was sent, the exchange)."""
        if "models" in self.target.profile.surfaces:
            return "GET /models", self.get("models", **kwargs)
        body = {"model": self.target.model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
        return "POST /chat/completions", self.post("chat/completions", body, **kwargs)

    def request(self, method: str, path: str, *, json_body: Any = None, content: bytes | None = None,
                headers: dict[str, str] | None = None, auth: bool = True,
                deadline: float | None = None) -> Exchange:
        limit = deadline or self.target.deadline
        sent = {**(self.target.auth_headers(path) if auth else {}), **(headers or {})}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        record = {"method": method, "url": self.target.url(path), "json": json_body,
                  "headers": {k: ("<redacted>" if k.lower() in ("authorization", "x-api-key") else v)
                              for k, v in sent.items()}}
        if json_body is None and content is not None:
            record["content"] = content[:2000].decode("utf-8", errors="replace")
        ex = Exchange(request=record)
        if self.target.unresponsive:
            ex.timed_out = True
            ex.error = self.target.not_sent()
            return ex
        start = time.monotonic()
        request = self.client.build_request(method, self.target.url(path), content=content, headers=sent)
        # Armed before the request goes out: a target dripping its status line or headers keeps every read
        # inside httpx's per-read timeout, and until a response exists only closing the client's connections
        # ends the wait (the read fails at the next byte; the client is rebuilt below).
        expired = threading.Event()
        responses: list[httpx.Response] = []

        def expire() -> None:
            expired.set()
            if responses:
                responses[0].close()
            else:
                self.client.close()

        watchdog = threading.Timer(limit, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            response = self.client.send(request, stream=True)
            responses.append(response)
            ex.status = response.status_code
            ex.headers = {k.lower(): v for k, v in response.headers.items()}
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.iter_raw():
                    chunks.append(chunk)
                    ex.chunk_times.append(time.monotonic() - start)
                    size += len(chunk)
                    if size > MAX_BODY:
                        # An endless body reaches this within the deadline on a fast link: it is no more an
                        # answer than a stall (an error, so every check's `ex.error` guard sees it), and it
                        # counts toward the target's stalls, or each check would read 16 MiB again.
                        ex.too_large = True
                        ex.error = too_large_message(time.monotonic() - start)
                        break
                    if time.monotonic() - start > limit:
                        ex.timed_out = True
                        break
            except httpx.TimeoutException:  # a read waited the whole deadline (a stall after the headers)
                ex.timed_out = True
            except (httpx.HTTPError, OSError, RuntimeError):
                # The watchdog closed the stream under us, or the peer reset it.
                ex.timed_out = time.monotonic() - start >= limit
                if not ex.timed_out:
                    ex.error = "connection closed mid-body"
            finally:
                response.close()
            ex.body = b"".join(chunks)
        except httpx.TimeoutException:
            ex.timed_out = True
        except (httpx.HTTPError, RuntimeError) as exc:
            if expired.is_set():
                ex.timed_out = True
            else:
                ex.error = f"{type(exc).__name__}: {exc}"
        finally:
            watchdog.cancel()
            if self.client.is_closed:
                self.client = self._client()
            ex.elapsed = time.monotonic() - start
            self.target.record(ex.timed_out or ex.too_large)
        return ex


def too_large_message(elapsed: float) -> str:
    return (f"no complete response: the body passed {MAX_BODY // 2**20} MiB without ending ({elapsed:.1f}s), "
            f"so it was cut off (an endless body?)")


def http_module(client_class: type) -> Any:
    """The httpx an SDK's client class is built on: httpx itself, or the fork (httpx2) that recent openai and
    anthropic SDKs vendor, whose streams and errors are classes of its own."""
    base = next((c for c in client_class.__mro__ if c.__name__ == "Client"), httpx.Client)
    return importlib.import_module(base.__module__.split(".")[0])


def sdk_http_client(sdk: Any, target: Target, *response_hooks: Any) -> Any:
    """The http_client to build an SDK's client on (`sdk` is the openai or the anthropic module): its own
    DefaultHttpxClient, held to Wire's bounds by `deadline_hooks`, with any further response hooks after them."""
    hooks = deadline_hooks(target, sdk.DefaultHttpxClient)
    hooks["response"].extend(response_hooks)
    return sdk.DefaultHttpxClient(event_hooks=hooks)


def deadline_hooks(target: Target, client_class: type) -> dict[str, list[Any]]:
    """httpx event hooks that hold an SDK's client to Wire's bounds: each response body ends by the deadline
    (counted from the request) and at MAX_BODY bytes, or reading it raises a timeout (a read error past the cap).

    The SDKs' own timeout is httpx's, which bounds each read, not the exchange: a body dripping a byte faster
    than that, or an endless one, keeps a call (and, past `bounded`'s deadline, its abandoned thread) reading,
    an endless non-streamed body into memory. Hooks rather than a transport, so the client keeps its
    environment's proxies. `client_class` is the SDK's DefaultHttpxClient (see `http_module`)."""
    bounded = _bounded_stream(http_module(client_class))

    def sent(request: Any) -> None:
        request.extensions["wirecheck_sent"] = time.monotonic()

    def received(response: Any) -> None:
        start = response.request.extensions.get("wirecheck_sent", time.monotonic())
        response.stream = bounded(response.stream, start, target.deadline)

    return {"request": [sent], "response": [received]}


class CutOff(Exception):  # noqa: N818 - a marker, mixed into the SDK's own httpx errors
    """What `deadline_hooks` raise (as the client's httpx ReadTimeout / ReadError, so the SDK maps them as it
    maps its own): a body cut off at the deadline or the size cap, an exchange that did not complete."""


def was_cut_off(error: BaseException | None) -> bool:
    """Whether `error`, or any error it was raised from or while handling, is a `CutOff`."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, CutOff):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


@functools.cache
def _bounded_stream(http: Any) -> type:
    too_large = type("BodyTooLarge", (CutOff, http.ReadError), {})
    too_late = type("DeadlinePassed", (CutOff, http.ReadTimeout), {})

    class BoundedStream(http.SyncByteStream):
        def __init__(self, inner: Any, start: float, deadline: float) -> None:
            self.inner, self.start, self.deadline = inner, start, deadline

        def __iter__(self):  # noqa: ANN204 - httpx's stream protocol
            size = 0
            for chunk in self.inner:
                size += len(chunk)
                elapsed = time.monotonic() - self.start
                if size > MAX_BODY:
                    raise too_large(too_large_message(elapsed))
                if elapsed > self.deadline:
                    raise too_late(f"no complete response within the {self.deadline:g}s deadline "
                                   f"({elapsed:.1f}s, {size} bytes read)")
                yield chunk

        def close(self) -> None:
            self.inner.close()

    return BoundedStream
