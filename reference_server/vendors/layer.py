"""The vendor layer: an ASGI middleware that makes the reference server speak one vendor's dialect.

In front of the ordinary app it maps the vendor's paths (Hoziron has no /v1), refuses surfaces the vendor does
not offer, authenticates in the vendor's scheme, answers 402 / 429 from emulated balance and rate limits, applies
the vendor's request rules (rules.py), replays idempotent retries, and on the way out adds the vendor's rate-limit
headers and meters usage (token windows, balance) from the response itself, streamed or not.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wirecheck.spec import sse

from ..errors import APIError, speaks_anthropic
from . import live_models, rules
from .accounts import Accounts
from .ledger import Usage, insufficient
from .limits import LimitSettings, Limiter, Verdict
from .profile import Vendor, surface_of

PUBLIC = frozenset({"/", "/health"})
GENERATING = frozenset({"chat", "completions", "embeddings", "messages", "responses"})
COUNTING = frozenset({"messages/count_tokens", "responses/input_tokens"})  # free: no balance needed


def usage_of(obj: Any) -> Usage | None:
    """Input, output and reasoning tokens from any surface's object or stream event that reports usage, else
    None. Reasoning is inside the output count on both APIs (completion_tokens_details / output_tokens_details)."""
    if not isinstance(obj, dict):
        return None
    for holder in (obj, obj.get("message"), obj.get("response")):
        usage = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(usage, dict):
            prompt = usage.get("prompt_tokens", usage.get("input_tokens", 0))
            completion = usage.get("completion_tokens", usage.get("output_tokens", 0))
            details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
            reasoning = details.get("reasoning_tokens", 0) if isinstance(details, dict) else 0
            if isinstance(prompt, int) and isinstance(completion, int):
                return Usage(prompt, completion, reasoning if isinstance(reasoning, int) else 0)
    return None


class Meter:
    """Reads usage off a response as it passes: a JSON body at its end, or each stream event that carries it.
    Anthropic streams split it (input in message_start, output in message_delta), so each count keeps its max."""

    def __init__(self) -> None:
        self.reader: sse.SSEReader | None = None
        self.body = bytearray()
        self.usage: Usage | None = None
        self.stream = False

    def start(self, headers: list[tuple[bytes, bytes]]) -> None:
        content_type = dict(headers).get(b"content-type", b"")
        self.stream = content_type.startswith(b"text/event-stream")
        self.reader = sse.SSEReader() if self.stream else None

    def feed(self, chunk: bytes) -> None:
        if self.reader is not None:
            for item in self.reader.feed(chunk):
                if item.kind == "event" and '"usage"' in item.data:
                    self._take(item.data)
        elif len(self.body) < 8 * 1024 * 1024:
            self.body += chunk

    def end(self) -> None:
        if not self.stream and self.body:
            self._take(bytes(self.body))

    def _take(self, data: str | bytes) -> None:
        try:
            found = usage_of(json.loads(data))
        except ValueError:
            return
        if found is not None:
            old = self.usage or Usage(0, 0)
            self.usage = Usage(max(old.input, found.input), max(old.output, found.output),
                               max(old.reasoning, found.reasoning))


@dataclass
class Stored:
    """An idempotent response: kept whole (a stream too) and replayed byte for byte."""

    digest: str
    created: float
    done: asyncio.Event = field(default_factory=asyncio.Event)
    messages: list[Message] = field(default_factory=list)
    ok: bool = False
    complete: bool = False  # the whole body was sent (a client that hung up leaves a truncated one)


class VendorLayer:
    def __init__(self, app: ASGIApp, vendor: Vendor, max_body_bytes: int) -> None:
        self.app = app
        self.vendor = vendor
        self.max_body = max_body_bytes
        self.accounts = Accounts(vendor)
        self.stored: dict[tuple[str, str], Stored] = {}

    def relative(self, path: str) -> str | None:
        """The API path relative to the vendor's base (``chat/completions``), or None outside it. Where the vendor
        tells Anthropic clients to use the base itself as their base URL (Hontoni's Claude Code setup), what they
        send, base + /v1/messages, is the messages path too."""
        base = self.vendor.profile.base_path
        if not base:
            return path.strip("/") or None
        if not path.startswith(base + "/"):
            return None
        rel = path[len(base) + 1:].strip("/")
        doubled = self.vendor.profile.vendor.get("anthropic_base_url")
        if doubled and rel.startswith(doubled.strip("/") + "/"):
            inner = rel[len(doubled.strip("/")) + 1:]
            return inner if surface_of(inner) in ("messages", "models") else rel
        return rel

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC:
            return await self.app(scope, receive, send)
        if scope["path"].rstrip("/") == (self.vendor.profile.vendor.get("accounts") or {}).get("models"):
            return await live_models.respond(scope, receive, send, self.vendor, self._authenticate)
        if self.accounts.handles(scope["path"]):
            return await self.accounts(scope, receive, send)
        rel = self.relative(scope["path"])
        surface = surface_of(rel) if rel is not None else None
        anthropic = surface == "messages"
        if surface is None or surface not in self.vendor.profile.surfaces:
            message = f"Unknown request URL: {scope['method']} {scope['path']}. Please check the URL."
            return await self._reply(scope, receive, send, APIError(404, message, code="unknown_url"), anthropic)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            key = self._authenticate(headers, anthropic)
        except APIError as error:
            return await self._reply(scope, receive, send, error, anthropic)
        limiter = self.vendor.limiter(key or "anonymous")
        call = rules.Call(surface, headers, key)
        try:
            if surface in GENERATING and rel not in COUNTING and not self.vendor.covered(key or ""):
                self._check_balance(key)
        except APIError as error:
            return await self._reply(scope, receive, send, error, anthropic, limiter)
        if limiter is not None:
            verdict = limiter.admit()
            if not verdict.allowed:
                return await self._reply(scope, receive, send, rate_limited(verdict, limiter), anthropic)
        try:
            await self._serve(scope, receive, send, rel, call, anthropic, limiter)
        finally:
            if limiter is not None:
                limiter.release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, rel: str, call: rules.Call,
                     anthropic: bool, limiter: Limiter | None) -> None:
        inner = dict(scope, path="/v1/" + rel, raw_path=("/v1/" + rel).encode())
        inner["state"] = dict(scope.get("state") or {})
        stored_key: tuple[str, str] | None = None
        if scope["method"] == "POST" and call.surface in GENERATING:
            raw, whole = await _read(receive, self.max_body)
            try:
                body = json.loads(raw) if whole else None
            except (ValueError, RecursionError):  # the app behind answers it: 400, json_too_deep for the latter
                body = None
            try:
                if isinstance(body, dict):
                    body = rules.prepare(self.vendor, call, body)
                    raw = json.dumps(body).encode()
                if call.notes.get("extended_context"):  # "-1m: Extended context via pay-as-you-go"
                    self._check_balance(call.key)
                idem = rules.idempotency_key(self.vendor, call)
            except APIError as error:
                return await self._reply(scope, receive, send, error, anthropic, limiter)
            if idem is not None:
                stored_key = (call.key or "", idem)
                replayed = await self._replay(stored_key, raw, scope, receive, send)
                if replayed:
                    return
            receive = _replaying(raw, receive, more=not whole)
            inner["state"]["response_fields"] = call.response_fields
            # A thinking budget a model suffix resolved (Hontoni's :high/:max); the messages surface thinks
            # within it unless the request says otherwise.
            inner["state"]["thinking_budget"] = call.notes.get("thinking_budget")
            inner["state"]["reasoning_effort"] = call.notes.get("reasoning_effort")  # the same, for /v1/responses
            inner["state"]["thinking_cap"] = call.notes.get("thinking_cap")  # the plan's Thinking Budget
        meter = Meter()
        entry = self.stored.get(stored_key) if stored_key else None

        async def keep(message: Message) -> None:
            if entry is not None:
                if message["type"] == "http.response.start":
                    entry.ok = message["status"] < 500
                elif message["type"] == "http.response.body" and not message.get("more_body", False):
                    entry.complete = True
                entry.messages.append(message)
            await send(message)

        try:
            await self.app(inner, receive, metered(keep, limiter, meter))
        finally:
            if entry is not None:
                if not (entry.ok and entry.complete):
                    # A failure, or a response cut off by a hang-up, is not what a retry should get again.
                    self.stored.pop(stored_key, None)  # type: ignore[arg-type]
                entry.done.set()
            usage = _reported(inner["state"]) or meter.usage
            if usage is not None:
                if limiter is not None:
                    limiter.charge_tokens(usage.input + usage.output)
                if call.model:
                    self.vendor.charge(call.key or "", call.model, usage,
                                       pay_as_you_go=bool(call.notes.get("extended_context")))

    async def _replay(self, key: tuple[str, str], raw: bytes, scope: Scope, receive: Receive, send: Send) -> bool:
        """A retry within the window gets the first response again; True when it was replayed. The first request
        registers itself, and a retry that arrives while it runs waits for it."""
        spec = self.vendor.profile.vendor["idempotency"]
        digest = hashlib.sha256(raw).hexdigest()
        now = self.vendor.clock()
        for k in [k for k, s in self.stored.items() if now - s.created > spec["window_s"]]:
            del self.stored[k]
        entry = self.stored.get(key)
        if entry is None:
            self.stored[key] = Stored(digest, now)
            return False
        if entry.digest != digest:
            error = APIError(self.vendor.profile.semantic_status,
                             f"{spec['header']} was already used with a different request body in the last "
                             f"{spec['window_s'] // 60} minutes; use a new key for a new request.",
                             param=spec["header"], code="idempotency_key_reused")
            await error.response()(scope, receive, send)
            return True
        await entry.done.wait()
        if not (entry.ok and entry.complete):
            self.stored[key] = Stored(digest, now)
            return False
        for message in entry.messages:
            await send(message)
        return True

    def _authenticate(self, headers: dict[str, str], anthropic: bool) -> str | None:
        """The key the request carries, in the vendor's scheme, or a 401 in the vendor's words."""
        scheme = self.vendor.profile.auth
        offered: list[str] = []
        bearer = headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            offered.append(bearer[7:].strip())
        if "x-api-key" in scheme or anthropic:
            offered += [headers["x-api-key"].strip()] if headers.get("x-api-key") else []
        if not self.vendor.auth_on:
            return offered[0] if offered else None
        for key in offered:
            if self.vendor.key_ok(key):
                return key
        how = "'Authorization: Bearer <key>'" + (" or 'X-API-Key: <key>'" if "x-api-key" in scheme else "")
        message = (f"You didn't provide an API key. Send it as {how}." if not offered
                   else "Invalid API key provided.")
        raise APIError(401, message, code="invalid_api_key", type="authentication_error")

    def _check_balance(self, key: str | None) -> None:
        balance = self.vendor.balance(key or "")
        if balance is not None and balance <= 0:
            raise insufficient(balance)

    async def _reply(self, scope: Scope, receive: Receive, send: Send, error: APIError, anthropic: bool,
                     limiter: Limiter | None = None) -> None:
        error.headers = {**error.headers, **_limit_headers(limiter)}
        response = error.response(anthropic=anthropic, request_id=(scope.get("state") or {}).get("request_id"))
        await response(scope, receive, send)


def metered(send: Send, limiter: Limiter | None, meter: Meter) -> Send:
    """A send() that adds the rate-limit headers (as they stand when the response starts) and feeds the body to
    the usage meter on its way to the client."""

    async def send_out(message: Message) -> None:
        if message["type"] == "http.response.start":
            extra = [(k.encode(), v.encode()) for k, v in _limit_headers(limiter).items()]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
            meter.start(message["headers"])
        elif message["type"] == "http.response.body":
            meter.feed(message.get("body", b""))
            if not message.get("more_body", False):
                meter.end()
        await send(message)

    return send_out


def _reported(state: dict[str, Any]) -> Usage | None:
    """What the surface counted (surfaces.common.report_usage): an OpenAI stream without include_usage, or one
    cut off, reports nothing itself and is still billed."""
    usage = state.get("usage")
    return usage_of({"usage": usage()}) if callable(usage) else None


def rate_limited(verdict: Verdict, limiter: Limiter) -> APIError:
    """The 429 for a refused request: retry-after in whole seconds and the limit headers as they stand."""
    return APIError(429, f"Rate limit reached ({verdict.window}). Please retry after {verdict.retry_after} s.",
                    code="rate_limit_exceeded",
                    headers={"retry-after": str(verdict.retry_after), **limiter.header_values()})


def _limit_headers(limiter: Limiter | None) -> dict[str, str]:
    return limiter.header_values() if limiter is not None else {}


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool]:
    """The request body, or its first limit+1 bytes (whole=False) so the app can answer 413 itself."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return b"".join(chunks), False
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replaying(body: bytes, receive: Receive, more: bool = False) -> Callable[[], Awaitable[Message]]:
    """A receive() that yields what was already read once, then passes on whatever the client sends: the rest
    of its body when `more` (a body read only in part), else a disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


class LimitHeaders:
    """`wirecheck serve --rate-limit ...` without a vendor profile: OpenAI's x-ratelimit-* headers on every API
    response and 429 with retry-after past a limit, per key, so clients can exercise their rate-limit handling."""

    def __init__(self, app: ASGIApp, settings: LimitSettings | None) -> None:
        self.app = app
        self.settings = settings
        self.limiters: dict[str, Limiter] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.settings is None or scope["type"] != "http" or not scope["path"].startswith("/v1/"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        who = (headers.get(b"authorization") or headers.get(b"x-api-key") or b"").decode("latin-1")
        limiter = self.limiters.get(who) or self.limiters.setdefault(who, self.settings.new())
        verdict = limiter.admit()
        if not verdict.allowed:
            response = rate_limited(verdict, limiter).response(anthropic=speaks_anthropic(scope["path"]))
            return await response(scope, receive, send)
        meter = Meter()
        try:
            await self.app(scope, receive, metered(send, limiter, meter))
        finally:
            limiter.release()
            if meter.usage is not None:
                limiter.charge_tokens(meter.usage.input + meter.usage.output)
