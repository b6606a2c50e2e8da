"""POST /v1/responses and /v1/responses/input_tokens: OpenAI's Responses API, translated onto the chat machinery.

The request becomes the equivalent chat body (instructions and input items as messages, flat function
tools as chat tools, `text.format` as `response_format`), so prompting, tools and structured outputs work
exactly as on chat; the answer is parsed into output items (a `message` with one `output_text` part,
`function_call` items) and, streamed, into Responses events with strictly increasing `sequence_number`s.
The server is stateless: nothing is stored, so `previous_response_id`, `conversation` and `background`
are refused with a 400 and every response echoes `store: false`. Counting input tokens renders the same prompt
and generates nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from wirecheck.spec import sse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.grammar import Grammar
from ..engine.loader import LoadedModel
from ..engine.types import Usage
from ..engine.worker import GenerationStream
from ..errors import APIError, internal, invalid
from ..prompts import text_of
from ..request_body import read_json, validate
from ..tool_calls import CallStart, Content, Piece
from .chat import Answer, prepare
from .common import THINKING_CAP, generate_with_thinking, new_id, now, resolve_model, sampling_params
from .streaming import guarded_stream, sse_response, unless_disconnected
from .tools import OutputPlan

ITEM_TYPES = ("message", "function_call", "function_call_output")
# `include` values this server can honour: it makes no reasoning items, so there is nothing to encrypt.
INCLUDABLE = frozenset({"reasoning.encrypted_content"})
STATEFUL = {
    "previous_response_id": "it stores no responses, so 'previous_response_id' cannot be resolved; send the "
                            "whole conversation as input items (earlier output items can be sent back as they are)",
    "conversation": "it stores no conversations; send the whole conversation as input items",
    "prompt": "it stores no prompt templates; send the instructions and input themselves",
}
# Chat's parameter names in errors from the shared tools/format/prompt code, as this surface names them.
_RENAMES = [(re.compile(r"tools\[(\d+)\]\.function\.parameters"), r"tools[\1].parameters"),
            (re.compile(r"response_format\.json_schema\.schema"), "text.format.schema"),
            (re.compile(r"response_format"), "text.format"),
            (re.compile(r"tool_choice\.allowed_tools\."), "tool_choice."),
            (re.compile(r"\bmessages\b"), "input")]


async def _prepare(request: Request, component: str, bound: bool = True,
                   ) -> tuple[dict[str, Any], LoadedModel, list[int], OutputPlan, Grammar | None]:
    """Body, model, prompt ids, output plan and grammar: one path for creating and for counting, so a count is
    exactly the usage.input_tokens the same request would be billed."""
    state = request.app.state
    body = await read_json(request, state.config.max_body_bytes)
    _check_item_types(body.get("input"))
    validate(component, body)
    lm = resolve_model(state.models, body)
    _refuse_unsupported(body)
    chat = chat_body(body)
    if len(chat["messages"]) > state.config.max_messages:
        raise invalid(f"Too many input items: this server accepts at most {state.config.max_messages}.",
                      param="input")
    try:
        prompt, plan, grammar = await run_in_threadpool(prepare, lm, chat, bound)
    except APIError as exc:
        raise exc.renamed(_RENAMES) from None
    return body, lm, prompt, plan, grammar


async def count_input_tokens(request: Request) -> Response:
    """POST /v1/responses/input_tokens (openai-python: client.responses.input_tokens.count)."""
    _body, _lm, prompt, _plan, _grammar = await _prepare(request, "ResponseInputTokensRequest", bound=False)
    return JSONResponse({"object": "response.input_tokens", "input_tokens": len(prompt)})


async def create_response(request: Request) -> Response:
    state = request.app.state
    body, lm, prompt, plan, grammar = await _prepare(request, "CreateResponse")
    params = sampling_params({"temperature": body.get("temperature"), "top_p": body.get("top_p")}, lm, len(prompt),
                             max_tokens=body.get("max_output_tokens"), max_param="max_output_tokens",
                             logprobs=False, top_logprobs=0, prompt_param="input",
                             limit=state.config.max_tokens_limit)
    effort = reasoning_effort(body, (request.scope.get("state") or {}).get("reasoning_effort"))
    # Reasoning takes at most half of max_output_tokens, so a small one still leaves room for an answer.
    think = min(REASONING_TOKENS[effort], params.max_tokens // 2) if effort is not None else 0
    cap = (request.scope.get("state") or {}).get("thinking_cap")  # a vendor plan's Thinking Budget (Hontoni)
    think = min(think, cap) if cap is not None else think
    streams = generate_with_thinking(state.engine, prompt, params, grammar, think)
    run = ResponseRun(lm, body, plan, params.temperature, params.top_p, streaming=bool(body.get("stream")),
                      effort=effort)
    if run.streaming:
        return sse_response(guarded_stream(streams, lambda: _events(run, *streams), run.fail))
    return JSONResponse(await unless_disconnected(request, _collect(run, *streams), streams))


# Reasoning: the model's own sampled text before its answer, as a reasoning item with reasoning_text. The tiny
# model does not reason; effort sets how many tokens it may spend (at most THINKING_CAP, as on /v1/messages).
REASONING_TOKENS = {"minimal": 16, "low": 64, "medium": 128, "high": THINKING_CAP, "xhigh": THINKING_CAP}


def reasoning_effort(body: dict[str, Any], resolved: str | None) -> str | None:
    """The effort to reason with, or None: the request's `reasoning.effort` wins over one a vendor resolved
    (Hontoni's `:high`/`:max` suffixes); "none" means no reasoning."""
    asked = (body.get("reasoning") or {}).get("effort")
    effort = asked if asked is not None else resolved
    return None if effort in (None, "none") else effort


# ------------------------------------------------------------------------------------------------ request


def _check_item_types(items: Any) -> None:
    """Input items this server cannot read get a 400 naming their type (before the spec's generic one)."""
    for i, item in enumerate(items if isinstance(items, list) else []):
        kind = item.get("type") if isinstance(item, dict) else None
        if isinstance(kind, str) and kind not in ITEM_TYPES:
            raise invalid(f"Input items of type '{kind}' are not supported by this server; send "
                          f"{', '.join(ITEM_TYPES)} items.", param=f"input[{i}].type")


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for field, why in STATEFUL.items():
        if body.get(field) is not None:
            raise invalid(f"'{field}' is not supported: this server is stateless; {why}.", param=field,
                          code="unsupported_parameter")
    if body.get("background"):
        raise invalid("'background' is not supported: this server is stateless and answers every request "
                      "in the foreground.", param="background", code="unsupported_parameter")
    for j, value in enumerate(body.get("include") or []):
        if value not in INCLUDABLE:
            raise invalid(f"include value '{value}' is not supported by this server.", param=f"include[{j}]",
                          code="unsupported_parameter")
    if body.get("top_logprobs"):
        raise invalid("'top_logprobs' is not supported on /v1/responses by this server.", param="top_logprobs",
                      code="unsupported_parameter")


def chat_body(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completions body equivalent to a (spec-valid) Responses body."""
    # Counting may leave input out (the instructions alone are counted); creating requires it.
    items = body["input"] if body.get("input") is not None else []
    chat: dict[str, Any] = {"messages": chat_messages(body.get("instructions"), items)}
    tools = body.get("tools") or []
    if tools:
        chat["tools"] = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters",
                                                                          "strict") if t.get(k) is not None}}
                         for t in tools]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice["type"] == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif isinstance(choice, dict):
        chat["tool_choice"] = {"type": "allowed_tools", "allowed_tools": {"mode": choice["mode"], "tools": [
            {"type": "function", "function": {"name": t.get("name")}} if t["type"] == "function" else t
            for t in choice["tools"]]}}
    elif choice is not None:
        chat["tool_choice"] = choice
    if body.get("parallel_tool_calls") is not None:
        chat["parallel_tool_calls"] = body["parallel_tool_calls"]
    fmt = (body.get("text") or {}).get("format")
    if fmt is not None and fmt["type"] == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "description", "schema", "strict") if k in fmt}}
    elif fmt is not None:
        chat["response_format"] = {"type": fmt["type"]}
    return chat


def chat_messages(instructions: str | None, items: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instructions as a system message first; function calls join the assistant turn they belong to."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    calls: set[str] = set()
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item["role"], "content": text_of(item["content"], f"input[{i}].content")})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            calls.add(item["call_id"])
            if messages and messages[-1]["role"] == "assistant":
                messages[-1].setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        else:
            if item["call_id"] not in calls:
                raise invalid(f"No function call found for function call output with call_id '{item['call_id']}': "
                              "send the function_call item before its output.", param=f"input[{i}].call_id")
            messages.append({"role": "tool", "tool_call_id": item["call_id"],
                             "content": text_of(item["output"], f"input[{i}].output")})
    if not messages:
        raise invalid("The input is empty: send at least one input item (or instructions).", param="input")
    return messages


# ----------------------------------------------------------------------------------------------- response


def usage_json(usage: Usage, reasoning: int = 0) -> dict[str, Any]:
    """Usage; reasoning tokens are output tokens too (OpenAI counts them in output_tokens)."""
    return {"input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": usage.completion_tokens + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": usage.total_tokens + reasoning}


def echoed_tools(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "name": t["name"], "description": t.get("description"),
             "parameters": t.get("parameters"), "strict": t.get("strict")} for t in tools]


class ResponseRun:
    """One response being generated: its output items, and the stream events that build them.

    Every event is encoded when it is made (so later changes to an item never leak into an earlier
    event); a non-streamed request runs the same steps, encodes no events and keeps only the final response.
    """

    def __init__(self, lm: LoadedModel, body: dict[str, Any], plan: OutputPlan, temperature: float,
                 top_p: float, streaming: bool = True, effort: str | None = None) -> None:
        self.streaming = streaming
        self.reasoning_tokens = 0
        self.answer = Answer(plan)
        self.items: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the item being written (always the last one)
        self.seq = 0
        text = body.get("text") or {}
        self.head = {"id": new_id("resp_", 48), "object": "response", "created_at": now()}
        # The effective configuration, echoed as OpenAI does (clients read these back).
        self.config = {
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": body.get("max_tool_calls"),
            "model": lm.id,
            "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
            "previous_response_id": None,
            "reasoning": {"effort": effort, "summary": None},
            "store": False,  # stateless: whatever was asked, nothing was stored
            "temperature": temperature,
            "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity") or "medium"},
            "tool_choice": body.get("tool_choice") or "auto",
            "tools": echoed_tools(body.get("tools") or []),
            "top_p": top_p,
            "truncation": body.get("truncation") or "disabled",
        }
        self.metadata = body.get("metadata") or {}

    # -- the response object -------------------------------------------------------------------------

    def snapshot(self, status: str, usage: Usage | None = None, error: dict[str, Any] | None = None,
                 ) -> dict[str, Any]:
        return {**self.head, "status": status, "background": False,
                "completed_at": now() if status == "completed" else None,
                "error": error,
                "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
                **self.config, "output": self.items,
                "usage": usage_json(usage, self.reasoning_tokens) if usage is not None else None,
                "metadata": self.metadata}

    # -- events --------------------------------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> bytes:
        self.seq += 1
        if not self.streaming:
            return b""
        return sse.encode_json({"type": kind, **fields, "sequence_number": self.seq - 1}, event=kind)

    def start(self) -> list[bytes]:
        created = self.snapshot("in_progress")
        return [self._emit("response.created", response=created), self._emit("response.in_progress", response=created)]

    def feed(self, pieces: list[Piece]) -> list[bytes]:
        events: list[bytes] = []
        for piece in pieces:
            if isinstance(piece, Content):
                if not piece.text:
                    continue
                if self.open is None or self.open["type"] != "message":
                    events += self._close("completed") + self._open_message()
                assert self.open is not None
                self.open["content"][0]["text"] += piece.text
                events.append(self._emit("response.output_text.delta", item_id=self.open["id"],
                                         output_index=len(self.items) - 1, content_index=0, delta=piece.text,
                                         logprobs=[]))
            elif isinstance(piece, CallStart):
                events += self._close("completed")
                events += self._add({"id": new_id("fc_", 48), "type": "function_call", "status": "in_progress",
                                     "arguments": "", "call_id": piece.id, "name": piece.name})
            else:
                assert self.open is not None and self.open["type"] == "function_call"
                self.open["arguments"] += piece.fragment
                events.append(self._emit("response.function_call_arguments.delta", item_id=self.open["id"],
                                         output_index=len(self.items) - 1, delta=piece.fragment))
        return events

    def open_reasoning(self) -> list[bytes]:
        events = self._add({"id": new_id("rs_", 48), "type": "reasoning", "summary": [], "content": [],
                            "status": "in_progress"})
        part = {"type": "reasoning_text", "text": ""}
        events.append(self._emit("response.content_part.added", item_id=self.items[-1]["id"],
                                 output_index=len(self.items) - 1, content_index=0, part=dict(part)))
        self.items[-1]["content"].append(part)
        return events

    def reason(self, text: str) -> list[bytes]:
        assert self.open is not None and self.open["type"] == "reasoning"
        self.open["content"][0]["text"] += text
        return [self._emit("response.reasoning_text.delta", item_id=self.open["id"],
                           output_index=len(self.items) - 1, content_index=0, delta=text)]

    def finish(self, engine_reason: str | None, usage: Usage) -> list[bytes]:
        """The last events: open items closed, then response.completed or response.incomplete."""
        events = self.feed(self.answer.finish())
        status = "incomplete" if engine_reason == "length" else "completed"
        if not any(item["type"] != "reasoning" for item in self.items):
            events += self._close("completed") + self._open_message()  # an empty answer is still one message
        events += self._close(status)
        self.final = self.snapshot(status, usage)
        return [*events, self._emit(f"response.{status}", response=self.final)]

    def fail(self, exc: BaseException) -> list[bytes]:
        """A failure after the stream started: an `error` event, then response.failed."""
        error = exc if isinstance(exc, APIError) else internal()
        if self.open is not None:
            self.open["status"] = "incomplete"
        failed = self.snapshot("failed", error={"code": "server_error", "message": error.message})
        return [self._emit("error", code=error.code or "server_error", message=error.message, param=error.param),
                self._emit("response.failed", response=failed)]

    def _add(self, item: dict[str, Any]) -> list[bytes]:
        self.items.append(item)
        self.open = item
        return [self._emit("response.output_item.added", output_index=len(self.items) - 1, item=item)]

    def _open_message(self) -> list[bytes]:
        events = self._add({"id": new_id("msg_", 48), "type": "message", "status": "in_progress",
                            "content": [], "role": "assistant"})
        part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        events.append(self._emit("response.content_part.added", item_id=self.items[-1]["id"],
                                 output_index=len(self.items) - 1, content_index=0, part=part))
        self.items[-1]["content"].append(part)
        return events

    def _close(self, status: str) -> list[bytes]:
        item, self.open = self.open, None
        if item is None:
            return []
        item["status"] = status
        where = {"item_id": item["id"], "output_index": len(self.items) - 1}
        if item["type"] == "message":
            part = item["content"][0]
            events = [self._emit("response.output_text.done", **where, content_index=0, text=part["text"],
                                 logprobs=[]),
                      self._emit("response.content_part.done", **where, content_index=0, part=part)]
        elif item["type"] == "reasoning":
            part = item["content"][0]
            events = [self._emit("response.reasoning_text.done", **where, content_index=0, text=part["text"]),
                      self._emit("response.content_part.done", **where, content_index=0, part=part)]
        else:
            events = [self._emit("response.function_call_arguments.done", **where, name=item["name"],
                                 arguments=item["arguments"])]
        return [*events, self._emit("response.output_item.done", output_index=where["output_index"], item=item)]


async def _generate(run: ResponseRun, *streams: GenerationStream) -> AsyncIterator[bytes]:
    *reasoning, stream = streams
    for think in reasoning:
        for frame in run.open_reasoning():
            yield frame
        async for batch in think:
            text = "".join(event.text for event in batch)
            for frame in run.reason(text) if text else []:
                yield frame
        run.reasoning_tokens += think.usage.completion_tokens
    reason = None
    async for batch in stream:
        for event in batch:
            for frame in run.feed(run.answer.feed(event.text)):
                yield frame
            reason = event.finish_reason or reason
    for frame in run.finish(reason, stream.usage):
        yield frame


async def _collect(run: ResponseRun, *streams: GenerationStream) -> dict[str, Any]:
    async for _ in _generate(run, *streams):
        pass
    return run.final


async def _events(run: ResponseRun, *streams: GenerationStream) -> AsyncIterator[bytes]:
    # A failure after the stream started goes in-band through guarded_stream, as run.fail's events.
    for frame in run.start():
        yield frame
    async for frame in _generate(run, *streams):
        yield frame
