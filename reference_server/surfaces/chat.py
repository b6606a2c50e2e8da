"""POST /v1/chat/completions: JSON and SSE exactly as OpenAI sends them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from spec import sse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.types import ChoiceEvent, TokenLogprob
from ..engine.worker import GenerationStream
from ..errors import invalid
from ..prompts import chat_prompt
from ..request_body import read_json, validate
from .common import check_quantization, check_stream_options, new_id, now, resolve_model, sampling_params
from .models import quantizations
from .streaming import guarded_stream, sse_response, unless_disconnected


def logprob_json(lp: TokenLogprob) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": lp.bytes,
            "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in lp.top]}


def _check_unsupported(body: dict[str, Any]) -> None:
    # Until constrained decoding lands these would be silently unenforced: refuse them clearly instead.
    if body.get("tools") and body.get("tool_choice", "auto") != "none":
        raise invalid("Tool calling is not supported by this server yet; send tool_choice 'none' or no tools.",
                      param="tools")
    fmt = (body.get("response_format") or {}).get("type", "text")
    if fmt != "text":
        raise invalid(f"response_format type '{fmt}' is not supported by this server yet.",
                      param="response_format.type")
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise invalid("top_logprobs requires logprobs to be true.", param="top_logprobs")


async def create_chat_completion(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request, state.config.max_body_bytes)
    validate("CreateChatCompletionRequest", body)
    lm = resolve_model(state.models, body)
    if len(body["messages"]) > state.config.max_messages:
        raise invalid(f"Too many messages: this server accepts at most {state.config.max_messages}.",
                      param="messages")
    _check_unsupported(body)
    check_quantization(body, lm, quantizations(lm))
    include_usage = check_stream_options(body)
    # Templating and tokenising a long history takes milliseconds: keep it off the event loop.
    prompt = await run_in_threadpool(chat_prompt, lm, body["messages"], body.get("tools"))
    chosen = body.get("max_completion_tokens")
    max_param = "max_completion_tokens" if chosen is not None else "max_tokens"
    if chosen is None:
        chosen = body.get("max_tokens")
    params = sampling_params(body, lm, len(prompt), max_tokens=chosen, max_param=max_param,
                             logprobs=bool(body.get("logprobs")), top_logprobs=int(body.get("top_logprobs") or 0),
                             prompt_param="messages", limit=state.config.max_tokens_limit)
    stream = state.engine.generate(prompt, params)
    # Key order as OpenAI sends it; "object" is overwritten per frame kind.
    head = {"id": new_id("chatcmpl-"), "object": "", "created": now(), "model": lm.id,
            "system_fingerprint": lm.fingerprint}
    if body.get("stream"):
        return sse_response(guarded_stream([stream], lambda: _frames(head, stream, params.n, include_usage,
                                                                      params.logprobs)))
    result = await unless_disconnected(request, _collect(head, stream, params.n, params.logprobs), [stream])
    return JSONResponse(result)


async def _collect(head: dict[str, Any], stream: GenerationStream, n: int, want_logprobs: bool) -> dict[str, Any]:
    texts = [""] * n
    finish: list[str | None] = [None] * n
    logprobs: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    async for batch in stream:
        for event in batch:
            texts[event.index] += event.text
            logprobs[event.index].extend(logprob_json(lp) for lp in event.logprobs)
            finish[event.index] = event.finish_reason or finish[event.index]
    choices = [{
        "index": i,
        "message": {"role": "assistant", "content": texts[i], "refusal": None, "annotations": []},
        "logprobs": {"content": logprobs[i], "refusal": None} if want_logprobs else None,
        "finish_reason": finish[i],
    } for i in range(n)]
    return {**head, "object": "chat.completion", "choices": choices, "usage": stream.usage.as_dict()}


def _chunk(head: dict[str, Any], choices: list[dict[str, Any]], **extra: Any) -> bytes:
    return sse.encode_json({**head, "object": "chat.completion.chunk", "choices": choices, **extra})


def _delta_choice(index: int, delta: dict[str, Any], logprobs: Any = None, finish: str | None = None) -> dict:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


async def _frames(head: dict[str, Any], stream: GenerationStream, n: int, include_usage: bool,
                  want_logprobs: bool) -> AsyncIterator[bytes]:
    # Role first and once per choice: the SDK's stream helper concatenates repeated strings.
    for i in range(n):
        yield _chunk(head, [_delta_choice(i, {"role": "assistant", "content": "", "refusal": None})])
    async for batch in stream:
        for event in batch:
            for frame in _event_frames(head, event, want_logprobs):
                yield frame
    if include_usage:
        yield _chunk(head, [], usage=stream.usage.as_dict())
    yield sse.DONE


def _event_frames(head: dict[str, Any], event: ChoiceEvent, want_logprobs: bool) -> list[bytes]:
    frames = []
    if event.text or event.logprobs:
        lps = {"content": [logprob_json(lp) for lp in event.logprobs], "refusal": None} if want_logprobs else None
        frames.append(_chunk(head, [_delta_choice(event.index, {"content": event.text}, lps)]))
    if event.finish_reason:
        # The terminal chunk carries an empty delta, as OpenAI's own streams do.
        frames.append(_chunk(head, [_delta_choice(event.index, {}, None, event.finish_reason)]))
    return frames
