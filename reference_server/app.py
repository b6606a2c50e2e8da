"""The Starlette application: routes, auth, request log, and errors in OpenAI's envelope."""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServerConfig
from .engine.loader import LoadedModel, load_model
from .engine.media import OMNI_MODEL_ID, MediaAdapter, adapter_for
from .engine.process import RemoteEngine
from .engine.worker import Engine
from .errors import APIError, internal, speaks_anthropic
from .keys import key_matches
from .surfaces.audio import FORMATS, SpeechModels, create_transcription
from .surfaces.chat import create_chat_completion
from .surfaces.completions import create_completion
from .surfaces.embeddings import create_embedding
from .surfaces.messages import count_tokens, create_message
from .surfaces.models import list_models, retrieve_model
from .surfaces.responses import count_input_tokens, create_response
from .vendors.catalogue import aliases, fingerprint
from .vendors.layer import LimitHeaders, VendorLayer
from .vendors.limits import settings as limit_settings
from .vendors.profile import Options, Vendor

access = logging.getLogger("wirecheck.access")
log = logging.getLogger("wirecheck.server")


class AccessLog:
    """One line per request, written when the response ends (so streams log their full duration)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 0
        request_id = "req_" + uuid.uuid4().hex[:24]
        scope.setdefault("state", {})["request_id"] = request_id  # error bodies quote it
        anthropic = speaks_anthropic(scope["path"])
        header = b"request-id" if anthropic else b"x-request-id"

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(header, request_id.encode())]
                if not anthropic:  # api.openai.com's time to the response's start; clients read it (openai-php)
                    extra.append((b"openai-processing-ms", str(round((time.perf_counter() - start) * 1000)).encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_logged)
        finally:
            access.info("%s %s %s %.1fms %s", scope["method"], scope["path"], status or "-",
                        (time.perf_counter() - start) * 1000, request_id)


class BearerAuth:
    """Optional API keys: `Authorization: Bearer <key>` (on Anthropic surfaces `x-api-key: <key>` too),
    compared in constant time, never logged."""

    PUBLIC = frozenset({"/", "/health"})  # liveness probes (and Claude Code's HEAD /) carry no key

    def __init__(self, app: ASGIApp, keys: list[str]) -> None:
        self.app = app
        self.keys = [k.encode() for k in keys]

    def _allowed(self, header: bytes | None, api_key: bytes | None) -> bool:
        offered = [api_key.strip()] if api_key else []
        if header and header.lower().startswith(b"bearer "):
            offered.append(header[7:].strip())
        return any(key_matches(o, self.keys) for o in offered)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in self.PUBLIC:
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        header = headers.get(b"authorization")
        anthropic = speaks_anthropic(scope["path"])
        api_key = headers.get(b"x-api-key") if anthropic else None
        if self._allowed(header, api_key):
            return await self.app(scope, receive, send)
        if anthropic:
            message = ("x-api-key header is required (or send 'Authorization: Bearer <key>')."
                       if not (header or api_key) else "invalid x-api-key")
        else:
            message = ("You didn't provide an API key. Send it as 'Authorization: Bearer <key>'." if not header
                       else "Incorrect API key provided.")
        response = APIError(401, message, code="invalid_api_key").response(
            anthropic=anthropic, request_id=scope.get("state", {}).get("request_id"))
        await response(scope, receive, send)


def _render(request: Request, error: APIError) -> Response:
    """The error in the envelope of the surface the request addressed."""
    return error.response(anthropic=speaks_anthropic(request.url.path),
                          request_id=request.scope.get("state", {}).get("request_id"))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    vendor = getattr(request.app.state, "vendor", None)
    if exc.semantic and vendor is not None:
        exc.status = vendor.profile.semantic_status  # Hoonify: well-formed but invalid values are 422
    return _render(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}. Please check the URL."
        return _render(request, APIError(404, message, code="unknown_url"))
    if exc.status_code == 405:
        return _render(request, APIError(405, f"Method {request.method} is not allowed on {request.url.path}.",
                                          headers=dict(exc.headers or {})))
    return _render(request, APIError(exc.status_code, str(exc.detail)))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _render(request, internal())


async def health(request: Request) -> Response:
    engine = request.app.state.engine
    if not getattr(engine, "alive", True):  # the engine process died: say so rather than look healthy
        return JSONResponse({"status": "engine down", "running": 0, "waiting": 0}, status_code=503)
    return JSONResponse({"status": "ok", **engine.load()})


async def root(request: Request) -> Response:
    # Some clients probe the base URL before the first call (Claude Code sends HEAD /); a 404 there reads as
    # "server down".
    return JSONResponse({"status": "ok", "service": "wirecheck reference server"})


def routes() -> list[Route]:
    return [
        Route("/", root, methods=["GET"]),  # Starlette answers HEAD for GET routes
        Route("/v1/chat/completions", create_chat_completion, methods=["POST"]),
        Route("/v1/completions", create_completion, methods=["POST"]),
        Route("/v1/embeddings", create_embedding, methods=["POST"]),
        Route("/v1/messages", create_message, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/input_tokens", count_input_tokens, methods=["POST"]),
        Route("/v1/audio/transcriptions", create_transcription, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]


def create_app(config: ServerConfig, loaded: LoadedModel | None = None) -> Starlette:
    """Build the app; the model is loaded at startup unless one is handed in (tests share one)."""
    vendor = vendor_for(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        model = {"ref": config.model, "device": config.device, "dtype": config.dtype,
                 "served_id": config.served_model_name}
        engine: Engine | RemoteEngine
        if loaded is None and config.engine == "process":
            # The weights live in the engine process; this one templates, validates and streams.
            lm = await run_in_threadpool(load_model, **model, weights=False)
            media = await run_in_threadpool(adapter_for, lm.path, lm.hidden_size)
            engine = RemoteEngine(lm, {**model, "log_level": logging.getLogger().level, "media": media},
                                  max_rows=config.max_batch_rows)
        else:
            lm = loaded or load_model(**model)
            media = adapter_for(lm.path, lm.hidden_size)
            adapter = MediaAdapter(media, lm.device, lm.dtype) if media else None
            engine = Engine(lm, max_rows=config.max_batch_rows, media=adapter)
        engine.start()
        app.state.models = served_models(vendor, lm, engine.media_kinds)
        app.state.engine = engine
        log.info("serving model %r on %s (%s), context window %d", lm.id, lm.device, lm.dtype, lm.context_window)
        # Everything loaded so far (torch, transformers, the tokenizer, the spec) lives as long as the server.
        # Frozen, the collector's full passes skip it: a request body of 50,000 values used to trigger a full
        # pass over some million start-up objects, a pause of 150-250 ms for whoever was being served then.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            engine.close()

    app = Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.config = config
    app.state.vendor = vendor
    app.state.speech = speech_models(config, vendor)
    if vendor is None:
        app.add_middleware(BearerAuth, keys=config.api_keys)
        limits = limit_settings({}, config.rate_limit or None)
        if limits is not None:  # no middleware on the hot path unless --rate-limit asked for one
            app.add_middleware(LimitHeaders, settings=limits)
    else:
        # The vendor layer authenticates, limits and rewrites in the vendor's own terms.
        app.add_middleware(VendorLayer, vendor=vendor, max_body_bytes=config.max_body_bytes)
    app.add_middleware(AccessLog)
    return app


def speech_models(config: ServerConfig, vendor: Vendor | None) -> SpeechModels:
    """The ids /v1/audio/transcriptions answers for: the vendor's documented ones, else the model's own name."""
    if vendor is None:
        name = "tiny-whisper" if config.speech_model == "tiny-whisper" else Path(config.speech_model).name
        return SpeechModels([name], config.speech_model, config.device)
    formats = tuple(vendor.profile.vendor.get("transcription_formats", FORMATS))
    return SpeechModels(list(vendor.profile.audio_models), config.speech_model, config.device, formats)


def served_models(vendor: Vendor | None, lm: LoadedModel, media: frozenset[str]) -> dict[str, LoadedModel]:
    """The ids clients may name: a vendor's documented ids; else the model's own id, plus tiny-omni (the same LM
    that also reads images and audio) when the engine has the media adapter for it."""
    if vendor is not None:
        return aliases(vendor, lm, media)
    models = {lm.id: lm}
    if media and lm.id != OMNI_MODEL_ID:
        models[OMNI_MODEL_ID] = lm.variant(OMNI_MODEL_ID, fingerprint(OMNI_MODEL_ID, lm.fingerprint), media)
    elif media:
        models[lm.id] = lm.variant(lm.id, lm.fingerprint, media)
    return models


def vendor_for(config: ServerConfig) -> Vendor | None:
    if config.profile is None:
        return None
    options = Options(api_keys=list(config.api_keys), rate_limit=dict(config.rate_limit), balance=config.balance,
                      new_account_balance=config.new_account_balance, dry_pools=config.dry_pools)
    return Vendor.load(config.profile, options)
