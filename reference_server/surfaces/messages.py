"""POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API over the same engine.

The request is translated onto what the chat surface already does: system and messages are rendered
through the model's chat template (tool_use blocks as the assistant's tool calls, tool_result blocks as
tool messages), tools and tool_choice become the output plan that constrained decoding enforces (auto ->
auto, any -> required, tool -> a named tool, none -> none), and the Hermes tool-call markup the model writes
is parsed into tool_use blocks. Errors on these paths use Anthropic's envelope (see app.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

from wirecheck.spec import sse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..engine.grammar import Grammar, compiler_for
from ..engine.loader import LoadedModel
from ..engine.worker import GenerationStream
from ..errors import APIError, internal, invalid
from ..prompts import anthropic_chat, chat_prompt
from ..request_body import check_messages_bound, read_json, validate
from ..tool_calls import CallArguments, CallStart, Content, Piece
from .chat import Answer
from .common import THINKING_CAP, generate_with_thinking, new_id, resolve_model, sampling_params
from .streaming import guarded_stream, sse_response, unless_disconnected
from .tools import OutputPlan, output_grammar, output_plan

_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def new_tool_use_id() -> str:
    return new_id("toolu_", 24)


def _openai_tools(body: dict[str, Any]) -> dict[str, Any]:
    """tools, tool_choice and output_config.format in the chat surface's terms, for its output plan."""
    tools = []
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") not in (None, "custom"):
            raise invalid(f"Tool type '{tool['type']}' is not supported by this server; send client tools "
                          "(name, description, input_schema).", param=f"tools[{i}].type")
        if "input_schema" not in tool:
            raise invalid(f"tools[{i}].input_schema: Field required.", param=f"tools[{i}].input_schema")
        function = {"name": tool["name"], "parameters": tool["input_schema"]}
        function.update({key: tool[key] for key in ("description", "strict") if tool.get(key) is not None})
        tools.append({"type": "function", "function": function})
    converted: dict[str, Any] = {"tools": tools}
    choice = body.get("tool_choice")
    if choice is not None:
        converted["parallel_tool_calls"] = not choice.get("disable_parallel_tool_use")
        if choice["type"] == "tool":
            converted["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif tools or choice["type"] not in ("auto", "none"):  # auto and none need no tools
            converted["tool_choice"] = _CHOICE[choice["type"]]
    fmt = (body.get("output_config") or {}).get("format")
    if fmt is not None:
        if fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
            raise invalid("output_config.format must be {\"type\": \"json_schema\", \"schema\": {...}}.",
                          param="output_config.format")
        converted["response_format"] = {"type": "json_schema", "json_schema": {"name": "output",
                                                                               "schema": fmt["schema"]}}
    return converted


# The chat surface's errors name OpenAI's fields; say them as this request spelled them.
_RENAMES = [(re.compile(r"\.function\.parameters"), ".input_schema"),
            (re.compile(r"response_format\.json_schema\.schema"), "output_config.format.schema")]


# Extended thinking: the model's own sampled text before the answer, as a `thinking` block (common.THINKING_CAP).
MIN_BUDGET = 1024  # Anthropic's floor for budget_tokens
_SIGNING_KEY = secrets.token_bytes(32)


def thinking_budget(body: dict[str, Any], resolved: int | None) -> int | None:
    """Tokens the answer may think for, or None. An explicit `thinking` wins; otherwise a budget a vendor resolved
    (Hontoni's `:high`/`:max` suffixes) applies, within max_tokens. Anthropic's rules for explicit budgets: at
    least 1024, below max_tokens, and no forced tool use."""
    thinking = body.get("thinking")
    max_tokens = int(body["max_tokens"])
    forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
    if thinking is None:  # a vendor's resolved budget never forces thinking onto forced tool use
        return min(resolved, max_tokens - 1) if resolved and max_tokens > 1 and not forced else None
    kind = thinking.get("type")
    if kind == "disabled":
        return None
    if kind == "adaptive":
        budget = max_tokens - 1
    else:
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise invalid("thinking.budget_tokens: Field required (an integer) when thinking is enabled.",
                          param="thinking.budget_tokens")
        if budget < MIN_BUDGET:
            raise invalid(f"thinking.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}.",
                          param="thinking.budget_tokens")
        if budget >= max_tokens:
            raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`.", param="max_tokens")
    if forced:
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.", param="tool_choice")
    return budget if budget > 0 else None


def signature(thinking: str) -> str:
    """An opaque signature over the thinking text (clients pass thinking blocks back unchanged)."""
    return base64.b64encode(hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest()).decode()


def _prompt(lm: LoadedModel, body: dict[str, Any], converted: dict[str, Any], bound: bool = True) -> list[int]:
    messages, prefill = anthropic_chat(body.get("system"), body["messages"])
    return chat_prompt(lm, messages, converted["tools"], prefill, bound=bound)


def _prepare(lm: LoadedModel, body: dict[str, Any]) -> tuple[list[int], OutputPlan, Grammar | None]:
    """Prompt ids, output plan and grammar: templating and schema compiling, so off the event loop."""
    converted = _openai_tools(body)
    prompt = _prompt(lm, body, converted)  # first: it refuses by size, cheaply
    try:
        plan = output_plan(converted)
        grammar = output_grammar(plan, compiler_for(lm))
    except APIError as exc:
        raise exc.renamed(_RENAMES) from None
    return prompt, plan, grammar


async def _read(request: Request, component: str) -> tuple[dict[str, Any], LoadedModel]:
    state = request.app.state
    body = await read_json(request, state.config.max_body_bytes)
    check_messages_bound(body, state.config.max_messages)  # before validation walks every message
    validate(component, body)
    lm = resolve_model(state.models, body)
    return body, lm


async def count_tokens(request: Request) -> Response:
    body, lm = await _read(request, "AnthropicCountTokensRequest")
    prompt = await run_in_threadpool(lambda: _prompt(lm, body, _openai_tools(body), bound=False))
    return JSONResponse({"input_tokens": len(prompt)})


async def create_message(request: Request) -> Response:
    body, lm = await _read(request, "AnthropicCreateMessageRequest")
    budget = thinking_budget(body, (request.scope.get("state") or {}).get("thinking_budget"))
    prompt, plan, grammar = await run_in_threadpool(_prepare, lm, body)
    knobs = {"temperature": body.get("temperature"), "top_p": body.get("top_p"), "top_k": body.get("top_k"),
             "stop": body.get("stop_sequences")}
    params = sampling_params(knobs, lm, len(prompt), max_tokens=body["max_tokens"], max_param="max_tokens",
                             logprobs=False, top_logprobs=0, prompt_param="messages",
                             limit=request.app.state.config.max_tokens_limit)
    think = min(budget, THINKING_CAP, params.max_tokens - 1) if budget else 0
    streams = generate_with_thinking(request.app.state.engine, prompt, params, grammar, think)
    message = Message(new_id("msg_", 24), lm.id, len(prompt), Answer(plan, new_tool_use_id))
    if body.get("stream"):
        return sse_response(guarded_stream(streams, lambda: message.events(*streams), _error_events))
    result = await unless_disconnected(request, message.collect(*streams), streams)
    return JSONResponse(result)


def stop_reason(engine_reason: str, stop_sequence: str | None, has_calls: bool) -> str:
    if engine_reason == "length":
        return "max_tokens"
    if stop_sequence is not None:
        return "stop_sequence"
    return "tool_use" if has_calls else "end_turn"


def _event(data: dict[str, Any]) -> bytes:
    """A named event whose `event:` line equals its data's `type`, as Anthropic sends them."""
    return sse.encode_json(data, event=data["type"])


def _error_events(exc: BaseException) -> list[bytes]:
    error = exc if isinstance(exc, APIError) else internal()
    return [_event(error.anthropic_body())]


class Message:
    """One answer as Anthropic content blocks: parsed pieces open, extend and close text and tool_use blocks;
    the same walk gives the stream's events and the final message."""

    def __init__(self, id: str, model: str, input_tokens: int, answer: Answer) -> None:
        self.id = id
        self.model = model
        self.input_tokens = input_tokens
        self.answer = answer
        self.blocks: list[dict[str, Any]] = []
        self.arguments: list[str] = []  # per block: the tool input's JSON so far
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None

    def usage(self, output_tokens: int) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": output_tokens,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    def as_json(self, output_tokens: int) -> dict[str, Any]:
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": self.blocks, "stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence,
                "usage": self.usage(output_tokens)}

    def _pieces(self, batch: list) -> list[Piece]:
        pieces: list[Piece] = []
        for event in batch:
            pieces += self.answer.feed(event.text)
            if event.finish_reason:
                pieces += self.answer.finish()
                self.stop_sequence = event.stop_sequence
                self.stop_reason = stop_reason(event.finish_reason, event.stop_sequence, bool(self.answer.calls))
        return pieces

    def _apply(self, pieces: list[Piece]) -> list[dict[str, Any]]:
        """Add pieces to the blocks; returns the stream events (without their type-named event lines)."""
        out: list[dict[str, Any]] = []
        for piece in pieces:
            last = self.blocks[-1] if self.blocks else None
            if isinstance(piece, Content):
                if last is None or last["type"] != "text":
                    out += self._start({"type": "text", "text": ""})
                self.blocks[-1]["text"] += piece.text
                delta = {"type": "text_delta", "text": piece.text}
            elif isinstance(piece, CallStart):
                out += self._start({"type": "tool_use", "id": piece.id, "name": piece.name, "input": {}})
                continue
            else:
                assert isinstance(piece, CallArguments)
                self.arguments[-1] += piece.fragment
                delta = {"type": "input_json_delta", "partial_json": piece.fragment}
            out.append({"type": "content_block_delta", "index": len(self.blocks) - 1, "delta": delta})
        return out

    def _start(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        out = self._stop()
        self.blocks.append(block)
        self.arguments.append("")
        return out + [{"type": "content_block_start", "index": len(self.blocks) - 1, "content_block": dict(block)}]

    def _stop(self) -> list[dict[str, Any]]:
        """Close the open block: a tool_use block gets its input (a call cut off by max_tokens keeps {})."""
        if not self.blocks:
            return []
        block = self.blocks[-1]
        if block["type"] == "tool_use":
            try:
                parsed = json.loads(self.arguments[-1] or "{}")
            except ValueError:
                parsed = {}
            block["input"] = parsed if isinstance(parsed, dict) else {}
        return [{"type": "content_block_stop", "index": len(self.blocks) - 1}]

    async def _thinking(self, stream: GenerationStream) -> AsyncIterator[dict[str, Any]]:
        """The thinking block: opened empty, extended by thinking_delta, signed by signature_delta, closed."""
        yield self._start({"type": "thinking", "thinking": "", "signature": ""})
        async for batch in stream:
            text = "".join(event.text for event in batch)
            if text:
                self.blocks[-1]["thinking"] += text
                yield [{"type": "content_block_delta", "index": len(self.blocks) - 1,
                        "delta": {"type": "thinking_delta", "thinking": text}}]
        self.blocks[-1]["signature"] = signature(self.blocks[-1]["thinking"])
        yield [{"type": "content_block_delta", "index": len(self.blocks) - 1,
                "delta": {"type": "signature_delta", "signature": self.blocks[-1]["signature"]}}]

    @staticmethod
    def _output_tokens(streams: tuple[GenerationStream, ...]) -> int:
        return sum(s.usage.completion_tokens for s in streams)

    async def collect(self, *streams: GenerationStream) -> dict[str, Any]:
        *thinking, stream = streams
        for think in thinking:
            async for _ in self._thinking(think):
                pass
        async for batch in stream:
            self._apply(self._pieces(batch))
        self._stop()
        return self.as_json(self._output_tokens(streams))

    async def events(self, *streams: GenerationStream) -> AsyncIterator[bytes]:
        *thinking, stream = streams
        start = self.as_json(0)
        start.update(content=[], stop_reason=None, stop_sequence=None)
        yield _event({"type": "message_start", "message": start})
        yield _event({"type": "ping"})
        for think in thinking:
            async for datas in self._thinking(think):
                for data in datas:
                    yield _event(data)
        async for batch in stream:
            for data in self._apply(self._pieces(batch)):
                yield _event(data)
        for data in self._stop():
            yield _event(data)
        yield _event({"type": "message_delta",
                      "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence},
                      "usage": self.usage(self._output_tokens(streams))})
        yield _event({"type": "message_stop"})
