"""A floor for the server benchmark: the reference server's web stack streaming pre-made tokens, no model.

    python -m wirecheck.load.floor_server [--host 127.0.0.1] [--port 8766]

POST /v1/chat/completions with "stream": true answers with the chunks `wirecheck serve` sends for a
plain chat completion: the role chunk, `max_tokens` content chunks (one token string each), the finish
chunk, the usage chunk when `stream_options.include_usage` is set, then [DONE]. The token strings are the
tiny tokenizer's rendering of a sample of the tiny corpus's words, made once at start-up; every chunk is
still JSON- and SSE-encoded per frame by the server's own functions, and the generator yields to the
event loop between tokens, as the real server does while it waits on the engine. Same Starlette app shape,
middleware (access log, optional auth) and uvicorn settings as `wirecheck serve`, so the gap between
this and the real server is request validation, templating and generation, not HTTP/SSE.
GET /health answers 200 once it is up. Non-streaming requests get 400: the bench only streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from wirecheck.spec import sse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tokenizers import Tokenizer

from wirecheck.reference_server.app import AccessLog, BearerAuth
from wirecheck.reference_server.engine.loader import TINY_DIR
from wirecheck.reference_server.engine.types import Usage
from wirecheck.reference_server.models.tiny_words import WORDS
from wirecheck.reference_server.surfaces.chat import _chunk, _delta_choice
from wirecheck.reference_server.surfaces.common import new_id, now
from wirecheck.reference_server.surfaces.streaming import sse_response


def token_texts(words: int = 200) -> list[str]:
    """One string per token of the tiny tokenizer over a sample of its corpus words (ASCII, so every
    token decodes on its own): chunk sizes like the tiny model's output."""
    tokenizer = Tokenizer.from_file(str(TINY_DIR / "tokenizer.json"))
    ids = tokenizer.encode(" ".join(WORDS[:words])).ids
    return [tokenizer.decode([i]) for i in ids]


async def frames(head: dict[str, Any], texts: list[str], n: int, include_usage: bool) -> AsyncIterator[bytes]:
    yield _chunk(head, [_delta_choice(0, {"role": "assistant", "content": "", "refusal": None})])
    for k in range(n):
        # The real server awaits the engine between tokens; without this a stream would hog the loop.
        await asyncio.sleep(0)
        yield _chunk(head, [_delta_choice(0, {"content": texts[k % len(texts)]})])
    yield _chunk(head, [_delta_choice(0, {}, None, "length")])
    if include_usage:
        # No tokenizer runs on the prompt here: prompt_tokens is 0 (the bench reads completion_tokens).
        yield _chunk(head, [], usage=Usage(0, n).as_dict())
    yield sse.DONE


def create_app(texts: list[str]) -> Starlette:
    async def chat(request: Request) -> Response:
        body = json.loads(await request.body())
        if not body.get("stream"):
            return JSONResponse({"error": {"message": "the floor server only streams"}}, status_code=400)
        n = int(body.get("max_completion_tokens") or body.get("max_tokens") or 16)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = {"id": new_id("chatcmpl-"), "object": "", "created": now(), "model": body.get("model", "tiny"),
                "system_fingerprint": "fp_floor"}
        return sse_response(frames(head, texts, n, include_usage))

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "floor": True})

    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"]),
                            Route("/health", health, methods=["GET"])])
    app.add_middleware(BearerAuth, keys=[])  # as `serve` without keys: a pass-through layer
    app.add_middleware(AccessLog)
    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args()
    # The same logging and uvicorn options `wirecheck serve` sets, so the access log costs the same.
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(token_texts()), host=args.host, port=args.port, access_log=False,
                log_level=args.log_level, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
