"""POST /v1/completions (legacy text completions): one engine job per prompt, `n` choices each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from wirecheck.spec import sse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.detok import decode_ids
from ..engine.loader import LoadedModel
from ..engine.types import ChoiceEvent, TokenLogprob
from ..engine.worker import GenerationStream
from ..errors import invalid
from ..prompts import text_prompt
from ..request_body import read_json, validate
from .common import (check_quantization, check_stream_options, check_token_ids, new_id, now, report_usage,
                     resolve_model,
                     sampling_params, split_inputs, vendor_fields)
from .models import quantizations
from .streaming import guarded_stream, tagged_events, sse_response, unless_disconnected

DEFAULT_MAX_TOKENS = 16  # OpenAI's documented default for this endpoint


def prompt_ids(lm: LoadedModel, prompt: Any) -> list[list[int]]:
    if prompt is None:  # the spec allows null: OpenAI's default prompt, the start of a document
        prompt = ""
    return [text_prompt(lm, item) if isinstance(item, str) else check_token_ids(lm, item, f"prompt[{i}]", "prompt")
            for i, item in enumerate(split_inputs(prompt, "prompt"))]


def _check_unsupported(body: dict[str, Any]) -> None:
    if body.get("suffix"):
        raise invalid("suffix (fill-in-the-middle) is not supported by this model.", param="suffix")
    if (body.get("best_of") or 1) > 1:
        raise invalid("best_of > 1 is not supported by this server; use n.", param="best_of")
    if body.get("echo") and body.get("logprobs") is not None:
        raise invalid("echo together with logprobs is not supported by this server.", param="echo")


class _Offsets:
    """Legacy logprobs carry text_offset: where each token starts in the choice's text."""

    def __init__(self, count: int, start: list[int]) -> None:
        self.position = list(start) if start else [0] * count

    def block(self, index: int, entries: list[TokenLogprob], text: str) -> dict[str, Any]:
        offsets = []
        at = self.position[index]
        for lp in entries:
            offsets.append(at)
            at += len(lp.token) if not lp.token.startswith("bytes:") else 0
        self.position[index] += len(text)
        return {"tokens": [lp.token for lp in entries], "token_logprobs": [lp.logprob for lp in entries],
                "top_logprobs": [{t.token: t.logprob for t in lp.top} for lp in entries],
                "text_offset": offsets}


async def create_completion(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request, state.config.max_body_bytes)
    validate("CreateCompletionRequest", body)
    lm = resolve_model(state.models, body)
    _check_unsupported(body)
    check_quantization(body, lm, quantizations(lm))
    include_usage = check_stream_options(body)
    prompts = await run_in_threadpool(prompt_ids, lm, body["prompt"])
    requested = body.get("max_tokens")
    logprobs = body.get("logprobs")
    streams = []
    for ids in prompts:
        params = sampling_params(body, lm, len(ids), max_tokens=DEFAULT_MAX_TOKENS if requested is None else requested,
                                 max_param="max_tokens", logprobs=logprobs is not None,
                                 top_logprobs=int(logprobs or 0), prompt_param="prompt",
                                 limit=state.config.max_tokens_limit)
        streams.append(state.engine.generate(ids, params))
    n = int(body.get("n") or 1)
    echoes = [decode_ids(lm.token_bytes, ids) if body.get("echo") else "" for ids in prompts]
    job = _Job(streams, n, echoes, logprobs is not None)
    report_usage(request, lambda: job.usage)
    head = {"id": new_id("cmpl-"), "object": "text_completion", "created": now(), "model": lm.id,
            "system_fingerprint": lm.fingerprint, **vendor_fields(request)}
    if body.get("stream"):
        return sse_response(guarded_stream(streams, lambda: job.frames(head, include_usage)))
    return JSONResponse(await unless_disconnected(request, job.collect(head), streams))


class _Job:
    def __init__(self, streams: list[GenerationStream], n: int, echoes: list[str], want_logprobs: bool) -> None:
        self.streams = streams
        self.n = n
        self.count = len(streams) * n
        self.echoes = [echoes[i // n] for i in range(self.count)]
        self.want_logprobs = want_logprobs
        self.offsets = _Offsets(self.count, [len(e) for e in self.echoes])

    async def _events(self) -> AsyncIterator[tuple[int, ChoiceEvent]]:
        async for k, batch in tagged_events(self.streams):
            for event in batch:
                yield k * self.n + event.index, event

    @property
    def usage(self) -> dict[str, int]:
        prompt = sum(s.usage.prompt_tokens for s in self.streams)
        completion = sum(s.usage.completion_tokens for s in self.streams)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    async def collect(self, head: dict[str, Any]) -> dict[str, Any]:
        texts = list(self.echoes)
        finish: list[str | None] = [None] * self.count
        blocks: list[list[dict[str, Any]]] = [[] for _ in range(self.count)]
        async for index, event in self._events():
            if self.want_logprobs:
                blocks[index].append(self.offsets.block(index, event.logprobs, event.text))
            texts[index] += event.text
            finish[index] = event.finish_reason or finish[index]
        choices = [{"text": texts[i], "index": i, "logprobs": _merge(blocks[i]) if self.want_logprobs else None,
                    "finish_reason": finish[i]} for i in range(self.count)]
        return {**head, "object": "text_completion", "choices": choices, "usage": self.usage}

    async def frames(self, head: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
        for i, echo in enumerate(self.echoes):
            if echo:
                yield self._chunk(head, [_choice(i, echo)])
        async for index, event in self._events():
            if event.text or event.logprobs:
                block = self.offsets.block(index, event.logprobs, event.text) if self.want_logprobs else None
                yield self._chunk(head, [_choice(index, event.text, block)])
            if event.finish_reason:
                yield self._chunk(head, [_choice(index, "", None, event.finish_reason)])
        if include_usage:
            yield self._chunk(head, [], usage=self.usage)
        yield sse.DONE

    @staticmethod
    def _chunk(head: dict[str, Any], choices: list[dict[str, Any]], **extra: Any) -> bytes:
        return sse.encode_json({**head, "object": "text_completion", "choices": choices, **extra})


def _choice(index: int, text: str, logprobs: Any = None, finish: str | None = None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}


def _merge(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for block in blocks:
        for key in merged:
            merged[key].extend(block[key])
    return merged

