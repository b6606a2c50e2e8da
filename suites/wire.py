"""Raw HTTP with hard deadlines: what a check sees is bytes, status and headers, never a hang.

A hostile target can stall, drip bytes or never end a stream; httpx's per-read timeout does not bound
the whole exchange, so a watchdog closes the response when the deadline passes.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from wirecheck.spec import sse

from .registry import Evidence
from .target import Target

MAX_BODY = 16 * 1024 * 1024


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
        self.client = httpx.Client(timeout=httpx.Timeout(target.deadline, connect=min(10.0, target.deadline)))

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
            ex.error = (f"not sent: the last {self.target.stalls} exchanges ran past the "
                        f"{limit:.0f}s deadline, so the target is treated as unresponsive")
            return ex
        start = time.monotonic()
        request = self.client.build_request(method, self.target.url(path), content=content, headers=sent)
        watchdog: threading.Timer | None = None
        try:
            response = self.client.send(request, stream=True)
            watchdog = threading.Timer(max(0.0, limit - (time.monotonic() - start)), response.close)
            watchdog.daemon = True
            watchdog.start()
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
                        ex.too_large = True
                        break
                    if time.monotonic() - start > limit:
                        ex.timed_out = True
                        break
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
        except httpx.HTTPError as exc:
            ex.error = f"{type(exc).__name__}: {exc}"
        finally:
            if watchdog is not None:
                watchdog.cancel()
            ex.elapsed = time.monotonic() - start
            self.target.record(ex.timed_out)
        return ex
