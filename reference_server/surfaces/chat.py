"""POST /v1/chat/completions: JSON and SSE exactly as OpenAI sends them.

Image and audio parts reach models that accept them (`LoadedModel.accepts`): the image bytes are fetched first
(media_source: async I/O, on the loop), then decoding, preprocessing and templating run off the loop, and the
prompt's placeholder runs travel to the engine with the media (engine/media.py). Other models refuse such a part
with a 400 naming it and the modality they lack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

from wirecheck.spec import sse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.grammar import Grammar, compiler_for
from ..engine.loader import LoadedModel
from ..engine.media import Media, decode_image, decode_input_audio
from ..engine.types import ChoiceEvent, TokenLogprob
from ..engine.worker import GenerationStream
from ..errors import invalid
from ..media_source import load_image
from ..prompts import MediaRef, Prompt, chat_prompt, media_prompt, media_refs, placeholder_id
from ..request_body import check_messages_bound, read_json, validate
from ..tool_calls import CallStart, Content, Piece, ToolCall, ToolCallParser
from .common import (check_quantization, check_stream_options, new_id, now, report_usage, resolve_model,
                     sampling_params, vendor_fields)
from .models import quantizations
from .streaming import guarded_stream, sse_response, unless_disconnected
from .tools import OutputPlan, output_grammar, output_plan


def logprob_json(lp: TokenLogprob) -> dict[str, Any]:
    return {"token": lp.token, "logprob": lp.logprob, "bytes": lp.bytes,
            "top_logprobs": [{"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in lp.top]}


# Bodies up to this size are templated and tokenized on the event loop (tens of microseconds); larger ones in a
# worker thread, so a long prompt never holds up the streams being served.
INLINE_BYTES = 16_384


def _check_logprobs(body: dict[str, Any]) -> None:
    if body.get("top_logprobs") is not None and not body.get("logprobs"):
        raise invalid("top_logprobs requires logprobs to be true.", param="top_logprobs")


def prepare(lm: LoadedModel, body: dict[str, Any], bound: bool = True) -> tuple[list[int], OutputPlan, Grammar | None]:
    """Prompt ids, output plan and grammar: milliseconds of templating and schema compiling, so off the loop.
    `bound` as in chat_prompt (False for counting)."""
    ids = chat_prompt(lm, body["messages"], body.get("tools"), bound=bound)  # first: it refuses by size, cheaply
    plan = output_plan(body)
    return ids, plan, output_grammar(plan, compiler_for(lm))


def prepare_media(lm: LoadedModel, body: dict[str, Any],
                  sources: list[tuple[MediaRef, bytes | None]]) -> tuple[Prompt, OutputPlan, Grammar | None]:
    """`prepare` for a chat with media parts: each is decoded and preprocessed (tens of milliseconds for an image
    or a few seconds of audio), then templated as its run of placeholders."""
    media = {(ref.message, ref.part): decode_media(ref, raw) for ref, raw in sources}
    plan = output_plan(body)
    grammar = output_grammar(plan, compiler_for(lm))
    return media_prompt(lm.tokenizer, body["messages"], body.get("tools"), media, placeholder_id(lm)), plan, grammar


def decode_media(ref: MediaRef, raw: bytes | None) -> Media:
    """A media part as the engine takes it; a 400 naming the part's field when its content is not usable."""
    if ref.kind == "image":
        assert raw is not None
        return decode_image(raw, ref.body.get("detail") or "auto", f"{ref.where}.image_url.url")
    return decode_input_audio(ref.body.get("data", ""), ref.body.get("format", ""), f"{ref.where}.input_audio")


async def media_sources(config: Any, refs: list[MediaRef]) -> list[tuple[MediaRef, bytes | None]]:
    """Each media part with its image bytes (data: URL, or fetched where the operator allows); audio is inline."""
    policy = config.fetch_policy() if any(ref.kind == "image" for ref in refs) else None
    out: list[tuple[MediaRef, bytes | None]] = []
    for ref in refs:
        raw = None
        if ref.kind == "image":
            _, raw = await load_image(str(ref.body.get("url", "")), f"{ref.where}.image_url.url", policy)
        out.append((ref, raw))
    return out


async def create_chat_completion(request: Request) -> Response:
    state = request.app.state
    body = await read_json(request, state.config.max_body_bytes)
    check_messages_bound(body, state.config.max_messages)  # before validation walks every message
    validate("CreateChatCompletionRequest", body)
    lm = resolve_model(state.models, body)
    _check_logprobs(body)
    check_quantization(body, lm, quantizations(lm))
    include_usage = check_stream_options(body)
    refs = media_refs(lm.id, lm.accepts, body["messages"])
    if refs:
        sources = await media_sources(state.config, refs)
        chat, plan, grammar = await run_in_threadpool(prepare_media, lm, body, sources)
    else:
        large = int(request.headers.get("content-length") or INLINE_BYTES + 1) > INLINE_BYTES
        if body.get("tools") or body.get("response_format") or large:  # compiling, or long tokenizing: ms or more
            ids, plan, grammar = await run_in_threadpool(prepare, lm, body)
        else:  # templating alone takes tens of microseconds, less than the hop to a worker thread
            ids, plan, grammar = prepare(lm, body)
        chat = Prompt(ids)
    prompt = chat.ids
    chosen = body.get("max_completion_tokens")
    max_param = "max_completion_tokens" if chosen is not None else "max_tokens"
    if chosen is None:
        chosen = body.get("max_tokens")
    params = sampling_params(body, lm, len(prompt), max_tokens=chosen, max_param=max_param,
                             logprobs=bool(body.get("logprobs")), top_logprobs=int(body.get("top_logprobs") or 0),
                             prompt_param="messages", limit=state.config.max_tokens_limit)
    params = replace(params, grammar=grammar)
    stream = state.engine.generate(prompt, params, chat.media)
    report_usage(request, lambda: stream.usage.as_dict())
    # Key order as OpenAI sends it; "object" is overwritten per frame kind.
    head = {"id": new_id("chatcmpl-"), "object": "", "created": now(), "model": lm.id,
            "system_fingerprint": lm.fingerprint, **vendor_fields(request)}
    answers = [Answer(plan) for _ in range(params.n)]
    if body.get("stream"):
        return sse_response(guarded_stream([stream], lambda: _frames(head, stream, answers, include_usage,
                                                                      params.logprobs)))
    result = await unless_disconnected(request, _collect(head, stream, answers, params.logprobs), [stream])
    return JSONResponse(result)


class Answer:
    """One choice's output: content and tool calls parsed from the model's text as it arrives."""

    def __init__(self, plan: OutputPlan, call_id: Callable[[], str] | None = None) -> None:
        self.plan = plan
        self.parser = ToolCallParser(call_id or new_call_id) if plan.parses_calls else None
        self.content = ""

    def feed(self, text: str) -> list[Piece]:
        if self.parser is None:
            self.content += text
            return [Content(text)] if text else []
        return self.parser.feed(text)

    def finish(self) -> list[Piece]:
        return self.parser.finish() if self.parser is not None else []

    @property
    def calls(self) -> list[ToolCall]:
        return self.parser.calls if self.parser is not None else []

    def message_content(self) -> str | None:
        text = self.parser.content if self.parser is not None else self.content
        return None if self.calls and not text else text  # content is null when the answer is only calls

    def finish_reason(self, engine_reason: str) -> str:
        # OpenAI reports "stop" for a forced named function, "tool_calls" when the model chose to call;
        # a call cut off by max_tokens keeps "length".
        if self.calls and engine_reason == "stop" and not self.plan.named:
            return "tool_calls"
        return engine_reason


def new_call_id() -> str:
    return new_id("call_", 24)


async def _collect(head: dict[str, Any], stream: GenerationStream, answers: list[Answer],
                   want_logprobs: bool) -> dict[str, Any]:
    n = len(answers)
    finish: list[str | None] = [None] * n
    logprobs: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    async for batch in stream:
        for event in batch:
            answers[event.index].feed(event.text)
            logprobs[event.index].extend(logprob_json(lp) for lp in event.logprobs)
            if event.finish_reason:
                answers[event.index].finish()
                finish[event.index] = answers[event.index].finish_reason(event.finish_reason)
    choices = []
    for i, answer in enumerate(answers):
        message: dict[str, Any] = {"role": "assistant", "content": answer.message_content(), "refusal": None,
                                   "annotations": []}
        if answer.calls:
            message["tool_calls"] = [call.as_json() for call in answer.calls]
        choices.append({"index": i, "message": message,
                        "logprobs": {"content": logprobs[i], "refusal": None} if want_logprobs else None,
                        "finish_reason": finish[i]})
    return {**head, "object": "chat.completion", "choices": choices, "usage": stream.usage.as_dict()}


def _chunk(head: dict[str, Any], choices: list[dict[str, Any]], **extra: Any) -> bytes:
    return sse.encode_json({**head, "object": "chat.completion.chunk", "choices": choices, **extra})


def _delta_choice(index: int, delta: dict[str, Any], logprobs: Any = None, finish: str | None = None) -> dict:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}


async def _frames(head: dict[str, Any], stream: GenerationStream, answers: list[Answer], include_usage: bool,
                  want_logprobs: bool) -> AsyncIterator[bytes]:
    # Role first and once per choice: the SDK's stream helper concatenates repeated strings.
    for i in range(len(answers)):
        yield _chunk(head, [_delta_choice(i, {"role": "assistant", "content": "", "refusal": None})])
    async for batch in stream:
        for event in batch:
            for frame in _event_frames(head, event, answers[event.index], want_logprobs):
                yield frame
    if include_usage:
        yield _chunk(head, [], usage=stream.usage.as_dict())
    yield sse.DONE


def piece_deltas(pieces: list[Piece]) -> list[dict[str, Any]]:
    """Deltas for parsed pieces: runs of content or of one call's arguments merge into one delta each; a
    call's first delta carries its id, type and name once, with empty arguments, as OpenAI sends it."""
    deltas: list[dict[str, Any]] = []
    for piece in pieces:
        last = deltas[-1] if deltas else None
        if isinstance(piece, Content):
            if last is not None and "content" in last:
                last["content"] += piece.text
            else:
                deltas.append({"content": piece.text})
        elif isinstance(piece, CallStart):
            deltas.append({"tool_calls": [{"index": piece.index, "id": piece.id, "type": "function",
                                           "function": {"name": piece.name, "arguments": ""}}]})
        else:
            call = last["tool_calls"][0] if last is not None and "tool_calls" in last else None
            if call is not None and call["index"] == piece.index and "id" not in call:
                call["function"]["arguments"] += piece.fragment
            else:
                deltas.append({"tool_calls": [{"index": piece.index, "function": {"arguments": piece.fragment}}]})
    return deltas


def _event_frames(head: dict[str, Any], event: ChoiceEvent, answer: Answer, want_logprobs: bool) -> list[bytes]:
    pieces = answer.feed(event.text)
    if event.finish_reason:
        pieces += answer.finish()
    deltas = piece_deltas(pieces)
    if event.logprobs and not deltas:
        deltas = [{"content": ""}]  # text held back (a possible tag or stop string): logprobs still go out now
    frames = []
    for k, delta in enumerate(deltas):
        lps = None
        if want_logprobs and k == 0:
            lps = {"content": [logprob_json(lp) for lp in event.logprobs], "refusal": None}
        frames.append(_chunk(head, [_delta_choice(event.index, delta, lps)]))
    if event.finish_reason:
        # The terminal chunk carries an empty delta, as OpenAI's own streams do.
        frames.append(_chunk(head, [_delta_choice(event.index, {}, None, answer.finish_reason(event.finish_reason))]))
    return frames
